//! `sim-world`: a 2D world from a map file with a differential-drive robot. On every `tick` the
//! robot follows the last `cmd_vel` (geometry_msgs/Twist) and its `pose` is sent; every
//! `scan_every` ticks a laser scan (sensor_msgs/LaserScan) is ray cast with seeded noise and the
//! occasional NaN, missing (inf) and out-of-range return. A move that would touch an obstacle is
//! a collision: it is counted and the robot stops until the next command. Reports `distance`,
//! `collisions` and `moving` (share of ticks the robot moved). Deterministic for a seed in
//! stepped mode (time comes from the run clock).
#![deny(unsafe_code)]

use quiver_msgs::{Header, LaserScan, Message, Point, Pose, Quaternion, Twist};
use quiver_operator::prelude::*;
use sim_core::{Map, Rng, Robot};

pub struct SimWorld {
    map: Map,
    robot: Robot,
    rng: Rng,
    rays: usize,
    range_min: f64,
    range_max: f64,
    noise: f64,
    nan_rate: f64,
    outlier_rate: f64,
    scan_every: u64,
    max_speed: f64,
    max_turn: f64,
    ticks: u64,
    last_ns: Option<u64>,
}

impl SimWorld {
    fn scan(&mut self, now_ns: u64) -> LaserScan {
        let n = self.rays;
        let inc = std::f64::consts::TAU / n as f64;
        let angle_min = -std::f64::consts::PI;
        let origin = self.robot.pose.position();
        let mut ranges = Vec::with_capacity(n);
        for i in 0..n {
            let angle = self.robot.pose.theta + angle_min + i as f64 * inc;
            let r = match self.map.cast(origin, angle, self.range_max) {
                None => f64::INFINITY,
                Some(hit) => (hit.dist + self.noise * self.rng.normal()).max(0.0),
            };
            let r = if self.rng.chance(self.nan_rate) {
                f64::NAN
            } else if self.rng.chance(self.outlier_rate) {
                // A spurious return: too close or beyond the sensor's range.
                if self.rng.chance(0.5) {
                    self.range_min * 0.5
                } else {
                    self.range_max * 1.5
                }
            } else {
                r
            };
            ranges.push(r as f32);
        }
        LaserScan {
            header: Header::at_ns(now_ns, "laser"),
            angle_min: angle_min as f32,
            angle_max: (angle_min + (n - 1) as f64 * inc) as f32,
            angle_increment: inc as f32,
            time_increment: 0.0,
            scan_time: 0.0,
            range_min: self.range_min as f32,
            range_max: self.range_max as f32,
            ranges,
            intensities: Vec::new(),
        }
    }

    fn report(&self, ctx: &mut Context<'_>) {
        let s = &self.robot.stats;
        ctx.report("distance", format!("{:.1} m", s.distance));
        ctx.report("collisions", s.collisions);
        ctx.report("moving", format!("{:.0}%", 100.0 * s.moving_share()));
    }
}

impl Operator for SimWorld {
    fn manifest() -> Manifest {
        Manifest::new(
            "sim-world",
            env!("CARGO_PKG_VERSION"),
            "A simulated 2D world: robot, laser scanner, collisions",
        )
        .input(
            "cmd_vel",
            "geometry_msgs/Twist",
            "velocity command (linear.x m/s, angular.z rad/s)",
        )
        .timer("tick", "advances the simulation by the time since the last tick")
        .output(
            "scan",
            "sensor_msgs/LaserScan",
            "a 360 degree laser scan every `scan_every` ticks",
        )
        .output("pose", "geometry_msgs/Pose", "the robot's pose after every tick")
        .param(ParamSpec::path("map").doc("map file (YAML: size, start, walls, boxes, cylinders)"))
        .param(ParamSpec::int("seed", 1).doc("seed of the sensor noise"))
        .param(
            ParamSpec::int("rays", 360)
                .range_int(8, 4096)
                .doc("laser rays per scan, over 360 degrees"),
        )
        .param(
            ParamSpec::float("range_min", 0.12)
                .range(0.0, 10.0)
                .doc("laser minimum range [m]"),
        )
        .param(
            ParamSpec::float("range_max", 8.0)
                .range(0.5, 100.0)
                .doc("laser maximum range [m]"),
        )
        .param(
            ParamSpec::float("noise", 0.01)
                .range(0.0, 1.0)
                .doc("range noise, standard deviation [m]"),
        )
        .param(
            ParamSpec::float("nan_rate", 0.002)
                .range(0.0, 1.0)
                .doc("share of rays returning NaN"),
        )
        .param(
            ParamSpec::float("outlier_rate", 0.002)
                .range(0.0, 1.0)
                .doc("share of rays out of range"),
        )
        .param(
            ParamSpec::int("scan_every", 5)
                .range_int(1, 10_000)
                .doc("ticks between scans"),
        )
        .param(
            ParamSpec::float("max_speed", 1.0)
                .range(0.0, 5.0)
                .doc("commands are clamped to this [m/s]"),
        )
        .param(
            ParamSpec::float("max_turn", 2.0)
                .range(0.0, 10.0)
                .doc("commands are clamped to this [rad/s]"),
        )
    }

