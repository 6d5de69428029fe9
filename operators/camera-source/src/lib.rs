//! `camera-source`: sends sensor_msgs/Image frames (rgb8), in one of three modes:
//! - `sim`: renders a first-person view of the world (`map`) from the latest `pose` — walls,
//!   boxes and cylinders in distinct colours, floor and ceiling;
//! - `files`: plays the PNG/JPEG images of `folder` in name order, looping, scaled to the size;
//! - `pattern`: colour bars with a moving marker.
//!
//! A frame is sent on every `tick`; in `sim` mode also when a pose arrives and `1/fps` has passed
//! since the last frame (so the camera runs at `fps` of simulated time without a timer). With
//! `frames: N` it finishes after N frames. Pixels are written straight into the buffer the host
//! lends (`Context::output_buffer`), which becomes the DataPack's Arrow buffer: when the image
//! goes to another process that buffer is the shared-memory frame it travels in (no copy).
#![deny(unsafe_code)]

use std::path::PathBuf;

use quiver_msgs::{Header, Image, Message, Pose};
use quiver_operator::prelude::*;
use sim_core::render::{Camera, render_into};
use sim_core::{Map, Pose2};

enum Mode {
    Sim { map: Box<Map>, pose: Option<Pose2> },
    Files { files: Vec<PathBuf>, next: usize },
    Pattern,
}

pub struct CameraSource {
    mode: Mode,
    camera: Camera,
    period_ns: u64,
    /// When the next pose-driven frame is due (sim mode).
    next_frame_ns: Option<u64>,
    frames: u64,
    /// Frames to send before finishing (None: endless).
    limit: Option<u64>,
}

impl CameraSource {
    fn frame(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        if self.limit.is_some_and(|n| self.frames >= n) {
            return Ok(());
        }
        let (w, h) = (self.camera.width, self.camera.height);
        // Rendered straight into the memory the frame travels in (shared memory when the image
        // goes to another process): every mode below writes every byte.
        let mut pixels = ctx.output_buffer("image", self.camera.frame_len())?;
        match &mut self.mode {
            Mode::Sim { map, pose } => render_into(map, pose.unwrap_or(map.start), &self.camera, &mut pixels),
            Mode::Files { files, next } => {
                let path = &files[*next % files.len()];
                *next += 1;
                let img = image::open(path).map_err(|e| Error::msg(format!("reading {}: {e}", path.display())))?;
                let img = img.resize_exact(w, h, image::imageops::FilterType::Triangle).to_rgb8();
                pixels.copy_from_slice(img.as_raw());
            }
            Mode::Pattern => {
                let marker = (self.frames as u32 * 4) % w;
                for y in 0..h {
                    for x in 0..w {
                        let bar = x * 8 / w;
                        let mut rgb = [
                            if bar & 4 != 0 { 230 } else { 20 },
                            if bar & 2 != 0 { 230 } else { 20 },
                            if bar & 1 != 0 { 230 } else { 20 },
                        ];
                        if y >= h * 3 / 4 {
                            let v = (x * 255 / w.max(1)) as u8;
                            rgb = [v, v, v];
                        }
                        if x.abs_diff(marker) < 2 {
                            rgb = [255, 255, 255];
                        }
                        let i = ((y * w + x) * 3) as usize;
                        pixels[i..i + 3].copy_from_slice(&rgb);
                    }
                }
            }
        }
        let now = ctx.now_ns();
        let image = Image::rgb8(Header::at_ns(now, "camera"), w, h, Vec::new());
        ctx.emit_stamped("image", image.to_arrow_over(pixels.into_buffer())?, now)?;
        self.frames += 1;
        ctx.report("frames", self.frames);
        if self.limit.is_some_and(|n| self.frames >= n) {
            ctx.finish();
        }
        Ok(())
    }
}

