//! Training and test data: frames rendered by the sim renderer from random poses in random rooms
//! (and the shipped maps), labelled from the geometry, and the pre-processing the operator applies
//! to every camera frame.
//!
//! The label is a rule about the nearest boxes and cylinders in view (walls are the laser's job):
//! - obstacle_left / obstacle_right: boxes or cylinders nearer than `NEAR` in view, more of them
//!   (weighted by closeness, by a margin) in the left / right half of the image;
//! - clear: nothing nearer than `NEAR` (obstacles further away are not obstacles yet);
//! - ambiguous, and used neither for training nor for the held-out accuracy: an obstacle within
//!   the band around `NEAR` (`BAND`), a sliver, or one dead centre (no side clearly heavier).

use sim_core::render::{Camera, render};
use sim_core::{Kind, Map, Pose2, Rng};

use crate::model::{INPUT_H, INPUT_W};

pub const NEAR: f64 = 1.5;
/// Half-width of the ambiguous band around `NEAR` (metres).
pub const BAND: f64 = 0.15;
/// Frames are rendered at the demo's camera size and shrunk by `preprocess`, exactly as the
/// operator shrinks camera frames.
pub const FRAME_W: u32 = 160;
pub const FRAME_H: u32 = 120;

/// RGB bytes (any size) -> the network's input: 3 x 48 x 64 floats, channel-major, by area
/// averaging, normalised to about [-2, 2].
pub fn preprocess(rgb: &[u8], width: usize, height: usize) -> Vec<f32> {
    let mut out = vec![0f32; 3 * INPUT_H * INPUT_W];
    for oy in 0..INPUT_H {
        let (y0, y1) = (
            oy * height / INPUT_H,
            ((oy + 1) * height / INPUT_H).max(oy * height / INPUT_H + 1),
        );
        for ox in 0..INPUT_W {
            let (x0, x1) = (
                ox * width / INPUT_W,
                ((ox + 1) * width / INPUT_W).max(ox * width / INPUT_W + 1),
            );
            let mut sum = [0u32; 3];
            for y in y0..y1.min(height) {
                for x in x0..x1.min(width) {
                    let i = (y * width + x) * 3;
                    for c in 0..3 {
                        sum[c] += rgb[i + c] as u32;
                    }
                }
            }
            let n = ((y1.min(height) - y0) * (x1.min(width) - x0)).max(1) as f32;
            for c in 0..3 {
                out[c * INPUT_H * INPUT_W + oy * INPUT_W + ox] = (sum[c] as f32 / n / 255.0 - 0.5) / 0.25;
            }
        }
    }
    out
}

/// The class of the view from `pose`, or `None` when ambiguous.
pub fn label(map: &Map, pose: Pose2, camera: &Camera) -> Option<u8> {
    let columns = 64;
    let (mut left, mut right, mut band) = (0.0, 0.0, 0);
    for col in 0..columns {
        let rel = camera.fov / 2.0 - (col as f64 + 0.5) / columns as f64 * camera.fov;
        let Some(hit) = map.cast(pose.position(), pose.theta + rel, NEAR + BAND) else {
            continue;
        };
        if hit.kind == Kind::Wall {
            continue;
        }
        if hit.dist < NEAR - BAND {
            let weight = NEAR - hit.dist + 0.2;
            if col < columns / 2 {
                left += weight
            } else {
                right += weight
            }
        } else {
            band += 1;
        }
    }
    let near = left + right;
    if near == 0.0 {
        return if band == 0 { Some(0) } else { None };
    }
    if near < 0.8 {
        None
    } else if left > 1.25 * right {
        Some(1)
    } else if right > 1.25 * left {
        Some(2)
    } else {
        None
    }
}

