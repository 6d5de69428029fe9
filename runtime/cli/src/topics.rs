//! `quiver topic`: the outputs of a running graph (list), their packs (echo), their rates (hz),
//! through the control plane's taps: a tap costs the graph nothing when nobody watches and
//! never slows it (a watcher that falls behind loses packs, and says how many).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Subcommand;
use quiver_msgs::show;

use crate::params::connect;

#[derive(Subcommand)]
pub enum TopicCommand {
    /// Every output of a running graph: type, rate now, packs sent, consumers.
    List {
        /// The run: its graph's name or its id (with one run: that one).
        run: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Prints the packs an output sends: header and message, nested fields by name.
    Echo {
        run: String,
        /// `node/output`.
        topic: String,
        /// Stop after one pack.
        #[arg(long, conflicts_with = "count")]
        once: bool,
        /// Stop after N packs.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Print big arrays in full (by default summarised: `[360 x float32, 1440 bytes]`, an
        /// image's data `[160x120 rgb8, 57600 bytes]`).
        #[arg(long)]
        full: bool,
    },
    /// The rate of an output: packs per second, min/max/std of the period, bandwidth.
    Hz {
        run: String,
        /// `node/output`.
        topic: String,
        /// Stop after this long (default: Ctrl-C).
        #[arg(long = "for", value_parser = quiver_graph::parse_duration)]
        duration: Option<Duration>,
    },
}

fn split_topic(topic: &str) -> Result<(&str, &str), String> {
    topic
        .split_once('/')
        .filter(|(n, o)| !n.is_empty() && !o.is_empty() && !o.contains('/'))
        .ok_or_else(|| format!("`{topic}` is not `node/output`"))
}

pub fn main(cmd: TopicCommand) -> ExitCode {
    let result = match cmd {
        TopicCommand::List { run, json } => list(run.as_deref(), json),
        TopicCommand::Echo {
            run,
            topic,
            once,
            count,
            json,
            full,
        } => echo(&run, &topic, if once { Some(1) } else { count }, json, full),
        TopicCommand::Hz { run, topic, duration } => hz(&run, &topic, duration),
    };
    crate::params::finish(result)
}

fn list(run: Option<&str>, json: bool) -> Result<(), String> {
    let c = connect(run)?;
    let first = c.topics().map_err(|e| e.to_string())?;
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let second = c.topics().map_err(|e| e.to_string())?;
    let secs = began.elapsed().as_secs_f64();
    let rate = |t: &quiver_control::proto::Topic| {
        first
            .iter()
            .find(|f| f.topic == t.topic)
            .map_or(0.0, |f| t.sent.saturating_sub(f.sent) as f64 / secs)
    };
    if json {
        let v: Vec<serde_json::Value> = second
            .iter()
            .map(|t| {
                serde_json::json!({"topic": t.topic, "type": t.msg_type, "process": t.process,
                    "rate_hz": rate(t), "sent": t.sent, "consumers": t.consumers})
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    outln!(
        "{:<28} {:<28} {:>9} {:>10}  consumers",
        "topic",
        "type",
        "rate Hz",
        "sent"
    );
    for t in &second {
        let consumers = if t.consumers.is_empty() {
            "-".to_string()
        } else {
            t.consumers.join(", ")
        };
        outln!(
            "{:<28} {:<28} {:>9.1} {:>10}  {consumers}",
            t.topic,
            t.msg_type,
            rate(t),
            t.sent
        );
    }
    Ok(())
}

fn echo(run: &str, topic: &str, count: Option<u64>, json: bool, full: bool) -> Result<(), String> {
    let (node, output) = split_topic(topic)?;
    let c = connect(Some(run))?;
    let watch = c.watch(node, output).map_err(|e| e.to_string())?;
    let mut shown = 0u64;
    let mut last_seq: Option<u64> = None;
    let mut lost = 0u64;
    let mut quiet_since = Instant::now();
    // Ctrl-C ends the echo after the pack being printed, with the count of packs not shown.
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = interrupted.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed)) {
        tracing::debug!("no Ctrl-C handler: {e}");
    }
    while count.is_none_or(|n| shown < n) && !interrupted.load(std::sync::atomic::Ordering::Relaxed) {
        let Some((_, pack)) = watch.next(Duration::from_millis(500)) else {
            if quiet_since.elapsed() > Duration::from_secs(2) && quiver_control::runs::find(Some(c.run())).is_err() {
                return Err(format!("run {} ended", c.run()));
            }
            continue;
        };
        quiet_since = Instant::now();
        let pack = pack.map_err(|e| format!("a pack of {topic} does not decode: {e}"))?;
        let h = &pack.header;
        if let Some(prev) = last_seq
            && h.seq > prev + 1
        {
            lost += h.seq - prev - 1;
        }
        last_seq = Some(h.seq);
        let value = pack.data.as_ref().map(|a| show::shown(a.as_ref(), 0, full));
        if json {
            outln!(
                "{{\"topic\":{},\"type\":{},\"seq\":{},\"timestamp_ns\":{},\"is_updated\":{},\"data\":{}}}",
                show::json_string(topic),
                show::json_string(&pack.id.msg_type),
                h.seq,
                h.timestamp_ns,
                h.is_updated,
                value.as_ref().map_or("null".into(), show::to_json)
            );
        } else {
            outln!(
                "--- {topic} ({}) seq={} stamp={}.{:09} updated={}",
                pack.id.msg_type,
                h.seq,
                h.timestamp_ns / 1_000_000_000,
                h.timestamp_ns % 1_000_000_000,
                h.is_updated
            );
            match &value {
                Some(v) => out!("{}", show::to_text(v, 0)),
                None => outln!("(empty DataPack)"),
            }
        }
        shown += 1;
        match crate::stdout_status() {
            Ok(()) => {}
            Err(None) => break,
            Err(Some(e)) => return Err(e),
        }
        if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    if lost > 0 {
        eprintln!("quiver: {lost} pack(s) of {topic} not shown: this watcher fell behind (the graph did not wait)");
    }
    Ok(())
}

fn hz(run: &str, topic: &str, duration: Option<Duration>) -> Result<(), String> {
    let (node, output) = split_topic(topic)?;
    let c = connect(Some(run))?;
    let watch = c.watch_stats(node, output).map_err(|e| e.to_string())?;
    let began = Instant::now();
    let mut quiet = 0;
    while duration.is_none_or(|d| began.elapsed() < d) {
        let Some(s) = watch.next(Duration::from_millis(1500)) else {
            quiet += 1;
            if quiet >= 2 && quiver_control::runs::find(Some(c.run())).is_err() {
                return Err(format!("run {} ended", c.run()));
            }
            continue;
        };
        quiet = 0;
        match crate::stdout_status() {
            Ok(()) => {}
            Err(None) => return Ok(()),
            Err(Some(e)) => return Err(e),
        }
        let secs = s.window_ns as f64 / 1e9;
        if s.packs == 0 {
            outln!("{topic}: no packs in {secs:.1} s");
            continue;
        }
        let ms = |ns: f64| ns / 1e6;
        let lost = s.packs.saturating_sub(s.seen);
        outln!(
            "{topic}: rate {:.1} Hz  period min {:.3} ms max {:.3} ms std {:.3} ms  bandwidth {:.1} KiB/s  ({} packs{})",
            s.packs as f64 / secs,
            ms(s.period_min_ns as f64),
            ms(s.period_max_ns as f64),
            ms(s.period_std_ns),
            s.bytes as f64 / 1024.0 / secs,
            s.packs,
            if lost > 0 {
                format!(", periods from {} of them: the tap lost {lost}", s.seen)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
