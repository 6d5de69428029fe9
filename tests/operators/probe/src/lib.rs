//! `probe`: a test operator. Forwards what arrives on `a` to `out` (the same array: no copy) and
//! reports where its data lives on `addr`; forwards what arrives on `b` to `seen_b`, keeping the
//! original timestamp; sums the pixels of each image on `img` to `sum`, counting (figure
//! `pixels_in_shm`) the images whose pixels it reads straight from a shared-memory mapping.
//! Misbehaves on request: panics, errors, fails to start, aborts, segfaults.
#![deny(unsafe_code)]

use quiver_msgs::{ImageView, Int64, Message};
use quiver_operator::prelude::*;

pub struct Probe {
    panic_on: i64,
    error_on: i64,
    raw_addr: bool,
    abort_on: i64,
    segv_on: i64,
    hang_on: i64,
    sleep_on: i64,
    sleep_ms: i64,
    slow_ms: i64,
    error_all: bool,
    abort_any: bool,
    overflow_on: i64,
    in_shm: u64,
    /// A file `stop` appends `stopped <node>` to (empty: none), so tests see that it ran.
    stop_marker: String,
    node: String,
    /// Graph-declared inputs: (input, output to send on, number to add).
    relays: Vec<(String, String, i64)>,
}

/// Whether `addr` lies in a shared-memory mapping of this process (`/dev/shm`: Zenoh's segments).
fn in_shared_memory(addr: usize) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines().any(|line| {
        let mut parts = line.split_whitespace();
        let range = parts.next().unwrap_or_default();
        let path = parts.nth(4).unwrap_or_default();
        let (lo, hi) = range.split_once('-').unwrap_or_default();
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).unwrap_or(0),
            usize::from_str_radix(hi, 16).unwrap_or(0),
        );
        path.starts_with("/dev/shm/") && (lo..hi).contains(&addr)
    })
}

impl Operator for Probe {
    fn manifest() -> Manifest {
        Manifest::new(
            "probe",
            env!("CARGO_PKG_VERSION"),
            "Test operator: forwards, reports buffer addresses, fails on request",
        )
        .input("a", "std_msgs/Int64", "forwarded to `out`")
        .input(
            "b",
            "std_msgs/Int64",
            "forwarded to `seen_b` with its original timestamp",
        )
        .input(
            "s",
            "std_msgs/String",
            "ignored (a port of another type, for type checks)",
        )
        .output("out", "std_msgs/Int64", "what came in on `a`, same buffers")
        .output("addr", "std_msgs/Int64", "address of the data buffer received on `a`")
        .input("img", "sensor_msgs/Image", "images to sum")
        .output("seen_b", "std_msgs/Int64", "what came in on `b`")
        .output(
            "sum",
            "std_msgs/Int64",
            "the sum of each image's pixel bytes, weighted by position",
        )
        .param(ParamSpec::int("panic_on", -1).doc("panic when this value arrives on `a`"))
        .param(ParamSpec::int("error_on", -1).doc("return an error when this value arrives on `a`"))
        .param(ParamSpec::bool("fail_create", false).doc("refuse to start"))
        .param(ParamSpec::bool("raw_addr", false).doc("send `addr` as a bare Int64 array, not a std_msgs/Int64"))
        .param(ParamSpec::int("abort_on", -1).doc("abort the process when this value arrives on `a`"))
        .param(ParamSpec::int("segv_on", -1).doc("die of SIGSEGV when this value arrives on `a`"))
        .param(ParamSpec::int("hang_on", -1).doc("never return when this value arrives on `a`"))
        .param(ParamSpec::int("sleep_on", -1).doc("sleep `sleep_ms` when this value arrives on `a`"))
        .param(ParamSpec::int("sleep_ms", 0).doc("how long `sleep_on` sleeps"))
        .param(ParamSpec::int("slow_ms", 0).doc("sleep this long on every value on `a` (a slow consumer)"))
        .param(ParamSpec::bool("error_all", false).doc("return an error for every value on `a`"))
        .param(ParamSpec::bool("abort_any", false).doc("abort the process on the first value on `a`"))
        .param(
            ParamSpec::int("overflow_on", -1)
                .doc("overflow the stack (a real SIGSEGV on this thread) when this value arrives on `a`"),
        )
        .param(ParamSpec::string("stop_marker", "").doc("a file `stop` appends `stopped <node id>` to"))
        .graph_ports("test ports declared in the graph: an input adds `add` to each value and sends it on `to`")
        .port_setting("to", "(inputs) the graph-declared output the sums go to")
        .port_setting("add", "(inputs) the number added, default 0")
    }

