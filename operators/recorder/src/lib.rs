//! `recorder`: a sink. Records every DataPack it receives (any type): one line per pack with the
//! source, sequence number, timestamp, time of receipt (`at`) and values, written to `path` when the graph stops. Counts
//! gaps in sequence numbers (packs lost upstream) and logs a summary. `delay` makes it a slow
//! consumer (busy-waits per pack) for QoS experiments.
#![deny(unsafe_code)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use quiver_operator::external::arrow_array::Array;
use quiver_operator::prelude::*;

pub struct Recorder {
    path: String,
    delay: Duration,
    lines: String,
    count: u64,
    gaps: u64,
    last_seq: Option<(String, u64)>,
}

/// At most this many leaf values are written per pack (then `...`).
const MAX_VALUES: usize = 32;

/// The leaf values of every row, in field order, separated by spaces: a `std_msgs/Int64` is `5`,
/// a `geometry_msgs/Twist` is six floats, strings are quoted.
fn values(array: &dyn Array) -> String {
    let mut out = Vec::new();
    for row in 0..array.len() {
        leaves(array, row, &mut out);
    }
    if out.len() > MAX_VALUES {
        out.truncate(MAX_VALUES);
        out.push("...".into());
    }
    out.join(" ")
}

fn leaves(array: &dyn Array, row: usize, out: &mut Vec<String>) {
    macro_rules! primitive {
        ($($t:ty),*) => {
            $(if let Some(a) = array.as_primitive_opt::<$t>() {
                out.push(if a.is_null(row) { "null".into() } else { a.value(row).to_string() });
                return;
            })*
        };
    }
    if out.len() > MAX_VALUES {
        return;
    }
    primitive!(
        Int8Type,
        Int16Type,
        Int32Type,
        Int64Type,
        UInt8Type,
        UInt16Type,
        UInt32Type,
        UInt64Type,
        Float32Type,
        Float64Type
    );
    if let Some(a) = array.as_struct_opt() {
        for c in a.columns() {
            leaves(c.as_ref(), row, out);
        }
    } else if let Some(a) = array.as_list_opt::<i32>() {
        let items = a.value(row);
        for i in 0..items.len() {
            leaves(items.as_ref(), i, out);
        }
    } else if let Some(a) = array.as_string_opt::<i32>() {
        out.push(format!("{:?}", a.value(row)));
    } else if let Some(a) = array.as_boolean_opt() {
        out.push(a.value(row).to_string());
    } else {
        out.push(format!("<{}>", array.data_type()));
    }
}

impl Operator for Recorder {
    fn manifest() -> Manifest {
        Manifest::new(
            "recorder",
            env!("CARGO_PKG_VERSION"),
            "Records every DataPack it receives; writes them at stop",
        )
        .input("in", "any", "packs of any type")
        .param(ParamSpec::string("path", "").doc("file the record is written to at stop (empty: none)"))
        .param(
            ParamSpec::duration("delay", Duration::ZERO)
                .range_duration(Duration::ZERO, Duration::from_secs(1))
                .doc("time spent per pack (a slow consumer)"),
        )
    }

    fn new(_ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        Ok(Recorder {
            path: p.string("path")?.to_string(),
            delay: p.duration("delay")?,
            lines: String::new(),
            count: 0,
            gaps: 0,
            last_seq: None,
        })
    }

    fn on_input(&mut self, ctx: &mut Context<'_>, _input: &str, pack: DataPack) -> Result<()> {
        if !self.delay.is_zero() {
            let until = Instant::now() + self.delay;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        if let Some((name, last)) = &self.last_seq
            && *name == pack.name()
            && pack.seq() > last + 1
        {
            self.gaps += pack.seq() - last - 1;
        }
        self.last_seq = Some((pack.name().to_string(), pack.seq()));
        self.count += 1;
        let data = match pack.data() {
            Ok(a) => values(a.as_ref()),
            Err(_) => "<empty>".into(),
        };
        let _ = writeln!(
            self.lines,
            "{} seq={} t={} at={} updated={} {}",
            pack.name(),
            pack.seq(),
            pack.timestamp_ns(),
            ctx.now_ns(),
            pack.is_updated(),
            data
        );
        Ok(())
    }

    fn stop(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        ctx.info(&format!(
            "recorded {} packs, {} missing sequence numbers",
            self.count, self.gaps
        ));
        if !self.path.is_empty() {
            std::fs::write(&self.path, &self.lines)
                .map_err(|e| Error::from(e).context(format!("writing {}", self.path)))?;
        }
        Ok(())
    }
}

export_operator!(Recorder);

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_operator::testing::Harness;
    use std::sync::Arc;

    #[test]
    fn writes_one_line_per_pack_at_stop() {
        let dir = std::env::temp_dir().join(format!("quiver-recorder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rec.txt");
        let mut h = Harness::<Recorder>::new(&[("path", ParamValue::String(path.display().to_string()))]).unwrap();
        let twist = quiver_msgs::Twist {
            linear: quiver_msgs::Vector3 { x: 0.5, y: 0.0, z: 0.0 },
            angular: quiver_msgs::Vector3 {
                x: 0.0,
                y: 0.0,
                z: -1.0,
            },
        };
        h.input("in", Some(Arc::new(Int64Array::from(vec![1, 2])))).unwrap();
        h.input("in", Some(quiver_msgs::Message::to_arrow(twist).unwrap()))
            .unwrap();
        h.input("in", None).unwrap();
        h.stop().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "upstream/out seq=0 t=0 at=0 updated=true 1 2\n\
             upstream/out seq=1 t=0 at=0 updated=true 0.5 0 0 0 0 -1\n\
             upstream/out seq=2 t=0 at=0 updated=true <empty>\n"
        );
        assert_eq!(h.logs(), ["recorded 3 packs, 0 missing sequence numbers"]);
    }
}
