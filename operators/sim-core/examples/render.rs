//! Renders the camera's view: `cargo run -p sim-core --example render -- MAP X Y HEADING W H OUT.ppm`.

use std::path::Path;

use sim_core::{Map, Pose2, render};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 8 {
        return Err("usage: render MAP X Y HEADING WIDTH HEIGHT OUT.ppm".into());
    }
    let map = Map::load(Path::new(&a[1]))?;
    let pose = Pose2 {
        x: a[2].parse()?,
        y: a[3].parse()?,
        theta: a[4].parse()?,
    };
    let cam = render::Camera::new(a[5].parse()?, a[6].parse()?);
    let rgb = render::render(&map, pose, &cam);
    std::fs::write(&a[7], render::to_ppm(cam.width, cam.height, &rgb))?;
    Ok(())
}
