//! `quiver worker`: one process of a graph split over processes, started by `quiver run`. It
//! runs its share of the graph, reports to the supervisor on stdout and takes orders on stdin.
//! When stdin closes (the supervisor is gone) it stops at once: no orphans.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quiver_runtime::{Command, Control, EndReason, NodeSummary, Part, PartStatus, RunError, RunOptions};

use super::protocol::{Order, PREFIX, Report, encode, parse_order};

/// How a worker is told where it is.
#[derive(Clone, Debug, clap::Args)]
pub struct WorkerArgs {
    pub graph: std::path::PathBuf,
    /// The process (a `deploy: { process }` name or an isolated node's id) to run.
    #[arg(long)]
    pub process: String,
    /// Parameters over the graph's (`quiver run --params`).
    #[arg(long, value_name = "FILE")]
    pub params: Option<std::path::PathBuf>,
    /// The run's key prefix.
    #[arg(long)]
    pub prefix: String,
    /// The Zenoh endpoint to listen on (`tcp/127.0.0.1:PORT`).
    #[arg(long)]
    pub listen: String,
    /// Endpoints of the other processes.
    #[arg(long)]
    pub connect: Vec<String>,
    /// The run spans machines: Zenoh's default (fragmenting) transport instead of the
    /// low-latency one, as in every process of the run.
    #[arg(long)]
    pub network: bool,
    /// TLS with mutual certificates on every link (ca.pem, cert.pem, key.pem in DIR).
    #[arg(long, value_name = "DIR")]
    pub tls: Option<std::path::PathBuf>,
}

/// Writes report lines; shared by the control and the final report.
#[derive(Clone)]
struct Out(Arc<Mutex<std::io::Stdout>>);

impl Out {
    fn send(&self, report: &Report) {
        let line = format!("{PREFIX}{}\n", encode(report));
        let out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut lock = out.lock();
        // A closed stdout means the supervisor is gone; stdin's end handles that.
        let _ = lock.write_all(line.as_bytes()).and_then(|()| lock.flush());
    }
}

/// What the stdin thread passes on.
enum Input {
    Order(Order),
    /// The supervisor is gone.
    Eof,
}

struct WorkerControl {
    out: Out,
    orders: Receiver<Input>,
    last_nodes: Instant,
    last_status: Option<PartStatus>,
    last_sent: Instant,
    closing: bool,
}

/// How often node figures ride along with a status report (they feed the live status line and
/// are what is left if this process dies).
const NODES_EVERY: Duration = Duration::from_millis(100);

impl Control for WorkerControl {
    fn ready(&mut self) -> Result<(), RunError> {
        self.out.send(&Report::Ready { segments: segments() });
        loop {
            match self.orders.recv() {
                Ok(Input::Order(Order::Start)) => return Ok(()),
                Ok(Input::Order(Order::StopTimers(_))) => {}
                Ok(Input::Order(Order::Close)) | Ok(Input::Eof) | Err(_) => {
                    return Err(RunError::Options(
                        "the supervisor stopped the run before it started".into(),
                    ));
                }
            }
        }
    }

    fn aborted(&mut self) -> Option<String> {
        match self.orders.try_recv() {
            Ok(Input::Order(Order::Close)) | Ok(Input::Eof) | Err(TryRecvError::Disconnected) => {
                self.closing = true;
                Some("the supervisor stopped the run before it started".into())
            }
            Ok(Input::Order(_)) | Err(TryRecvError::Empty) => None,
        }
    }

    /// A hung thread cannot be stopped from inside: this process ends, its supervisor sees it
    /// die (with why) and restarts it if the graph allows.
    fn hung(&mut self, node: &str, message: &str) {
        self.out.send(&Report::Failed {
            message: format!("node `{node}`: {message}"),
        });
        tracing::error!("node `{node}` is hung: ending this process (its supervisor restarts it if the graph allows)");
        std::process::exit(70);
    }

