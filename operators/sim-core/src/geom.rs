//! Points, poses and ray intersections.

/// A point or vector in the plane (metres).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Vec2 {
    pub x: f64,
    pub y: f64,
}

impl Vec2 {
    pub const fn new(x: f64, y: f64) -> Self {
        Vec2 { x, y }
    }
    pub fn plus(self, o: Vec2) -> Vec2 {
        Vec2::new(self.x + o.x, self.y + o.y)
    }
    pub fn minus(self, o: Vec2) -> Vec2 {
        Vec2::new(self.x - o.x, self.y - o.y)
    }
    pub fn scale(self, k: f64) -> Vec2 {
        Vec2::new(self.x * k, self.y * k)
    }
    pub fn dot(self, o: Vec2) -> f64 {
        self.x * o.x + self.y * o.y
    }
    pub fn cross(self, o: Vec2) -> f64 {
        self.x * o.y - self.y * o.x
    }
    pub fn len(self) -> f64 {
        self.dot(self).sqrt()
    }
    pub fn from_angle(a: f64) -> Vec2 {
        Vec2::new(a.cos(), a.sin())
    }
}

/// A position and heading (radians, counter-clockwise from +x).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Pose2 {
    pub x: f64,
    pub y: f64,
    pub theta: f64,
}

impl Pose2 {
    pub fn position(&self) -> Vec2 {
        Vec2::new(self.x, self.y)
    }
}

/// What a ray hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Wall,
    Box,
    Cylinder,
}

/// A ray hit: distance along the ray, what, and where along the surface (0..1, for texture).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub dist: f64,
    pub kind: Kind,
    /// Index of the object in its list (walls, boxes, cylinders).
    pub index: usize,
    pub u: f64,
}

/// Distance along the ray `o + t d` (|d| = 1) to segment `a`-`b`, and the position along it.
pub fn ray_segment(o: Vec2, d: Vec2, a: Vec2, b: Vec2) -> Option<(f64, f64)> {
    let e = b.minus(a);
    let denom = d.cross(e);
    if denom.abs() < 1e-12 {
        return None;
    }
    let ao = a.minus(o);
    let t = ao.cross(e) / denom;
    let u = ao.cross(d) / denom;
    (t > 1e-9 && (0.0..=1.0).contains(&u)).then_some((t, u))
}

/// Distance along the ray to a circle, and the angle of the hit point around the circle (0..1).
pub fn ray_circle(o: Vec2, d: Vec2, c: Vec2, r: f64) -> Option<(f64, f64)> {
    let oc = o.minus(c);
    let b = oc.dot(d);
    let disc = b * b - (oc.dot(oc) - r * r);
    if disc < 0.0 {
        return None;
    }
    let sq = disc.sqrt();
    let t = if -b - sq > 1e-9 { -b - sq } else { -b + sq };
    if t <= 1e-9 {
        return None;
    }
    let p = o.plus(d.scale(t)).minus(c);
    let u = (p.y.atan2(p.x) / std::f64::consts::TAU).rem_euclid(1.0);
    Some((t, u))
}

/// Distance from point `p` to segment `a`-`b`.
pub fn point_segment_distance(p: Vec2, a: Vec2, b: Vec2) -> f64 {
    let e = b.minus(a);
    let len2 = e.dot(e);
    let t = if len2 == 0.0 {
        0.0
    } else {
        (p.minus(a).dot(e) / len2).clamp(0.0, 1.0)
    };
    p.minus(a.plus(e.scale(t))).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rays_hit_segments_and_circles() {
        let (t, u) = ray_segment(
            Vec2::new(0.0, 0.0),
            Vec2::new(1.0, 0.0),
            Vec2::new(2.0, -1.0),
            Vec2::new(2.0, 1.0),
        )
        .unwrap();
        assert!((t - 2.0).abs() < 1e-12 && (u - 0.5).abs() < 1e-12);
        assert!(
            ray_segment(
                Vec2::new(0.0, 0.0),
                Vec2::new(-1.0, 0.0),
                Vec2::new(2.0, -1.0),
                Vec2::new(2.0, 1.0)
            )
            .is_none()
        );
        let (t, _) = ray_circle(Vec2::new(0.0, 0.0), Vec2::new(1.0, 0.0), Vec2::new(3.0, 0.0), 0.5).unwrap();
        assert!((t - 2.5).abs() < 1e-12);
        assert!(
            (point_segment_distance(Vec2::new(0.0, 1.0), Vec2::new(-1.0, 0.0), Vec2::new(1.0, 0.0)) - 1.0).abs()
                < 1e-12
        );
    }
}
