//! Detached runs, from the laptop's side: `quiver run --detach` hands a whole run to a daemon
//! (which runs its `quiver run` there, see quiver-daemon), `quiver ps` lists the runs daemons
//! supervise, `quiver attach` follows one's output and status, `quiver stop` stops one and
//! prints its summary.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use quiver_daemon::{Client, DetachedEnd, DetachedInfo, Out};
use quiver_graph::Graph;
use quiver_runtime::Registry;

use super::machines::{ASK_TIMEOUT, PlaceFailure, connect_and_place, shipment};

/// How long `run --detach` waits for the run to start on its supervisor (fetching, preparing
/// every machine).
const DETACH_TIMEOUT: Duration = Duration::from_secs(240);
/// How long `stop` waits for the run to drain and answer.
const STOP_TIMEOUT: Duration = Duration::from_secs(90);

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

fn connect(connect: &[String], tls: Option<&quiver_zenoh::Tls>) -> Result<Client, ExitCode> {
    if connect.is_empty() {
        return Err(fail(
            2,
            "pass --connect ENDPOINT (a daemon's, e.g. tcp/robot.local:7450) or set QUIVER_CONNECT",
        ));
    }
    Client::connect(connect, tls).map_err(|e| fail(1, e))
}

/// The machine a detached run is supervised on: `--supervisor`, else the machine of the
/// graph's first node that runs on one.
fn choose_supervisor(
    graph: &Graph,
    placed: &std::collections::HashMap<String, String>,
    flag: Option<&str>,
) -> Result<String, String> {
    if let Some(m) = flag {
        return Ok(m.to_string());
    }
    graph
        .nodes
        .iter()
        .find_map(|n| n.process.as_ref().and_then(|p| placed.get(p)).cloned())
        .ok_or_else(|| {
            format!(
                "{}: no node runs on another machine: name the machine to run it on with --supervisor MACHINE",
                graph.file.display()
            )
        })
}

/// `quiver run GRAPH --detach`: checks and places the graph, ships it to the supervisor, which
/// starts it; prints the run's id (stdout) once it runs everywhere.
pub fn detach(
    graph: &Graph,
    registry: &Registry,
    graph_path: &Path,
    duration: Option<Duration>,
    drain: Duration,
    cluster: &super::Cluster,
    supervisor: Option<&str>,
) -> ExitCode {
    let tls = cluster.tls.as_ref();
    let (client, placed) = if graph.uses_machines() {
        match connect_and_place(graph, &cluster.connect, tls) {
            Ok(cp) => cp,
            Err(PlaceFailure::Placement(errors)) => return crate::report::graph_errors(&errors),
            Err(PlaceFailure::Connect(e)) => return fail(2, e),
        }
    } else {
        match connect(&cluster.connect, tls) {
            Ok(c) => (c, Default::default()),
            Err(code) => return code,
        }
    };
    let result = (|| -> Result<(String, String), String> {
        let machine = choose_supervisor(graph, &placed, supervisor)?;
        let daemons = client.machines(ASK_TIMEOUT).map_err(|e| e.to_string())?;
        let d = daemons.iter().find(|d| d.name == machine).ok_or_else(|| {
            let names: Vec<&str> = daemons.iter().map(|d| d.name.as_str()).collect();
            format!("no daemon serves machine `{machine}` (daemons: {})", names.join(", "))
        })?;
        if d.version != quiver_daemon::VERSION || d.abi != quiver_abi::ABI_VERSION {
            return Err(format!(
                "machine `{machine}` runs quiver {} (ABI {}), this is quiver {} (ABI {}): run the same version everywhere",
                d.version,
                d.abi,
                quiver_daemon::VERSION,
                quiver_abi::ABI_VERSION
            ));
        }
        let shipped = shipment(graph, registry, graph_path)?;
        let run = cluster.run_id.clone().unwrap_or_else(super::new_run_id);
        // The files are served under a name of their own while the supervisor fetches them:
        // the run's own name (and its liveliness token) belongs to the run it starts.
        let ship = format!("{run}.ship");
        let handle = client.open_run(&ship).map_err(|e| e.to_string())?;
        for (sha, path) in &shipped.by_hash {
            handle.offer(sha, path.clone());
        }
        let req = quiver_daemon::Detach {
            run: run.clone(),
            version: quiver_daemon::VERSION.into(),
            abi: quiver_abi::ABI_VERSION,
            graph_name: graph.name.clone(),
            ship,
            graph: shipped.graph,
            libraries: shipped.libraries,
            files: shipped.files,
            duration_ms: duration.map(|d| d.as_millis() as u64),
            drain_ms: Some(drain.as_millis() as u64),
        };
        client.detach(&machine, &req, DETACH_TIMEOUT)?;
        drop(handle);
        Ok((run, machine))
    })();
    client.close();
    match result {
        Ok((run, machine)) => {
            eprintln!(
                "quiver: run {run} ({}) runs, supervised by machine `{machine}`; follow it with `quiver attach {run}`, stop it with `quiver stop {run}`",
                graph.name
            );
            outln!("{run}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("error: the run did not start; nothing is left running on any machine");
            ExitCode::from(2)
        }
    }
}

/// Every detached run the reachable daemons supervise.
fn detached_runs(client: &Client) -> Result<Vec<DetachedInfo>, String> {
    let daemons = client.machines(ASK_TIMEOUT).map_err(|e| e.to_string())?;
    if daemons.is_empty() {
        return Err(format!("no daemon answered within {ASK_TIMEOUT:?}"));
    }
    Ok(daemons.into_iter().flat_map(|d| d.detached).collect())
}

fn find(client: &Client, run: &str) -> Result<DetachedInfo, String> {
    let runs = detached_runs(client)?;
    let ids: Vec<&str> = runs.iter().map(|r| r.run.as_str()).collect();
    runs.iter().find(|r| r.run == run).cloned().ok_or_else(|| {
        format!(
            "no daemon supervises a run {run} ({})",
            if ids.is_empty() {
                "no detached run anywhere".to_string()
            } else {
                format!("detached runs: {}", ids.join(", "))
            }
        )
    })
}

fn state(info: &DetachedInfo) -> String {
    match &info.ended {
        None => "running".into(),
        Some(e) => e.how.clone(),
    }
}

fn uptime(secs: f64) -> String {
    let s = secs as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{secs:.1}s")
    }
}

