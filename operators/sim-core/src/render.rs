//! A first-person colour view of the world from a pose, by ray casting one ray per image column:
//! walls (beige, full height), boxes (red, low) and cylinders (blue), floor and ceiling, darker
//! with distance. Deterministic: the same map, pose and size give the same pixels.

use crate::geom::{Kind, Pose2};
use crate::map::Map;

/// How the camera sees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    pub width: u32,
    pub height: u32,
    /// Horizontal field of view (radians).
    pub fov: f64,
    /// Height of the lens above the floor (metres).
    pub lens_height: f64,
    /// Nothing beyond this is drawn (metres).
    pub max_range: f64,
}

impl Camera {
    pub fn new(width: u32, height: u32) -> Self {
        Camera {
            width,
            height,
            fov: 90f64.to_radians(),
            lens_height: 0.3,
            max_range: 20.0,
        }
    }

    /// Bytes of one rgb8 frame.
    pub fn frame_len(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }
}

pub const WALL_HEIGHT: f64 = 1.2;
pub const BOX_HEIGHT: f64 = 0.5;
pub const CYLINDER_HEIGHT: f64 = 0.8;

const WALL: [f64; 3] = [205.0, 192.0, 168.0];
const BOX: [f64; 3] = [196.0, 58.0, 38.0];
const CYLINDER: [f64; 3] = [48.0, 88.0, 204.0];
const FLOOR: [f64; 3] = [96.0, 86.0, 74.0];
const CEILING: [f64; 3] = [226.0, 226.0, 232.0];

fn put(out: &mut [u8], i: usize, c: [f64; 3], shade: f64) {
    for k in 0..3 {
        out[i + k] = (c[k] * shade).round().clamp(0.0, 255.0) as u8;
    }
}

fn fog(d: f64) -> f64 {
    1.0 / (1.0 + 0.12 * d)
}

/// Renders the view from `pose` into `out` (rgb8, row-major, `camera.frame_len()` bytes).
///
/// # Panics
/// If `out` is not `camera.frame_len()` bytes long (a caller's bug, not input).
pub fn render_into(map: &Map, pose: Pose2, camera: &Camera, out: &mut [u8]) {
    assert_eq!(out.len(), camera.frame_len(), "frame buffer size");
    let (w, h) = (camera.width as usize, camera.height as usize);
    let focal = (w as f64 / 2.0) / (camera.fov / 2.0).tan();
    let horizon = h as f64 / 2.0;
    // Background: ceiling, and a floor that darkens with distance.
    for row in 0..h {
        let y = row as f64 + 0.5 - horizon;
        let (colour, shade) = if y < 0.0 {
            (CEILING, 0.9 + 0.1 * (-y / horizon))
        } else {
            let d = camera.lens_height * focal / y.max(1e-6);
            (FLOOR, fog(d))
        };
        for col in 0..w {
            put(out, (row * w + col) * 3, colour, shade);
        }
    }
    let origin = pose.position();
    for col in 0..w {
        let rel = camera.fov / 2.0 - (col as f64 + 0.5) / w as f64 * camera.fov;
        let hits = map.cast_all(origin, pose.theta + rel, camera.max_range);
        // Far to near, so nearer objects cover farther ones.
        for hit in hits.iter().rev() {
            let d = (hit.dist * rel.cos()).max(1e-3);
            let (colour, top_height, texture) = match hit.kind {
                Kind::Wall => (WALL, WALL_HEIGHT, if hit.u.rem_euclid(1.0) < 0.04 { 0.8 } else { 1.0 }),
                Kind::Box => (
                    BOX,
                    BOX_HEIGHT,
                    if hit.u.fract() < 0.04 || hit.u.fract() > 0.96 {
                        0.7
                    } else {
                        1.0
                    },
                ),
                // Light from one side: brighter on the side facing +x.
                Kind::Cylinder => (
                    CYLINDER,
                    CYLINDER_HEIGHT,
                    0.75 + 0.25 * (hit.u * std::f64::consts::TAU).cos(),
                ),
            };
            let top = horizon - focal * (top_height - camera.lens_height) / d;
            let bottom = horizon + focal * camera.lens_height / d;
            let (r0, r1) = (top.max(0.0).floor() as usize, bottom.min(h as f64).ceil() as usize);
            for row in r0..r1.min(h) {
                let y = row as f64 + 0.5;
                if y >= top && y < bottom {
                    put(out, (row * w + col) * 3, colour, fog(d) * texture);
                }
            }
        }
    }
}

/// Renders into a new buffer.
pub fn render(map: &Map, pose: Pose2, camera: &Camera) -> Vec<u8> {
    let mut out = vec![0; camera.frame_len()];
    render_into(map, pose, camera, &mut out);
    out
}

/// A binary PPM (P6) of an rgb8 frame: viewable by most image tools, easy to diff in tests.
pub fn to_ppm(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let mut out = format!("P6\n{width} {height}\n255\n").into_bytes();
    out.extend_from_slice(rgb);
    out
}

/// Reads a binary PPM written by [`to_ppm`]: (width, height, rgb).
pub fn from_ppm(bytes: &[u8]) -> Option<(u32, u32, Vec<u8>)> {
    let text_end = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(2)?.0;
    let header = std::str::from_utf8(&bytes[..text_end]).ok()?;
    let mut parts = header.split_whitespace();
    (parts.next()? == "P6").then_some(())?;
    let w: u32 = parts.next()?.parse().ok()?;
    let h: u32 = parts.next()?.parse().ok()?;
    let data = bytes[text_end + 1..].to_vec();
    (data.len() == w as usize * h as usize * 3).then_some((w, h, data))
}
