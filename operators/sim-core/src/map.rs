//! Maps: a walled rectangle with extra walls, boxes and cylinders, read from YAML:
//!
//! ```yaml
//! name: room
//! size: [8.0, 6.0]            # width, height in metres; the border is walled
//! start: [1.0, 1.0, 0.0]      # x, y, heading (rad) of the robot
//! walls: [[4.0, 0.0, 4.0, 2.5]]          # segments x1, y1, x2, y2
//! boxes: [[2.5, 4.0, 0.6, 0.6]]          # axis-aligned: centre x, y, width, depth
//! cylinders: [[6.0, 3.0, 0.3]]           # centre x, y, radius
//! ```

use std::path::Path;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;
use yaml_rust2::{Yaml, YamlLoader};

use crate::geom::{Hit, Kind, Pose2, Vec2, point_segment_distance, ray_circle, ray_segment};

/// Refuses what `YamlLoader` would take badly: a NUL byte (it reads as the end of the text),
/// aliases (expanded by copying: a small file of aliases of aliases takes gigabytes; a map
/// needs none) and a second document (ignored).
fn precheck(text: &str) -> Result<(), String> {
    if let Some(at) = text.find('\0') {
        let line = text[..at].matches('\n').count() + 1;
        return Err(format!(
            "a NUL byte on line {line}: this is not a text file (or it is damaged)"
        ));
    }
    #[derive(Default)]
    struct Check {
        documents: usize,
        problem: Option<String>,
    }
    impl MarkedEventReceiver for Check {
        fn on_event(&mut self, ev: Event, mark: Marker) {
            if self.problem.is_some() {
                return;
            }
            match ev {
                Event::Alias(_) => {
                    self.problem = Some(format!(
                        "line {}: aliases (`*name`) are not allowed in a map",
                        mark.line()
                    ));
                }
                Event::DocumentStart => {
                    self.documents += 1;
                    if self.documents > 1 {
                        self.problem = Some(format!(
                            "line {}: a second YAML document: a file holds one map",
                            mark.line()
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    let mut check = Check::default();
    Parser::new_from_str(text)
        .load(&mut check, true)
        .map_err(|e| format!("malformed YAML: {e}"))?;
    check.problem.map_or(Ok(()), Err)
}

/// A map file that cannot be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct MapError {
    pub file: String,
    pub message: String,
}

/// An axis-aligned box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxObstacle {
    pub center: Vec2,
    pub half: Vec2,
}

impl BoxObstacle {
    fn corners(&self) -> [Vec2; 4] {
        let (c, h) = (self.center, self.half);
        [
            Vec2::new(c.x - h.x, c.y - h.y),
            Vec2::new(c.x + h.x, c.y - h.y),
            Vec2::new(c.x + h.x, c.y + h.y),
            Vec2::new(c.x - h.x, c.y + h.y),
        ]
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Map {
    pub name: String,
    pub width: f64,
    pub height: f64,
    pub start: Pose2,
    /// Wall segments; the first four are the border.
    pub walls: Vec<(Vec2, Vec2)>,
    pub boxes: Vec<BoxObstacle>,
    pub cylinders: Vec<(Vec2, f64)>,
}

fn numbers(v: &Yaml, n: usize, what: &str) -> Result<Vec<f64>, String> {
    let items = v
        .as_vec()
        .ok_or_else(|| format!("{what}: expected a list of {n} numbers"))?;
    if items.len() != n {
        return Err(format!("{what}: expected {n} numbers, found {}", items.len()));
    }
    items
        .iter()
        .map(|i| match i {
            Yaml::Real(_) => i.as_f64().ok_or_else(|| format!("{what}: not a number")),
            Yaml::Integer(k) => Ok(*k as f64),
            _ => Err(format!("{what}: `{i:?}` is not a number")),
        })
        .map(|v| {
            v.and_then(|x| {
                if x.is_finite() {
                    Ok(x)
                } else {
                    Err(format!("{what}: {x} is not a finite number"))
                }
            })
        })
        .collect()
}

impl Map {
    /// Reads a map file.
    pub fn load(path: &Path) -> Result<Map, MapError> {
        use std::io::Read;
        /// A map is a few hundred bytes; a larger file is not one.
        const MAX_MAP_BYTES: u64 = 16 << 20;
        let file = path.display().to_string();
        let err = |message: String| MapError {
            file: file.clone(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if !meta.is_file() {
            return Err(err("not a regular file (a pipe, a device or a folder)".into()));
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_MAP_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| err(e.to_string()))?;
        if bytes.len() as u64 > MAX_MAP_BYTES {
            return Err(err(format!("larger than {} MiB: not a map", MAX_MAP_BYTES >> 20)));
        }
        let text = String::from_utf8(bytes).map_err(|e| err(format!("not UTF-8 text: {e}")))?;
        Map::parse(&file, &text)
    }

    /// Parses map YAML; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Map, MapError> {
        Self::parse_inner(text).map_err(|message| MapError {
            file: file.into(),
            message,
        })
    }

    fn parse_inner(text: &str) -> Result<Map, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        precheck(text)?;
        let docs = YamlLoader::load_from_str(text).map_err(|e| format!("malformed YAML: {e}"))?;
        let doc = docs.first().ok_or("the file is empty")?;
        let hash = doc
            .as_hash()
            .ok_or("a map is a mapping (name, size, start, walls, boxes, cylinders)")?;
        for key in hash.keys() {
            let k = key.as_str().unwrap_or_default();
            if !["name", "size", "start", "walls", "boxes", "cylinders"].contains(&k) {
                return Err(format!(
                    "unknown key `{k}` (allowed: name, size, start, walls, boxes, cylinders)"
                ));
            }
        }
        let size = numbers(&doc["size"], 2, "`size` [width, height]")?;
        let (width, height) = (size[0], size[1]);
        if !(width > 0.5 && height > 0.5 && width < 1000.0 && height < 1000.0) {
            return Err(format!("`size`: {width} x {height} m is not a usable room"));
        }
        let s = numbers(&doc["start"], 3, "`start` [x, y, heading]")?;
        let list = |key: &str| -> Result<Vec<Yaml>, String> {
            match &doc[key] {
                Yaml::BadValue | Yaml::Null => Ok(Vec::new()),
                Yaml::Array(items) => Ok(items.clone()),
                other => Err(format!("`{key}`: expected a list, found `{other:?}`")),
            }
        };
        let mut map = Map {
            name: doc["name"].as_str().unwrap_or("map").to_string(),
            width,
            height,
            start: Pose2 {
                x: s[0],
                y: s[1],
                theta: s[2],
            },
            walls: vec![
                (Vec2::new(0.0, 0.0), Vec2::new(width, 0.0)),
                (Vec2::new(width, 0.0), Vec2::new(width, height)),
                (Vec2::new(width, height), Vec2::new(0.0, height)),
                (Vec2::new(0.0, height), Vec2::new(0.0, 0.0)),
            ],
            boxes: Vec::new(),
            cylinders: Vec::new(),
        };
        for (i, w) in list("walls")?.iter().enumerate() {
            let v = numbers(w, 4, &format!("`walls[{i}]` [x1, y1, x2, y2]"))?;
            map.walls.push((Vec2::new(v[0], v[1]), Vec2::new(v[2], v[3])));
        }
        for (i, b) in list("boxes")?.iter().enumerate() {
            let v = numbers(b, 4, &format!("`boxes[{i}]` [x, y, width, depth]"))?;
            if v[2] <= 0.0 || v[3] <= 0.0 {
                return Err(format!("`boxes[{i}]`: width and depth must be positive"));
            }
            map.boxes.push(BoxObstacle {
                center: Vec2::new(v[0], v[1]),
                half: Vec2::new(v[2] / 2.0, v[3] / 2.0),
            });
        }
        for (i, c) in list("cylinders")?.iter().enumerate() {
            let v = numbers(c, 3, &format!("`cylinders[{i}]` [x, y, radius]"))?;
            if v[2] <= 0.0 {
                return Err(format!("`cylinders[{i}]`: the radius must be positive"));
            }
            map.cylinders.push((Vec2::new(v[0], v[1]), v[2]));
        }
        if map.collides(map.start.position(), crate::robot::ROBOT_RADIUS) {
            return Err(format!(
                "`start` ({}, {}) is inside or touching an obstacle",
                map.start.x, map.start.y
            ));
        }
        Ok(map)
    }

    /// Every hit along a ray from `origin` at `angle`, nearest first, up to and including the
    /// first wall (walls are full height; boxes and cylinders can be seen over).
    pub fn cast_all(&self, origin: Vec2, angle: f64, max: f64) -> Vec<Hit> {
        let d = Vec2::from_angle(angle);
        let mut hits = Vec::new();
        let mut nearest_wall: Option<Hit> = None;
        for (i, (a, b)) in self.walls.iter().enumerate() {
            if let Some((t, u)) = ray_segment(origin, d, *a, *b)
                && t <= max
                && nearest_wall.is_none_or(|w| t < w.dist)
            {
                let len = b.minus(*a).len();
                nearest_wall = Some(Hit {
                    dist: t,
                    kind: Kind::Wall,
                    index: i,
                    u: u * len,
                });
            }
        }
        let limit = nearest_wall.map_or(max, |w| w.dist);
        for (i, b) in self.boxes.iter().enumerate() {
            let c = b.corners();
            let mut best: Option<(f64, f64)> = None;
            for k in 0..4 {
                if let Some((t, u)) = ray_segment(origin, d, c[k], c[(k + 1) % 4])
                    && best.is_none_or(|(bt, _)| t < bt)
                {
                    best = Some((t, u + k as f64));
                }
            }
            if let Some((t, u)) = best
                && t < limit
            {
                hits.push(Hit {
                    dist: t,
                    kind: Kind::Box,
                    index: i,
                    u,
                });
            }
        }
        for (i, (c, r)) in self.cylinders.iter().enumerate() {
            if let Some((t, u)) = ray_circle(origin, d, *c, *r)
                && t < limit
            {
                hits.push(Hit {
                    dist: t,
                    kind: Kind::Cylinder,
                    index: i,
                    u,
                });
            }
        }
        hits.sort_by(|a, b| a.dist.total_cmp(&b.dist));
        hits.extend(nearest_wall);
        hits
    }

    /// The nearest hit along a ray, within `max`.
    pub fn cast(&self, origin: Vec2, angle: f64, max: f64) -> Option<Hit> {
        self.cast_all(origin, angle, max).into_iter().next()
    }

    /// Whether a disc of `radius` at `p` touches an obstacle or leaves the room.
    pub fn collides(&self, p: Vec2, radius: f64) -> bool {
        if p.x < radius || p.y < radius || p.x > self.width - radius || p.y > self.height - radius {
            return true;
        }
        if self
            .walls
            .iter()
            .any(|(a, b)| point_segment_distance(p, *a, *b) < radius)
        {
            return true;
        }
        if self.cylinders.iter().any(|(c, r)| p.minus(*c).len() < r + radius) {
            return true;
        }
        self.boxes.iter().any(|b| {
            let dx = ((p.x - b.center.x).abs() - b.half.x).max(0.0);
            let dy = ((p.y - b.center.y).abs() - b.half.y).max(0.0);
            (dx * dx + dy * dy).sqrt() < radius
        })
    }

    /// A random pose at least `clearance` from every obstacle.
    pub fn random_free_pose(&self, rng: &mut crate::Rng, clearance: f64) -> Pose2 {
        loop {
            let p = Vec2::new(rng.range(0.0, self.width), rng.range(0.0, self.height));
            if !self.collides(p, clearance) {
                return Pose2 {
                    x: p.x,
                    y: p.y,
                    theta: rng.range(-std::f64::consts::PI, std::f64::consts::PI),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str =
        "name: t\nsize: [4, 3]\nstart: [1, 1, 0]\nboxes: [[3, 1, 0.4, 0.4]]\ncylinders: [[1, 2.2, 0.2]]\n";

    #[test]
    fn parses_and_casts() {
        let m = Map::parse("t.yaml", ROOM).unwrap();
        let hit = m.cast(Vec2::new(1.0, 1.0), 0.0, 10.0).unwrap();
        assert_eq!(hit.kind, Kind::Box);
        assert!((hit.dist - 1.8).abs() < 1e-9);
        let up = m.cast(Vec2::new(1.0, 1.0), std::f64::consts::FRAC_PI_2, 10.0).unwrap();
        assert_eq!(up.kind, Kind::Cylinder);
        assert!((up.dist - 1.0).abs() < 1e-9);
        let back = m.cast(Vec2::new(1.0, 1.0), std::f64::consts::PI, 10.0).unwrap();
        assert_eq!((back.kind, back.dist), (Kind::Wall, 1.0));
        assert!(m.cast(Vec2::new(1.0, 1.0), std::f64::consts::PI, 0.5).is_none());
        assert!(m.collides(Vec2::new(2.7, 1.0), 0.2));
        assert!(!m.collides(Vec2::new(2.0, 1.0), 0.2));
    }

    #[test]
    fn hostile_maps_are_refused() {
        let err = |text: &str| Map::parse("m.yaml", text).unwrap_err().message;
        let mut bomb = String::from("a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n");
        for i in 1..9 {
            bomb.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                vec![format!("*a{}", i - 1); 10].join(", ")
            ));
        }
        assert!(
            err(&bomb).contains("aliases (`*name`) are not allowed"),
            "{}",
            err(&bomb)
        );
        let deep = format!("size: {}{}\n", "[".repeat(20_000), "]".repeat(20_000));
        assert!(err(&deep).contains("malformed YAML"), "{}", err(&deep));
        assert!(
            err("size: [4, 3]\nstart: [.nan, 1, 0]\n").contains("`start` [x, y, heading]: NaN is not a finite number")
        );
        assert!(err("size: [4, 3]\nstart: [1, 1, 0]\nwalls: [[.nan, 0, 1, 1]]\n").contains("`walls[0]`"));
        assert_eq!(
            err("size: [4, 3]\nstart: [1, 1, 0]\nwalls: 5\n"),
            "`walls`: expected a list, found `Integer(5)`"
        );
        assert!(err("size: [4, 3]\n\0start: [1, 1, 0]\n").contains("a NUL byte on line 2"));
        assert!(err("size: [4, 3]\nstart: [1, 1, 0]\n---\nsize: [1, 1]\n").contains("second YAML document"));
        assert!(
            Map::parse("m.yaml", &format!("\u{feff}{ROOM}")).is_ok(),
            "a byte-order mark is fine"
        );
        let e = Map::load(Path::new("/dev/zero")).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
    }

    #[test]
    fn bad_maps_name_the_problem() {
        let e = Map::parse("m.yaml", "size: [4, 3]\nstart: [1, 1]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.yaml: `start` [x, y, heading]: expected 3 numbers, found 2"
        );
        let e = Map::parse("m.yaml", "size: [4, 3]\nstart: [1, 1, 0]\nboxs: []\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.yaml: unknown key `boxs` (allowed: name, size, start, walls, boxes, cylinders)"
        );
        let e = Map::parse("m.yaml", "size: [4, 3]\nstart: [3, 1, 0]\nboxes: [[3, 1, 1, 1]]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.yaml: `start` (3, 1) is inside or touching an obstacle"
        );
    }
}
