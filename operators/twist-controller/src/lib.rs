//! `twist-controller`: fuses the cleaned laser scan with the CNN's class into velocity commands
//! (geometry_msgs/Twist), on every `tick`:
//! - no scan yet: stop;
//! - an obstacle closer than `min_distance` in the front sector: stop and turn away, towards the
//!   side with more room, and keep turning that way until the front is clear (the seed's rule);
//! - otherwise, if a class arrived within `class_timeout`: confidence below `confidence_threshold`
//!   -> stop (and if the CNN stays unsure for `stall_timeout`, turn slowly in place to get another
//!   view: a robot that only stops would wait for ever in front of a view it cannot classify);
//!   obstacle_left -> turn right; obstacle_right -> turn left; clear -> forward;
//! - without a class (no CNN in the graph, or a stale one): forward, slowing near obstacles and
//!   steering away from close sides.
//!
//! Parameters are checked at start and on every change while running (`on_param`).
#![deny(unsafe_code)]

use quiver_msgs::{Classification, LaserScanView, Message, Twist, Vector3};
use quiver_operator::prelude::*;

const LINEAR_RANGE: (f64, f64) = (0.0, 2.0);
const ANGULAR_RANGE: (f64, f64) = (-1.0, 1.0);

/// Robot radius plus margin: closer than this at the side, steer away.
const SIDE_CLEARANCE: f64 = 0.42;

#[derive(Debug, Clone, PartialEq)]
struct Settings {
    linear: f64,
    angular: f64,
    min_distance: f64,
    front_angle: f64,
    threshold: f64,
    class_timeout_ns: u64,
    stall_timeout_ns: u64,
}

impl Settings {
    fn set(&mut self, name: &str, v: &ParamValue) -> Result<()> {
        let f = || {
            v.as_f64()
                .ok_or_else(|| Error::msg(format!("`{name}` takes a number, not {v}")))
        };
        let within = |x: f64, (lo, hi): (f64, f64)| -> Result<f64> {
            if x.is_finite() && x >= lo && x <= hi {
                Ok(x)
            } else {
                bail!("`{name}` = {x} is outside [{lo}, {hi}]")
            }
        };
        match name {
            "linear_speed" => self.linear = within(f()?, LINEAR_RANGE)?,
            "angular_speed" => self.angular = within(f()?, ANGULAR_RANGE)?,
            "min_distance" => self.min_distance = within(f()?, (0.05, 5.0))?,
            "front_angle" => self.front_angle = within(f()?, (1.0, 90.0))?.to_radians(),
            "confidence_threshold" => self.threshold = within(f()?, (0.0, 1.0))?,
            "class_timeout" | "stall_timeout" => match v {
                ParamValue::Duration(d) if name == "class_timeout" => self.class_timeout_ns = d.as_nanos() as u64,
                ParamValue::Duration(d) => self.stall_timeout_ns = d.as_nanos() as u64,
                _ => bail!("`{name}` takes a duration, not {v}"),
            },
            _ => bail!("unknown parameter `{name}`"),
        }
        Ok(())
    }
}

/// Nearest valid return in each sector of a scan.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sectors {
    front: f64,
    left: f64,
    right: f64,
}

fn sectors(scan: &LaserScanView<'_>, front_angle: f64) -> Sectors {
    let s = &scan.scalars;
    let side = 100f64.to_radians();
    let mut out = Sectors {
        front: f64::INFINITY,
        left: f64::INFINITY,
        right: f64::INFINITY,
    };
    for (i, &r) in scan.ranges.iter().enumerate() {
        if !(r.is_finite() && r >= s.range_min && r <= s.range_max) {
            continue;
        }
        let a = (s.angle_min as f64 + i as f64 * s.angle_increment as f64 + std::f64::consts::PI)
            .rem_euclid(std::f64::consts::TAU)
            - std::f64::consts::PI;
        let r = r as f64;
        if a.abs() <= front_angle {
            out.front = out.front.min(r);
        } else if a > 0.0 && a <= side {
            out.left = out.left.min(r);
        } else if a < 0.0 && a >= -side {
            out.right = out.right.min(r);
        }
    }
    out
}