/// `quiver ps`.
pub fn ps(connect_to: &[String], json: bool, tls: Option<&quiver_zenoh::Tls>) -> ExitCode {
    let client = match connect(connect_to, tls) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runs = detached_runs(&client);
    client.close();
    let runs = match runs {
        Ok(r) => r,
        Err(e) => return fail(1, e),
    };
    if json {
        return match serde_json::to_string_pretty(&runs) {
            Ok(text) => {
                outln!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(1, e),
        };
    }
    outln!(
        "{:<28} {:<28} {:<14} {:<20} {:>8}  status",
        "run",
        "graph",
        "machine",
        "state",
        "uptime"
    );
    for r in &runs {
        let status = crate::report::fit(&r.status, 100);
        outln!(
            "{:<28} {:<28} {:<14} {:<20} {:>8}  {}",
            r.run,
            r.graph,
            r.machine,
            state(r),
            uptime(r.uptime_s),
            if status.is_empty() { "-".into() } else { status }
        );
    }
    ExitCode::SUCCESS
}

/// Prints how a detached run ended (its summary, its errors); its exit code.
fn print_end(run: &str, end: &DetachedEnd, summary_json: Option<&Path>) -> ExitCode {
    match end
        .summary
        .as_deref()
        .map(serde_json::from_str::<quiver_runtime::Summary>)
    {
        Some(Ok(summary)) => out!("{summary}"),
        Some(Err(e)) => eprintln!("error: run {run}: its summary does not read: {e}"),
        None => eprintln!("quiver: run {run} wrote no summary"),
    }
    if let (Some(path), Some(text)) = (summary_json, &end.summary)
        && let Err(e) = std::fs::write(path, text)
    {
        eprintln!("error: writing {}: {e}", path.display());
        return ExitCode::from(1);
    }
    for e in &end.errors {
        eprintln!("{e}");
    }
    eprintln!("quiver: run {run} {}", end.how);
    match end.code {
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::from(1),
    }
}

/// `quiver stop RUN`.
pub fn stop(
    connect_to: &[String],
    run: &str,
    tls: Option<&quiver_zenoh::Tls>,
    summary_json: Option<&Path>,
) -> ExitCode {
    let client = match connect(connect_to, tls) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = find(&client, run).and_then(|info| {
        eprintln!(
            "quiver: stopping run {run} on machine `{}` (it drains first)",
            info.machine
        );
        client.stop_detached(&info.machine, run, STOP_TIMEOUT)
    });
    client.close();
    match result {
        Ok(info) => match &info.ended {
            Some(end) => print_end(run, end, summary_json),
            None => fail(1, format!("run {run} did not end")),
        },
        Err(e) => fail(1, e),
    }
}

enum Event {
    Line(quiver_daemon::OutLine),
    MachineLost,
}

/// `quiver attach RUN`: the run's output since it began (the last 2000 lines) and from now on,
/// its live status line; ends with its summary when the run ends (its exit code), or on
/// Ctrl-C (the run keeps going).
pub fn attach(connect_to: &[String], run: &str, tls: Option<&quiver_zenoh::Tls>) -> ExitCode {
    let client = match connect(connect_to, tls) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let code = follow(&client, run);
    client.close();
    code
}

fn follow(client: &Client, run: &str) -> ExitCode {
    let info = match find(client, run) {
        Ok(i) => i,
        Err(e) => return fail(1, e),
    };
    let machine = info.machine.clone();
    // Bounded: a slow terminal holds the subscriber back rather than lose lines.
    let (tx, rx) = mpsc::sync_channel::<Event>(4096);
    let live = tx.clone();
    let _follow = match client.follow(run, move |line| {
        let _ = live.send(Event::Line(line));
    }) {
        Ok(f) => f,
        Err(e) => return fail(1, e),
    };
    let lost = tx;
    let watched = machine.clone();
    let _watch = match client.watch_daemons(move |name, alive| {
        if name == watched && !alive {
            let _ = lost.send(Event::MachineLost);
        }
    }) {
        Ok(w) => w,
        Err(e) => return fail(1, e),
    };
    let (info, backlog, next) = match client.backlog(&machine, run) {
        Ok(b) => b,
        Err(e) => return fail(1, e),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
        tracing::warn!("cannot install the Ctrl-C handler: {e}");
    }
    let terminal = std::io::stderr().is_terminal();
    eprintln!(
        "quiver: attached to run {run} ({}) on machine `{machine}`, up {}; Ctrl-C detaches (the run keeps going)",
        info.graph,
        uptime(info.uptime_s)
    );
    let mut status_shown = false;
    let show = |out: &Out, status_shown: &mut bool| -> Option<DetachedEnd> {
        if *status_shown && terminal && !matches!(out, Out::Status(_)) {
            eprint!("\r\x1b[2K");
            *status_shown = false;
        }
        match out {
            Out::Line(l) => outln!("{l}"),
            Out::Log(l) => eprintln!("{l}"),
            Out::Status(s) => {
                if terminal {
                    let s = crate::report::fit(s, crate::report::terminal_width());
                    eprint!("\r\x1b[2K{s}");
                    *status_shown = true;
                } else {
                    eprintln!("status: {s}");
                }
            }
            Out::Ended(end) => return Some(end.clone()),
        }
        None
    };
    for line in &backlog {
        if let Some(end) = show(&line.out, &mut status_shown) {
            return print_end(run, &end, None);
        }
    }
    if let Some(end) = &info.ended {
        return print_end(run, end, None);
    }
    if !info.status.is_empty() {
        show(&Out::Status(info.status.clone()), &mut status_shown);
    }
    loop {
        if stop.load(Ordering::SeqCst) {
            if status_shown && terminal {
                eprint!("\r\x1b[2K");
            }
            eprintln!("quiver: detached from run {run}; it keeps running on machine `{machine}`");
            return ExitCode::SUCCESS;
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Line(line)) if line.seq >= next => {
                if let Some(end) = show(&line.out, &mut status_shown) {
                    if status_shown && terminal {
                        eprint!("\r\x1b[2K");
                    }
                    return print_end(run, &end, None);
                }
            }
            Ok(Event::Line(_)) => {}
            Ok(Event::MachineLost) => {
                return fail(
                    1,
                    format!("machine `{machine}`, which supervises run {run}, is lost (its daemon stopped answering)"),
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return fail(1, "the control plane closed"),
        }
    }
}
