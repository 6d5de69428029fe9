//! A differential-drive robot: a disc that follows (v, w) commands and stops when it would touch
//! an obstacle.

use crate::geom::Pose2;
use crate::map::Map;

/// The robot's radius (metres).
pub const ROBOT_RADIUS: f64 = 0.18;

/// What the robot did over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RobotStats {
    /// Metres driven.
    pub distance: f64,
    /// Contacts with obstacles (one per contact, however long it lasts).
    pub collisions: u64,
    pub steps: u64,
    /// Steps in which the robot moved (drove or turned).
    pub moving_steps: u64,
}

impl RobotStats {
    /// Share of steps in which the robot moved, 0..1.
    pub fn moving_share(&self) -> f64 {
        if self.steps == 0 {
            0.0
        } else {
            self.moving_steps as f64 / self.steps as f64
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Moved,
    /// The move would have touched an obstacle: the robot stayed and its command was cleared.
    Collided,
    Idle,
}

#[derive(Clone, Debug)]
pub struct Robot {
    pub pose: Pose2,
    /// Commanded forward speed (m/s) and turn rate (rad/s).
    pub v: f64,
    pub w: f64,
    pub stats: RobotStats,
    in_contact: bool,
}

impl Robot {
    pub fn new(pose: Pose2) -> Self {
        Robot {
            pose,
            v: 0.0,
            w: 0.0,
            stats: RobotStats::default(),
            in_contact: false,
        }
    }

    pub fn command(&mut self, v: f64, w: f64) {
        self.v = if v.is_finite() { v } else { 0.0 };
        self.w = if w.is_finite() { w } else { 0.0 };
    }

    /// Advances `dt` seconds.
    pub fn step(&mut self, map: &Map, dt: f64) -> StepOutcome {
        self.stats.steps += 1;
        if self.v.abs() < 1e-4 && self.w.abs() < 1e-4 {
            return StepOutcome::Idle;
        }
        let mid = self.pose.theta + self.w * dt / 2.0;
        let next = Pose2 {
            x: self.pose.x + self.v * dt * mid.cos(),
            y: self.pose.y + self.v * dt * mid.sin(),
            theta: (self.pose.theta + self.w * dt + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU)
                - std::f64::consts::PI,
        };
        if map.collides(next.position(), ROBOT_RADIUS) {
            if !self.in_contact {
                self.stats.collisions += 1;
                self.in_contact = true;
            }
            self.v = 0.0;
            self.w = 0.0;
            return StepOutcome::Collided;
        }
        self.stats.distance += next.position().minus(self.pose.position()).len();
        self.stats.moving_steps += 1;
        self.in_contact = false;
        self.pose = next;
        StepOutcome::Moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drives_and_stops_at_a_wall_counting_one_collision() {
        let map = Map::parse("t", "size: [3, 3]\nstart: [1, 1.5, 0]\n").unwrap();
        let mut r = Robot::new(map.start);
        for _ in 0..200 {
            if r.v == 0.0 {
                r.command(1.0, 0.0);
            }
            r.step(&map, 0.05);
        }
        assert_eq!(r.stats.collisions, 1, "pushing against the wall is one contact");
        assert!(r.pose.x < 3.0 - ROBOT_RADIUS && r.pose.x > 2.7, "{:?}", r.pose);
        assert!((r.stats.distance - (r.pose.x - 1.0)).abs() < 1e-9);
        r.command(0.0, 1.0);
        assert_eq!(r.step(&map, 0.05), StepOutcome::Moved, "turning in place is free");
    }
}