pub struct TwistController {
    settings: Settings,
    /// While turning away from an obstacle: the direction (+1 left, -1 right).
    turning: f64,
    /// Since when the CNN has been unsure (run clock).
    unsure_since: Option<u64>,
    classes: [u64; 3],
    low_confidence: u64,
    commands: u64,
    stops: u64,
}

impl TwistController {
    fn with(settings: Settings) -> Self {
        TwistController {
            settings,
            turning: 0.0,
            unsure_since: None,
            classes: [0; 3],
            low_confidence: 0,
            commands: 0,
            stops: 0,
        }
    }

    /// The command for the latest scan and class (pure, for unit tests).
    fn decide(&mut self, now_ns: u64, scan: Option<&LaserScanView<'_>>, class: Option<&Classification>) -> (f64, f64) {
        let s = self.settings.clone();
        let Some(scan) = scan else { return (0.0, 0.0) };
        let sec = sectors(scan, s.front_angle);
        if sec.front < s.min_distance {
            if self.turning == 0.0 {
                self.turning = if sec.left >= sec.right { 1.0 } else { -1.0 };
            }
            return (0.0, self.turning * s.angular);
        }
        self.turning = 0.0;
        // Keep off the sides: turn away from a side closer than the clearance.
        let steer = if sec.left < SIDE_CLEARANCE && sec.left <= sec.right {
            -s.angular
        } else if sec.right < SIDE_CLEARANCE {
            s.angular
        } else {
            0.0
        };
        // Slow down as the front closes in.
        let slow = ((sec.front - s.min_distance) / 1.0).clamp(0.3, 1.0);
        let unsure = class.is_some_and(|c| (c.confidence as f64) < s.threshold);
        if !unsure {
            self.unsure_since = None;
        }
        match class {
            Some(_) if unsure => {
                self.low_confidence += 1;
                let since = *self.unsure_since.get_or_insert(now_ns);
                if now_ns.saturating_sub(since) < s.stall_timeout_ns {
                    (0.0, 0.0)
                } else {
                    // Still unsure: look around, turning towards the side with more room.
                    (0.0, if sec.left >= sec.right { 0.5 } else { -0.5 } * s.angular)
                }
            }
            Some(c) if c.class_id == 1 => (s.linear * 0.5 * slow, if steer != 0.0 { steer } else { -s.angular }),
            Some(c) if c.class_id == 2 => (s.linear * 0.5 * slow, if steer != 0.0 { steer } else { s.angular }),
            _ => (s.linear * slow, steer),
        }
    }
}

impl Operator for TwistController {
    fn manifest() -> Manifest {
        Manifest::new(
            "twist-controller",
            env!("CARGO_PKG_VERSION"),
            "Fuses laser and CNN class into velocity commands",
        )
        .required_input("scan", "sensor_msgs/LaserScan", "cleaned laser scans")
        .input(
            "class",
            "quiver_msgs/Classification",
            "the CNN's view of the camera (optional)",
        )
        .timer("tick", "one command per tick")
        .output("cmd_vel", "geometry_msgs/Twist", "velocity command")
        .param(
            ParamSpec::float("linear_speed", 0.35)
                .range(LINEAR_RANGE.0, LINEAR_RANGE.1)
                .doc("forward speed [m/s]"),
        )
        .param(
            ParamSpec::float("angular_speed", 0.9)
                .range(ANGULAR_RANGE.0, ANGULAR_RANGE.1)
                .doc("turn rate [rad/s]"),
        )
        .param(
            ParamSpec::float("min_distance", 0.5)
                .range(0.05, 5.0)
                .doc("stop and turn when the front is closer [m]"),
        )
        .param(
            ParamSpec::float("front_angle", 35.0)
                .range(1.0, 90.0)
                .doc("half-width of the front sector [deg]"),
        )
        .param(
            ParamSpec::float("confidence_threshold", 0.6)
                .range(0.0, 1.0)
                .doc("below this, a class means stop"),
        )
        .param(
            ParamSpec::duration("class_timeout", std::time::Duration::from_millis(500))
                .doc("a class older than this is ignored (laser only)"),
        )
        .param(
            ParamSpec::duration("stall_timeout", std::time::Duration::from_secs(1))
                .doc("after this long stopped by an unsure CNN, turn slowly to get another view"),
        )
    }