    fn poll(&mut self, status: &PartStatus, nodes: &dyn Fn() -> Vec<NodeSummary>) -> Command {
        let with_nodes = self.last_nodes.elapsed() >= NODES_EVERY;
        // Report changes at once, and the same state now and then (the supervisor's
        // termination check wants fresh reports).
        if with_nodes
            || self.last_status.as_ref() != Some(status)
            || self.last_sent.elapsed() >= Duration::from_millis(10)
        {
            self.out.send(&Report::Status {
                status: status.clone(),
                nodes: with_nodes.then(nodes),
                segments: with_nodes.then(segments),
            });
            self.last_status = Some(status.clone());
            self.last_sent = Instant::now();
            if with_nodes {
                self.last_nodes = Instant::now();
            }
        }
        if self.closing {
            return Command::Close;
        }
        match self.orders.try_recv() {
            Ok(Input::Order(Order::StopTimers(reason))) => Command::StopTimers(reason),
            Ok(Input::Order(Order::Close)) => Command::Close,
            Ok(Input::Order(Order::Start)) | Err(TryRecvError::Empty) => Command::Run,
            Ok(Input::Eof) | Err(TryRecvError::Disconnected) => {
                tracing::warn!("the supervisor is gone: stopping");
                self.closing = true;
                Command::StopTimers(EndReason::Interrupted)
            }
        }
    }
}

fn segments() -> Vec<String> {
    quiver_zenoh::mapped_segments()
        .into_iter()
        .map(|p| p.display().to_string())
        .collect()
}

/// Reads orders from stdin. On EOF it also arms a watchdog: if the worker has not exited
/// within a few seconds (an operator stuck in a call), it exits anyway.
fn read_orders() -> Receiver<Input> {
    let (tx, rx) = sync_channel(64);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            match parse_order(&line) {
                Ok(order) => {
                    if tx.send(Input::Order(order)).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::error!("{e}"),
            }
        }
        let _ = tx.send(Input::Eof);
        std::thread::sleep(Duration::from_secs(5));
        tracing::error!("the supervisor is gone and the worker did not stop within 5 s: exiting");
        std::process::exit(3);
    });
    rx
}

pub fn main(args: WorkerArgs, registry_for: impl Fn(&Path) -> quiver_runtime::Registry) -> ExitCode {
    let out = Out(Arc::new(Mutex::new(std::io::stdout())));
    let fail = |message: String| {
        out.send(&Report::Failed { message });
        ExitCode::from(1)
    };
    let registry = registry_for(&args.graph);
    let mut graph = match quiver_runtime::load_graph(&args.graph, &registry) {
        Ok(g) => g,
        Err(e) => return fail(e.to_string()),
    };
    if let Some(file) = &args.params
        && let Err(e) = quiver_graph::apply_params_file(&mut graph, file)
    {
        return fail(e.to_string());
    }
    if !graph.processes().contains(&args.process.as_str()) {
        return fail(format!("the graph has no process `{}`", args.process));
    }
    let mut tuning = quiver_zenoh::Tuning::from_env();
    if args.network {
        tuning = quiver_zenoh::network_tuning(tuning);
    }
    if let Some(dir) = &args.tls {
        match quiver_zenoh::Tls::from_dir(dir) {
            Ok(t) => tuning.tls = Some(t),
            Err(e) => return fail(format!("process `{}`: {e}", args.process)),
        }
    }
    let endpoints = quiver_zenoh::Endpoints {
        listen: vec![args.listen.clone()],
        connect: args.connect.clone(),
    };
    let transport = match quiver_zenoh::ZenohTransport::open_tuned(&endpoints, &tuning) {
        Ok(t) => t,
        Err(e) => return fail(format!("process `{}`: {e}", args.process)),
    };
    // `quiver param` reaches this worker's nodes while it runs.
    let controls = quiver_runtime::Controls::new();
    let run_id = args.prefix.strip_prefix("quiver/").unwrap_or(&args.prefix);
    let _served = crate::params::serve(run_id, &graph, &args.process, &controls);
    let options = RunOptions {
        part: Some(Part {
            process: args.process.clone(),
            transport: transport.clone(),
            prefix: args.prefix.clone(),
        }),
        controls: Some(controls),
        ..RunOptions::default()
    };
    let mut control = WorkerControl {
        out: out.clone(),
        orders: read_orders(),
        last_nodes: Instant::now(),
        last_status: None,
        last_sent: Instant::now(),
        closing: false,
    };
    let result = quiver_runtime::run_part(&graph, &registry, &options, &mut control);
    let code = match result {
        Ok(summary) => {
            out.send(&Report::Done {
                nodes: summary.nodes,
                segments: segments(),
            });
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
    };
    drop(options);
    transport.close();
    code
}