/// A random room: walls around, some inner walls, boxes and cylinders.
pub fn random_map(rng: &mut Rng) -> Map {
    let w = rng.range(5.0, 12.0);
    let h = rng.range(4.0, 10.0);
    let mut text = format!("name: random\nsize: [{w:.2}, {h:.2}]\nstart: [0.5, 0.5, 0]\nwalls:\n");
    for _ in 0..(rng.uniform() * 3.0) as usize {
        let (x, y) = (rng.range(1.0, w - 1.0), rng.range(1.0, h - 1.0));
        let len = rng.range(1.0, 4.0);
        let (x2, y2) = if rng.chance(0.5) {
            ((x + len).min(w), y)
        } else {
            (x, (y + len).min(h))
        };
        text += &format!("  - [{x:.2}, {y:.2}, {x2:.2}, {y2:.2}]\n");
    }
    text += "boxes:\n";
    for _ in 0..2 + (rng.uniform() * 7.0) as usize {
        text += &format!(
            "  - [{:.2}, {:.2}, {:.2}, {:.2}]\n",
            rng.range(0.8, w - 0.8),
            rng.range(0.8, h - 0.8),
            rng.range(0.3, 1.0),
            rng.range(0.3, 1.0)
        );
    }
    text += "cylinders:\n";
    for _ in 0..1 + (rng.uniform() * 5.0) as usize {
        text += &format!(
            "  - [{:.2}, {:.2}, {:.2}]\n",
            rng.range(0.8, w - 0.8),
            rng.range(0.8, h - 0.8),
            rng.range(0.12, 0.35)
        );
    }
    // The start pose may fall inside an obstacle; then the map is simply drawn again.
    Map::parse("random", &text).unwrap_or_else(|_| random_map(rng))
}

/// A pose: half the time anywhere free, half the time looking at an obstacle from nearby.
fn random_pose(map: &Map, rng: &mut Rng) -> Pose2 {
    let free = map.random_free_pose(rng, 0.25);
    let targets: Vec<sim_core::Vec2> = map
        .boxes
        .iter()
        .map(|b| b.center)
        .chain(map.cylinders.iter().map(|c| c.0))
        .collect();
    if targets.is_empty() || rng.chance(0.4) {
        return free;
    }
    let target = targets[(rng.uniform() * targets.len() as f64) as usize % targets.len()];
    for _ in 0..50 {
        let angle = rng.range(-std::f64::consts::PI, std::f64::consts::PI);
        let dist = rng.range(0.5, 2.2);
        let p = target.plus(sim_core::Vec2::from_angle(angle).scale(dist));
        if !map.collides(p, 0.25) {
            let facing = target.minus(p);
            let theta = facing.y.atan2(facing.x) + rng.range(-0.75, 0.75);
            return Pose2 { x: p.x, y: p.y, theta };
        }
    }
    free
}

/// `n` labelled frames, as balanced across the classes as possible, from `seed`: (network input,
/// class). Uses the shipped maps one time in four.
pub fn generate(seed: u64, n: usize, shipped: &[Map]) -> Vec<(Vec<f32>, u8)> {
    let mut rng = Rng::new(seed);
    let camera = Camera::new(FRAME_W, FRAME_H);
    let per_class = n.div_ceil(3);
    let mut counts = [0usize; 3];
    let mut out = Vec::with_capacity(n);
    let mut map = random_map(&mut rng);
    let mut attempts = 0usize;
    while out.len() < n {
        attempts += 1;
        if attempts.is_multiple_of(40) {
            map = if !shipped.is_empty() && rng.chance(0.25) {
                shipped[(rng.uniform() * shipped.len() as f64) as usize % shipped.len()].clone()
            } else {
                random_map(&mut rng)
            };
        }
        let pose = random_pose(&map, &mut rng);
        let Some(class) = label(&map, pose, &camera) else {
            continue;
        };
        if counts[class as usize] >= per_class {
            continue;
        }
        counts[class as usize] += 1;
        let frame = render(&map, pose, &camera);
        out.push((preprocess(&frame, FRAME_W as usize, FRAME_H as usize), class));
    }
    out
}