    fn new(_ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        let mut settings = Settings {
            linear: 0.0,
            angular: 0.0,
            min_distance: 0.0,
            front_angle: 0.0,
            threshold: 0.0,
            class_timeout_ns: 0,
            stall_timeout_ns: 0,
        };
        for (name, value) in p.iter() {
            settings.set(name, value)?;
        }
        Ok(TwistController::with(settings))
    }

    fn on_input(&mut self, ctx: &mut Context<'_>, input: &str, pack: DataPack) -> Result<()> {
        if input == "class" {
            let c = Classification::from_arrow(pack.data()?.as_ref())?;
            if let Some(n) = self.classes.get_mut(c.class_id as usize) {
                *n += 1;
            }
            ctx.report(
                "classes",
                format!(
                    "clear={} left={} right={}",
                    self.classes[0], self.classes[1], self.classes[2]
                ),
            );
        }
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: &str) -> Result<()> {
        let now = ctx.now_ns();
        let scan = ctx.latest("scan").map(|p| p.data().cloned()).transpose()?;
        let scan = scan.as_ref().map(|a| LaserScanView::new(a.as_ref())).transpose()?;
        let class = match ctx.latest("class") {
            Some(p) if now.saturating_sub(p.timestamp_ns()) <= self.settings.class_timeout_ns => {
                Some(Classification::from_arrow(p.data()?.as_ref())?)
            }
            _ => None,
        };
        let (v, w) = self.decide(now, scan.as_ref(), class.as_ref());
        self.commands += 1;
        if v == 0.0 && w == 0.0 {
            self.stops += 1;
        }
        let cmd = Twist {
            linear: Vector3 { x: v, y: 0.0, z: 0.0 },
            angular: Vector3 { x: 0.0, y: 0.0, z: w },
        };
        ctx.emit("cmd_vel", cmd.to_arrow()?)?;
        ctx.report(
            "stopped",
            format!("{:.0}%", 100.0 * self.stops as f64 / self.commands as f64),
        );
        if self.low_confidence > 0 {
            ctx.report("low_confidence", self.low_confidence);
        }
        Ok(())
    }

    fn on_param(&mut self, _ctx: &mut Context<'_>, name: &str, value: &ParamValue) -> Result<()> {
        // Validate on a copy: a refused value leaves the settings as they were.
        let mut next = self.settings.clone();
        next.set(name, value)?;
        self.settings = next;
        Ok(())
    }
}

