//! sim-core: a small 2D world for the robot operators (no plugin code here).
//!
//! - [`Map`]: walls, boxes and cylinders in a walled rectangle, read from YAML.
//! - [`Map::cast`]: ray casting (the laser and the camera).
//! - [`Robot`]: a differential-drive robot that stops on collision.
//! - [`render`]: a first-person colour view for the camera.
//! - [`Rng`]: a small seeded generator, so stepped runs repeat exactly.

mod geom;
mod map;
pub mod render;
mod rng;
mod robot;

pub use geom::{Hit, Kind, Pose2, Vec2};
pub use map::{Map, MapError};
pub use rng::Rng;
pub use robot::{Robot, RobotStats, StepOutcome};
