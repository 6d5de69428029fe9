//! `bench-source`: sends one pre-built payload of `size` bytes, stamped with the run clock just
//! before sending: `burst` packs per tick, `count` in all, then finishes. The same buffer is sent
//! every time: what is measured is the transport, not the allocator. With `in_place: true` each
//! pack is written into a buffer the host lends (`Context::output_buffer`: shared memory when
//! `out` goes to another process), filled first and then stamped and sent.
#![deny(unsafe_code)]

use std::sync::Arc;

use quiver_operator::prelude::*;

pub struct BenchSource {
    payload: ArrayRef,
    count: i64,
    burst: i64,
    sent: i64,
    /// Bytes per pack when written in place.
    in_place: Option<usize>,
}

impl Operator for BenchSource {
    fn manifest() -> Manifest {
        Manifest::new(
            "bench-source",
            env!("CARGO_PKG_VERSION"),
            "Benchmark source: a fixed payload, stamped at send",
        )
        .timer("tick", "each tick sends `burst` packs")
        .output("out", "bench/Bytes", "the payload")
        .param(ParamSpec::int("size", 8).range_int(1, 1 << 32).doc("payload bytes"))
        .param(
            ParamSpec::int("count", 1000)
                .range_int(1, i64::MAX)
                .doc("packs to send in all"),
        )
        .param(
            ParamSpec::int("burst", 1)
                .range_int(1, i64::MAX)
                .doc("packs per tick, sent back to back"),
        )
        .param(ParamSpec::bool("in_place", false).doc("write each pack into a lent output buffer"))
    }

    fn new(_ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        let size = p.int("size")? as usize;
        let payload: ArrayRef = Arc::new(UInt8Array::from(vec![0xA5u8; size]));
        Ok(BenchSource {
            payload,
            count: p.int("count")?,
            burst: p.int("burst")?,
            sent: 0,
            in_place: p.bool("in_place")?.then_some(size),
        })
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: &str) -> Result<()> {
        for _ in 0..self.burst {
            if self.sent >= self.count {
                break;
            }
            let payload = match self.in_place {
                Some(size) => {
                    let mut buf = ctx.output_buffer("out", size)?;
                    buf.fill(0xA5);
                    Arc::new(UInt8Array::new(buf.into_buffer().into(), None))
                }
                None => self.payload.clone(),
            };
            let now = ctx.now_ns();
            ctx.emit_stamped("out", payload, now)?;
            self.sent += 1;
        }
        if self.sent >= self.count {
            ctx.finish();
        }
        Ok(())
    }
}

export_operator!(BenchSource);
