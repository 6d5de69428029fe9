//! `bench-sink`: on every pack records `now - timestamp` (one-way latency on the run clock) and
//! the arrival time; with `forward: true` it also sends the pack on (a relay in a chain). Writes
//! `count first_arrival last_arrival` and then one latency per line to `path` at stop.
#![deny(unsafe_code)]

use std::fmt::Write as _;

use quiver_operator::prelude::*;

pub struct BenchSink {
    path: String,
    forward: bool,
    latencies: Vec<u64>,
    first: u64,
    last: u64,
    count: u64,
}

impl Operator for BenchSink {
    fn manifest() -> Manifest {
        Manifest::new(
            "bench-sink",
            env!("CARGO_PKG_VERSION"),
            "Benchmark sink/relay: records latency and arrival times",
        )
        .input("in", "bench/Bytes", "packs to measure")
        .output("out", "bench/Bytes", "the same packs (forward: true)")
        .param(ParamSpec::string("path", "").doc("results file written at stop"))
        .param(ParamSpec::bool("forward", false).doc("send every pack on to `out`"))
        .param(ParamSpec::bool("latencies", true).doc("keep per-pack latencies (off for throughput runs)"))
    }

    fn new(_ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        let keep = p.bool("latencies")?;
        Ok(BenchSink {
            path: p.string("path")?.into(),
            forward: p.bool("forward")?,
            latencies: Vec::with_capacity(if keep { 1 << 16 } else { 0 }),
            first: 0,
            last: 0,
            count: 0,
        })
    }

    fn on_input(&mut self, ctx: &mut Context<'_>, _input: &str, pack: DataPack) -> Result<()> {
        let now = ctx.now_ns();
        if self.latencies.capacity() > 0 {
            self.latencies.push(now.saturating_sub(pack.timestamp_ns()));
        }
        if self.count == 0 {
            self.first = now;
        }
        self.last = now;
        self.count += 1;
        if self.forward {
            let ts = pack.timestamp_ns();
            ctx.emit_stamped("out", pack.into_data()?, ts)?;
        }
        Ok(())
    }

    fn stop(&mut self, _ctx: &mut Context<'_>) -> Result<()> {
        if self.path.is_empty() {
            return Ok(());
        }
        let mut text = format!("{} {} {}\n", self.count, self.first, self.last);
        for l in &self.latencies {
            let _ = writeln!(text, "{l}");
        }
        std::fs::write(&self.path, text).map_err(|e| Error::from(e).context(format!("writing {}", self.path)))
    }
}

export_operator!(BenchSink);
