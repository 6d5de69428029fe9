//! What the CLI prints for errors and manifests.

use std::process::ExitCode;

use quiver_graph::{Errors, OperatorSpec};
use quiver_runtime::Registry;

/// Prints warnings (the graph still runs).
pub fn graph_warnings(graph: &quiver_graph::Graph) {
    for w in quiver_graph::warnings(graph) {
        eprintln!(
            "warning: {}\n  --> {}:{}:{}",
            visible(&w.message),
            w.file.display(),
            w.span.line,
            w.span.col
        );
    }
}

/// At most this many errors are printed in full; the rest are counted.
const SHOWN_ERRORS: usize = 100;
/// Excerpts of longer lines show this many characters each side of the caret.
const EXCERPT_HALF: usize = 60;

/// Text from a file made safe for a terminal: control characters (an ANSI escape, a newline
/// inside an id) are shown escaped, never sent raw.
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// One line of a file for an excerpt: visible, and cut around `col` if long. Returns the
/// text and the caret's column in it.
fn excerpt(line: &str, col: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    let col = col.saturating_sub(1).min(chars.len());
    let (from, to) = if chars.len() > 2 * EXCERPT_HALF + 20 {
        (col.saturating_sub(EXCERPT_HALF), (col + EXCERPT_HALF).min(chars.len()))
    } else {
        (0, chars.len())
    };
    let mut text = String::new();
    let mut caret = 0;
    if from > 0 {
        text.push_str("...");
        caret += 3;
    }
    for (i, c) in chars[from..to].iter().enumerate() {
        let shown: String = if *c == '\t' {
            " ".into()
        } else if c.is_control() {
            c.escape_default().collect()
        } else {
            c.to_string()
        };
        if from + i < col {
            caret += shown.chars().count();
        }
        text.push_str(&shown);
    }
    if to < chars.len() {
        text.push_str("...");
    }
    (text, caret)
}

/// A file's lines as the YAML parser counts them (CR LF, LF, or a lone CR end a line).
fn yaml_lines(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.is_empty() {
        return Vec::new();
    }
    text.replace("\r\n", "\n")
        .split(['\n', '\r'])
        .map(str::to_string)
        .collect()
}

/// Prints each error rustc-style: message, location, the source line with a caret.
pub fn graph_errors(errors: &Errors) -> ExitCode {
    use std::io::Write as _;
    let mut sources: std::collections::HashMap<std::path::PathBuf, Vec<String>> = std::collections::HashMap::new();
    let stderr = std::io::stderr();
    let mut w = std::io::BufWriter::new(stderr.lock());
    for e in errors.iter().take(SHOWN_ERRORS) {
        let where_ = match (&e.node, &e.port) {
            (Some(n), Some(p)) => format!("node `{n}`, port `{p}`: "),
            (Some(n), None) => format!("node `{n}`: "),
            _ => String::new(),
        };
        let _ = writeln!(w, "error: {}", visible(&format!("{where_}{}", e.kind)));
        let _ = writeln!(w, "  --> {}:{}:{}", e.file.display(), e.span.line, e.span.col);
        let lines = sources.entry(e.file.clone()).or_insert_with(|| {
            // Lossy: a line with a bad byte is still shown (the bad byte as U+FFFD).
            use std::io::Read as _;
            let mut bytes = Vec::new();
            let read =
                std::fs::File::open(&e.file).and_then(|f| f.take(quiver_graph::MAX_FILE_BYTES).read_to_end(&mut bytes));
            match read {
                Ok(_) => yaml_lines(&String::from_utf8_lossy(&bytes)),
                Err(_) => Vec::new(),
            }
        });
        if let Some(line) = lines.get(e.span.line.saturating_sub(1)) {
            let (text, caret) = excerpt(line, e.span.col);
            let num = e.span.line.to_string();
            let pad = " ".repeat(num.len());
            let _ = writeln!(w, "{pad} |\n{num} | {text}\n{pad} | {}^", " ".repeat(caret));
        }
    }
    if errors.len() > SHOWN_ERRORS {
        let _ = writeln!(w, "... and {} more error(s) not shown", errors.len() - SHOWN_ERRORS);
    }
    let _ = writeln!(
        w,
        "{} error(s) in {}",
        errors.len(),
        errors
            .iter()
            .next()
            .map_or(String::new(), |e| e.file.display().to_string())
    );
    ExitCode::from(2)
}