impl Operator for CameraSource {
    fn manifest() -> Manifest {
        Manifest::new(
            "camera-source",
            env!("CARGO_PKG_VERSION"),
            "A camera: simulated view, image files or a test pattern",
        )
        .input("pose", "geometry_msgs/Pose", "where the camera is (sim mode)")
        .timer("tick", "sends a frame")
        .output("image", "sensor_msgs/Image", "rgb8 frames")
        .param(ParamSpec::string("mode", "sim").doc("sim, files or pattern"))
        .param(ParamSpec::optional_path("map").doc("map file (sim mode)"))
        .param(ParamSpec::optional_path("folder").doc("folder of PNG/JPEG images (files mode)"))
        .param(ParamSpec::int("width", 160).range_int(8, 4096).doc("frame width [px]"))
        .param(
            ParamSpec::int("height", 120)
                .range_int(8, 4096)
                .doc("frame height [px]"),
        )
        .param(
            ParamSpec::float("fps", 15.0)
                .range(0.1, 1000.0)
                .doc("frame rate when driven by poses (sim mode)"),
        )
        .param(
            ParamSpec::int("frames", 0)
                .range_int(0, i64::MAX)
                .doc("stop after this many frames (0: never)"),
        )
        .param(
            ParamSpec::float("fov", 90.0)
                .range(10.0, 170.0)
                .doc("horizontal field of view [deg]"),
        )
    }

    fn new(_ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        let mut camera = Camera::new(p.int("width")? as u32, p.int("height")? as u32);
        camera.fov = p.float("fov")?.to_radians();
        let mode = match p.string("mode")? {
            "sim" => {
                let map = p.path("map")?;
                if map.as_os_str().is_empty() {
                    bail!("mode `sim` needs `map`");
                }
                Mode::Sim {
                    map: Box::new(Map::load(&map)?),
                    pose: None,
                }
            }
            "files" => {
                let folder = p.path("folder")?;
                if folder.as_os_str().is_empty() {
                    bail!("mode `files` needs `folder`");
                }
                let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
                    .map_err(|e| Error::from(e).context(format!("reading {}", folder.display())))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.extension()
                            .and_then(|e| e.to_str())
                            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
                    })
                    .collect();
                files.sort();
                if files.is_empty() {
                    bail!("no .png or .jpg files in {}", folder.display());
                }
                Mode::Files { files, next: 0 }
            }
            "pattern" => Mode::Pattern,
            other => bail!("unknown mode `{other}` (sim, files or pattern)"),
        };
        Ok(CameraSource {
            mode,
            camera,
            period_ns: (1e9 / p.float("fps")?) as u64,
            next_frame_ns: None,
            frames: 0,
            limit: match p.int("frames")? {
                0 => None,
                n => Some(n as u64),
            },
        })
    }

    fn on_input(&mut self, ctx: &mut Context<'_>, _input: &str, pack: DataPack) -> Result<()> {
        let Mode::Sim { pose, .. } = &mut self.mode else {
            return Ok(());
        };
        let p = Pose::from_arrow(pack.data()?.as_ref())?;
        *pose = Some(Pose2 {
            x: p.position.x,
            y: p.position.y,
            theta: p.orientation.yaw(),
        });
        let now = ctx.now_ns();
        // Frames on a fixed schedule (not "period since the last frame"), so poses arriving a
        // little late do not lower the frame rate.
        let due = *self.next_frame_ns.get_or_insert(now);
        if now >= due {
            self.frame(ctx)?;
            let next = due + self.period_ns;
            self.next_frame_ns = Some(if next <= now { now + self.period_ns } else { next });
        }
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: &str) -> Result<()> {
        self.frame(ctx)
    }
}

