//! `quiver`: run, check and draw graphs; list operators.

/// `print!` to stdout that never panics: a closed pipe (`quiver ps | head`) loses the output.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($t)*) {
            crate::stdout_failed(e);
        }
    }};
}

/// `println!` to stdout that never panics (see `out!`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            crate::stdout_failed(e);
        }
    }};
}

/// The first error writing stdout (a closed pipe, a full disk): commands that stream output
/// stop on it and say so.
static STDOUT_ERROR: std::sync::Mutex<Option<std::io::Error>> = std::sync::Mutex::new(None);

fn stdout_failed(e: std::io::Error) {
    let mut first = STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner());
    if first.is_none() {
        *first = Some(e);
    }
}

/// Flushes stdout; the first write error so far, if any: `Err(None)` for a closed pipe (the
/// reader has what it wanted: not an error to report), `Err(Some(message))` otherwise.
fn stdout_status() -> Result<(), Option<String>> {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().flush() {
        stdout_failed(e);
    }
    match STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        None => Ok(()),
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(None),
        Some(e) => Err(Some(format!("writing to stdout: {e}"))),
    }
}

mod params;
mod procs;
mod report;
mod topics;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use quiver_runtime::{Mode, Registry, RunOptions, SearchPath};

#[derive(Parser)]
#[command(name = "quiver", version, about = "Dataflow graphs of operator plugins, zero copy")]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a graph until --for ends, Ctrl-C, or all sources finish; print a summary.
    Run {
        graph: PathBuf,
        /// How long to run (e.g. 10s, 500ms); simulated time with --stepped.
        #[arg(long = "for", value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Run deterministically on a simulated clock, one node at a time in a fixed order.
        #[arg(long)]
        stepped: bool,
        /// Number of steps (with --stepped).
        #[arg(long, requires = "stepped")]
        steps: Option<u64>,
        /// Simulated time per step (with --stepped; default: GCD of the timer periods).
        #[arg(long, requires = "stepped", value_parser = parse_duration)]
        step: Option<Duration>,
        /// Also write the summary as JSON to this file.
        #[arg(long, value_name = "FILE")]
        summary_json: Option<PathBuf>,
        /// Set node parameters over the graph's from a file (`node: { param: value }`, what
        /// `quiver param dump` writes).
        #[arg(long, value_name = "FILE")]
        params: Option<PathBuf>,
        /// How long queues may take to drain when the run ends before it stops anyway (what
        /// is left is counted as undelivered).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
        drain: Duration,
        /// Daemons to reach for nodes on other machines (Zenoh endpoints, e.g.
        /// tcp/robot.local:7450; repeat or separate with commas). Default: QUIVER_CONNECT.
        #[arg(long, value_name = "ENDPOINT")]
        connect: Vec<String>,
        /// TLS with mutual certificates to the daemons and between every process: a folder with
        /// ca.pem, cert.pem, key.pem. Default: QUIVER_TLS.
        #[arg(long, value_name = "DIR")]
        tls: Option<PathBuf>,
        /// Hand the run to a daemon and return: it keeps running when this machine leaves.
        /// Prints the run's id; see `quiver ps`, `attach`, `stop`.
        #[arg(long, conflicts_with = "stepped")]
        detach: bool,
        /// The machine that supervises a detached run (default: the machine of the graph's
        /// first node that runs on one). Nodes without `deploy.machine`/`labels` run there.
        #[arg(long, value_name = "MACHINE", requires = "detach")]
        supervisor: Option<String>,
        /// The run's id (a detached run's, given by its daemon).
        #[arg(long, hide = true)]
        run_id: Option<String>,
        /// Print the live status line to stderr every second, prefixed (for a daemon).
        #[arg(long, hide = true)]
        status_lines: bool,
        /// Started by a daemon: stop (drain) when that daemon is gone.
        #[arg(long, hide = true)]
        supervised: bool,
        /// The machine this runs on (a detached run's supervisor), for the summary.
        #[arg(long, hide = true)]
        here: Option<String>,
    },
    /// The parameters of a running graph: list, get, set (through the operator's `on_param`),
    /// dump to a file `run --params` reads.
    Param {
        #[command(subcommand)]
        action: params::ParamCommand,
    },
    /// The outputs of a running graph: list, echo their packs, measure their rate.
    Topic {
        #[command(subcommand)]
        action: topics::TopicCommand,
    },
    /// List the graphs running on this machine (their processes, nodes, start time); with
    /// --connect, the detached runs the daemons supervise.
    Ps {
        #[command(flatten)]
        reach: Reach,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Follow a detached run: its output so far and from now on, its live status line; ends
    /// with its summary when it ends, or on Ctrl-C (it keeps running).
    Attach {
        run: String,
        #[command(flatten)]
        reach: Reach,
    },
    /// Stop a detached run (it drains first, as on Ctrl-C) and print its summary.
    Stop {
        run: String,
        #[command(flatten)]
        reach: Reach,
        /// Also write its summary as JSON to this file.
        #[arg(long, value_name = "FILE")]
        summary_json: Option<PathBuf>,
    },
    /// Validate a graph without running it (with --connect, also that daemons serve its
    /// machines and labels).
    Check {
        graph: PathBuf,
        /// Daemons to ask (as for `run`). Default: QUIVER_CONNECT.
        #[arg(long, value_name = "ENDPOINT")]
        connect: Vec<String>,
        /// As for `run`. Default: QUIVER_TLS.
        #[arg(long, value_name = "DIR")]
        tls: Option<PathBuf>,
    },
    /// Serve this machine to graphs run from elsewhere (`deploy: { machine }` / `{ labels }`).
    Daemon(DaemonArgs),
    /// List the daemons reachable through an endpoint.
    Machines {
        #[command(flatten)]
        reach: Reach,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Draw a graph.
    Graph {
        graph: PathBuf,
        #[arg(long, value_enum, default_value = "dot")]
        format: Format,
    },
    /// One process of a graph split over processes (started by `quiver run`, not by hand).
    #[command(hide = true)]
    Worker(procs::worker::WorkerArgs),
    /// List the operators found on the search path, or show one's manifest.
    Operators {
        name: Option<String>,
        /// Also search this graph's folder.
        #[arg(long)]
        graph: Option<PathBuf>,
    },
}

/// How a command reaches the daemons.
#[derive(clap::Args)]
struct Reach {
    /// A daemon's endpoint (e.g. tcp/robot.local:7450; repeat or separate with commas).
    /// Default: QUIVER_CONNECT.
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// TLS with mutual certificates: a folder with ca.pem, cert.pem, key.pem. Default:
    /// QUIVER_TLS.
    #[arg(long, value_name = "DIR")]
    tls: Option<PathBuf>,
}

impl Reach {
    /// Runs `f` with the endpoints and the TLS files; a bad TLS folder is exit 2.
    fn then(self, f: impl FnOnce(&[String], Option<&quiver_zenoh::Tls>) -> ExitCode) -> ExitCode {
        match tls_from(self.tls) {
            Ok(tls) => f(&procs::machines::endpoints(&self.connect), tls.as_ref()),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        }
    }
}

#[derive(clap::Args)]
struct DaemonArgs {
    /// This machine's name in graphs (`deploy: { machine: NAME }`). Default: the host name.
    #[arg(long)]
    name: Option<String>,
    /// Labels graphs select machines by (`deploy: { labels: [...] }`), comma-separated.
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// Where the control plane listens (Zenoh endpoint).
    #[arg(long, default_value = "tcp/0.0.0.0:7450")]
    listen: Vec<String>,
    /// Other daemons to connect to (their control planes route to one another).
    #[arg(long, value_delimiter = ',')]
    connect: Vec<String>,
    /// The address runs' processes listen on here (default: the listen address, or this
    /// machine's first non-loopback address when listening on 0.0.0.0).
    #[arg(long)]
    host: Option<String>,
    /// The cache of shipped files. Default: $XDG_CACHE_HOME/quiver or ~/.cache/quiver.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Refuse shipped libraries: operators come from this machine's operator path only.
    #[arg(long)]
    no_fetch: bool,
    /// TLS with mutual certificates on every link (endpoints become tls/): a folder with
    /// ca.pem (the cluster's CA), cert.pem and key.pem (this machine's, signed by that CA).
    /// Default: QUIVER_TLS.
    #[arg(long, value_name = "DIR")]
    tls: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Dot,
    Mermaid,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    quiver_graph::parse_duration(s)
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // Zenoh warnings quiver causes on purpose: gossip off (explicit endpoints), a failed connect
    // (quiver reports it with what to check), TLS names not verified (trust is the CA's
    // signature). Refused TLS peers are still logged (zenoh_link_tls::unicast).
    let quiet =
        "zenoh::net::routing::hat::peer=error,zenoh::net::runtime::orchestrator=error,zenoh_link_tls::utils=error";
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},{quiet}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours on a terminal only: a worker's or a detached run's log is relayed as text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// `--tls DIR`, or `QUIVER_TLS`; an error names the missing file.
fn tls_from(flag: Option<PathBuf>) -> Result<Option<quiver_zenoh::Tls>, String> {
    let dir = flag.or_else(|| {
        std::env::var_os("QUIVER_TLS")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    dir.map(|d| quiver_zenoh::Tls::from_dir(&d).map_err(|e| e.to_string()))
        .transpose()
}

fn registry_for(graph: &Path) -> Registry {
    Registry::new(SearchPath::new(
        graph
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .or(Some(Path::new("."))),
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if matches!(cli.command, Command::Run { .. } | Command::Worker(_)) {
        // A crash in an operator names the node and the callback before the process dies.
        quiver_runtime::install_crash_handler();
    }
    match cli.command {
        Command::Daemon(args) => daemon(args, cli.verbose),
        Command::Param { action } => params::main(action),
        Command::Topic { action } => topics::main(action),
        Command::Machines { reach, json } => reach.then(|connect, tls| report::machines(connect, json, tls)),
        Command::Ps { reach, json } => reach.then(|connect, tls| {
            if connect.is_empty() {
                // No daemons named: the graphs running on this machine.
                params::ps_local(json)
            } else {
                procs::detach::ps(connect, json, tls)
            }
        }),
        Command::Attach { run, reach } => reach.then(|connect, tls| procs::detach::attach(connect, &run, tls)),
        Command::Stop {
            run,
            reach,
            summary_json,
        } => reach.then(|connect, tls| procs::detach::stop(connect, &run, tls, summary_json.as_deref())),
        Command::Check { graph, connect, tls } => {
            let registry = registry_for(&graph);
            match quiver_runtime::load_graph(&graph, &registry) {
                Ok(g) => {
                    report::graph_warnings(&g);
                    let connect = procs::machines::endpoints(&connect);
                    if !connect.is_empty() && g.uses_machines() {
                        let tls = match tls_from(tls) {
                            Ok(t) => t,
                            Err(e) => {
                                eprintln!("error: {e}");
                                return ExitCode::from(2);
                            }
                        };
                        match procs::machines::connect_and_place(&g, &connect, tls.as_ref()) {
                            Ok((client, _)) => client.close(),
                            Err(procs::machines::PlaceFailure::Placement(errors)) => {
                                return report::graph_errors(&errors);
                            }
                            Err(procs::machines::PlaceFailure::Connect(e)) => {
                                eprintln!("error: {e}");
                                return ExitCode::from(2);
                            }
                        }
                    }
                    let edges: usize = g.nodes.iter().map(|n| n.edges().count()).sum();
                    outln!("{}: ok ({} nodes, {} edges)", graph.display(), g.nodes.len(), edges);
                    ExitCode::SUCCESS
                }
                Err(errors) => report::graph_errors(&errors),
            }
        }
        Command::Graph { graph, format } => {
            let registry = registry_for(&graph);
            match quiver_runtime::load_graph(&graph, &registry) {
                Ok(g) => {
                    let format = match format {
                        Format::Dot => quiver_graph::Format::Dot,
                        Format::Mermaid => quiver_graph::Format::Mermaid,
                    };
                    out!("{}", quiver_graph::render(&g, format));
                    ExitCode::SUCCESS
                }
                Err(errors) => report::graph_errors(&errors),
            }
        }
        Command::Worker(args) => procs::worker::main(args, registry_for),
        Command::Operators { name, graph } => {
            let registry = Registry::new(SearchPath::new(graph.as_deref().and_then(Path::parent)));
            report::operators(&registry, name.as_deref())
        }
        Command::Run {
            graph,
            duration,
            stepped,
            steps,
            step,
            summary_json,
            params,
            drain,
            connect,
            tls,
            detach,
            supervisor,
            run_id,
            status_lines,
            supervised,
            here,
        } => {
            let tls = match tls_from(tls) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let registry = registry_for(&graph);
            let mut g = match quiver_runtime::load_graph(&graph, &registry) {
                Ok(g) => g,
                Err(errors) => return report::graph_errors(&errors),
            };
            if let Some(file) = &params
                && let Err(errors) = quiver_graph::apply_params_file(&mut g, file)
            {
                return report::graph_errors(&errors);
            }
            report::graph_warnings(&g);
            let cluster = procs::Cluster {
                connect: procs::machines::endpoints(&connect),
                tls,
                // One id for the run everywhere: its processes, its control plane.
                run_id: Some(run_id.unwrap_or_else(procs::new_run_id)),
                params: params.clone(),
            };
            if detach && params.is_some() {
                eprintln!(
                    "error: `--params` with `--detach` is not supported yet: set the parameters in the graph file"
                );
                return ExitCode::from(2);
            }
            if detach {
                return procs::detach::detach(&g, &registry, &graph, duration, drain, &cluster, supervisor.as_deref());
            }
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let handler = ctrlc::set_handler(move || {
                if flag.swap(true, Ordering::SeqCst) {
                    eprintln!("quiver: second Ctrl-C, exiting without draining");
                    std::process::exit(130);
                }
                eprintln!("quiver: stopping (Ctrl-C again to exit at once)");
            });
            if let Err(e) = handler {
                tracing::warn!("cannot install the Ctrl-C handler: {e}");
            }
            if supervised {
                watch_parent(stop.clone());
            }
            let mode = if stepped {
                Mode::Stepped { steps, duration, step }
            } else {
                Mode::RealTime { duration }
            };
            let split = !g.processes().is_empty();
            if split && stepped {
                eprintln!("note: a stepped run is one process here: `deploy` and `isolate` are ignored");
            }
            // A live status line on a terminal: every operator's reported figures, drops, errors.
            let status: Option<(quiver_runtime::StatusHook, Duration)> = if status_lines {
                let here = here.clone();
                let hook: quiver_runtime::StatusHook = Arc::new(move |s: &quiver_runtime::Summary| {
                    let mut s = s.clone();
                    for n in s.nodes.iter_mut().filter(|n| n.machine.is_none()) {
                        n.machine.clone_from(&here);
                    }
                    eprintln!("{}{}", quiver_daemon::STATUS_PREFIX, s.status_line());
                });
                Some((hook, Duration::from_secs(1)))
            } else if std::io::stderr().is_terminal() {
                let hook: quiver_runtime::StatusHook = Arc::new(|s: &quiver_runtime::Summary| {
                    // One line that fits: a line that wraps cannot be redrawn in place.
                    let line = report::fit(&s.status_line(), report::terminal_width());
                    eprint!("\r\x1b[2K{line}");
                });
                Some((hook, Duration::from_millis(500)))
            } else {
                None
            };
            let live = status.is_some() && !status_lines;
            // Every status also refreshes what the crash handler flushes if this process dies:
            // the summary so far, as text and (with --summary-json) as the file.
            let crash_path = summary_json.clone();
            let crash_here = here.clone();
            let last_words = move |s: &quiver_runtime::Summary| {
                let mut s = s.clone();
                s.end = quiver_runtime::EndReason::Crashed;
                for n in s.nodes.iter_mut().filter(|n| n.machine.is_none()) {
                    n.machine.clone_from(&crash_here);
                }
                let json = crash_path
                    .as_deref()
                    .and_then(|p| serde_json::to_string_pretty(&s).ok().map(|j| (p, j)));
                quiver_runtime::set_crash_summary(s.to_string(), json);
            };
            let status: quiver_runtime::StatusHook = match status {
                Some((show, _)) => Arc::new(move |s: &quiver_runtime::Summary| {
                    show(s);
                    last_words(s);
                }),
                None => Arc::new(last_words),
            };
            let every = if live {
                Duration::from_millis(500)
            } else {
                Duration::from_secs(1)
            };
            // `quiver param` reaches this process's nodes while it runs (real-time runs).
            let controls = quiver_runtime::Controls::new();
            let _served = (!stepped).then(|| {
                let run = cluster.run_id.as_deref().unwrap_or_default();
                params::serve(run, &g, quiver_graph::MAIN_PROCESS, &controls)
            });
            let options = RunOptions {
                mode,
                stop: Some(stop),
                controls: Some(controls.clone()),
                status: Some((status, every)),
                drain_timeout: drain,
                ..RunOptions::default()
            };
            let result = if split && !stepped {
                procs::supervisor::run(&g, &registry, &graph, &options, cli.verbose, &cluster)
            } else {
                quiver_runtime::run(&g, &registry, &options)
                    .map(|s| (s, false))
                    .map_err(anyhow::Error::from)
            };
            if live {
                eprint!("\r\x1b[2K");
            }
            match result {
                Ok((mut summary, process_failed)) => {
                    if let Some(m) = &here {
                        // A detached run: "here" is its supervisor's machine.
                        for n in summary.nodes.iter_mut().filter(|n| n.machine.is_none()) {
                            n.machine = Some(m.clone());
                        }
                        for p in summary.processes.iter_mut().filter(|p| p.machine.is_none()) {
                            p.machine = Some(m.clone());
                        }
                    }
                    out!("{summary}");
                    if let Some(path) = &summary_json {
                        let written = serde_json::to_string_pretty(&summary)
                            .map_err(|e| e.to_string())
                            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
                        if let Err(e) = written {
                            eprintln!("error: writing {}: {e}", path.display());
                            return ExitCode::from(1);
                        }
                    }
                    let failed = summary.failed_nodes();
                    if process_failed {
                        for p in summary.processes.iter().filter(|p| !p.failures.is_empty()) {
                            eprintln!("error: process `{}`: {}", p.name, p.failures.join("; "));
                        }
                        ExitCode::from(1)
                    } else if failed.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        for n in failed {
                            eprintln!(
                                "error: node `{}` reported {} error(s); first: {}",
                                n.id,
                                n.errors,
                                n.first_error.as_deref().unwrap_or("?")
                            );
                        }
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    if e.downcast_ref::<procs::supervisor::PrepareFailed>().is_some() {
                        eprintln!("error: the run did not start; nothing is left running on any machine");
                        ExitCode::from(2)
                    } else if matches!(
                        e.downcast_ref::<quiver_runtime::RunError>(),
                        Some(
                            quiver_runtime::RunError::Create { .. }
                                | quiver_runtime::RunError::Graph(_)
                                | quiver_runtime::RunError::Options(_)
                        )
                    ) {
                        // Nothing ran (a node's `new` failed, a bad option): like a process's
                        // node failing to start, exit 2.
                        ExitCode::from(2)
                    } else {
                        ExitCode::from(1)
                    }
                }
            }
        }
    }
}

/// A detached run's `quiver run` stops (drains) when the daemon that started it is gone: it
/// would be reparented.
fn watch_parent(stop: Arc<AtomicBool>) {
    let parent = std::os::unix::process::parent_id();
    let spawned = std::thread::Builder::new().name("q-parent".into()).spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            if std::os::unix::process::parent_id() != parent {
                eprintln!("error: the daemon supervising this run is gone: stopping");
                stop.store(true, Ordering::SeqCst);
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot watch the supervising daemon: {e}");
    }
}

/// The default cache of shipped files.
fn default_cache() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("quiver");
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => PathBuf::from(h).join(".cache").join("quiver"),
        None => std::env::temp_dir().join("quiver-cache"),
    }
}

fn is_loopback_endpoint(e: &str) -> bool {
    let host = e.split_once('/').map_or(e, |(_, rest)| rest);
    host.starts_with("127.") || host.starts_with("[::1]") || host.starts_with("localhost:")
}

fn daemon(args: DaemonArgs, verbose: u8) -> ExitCode {
    let name = args.name.unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "machine".into())
    });
    let tls = match tls_from(args.tls) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for l in &args.listen {
        if tls.is_none() && !is_loopback_endpoint(l) {
            tracing::warn!(
                "listening on {l} without TLS: anyone who reaches this port can run code here; use --tls DIR, or keep it on a trusted network"
            );
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
        tracing::warn!("cannot install the signal handler: {e}");
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: finding the quiver executable: {e}");
            return ExitCode::from(1);
        }
    };
    let config = quiver_daemon::DaemonConfig {
        name,
        labels: args
            .labels
            .iter()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
        listen: args.listen,
        connect: args.connect,
        host: args.host,
        cache_dir: args.cache.unwrap_or_else(default_cache),
        no_fetch: args.no_fetch,
        worker_exe: exe,
        verbose,
        tls,
        // Shared memory the run's workers left behind here (see quiver_zenoh::sweep_segments).
        // Two looks 300 ms apart: a segment being created is briefly unmapped.
        after_run: Some(Arc::new(|run: &str| {
            let first = quiver_zenoh::unmapped_segments();
            std::thread::sleep(Duration::from_millis(300));
            let left: Vec<PathBuf> = quiver_zenoh::unmapped_segments()
                .into_iter()
                .filter(|p| first.contains(p))
                .collect();
            let swept = quiver_zenoh::sweep_segments(&left);
            if !swept.is_empty() {
                tracing::info!("run {run}: unlinked {} shared-memory segment(s)", swept.len());
            }
        })),
    };
    match quiver_daemon::serve(config, &stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