    fn new(_ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        let map = Map::load(&p.path("map")?)?;
        let range_min = p.float("range_min")?;
        let range_max = p.float("range_max")?;
        if range_min >= range_max {
            bail!("range_min {range_min} must be below range_max {range_max}");
        }
        Ok(SimWorld {
            robot: Robot::new(map.start),
            map,
            rng: Rng::new(p.int("seed")? as u64),
            rays: p.int("rays")? as usize,
            range_min,
            range_max,
            noise: p.float("noise")?,
            nan_rate: p.float("nan_rate")?,
            outlier_rate: p.float("outlier_rate")?,
            scan_every: p.int("scan_every")? as u64,
            max_speed: p.float("max_speed")?,
            max_turn: p.float("max_turn")?,
            ticks: 0,
            last_ns: None,
        })
    }

    fn on_input(&mut self, _ctx: &mut Context<'_>, _input: &str, pack: DataPack) -> Result<()> {
        let cmd = Twist::from_arrow(pack.data()?.as_ref())?;
        self.robot.command(
            cmd.linear.x.clamp(-self.max_speed, self.max_speed),
            cmd.angular.z.clamp(-self.max_turn, self.max_turn),
        );
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: &str) -> Result<()> {
        let now = ctx.now_ns();
        let dt = self.last_ns.map_or(0.0, |last| now.saturating_sub(last) as f64 / 1e9);
        self.last_ns = Some(now);
        if dt > 0.0 {
            self.robot.step(&self.map, dt);
        }
        let p = self.robot.pose;
        let pose = Pose {
            position: Point { x: p.x, y: p.y, z: 0.0 },
            orientation: Quaternion::from_yaw(p.theta),
        };
        ctx.emit_stamped("pose", pose.to_arrow()?, now)?;
        if self.ticks.is_multiple_of(self.scan_every) {
            let scan = self.scan(now);
            ctx.emit_stamped("scan", scan.to_arrow()?, now)?;
        }
        self.ticks += 1;
        self.report(ctx);
        Ok(())
    }

    fn stop(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let s = self.robot.stats;
        ctx.info(&format!(
            "map {}: drove {:.1} m, {} collisions, moving {:.0}% of the time",
            self.map.name,
            s.distance,
            s.collisions,
            100.0 * s.moving_share()
        ));
        Ok(())
    }
}

export_operator!(SimWorld);

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_msgs::{LaserScanView, Vector3};
    use quiver_operator::testing::Harness;

    fn world(extra: &[(&str, ParamValue)]) -> Harness<SimWorld> {
        let map = concat!(env!("CARGO_MANIFEST_DIR"), "/../../graphs/maps/room.yaml");
        let mut params = vec![("map", ParamValue::Path(map.into()))];
        params.extend(extra.iter().cloned());
        Harness::new(&params).unwrap()
    }

    #[test]
    fn scans_have_seeded_noise_and_invalid_returns() {
        let mut h = world(&[
            ("nan_rate", ParamValue::Float(0.05)),
            ("outlier_rate", ParamValue::Float(0.05)),
        ]);
        h.timer("tick").unwrap();
        let out = h.take_outputs();
        let scan = out.iter().find(|(p, _)| p == "scan").unwrap().1.data().unwrap().clone();
        let v = LaserScanView::new(scan.as_ref()).unwrap();
        assert_eq!(v.ranges.len(), 360);
        assert!(v.ranges.iter().any(|r| r.is_nan()));
        assert!(v.ranges.iter().any(|r| *r > v.scalars.range_max));
        assert!(v.ranges.iter().any(|r| *r < v.scalars.range_min));
        // Same seed, same scan.
        let mut again = world(&[
            ("nan_rate", ParamValue::Float(0.05)),
            ("outlier_rate", ParamValue::Float(0.05)),
        ]);
        again.timer("tick").unwrap();
        let out2 = again.take_outputs();
        let scan2 = out2
            .iter()
            .find(|(p, _)| p == "scan")
            .unwrap()
            .1
            .data()
            .unwrap()
            .clone();
        let v2 = LaserScanView::new(scan2.as_ref()).unwrap();
        assert_eq!(format!("{:?}", v.ranges), format!("{:?}", v2.ranges));
    }

    #[test]
    fn follows_commands_and_counts_a_collision() {
        let mut h = world(&[]);
        let fwd = Twist {
            linear: Vector3 { x: 1.0, y: 0.0, z: 0.0 },
            angular: Vector3::default(),
        };
        h.input("cmd_vel", Some(fwd.clone().to_arrow().unwrap())).unwrap();
        for i in 0..400 {
            h.set_time_ns(i * 50_000_000);
            h.timer("tick").unwrap();
            if i % 10 == 0 {
                h.input("cmd_vel", Some(fwd.clone().to_arrow().unwrap())).unwrap();
            }
        }
        assert_eq!(h.report("collisions"), Some("1"), "{:?}", h.reports());
        let moved: f64 = h.report("distance").unwrap().trim_end_matches(" m").parse().unwrap();
        assert!(moved > 1.0, "{moved}");
    }
}