export_operator!(CameraSource);

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_msgs::{ImageView, Point, Quaternion};
    use quiver_operator::testing::Harness;

    fn image_of(h: &mut Harness<CameraSource>) -> Image {
        let out = h.take_outputs();
        Image::from_arrow(out.last().expect("a frame").1.data().unwrap().as_ref()).unwrap()
    }

    #[test]
    fn sim_mode_renders_the_world_from_the_pose_at_fps() {
        let map = concat!(env!("CARGO_MANIFEST_DIR"), "/../../graphs/maps/room.yaml");
        let mut h = Harness::<CameraSource>::new(&[
            ("map", ParamValue::Path(map.into())),
            ("width", ParamValue::Int(64)),
            ("height", ParamValue::Int(48)),
            ("fps", ParamValue::Float(10.0)),
        ])
        .unwrap();
        let pose = Pose {
            position: Point { x: 1.0, y: 1.0, z: 0.0 },
            orientation: Quaternion::from_yaw(0.6),
        };
        // Poses every 20 ms of run time: a frame every 100 ms.
        for i in 0..10u64 {
            h.set_time_ns(i * 20_000_000);
            h.input("pose", Some(pose.clone().to_arrow().unwrap())).unwrap();
        }
        let out = h.take_outputs();
        assert_eq!(out.len(), 2, "frames at 0 and 100 ms");
        let array = out[0].1.data().unwrap().clone();
        let view = ImageView::new(array.as_ref()).unwrap();
        assert_eq!(
            (view.scalars.width, view.scalars.height, view.scalars.encoding.as_str()),
            (64, 48, "rgb8")
        );
        let golden = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../sim-core/tests/golden/room-64x48.ppm"
        ))
        .unwrap();
        let (_, _, want) = sim_core::render::from_ppm(&golden).unwrap();
        let off = view.data.iter().zip(&want).filter(|(a, b)| a.abs_diff(**b) > 1).count();
        assert!(
            off * 200 < want.len(),
            "the operator's frame matches the renderer's golden frame"
        );
    }

    #[test]
    fn pattern_and_files_modes() {
        let mut h = Harness::<CameraSource>::new(&[("mode", ParamValue::String("pattern".into()))]).unwrap();
        h.timer("tick").unwrap();
        assert_eq!(h.lent_buffers(), 1, "the frame is the buffer the host lent");
        let img = image_of(&mut h);
        assert_eq!(img.data.len(), 160 * 120 * 3);
        assert_eq!(&img.data[30..33], &[20, 20, 20], "the first bar is black");
        assert_eq!(&img.data[0..3], &[255, 255, 255], "the marker starts at the left");
        assert_eq!(h.lent_buffers(), 0, "given back once the frame was dropped");

        // `frames: 2`: two frames, then finished and silent.
        let mut h = Harness::<CameraSource>::new(&[
            ("mode", ParamValue::String("pattern".into())),
            ("frames", ParamValue::Int(2)),
        ])
        .unwrap();
        for _ in 0..3 {
            h.timer("tick").unwrap();
        }
        assert_eq!(h.take_outputs().len(), 2);
        assert!(h.finished());

        let dir = std::env::temp_dir().join(format!("camera-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        image::RgbImage::from_pixel(20, 10, image::Rgb([10, 200, 30]))
            .save(dir.join("a.png"))
            .unwrap();
        let mut h = Harness::<CameraSource>::new(&[
            ("mode", ParamValue::String("files".into())),
            ("folder", ParamValue::Path(dir.display().to_string())),
            ("width", ParamValue::Int(40)),
            ("height", ParamValue::Int(20)),
        ])
        .unwrap();
        h.timer("tick").unwrap();
        let img = image_of(&mut h);
        assert_eq!((img.width, img.height), (40, 20));
        assert_eq!(&img.data[0..3], &[10, 200, 30]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_map_or_an_unknown_mode_is_refused() {
        let e = Harness::<CameraSource>::new(&[]).err().unwrap();
        assert_eq!(e.to_string(), "mode `sim` needs `map`");
        let e = Harness::<CameraSource>::new(&[("mode", ParamValue::String("x".into()))])
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "unknown mode `x` (sim, files or pattern)");
    }
}
