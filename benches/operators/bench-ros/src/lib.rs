//! `bench-ros`: both ends of a round trip through ROS 2. Sends a Twist or a 640x480 rgb8 Image
//! carrying its send time (Twist: `linear.y` whole seconds, `linear.z` nanoseconds; Image: the
//! header stamp) on `twist_out`/`image_out`, `burst` per tick, `count` in all; on
//! `twist_in`/`image_in` records `now - send time`. Writes `count first_arrival last_arrival`
//! and one latency per line to `path` at stop (bench-sink's format).
#![deny(unsafe_code)]

use std::fmt::Write as _;

use quiver_msgs::{Header, Image, Message, Time, Twist, Vector3};
use quiver_operator::prelude::*;

pub struct BenchRos {
    image: bool,
    count: i64,
    burst: i64,
    sent: i64,
    /// Ticks to let pass before sending (discovery).
    warmup: i64,
    width: u32,
    height: u32,
    path: String,
    latencies: Vec<u64>,
    first: u64,
    last: u64,
}

impl Operator for BenchRos {
    fn manifest() -> Manifest {
        Manifest::new(
            "bench-ros",
            env!("CARGO_PKG_VERSION"),
            "Benchmark: round trip of Twist or Image through ROS 2",
        )
        .timer("tick", "each tick sends `burst` messages")
        .input("twist_in", "geometry_msgs/Twist", "Twists back from ROS")
        .input("image_in", "sensor_msgs/Image", "Images back from ROS")
        .output("twist_out", "geometry_msgs/Twist", "Twists to ROS (kind: twist)")
        .output("image_out", "sensor_msgs/Image", "Images to ROS (kind: image)")
        .param(ParamSpec::string("kind", "twist").doc("twist or image"))
        .param(
            ParamSpec::int("count", 1000)
                .range_int(1, i64::MAX)
                .doc("messages in all"),
        )
        .param(
            ParamSpec::int("burst", 1)
                .range_int(1, i64::MAX)
                .doc("messages per tick"),
        )
        .param(
            ParamSpec::int("warmup", 0)
                .range_int(0, i64::MAX)
                .doc("ticks to wait before sending (let DDS discovery finish)"),
        )
        .param(ParamSpec::int("width", 640).range_int(1, 8192).doc("image width"))
        .param(ParamSpec::int("height", 480).range_int(1, 8192).doc("image height"))
        .param(ParamSpec::string("path", "").doc("results file written at stop"))
    }

    fn new(_ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        let image = match p.string("kind")? {
            "twist" => false,
            "image" => true,
            other => bail!("kind `{other}` is not twist or image"),
        };
        Ok(BenchRos {
            image,
            count: p.int("count")?,
            burst: p.int("burst")?,
            sent: 0,
            warmup: p.int("warmup")?,
            width: p.int("width")? as u32,
            height: p.int("height")? as u32,
            path: p.string("path")?.into(),
            latencies: Vec::with_capacity(1 << 16),
            first: 0,
            last: 0,
        })
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: &str) -> Result<()> {
        if self.warmup > 0 {
            self.warmup -= 1;
            return Ok(());
        }
        for _ in 0..self.burst {
            if self.sent >= self.count {
                ctx.finish();
                break;
            }
            if self.image {
                let len = (self.width * self.height * 3) as usize;
                let mut pixels = ctx.output_buffer("image_out", len)?;
                pixels.fill(0x5A);
                let now = ctx.now_ns();
                let image = Image::rgb8(Header::at_ns(now, "bench"), self.width, self.height, Vec::new());
                ctx.emit_stamped("image_out", image.to_arrow_over(pixels.into_buffer())?, now)?;
            } else {
                let now = ctx.now_ns();
                let twist = Twist {
                    linear: Vector3 {
                        x: 0.0,
                        y: (now / 1_000_000_000) as f64,
                        z: (now % 1_000_000_000) as f64,
                    },
                    angular: Vector3::default(),
                };
                ctx.emit_stamped("twist_out", twist.to_arrow()?, now)?;
            }
            self.sent += 1;
        }
        Ok(())
    }

    fn on_input(&mut self, ctx: &mut Context<'_>, input: &str, pack: DataPack) -> Result<()> {
        let now = ctx.now_ns();
        let data = pack.data()?;
        let sent = if input == "image_in" {
            let stamp: Time = quiver_msgs::ImageView::new(data.as_ref())?.scalars.header.stamp;
            stamp.sec as u64 * 1_000_000_000 + stamp.nanosec as u64
        } else {
            let t = Twist::from_arrow(data.as_ref())?;
            t.linear.y as u64 * 1_000_000_000 + t.linear.z as u64
        };
        if self.latencies.is_empty() {
            self.first = now;
        }
        self.last = now;
        self.latencies.push(now.saturating_sub(sent));
        Ok(())
    }

    fn stop(&mut self, _ctx: &mut Context<'_>) -> Result<()> {
        if self.path.is_empty() {
            return Ok(());
        }
        let mut text = format!("{} {} {}\n", self.latencies.len(), self.first, self.last);
        for l in &self.latencies {
            let _ = writeln!(text, "{l}");
        }
        std::fs::write(&self.path, text).map_err(|e| Error::from(e).context(format!("writing {}", self.path)))
    }
}

export_operator!(BenchRos);