export_operator!(TwistController);

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_msgs::LaserScan;
    use quiver_operator::testing::{CallError, Harness};

    /// A 360-ray scan: `near` metres in [from, to] degrees, 5 m elsewhere.
    fn scan(near: f32, from: f64, to: f64) -> LaserScan {
        let n = 360;
        let ranges = (0..n)
            .map(|i| {
                let a = -180.0 + i as f64;
                if a >= from && a <= to { near } else { 5.0 }
            })
            .collect();
        LaserScan {
            angle_min: -std::f32::consts::PI,
            angle_max: std::f32::consts::PI,
            angle_increment: std::f32::consts::TAU / n as f32,
            range_min: 0.1,
            range_max: 8.0,
            ranges,
            ..LaserScan::default()
        }
    }

    fn class(id: u8, confidence: f32) -> Classification {
        Classification {
            class_id: id,
            confidence,
            ..Classification::default()
        }
    }

    fn controller() -> TwistController {
        TwistController::with(Settings {
            linear: 0.35,
            angular: 0.9,
            min_distance: 0.5,
            front_angle: 35f64.to_radians(),
            threshold: 0.6,
            class_timeout_ns: 500_000_000,
            stall_timeout_ns: 1_000_000_000,
        })
    }

    fn decide_at(c: &mut TwistController, now: u64, s: &LaserScan, k: Option<Classification>) -> (f64, f64) {
        let array = s.clone().to_arrow().unwrap();
        let view = LaserScanView::new(array.as_ref()).unwrap();
        c.decide(now, Some(&view), k.as_ref())
    }

    fn decide(c: &mut TwistController, s: &LaserScan, k: Option<Classification>) -> (f64, f64) {
        decide_at(c, 0, s, k)
    }

    #[test]
    fn the_seeds_cases() {
        let mut c = controller();
        // No scan: stop.
        assert_eq!(c.decide(0, None, None), (0.0, 0.0));
        // Empty scan: nothing seen, drive on.
        let empty = LaserScan {
            ranges: vec![],
            ..scan(5.0, 0.0, 0.0)
        };
        assert_eq!(decide(&mut c, &empty, None), (0.35, 0.0));
        // All returns invalid: same as nothing seen.
        let invalid = LaserScan {
            ranges: vec![f32::NAN; 360],
            ..scan(5.0, 0.0, 0.0)
        };
        assert_eq!(decide(&mut c, &invalid, None).1, 0.0);
        // Too close in front, more room on the left: stop and turn left, and keep turning left.
        let (v, w) = decide(&mut c, &scan(0.3, -40.0, 10.0), None);
        assert_eq!((v, w), (0.0, 0.9));
        let (_, w) = decide(&mut c, &scan(0.3, -10.0, 40.0), None);
        assert_eq!(w, 0.9, "hysteresis: still turning left");
        // Low confidence: stop; still unsure a second later: turn slowly to look elsewhere.
        assert_eq!(
            decide_at(&mut c, 0, &scan(5.0, 0.0, 0.0), Some(class(0, 0.3))),
            (0.0, 0.0)
        );
        assert_eq!(
            decide_at(&mut c, 500_000_000, &scan(5.0, 0.0, 0.0), Some(class(0, 0.3))),
            (0.0, 0.0)
        );
        assert_eq!(
            decide_at(&mut c, 1_100_000_000, &scan(5.0, 0.0, 0.0), Some(class(0, 0.3))),
            (0.0, 0.45)
        );
        // Obstacle left: turn right; obstacle right: turn left; clear: forward.
        assert!(decide(&mut c, &scan(5.0, 0.0, 0.0), Some(class(1, 0.9))).1 < 0.0);
        assert!(decide(&mut c, &scan(5.0, 0.0, 0.0), Some(class(2, 0.9))).1 > 0.0);
        assert_eq!(decide(&mut c, &scan(5.0, 0.0, 0.0), Some(class(0, 0.9))), (0.35, 0.0));
        // A wall close on the right: steer left.
        assert!(decide(&mut c, &scan(0.35, -90.0, -60.0), None).1 > 0.0);
    }

    #[test]
    fn parameters_are_checked_at_start_and_on_change() {
        assert!(Harness::<TwistController>::new(&[("linear_speed", ParamValue::Float(3.0))]).is_err());
        let mut h = Harness::<TwistController>::new(&[]).unwrap();
        assert_eq!(
            h.set_param("linear_speed", ParamValue::Float(2.5)).unwrap_err(),
            // Refused as the host refuses it (kind and range from the manifest).
            CallError::Error("parameter `linear_speed`: 2.5 is out of range [0, 2]".into())
        );
        assert_eq!(
            h.set_param("angular_speed", ParamValue::Float(-1.5)).unwrap_err(),
            CallError::Error("parameter `angular_speed`: -1.5 is out of range [-1, 1]".into())
        );
        h.set_param("confidence_threshold", ParamValue::Float(0.8)).unwrap();
        // The timer sends a stop while no scan has arrived.
        h.timer("tick").unwrap();
        let out = h.take_outputs();
        assert_eq!(
            Twist::from_arrow(out[0].1.data().unwrap().as_ref()).unwrap(),
            Twist::default()
        );
    }
}
