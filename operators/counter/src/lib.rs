//! `counter`: a source. On every tick it sends the next `burst` numbers (`start`, `start + step`,
//! ...) on `count`, one std_msgs/Int64 DataPack each; after `limit` numbers it finishes.
#![deny(unsafe_code)]

use quiver_msgs::{Int64, Message};
use quiver_operator::prelude::*;

pub struct Counter {
    next: i64,
    step: i64,
    sent: i64,
    limit: i64,
    burst: i64,
}

impl Operator for Counter {
    fn manifest() -> Manifest {
        Manifest::new(
            "counter",
            env!("CARGO_PKG_VERSION"),
            "Counts on every tick; a source for tests and demos",
        )
        .timer("tick", "each tick sends `burst` numbers")
        .output("count", "std_msgs/Int64", "the numbers, one per DataPack")
        .param(ParamSpec::int("start", 0).doc("first number"))
        .param(ParamSpec::int("step", 1).doc("increment between numbers"))
        .param(
            ParamSpec::int("limit", 0)
                .range_int(0, i64::MAX)
                .doc("numbers to send before finishing; 0: never finish"),
        )
        .param(
            ParamSpec::int("burst", 1)
                .range_int(1, 1_000_000)
                .doc("numbers sent per tick"),
        )
    }

    fn new(_ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        Ok(Counter {
            next: p.int("start")?,
            step: p.int("step")?,
            sent: 0,
            limit: p.int("limit")?,
            burst: p.int("burst")?,
        })
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: &str) -> Result<()> {
        for _ in 0..self.burst {
            if self.limit > 0 && self.sent >= self.limit {
                break;
            }
            ctx.emit("count", Int64 { data: self.next }.to_arrow()?)?;
            self.next = self.next.wrapping_add(self.step);
            self.sent += 1;
        }
        ctx.report("sent", self.sent);
        if self.limit > 0 && self.sent >= self.limit {
            ctx.finish();
        }
        Ok(())
    }
}

export_operator!(Counter);

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_operator::testing::Harness;

    #[test]
    fn counts_in_bursts_and_finishes_at_the_limit() {
        let mut h = Harness::<Counter>::new(&[
            ("start", ParamValue::Int(10)),
            ("limit", ParamValue::Int(5)),
            ("burst", ParamValue::Int(2)),
        ])
        .unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            h.timer("tick").unwrap();
            for (port, pack) in h.take_outputs() {
                assert_eq!(port, "count");
                seen.push(Int64::from_arrow(pack.data().unwrap().as_ref()).unwrap().data);
            }
        }
        assert_eq!(seen, vec![10, 11, 12, 13, 14]);
        assert!(h.finished());
        assert_eq!(h.report("sent"), Some("5"));
    }
}