fn print_manifest(spec: &OperatorSpec, path: &std::path::Path) {
    outln!("{} {}: {}", spec.name, spec.version, spec.doc);
    outln!("  library: {}", path.display());
    outln!("  built with: {}", spec.sdk);
    let section = |title: &str, empty: bool| {
        outln!("  {title}:{}", if empty { " none" } else { "" });
    };
    section("inputs", spec.inputs.is_empty());
    for p in &spec.inputs {
        let required = if p.required { " (required)" } else { "" };
        outln!("    {:<16} {:<24} {}{required}", p.name, p.msg_type, p.doc);
    }
    section("outputs", spec.outputs.is_empty());
    for p in &spec.outputs {
        outln!("    {:<16} {:<24} {}", p.name, p.msg_type, p.doc);
    }
    section("timers", spec.timers.is_empty());
    for t in &spec.timers {
        outln!("    {:<16} {}", t.name, t.doc);
    }
    if let Some(g) = &spec.graph_ports {
        outln!("  ports declared in the graph (`ports:`): {}", g.doc);
        for s in &g.settings {
            outln!("    {:<16} {}", s.name, s.doc);
        }
    }
    section("parameters", spec.params.is_empty());
    for p in &spec.params {
        let default = p
            .default
            .as_ref()
            .map_or("required".to_string(), |d| format!("default {d}"));
        outln!(
            "    {:<16} {:<9} {:<18} range {:<14} {}",
            p.name,
            p.kind.to_string(),
            default,
            p.range_text(),
            p.doc
        );
    }
}

/// `quiver operators [NAME]`.
pub fn operators(registry: &Registry, name: Option<&str>) -> ExitCode {
    if let Some(name) = name {
        return match registry.resolve(&quiver_graph::OperatorRef::Name(name.into())) {
            Ok(lib) => {
                print_manifest(&lib.spec, &lib.path);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let found = registry.discover();
    if found.is_empty() {
        let dirs: Vec<String> = registry
            .search_path()
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        eprintln!("no operators found in: {}", dirs.join(", "));
        return ExitCode::from(2);
    }
    for (path, result) in found {
        match result {
            Ok(lib) => outln!(
                "{:<20} {:<8} {}  ({})",
                lib.spec.name,
                lib.spec.version,
                lib.spec.doc,
                path.display()
            ),
            Err(e) => outln!(
                "{:<20} error: {e}",
                path.file_name()
                    .map_or("?".into(), |n| n.to_string_lossy().into_owned())
            ),
        }
    }
    ExitCode::SUCCESS
}

/// `quiver machines`: the daemons reachable through `connect`.
pub fn machines(connect: &[String], json: bool, tls: Option<&quiver_zenoh::Tls>) -> ExitCode {
    if connect.is_empty() {
        eprintln!("error: pass --connect ENDPOINT (a daemon's, e.g. tcp/robot.local:7450) or set QUIVER_CONNECT");
        return ExitCode::from(2);
    }
    let client = match quiver_daemon::Client::connect(connect, tls) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let daemons = match client.machines(crate::procs::machines::ASK_TIMEOUT) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    client.close();
    if json {
        match serde_json::to_string_pretty(&daemons) {
            Ok(text) => outln!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
        return ExitCode::SUCCESS;
    }
    outln!(
        "{:<14} {:<18} {:<9} {:>3} {:<22} {:>5} {:>6} {:>11}  graphs",
        "machine",
        "labels",
        "version",
        "abi",
        "address",
        "cpus",
        "cpu%",
        "mem free"
    );
    for d in &daemons {
        let graphs: Vec<String> = d
            .runs
            .iter()
            .map(|r| format!("{} ({}: {})", r.graph, r.run, r.processes.join(", ")))
            .collect();
        outln!(
            "{:<14} {:<18} {:<9} {:>3} {:<22} {:>5} {:>6} {:>11}  {}{}",
            d.name,
            if d.labels.is_empty() {
                "-".into()
            } else {
                d.labels.join(",")
            },
            d.version,
            d.abi,
            d.listen.join(","),
            d.cpus,
            d.cpu_percent.map_or("-".into(), |c| format!("{c:.0}")),
            format!("{}/{} MB", d.mem_available_mb, d.mem_total_mb),
            if graphs.is_empty() {
                "-".into()
            } else {
                graphs.join("; ")
            },
            if d.no_fetch { "  (no-fetch)" } else { "" }
        );
    }
    if daemons.is_empty() {
        eprintln!("no daemon answered within {:?}", crate::procs::machines::ASK_TIMEOUT);
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// The terminal's width in columns (stderr's; else `COLUMNS`; else 120).
pub fn terminal_width() -> usize {
    if let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size_of(std::io::stderr()) {
        return usize::from(w);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c: &usize| c > 0)
        .unwrap_or(120)
}

/// `line` cut to at most `width - 1` characters (never inside a character; `…` marks a cut),
/// control characters replaced: it fits one terminal line and can be redrawn in place.
pub fn fit(line: &str, width: usize) -> String {
    let max = width.saturating_sub(1).max(1);
    let mut out: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if line.chars().count() > max {
        out.pop();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn status_lines_fit_the_terminal_without_splitting_characters() {
        assert_eq!(fit("short", 80), "short");
        assert_eq!(fit("abcdef", 5), "abc…");
        // Multi-byte characters at the cut: counted as characters, never split.
        assert_eq!(fit("ééééé", 4), "éé…");
        assert_eq!(fit("a\nb\x1b[2Kc", 80), "a b [2Kc");
        assert_eq!(fit("x", 0), "x");
    }
}