    fn new(ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        if p.bool("fail_create")? {
            bail!("asked to fail (fail_create: true)");
        }
        Ok(Probe {
            panic_on: p.int("panic_on")?,
            error_on: p.int("error_on")?,
            raw_addr: p.bool("raw_addr")?,
            abort_on: p.int("abort_on")?,
            segv_on: p.int("segv_on")?,
            hang_on: p.int("hang_on")?,
            sleep_on: p.int("sleep_on")?,
            sleep_ms: p.int("sleep_ms")?,
            slow_ms: p.int("slow_ms")?,
            error_all: p.bool("error_all")?,
            abort_any: p.bool("abort_any")?,
            overflow_on: p.int("overflow_on")?,
            in_shm: 0,
            stop_marker: p.string("stop_marker")?.to_string(),
            node: ctx.node_id().to_string(),
            relays: p
                .graph_ports()
                .iter()
                .filter(|port| !port.output)
                .map(|port| {
                    let to = port.setting("to").unwrap_or_default().to_string();
                    let add = port.setting("add").unwrap_or("0");
                    let add = add
                        .parse()
                        .map_err(|_| Error::msg(format!("port `{}`: `add: {add}` is not a number", port.name)))?;
                    Ok((port.name.clone(), to, add))
                })
                .collect::<Result<_>>()?,
        })
    }

    fn on_input(&mut self, ctx: &mut Context<'_>, input: &str, pack: DataPack) -> Result<()> {
        if input == "s" {
            return Ok(());
        }
        if let Some((_, to, add)) = self.relays.iter().find(|(name, _, _)| name == input) {
            let v = Int64::from_arrow(pack.data()?.as_ref())?.data;
            return ctx.emit(to, Int64 { data: v + add }.to_arrow()?);
        }
        if input == "img" {
            let view = ImageView::new(pack.data()?.as_ref())?;
            if in_shared_memory(view.data.as_ptr() as usize) {
                self.in_shm += 1;
                ctx.report("pixels_in_shm", self.in_shm);
            }
            let sum = view
                .data
                .iter()
                .enumerate()
                .fold(0i64, |acc, (i, &b)| acc.wrapping_add((i as i64 % 7 + 1) * b as i64));
            return ctx.emit_stamped("sum", Int64 { data: sum }.to_arrow()?, pack.timestamp_ns());
        }
        let data = pack.data()?.clone();
        let first = Int64::from_arrow(data.as_ref())?.data;
        match input {
            "a" => {
                if first == self.panic_on {
                    panic!("probe asked to panic on {}", self.panic_on);
                }
                if first == self.abort_on || self.abort_any {
                    std::process::abort();
                }
                if first == self.segv_on {
                    // The death of a segfaulting plugin, without unsafe code: the signal itself.
                    // Rust's own SIGSEGV handler (stack-overflow detection) swallows the first
                    // one that is not a fault and restores the default action: send it again.
                    for _ in 0..50 {
                        let _ = std::process::Command::new("kill")
                            .args(["-SEGV", &std::process::id().to_string()])
                            .status();
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
                if first == self.overflow_on {
                    std::hint::black_box(recurse(std::hint::black_box(1)));
                }
                if first == self.error_on {
                    bail!("probe asked to fail on {}", self.error_on);
                }
                if first == self.hang_on {
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    }
                }
                if self.error_all {
                    bail!("probe asked to fail on every value ({first})");
                }
                if self.slow_ms > 0 {
                    std::thread::sleep(std::time::Duration::from_millis(self.slow_ms as u64));
                }
                if first == self.sleep_on {
                    std::thread::sleep(std::time::Duration::from_millis(self.sleep_ms.max(0) as u64));
                }
                // Where the `data` field's values live.
                let field = data.as_struct().column(0).to_data();
                let addr = field.buffers()[0].as_ptr() as i64;
                ctx.emit("out", data)?;
                if self.raw_addr {
                    ctx.emit("addr", std::sync::Arc::new(Int64Array::from(vec![addr])))
                } else {
                    ctx.emit("addr", Int64 { data: addr }.to_arrow()?)
                }
            }
            _ => ctx.emit_stamped("seen_b", data, pack.timestamp_ns()),
        }
    }

    fn stop(&mut self, _ctx: &mut Context<'_>) -> Result<()> {
        if !self.stop_marker.is_empty() {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.stop_marker)?;
            writeln!(f, "stopped {}", self.node)?;
        }
        Ok(())
    }
}

/// Recursion without end: a stack overflow, the one way safe Rust faults on its own thread.
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 64]);
    recurse(pad[(n % 64) as usize] + 1).wrapping_add(pad[0])
}

export_operator!(Probe);
