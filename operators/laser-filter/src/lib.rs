//! `laser-filter`: cleans laser scans. Invalid returns (NaN, inf, outside
//! `[range_min, range_max]`) are dropped: their slot is set to `+inf`, meaning "no valid return
//! at this angle", so angles stay aligned. Optional: a median filter over valid neighbours (which
//! also fills an isolated dropped return), an angular crop, downsampling, and throttling (only
//! every `process_every_n`-th scan is processed, as the seed's `process_every_n`).
#![deny(unsafe_code)]

use quiver_msgs::{LaserScan, LaserScanView, Message};
use quiver_operator::prelude::*;

pub struct LaserFilter {
    window: usize,
    crop: (f32, f32),
    downsample: usize,
    every_n: u64,
    seen: u64,
    invalid: u64,
    readings: u64,
}

fn valid(r: f32, min: f32, max: f32) -> bool {
    r.is_finite() && r >= min && r <= max
}

/// Median of the valid readings in a window around each index; `+inf` where fewer than half the
/// window is valid.
fn median_filter(ranges: &[f32], window: usize) -> Vec<f32> {
    let half = window / 2;
    let mut buf = Vec::with_capacity(window);
    (0..ranges.len())
        .map(|i| {
            buf.clear();
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(ranges.len());
            buf.extend(ranges[lo..hi].iter().copied().filter(|r| r.is_finite()));
            if buf.len() * 2 < hi - lo || buf.is_empty() {
                return f32::INFINITY;
            }
            buf.sort_by(f32::total_cmp);
            buf[buf.len() / 2]
        })
        .collect()
}

impl LaserFilter {
    /// The cleaned scan (pure: the unit tests call it directly).
    fn clean(&mut self, scan: &LaserScanView<'_>) -> LaserScan {
        let s = &scan.scalars;
        let (min, max) = (s.range_min, s.range_max);
        let mut ranges: Vec<f32> = scan
            .ranges
            .iter()
            .map(|&r| if valid(r, min, max) { r } else { f32::INFINITY })
            .collect();
        self.readings += ranges.len() as u64;
        self.invalid += ranges.iter().filter(|r| r.is_infinite()).count() as u64;
        if self.window > 1 {
            ranges = median_filter(&ranges, self.window);
        }
        // Crop to [crop.0, crop.1] and keep every `downsample`-th reading.
        let angle = |i: usize| s.angle_min + i as f32 * s.angle_increment;
        let keep: Vec<usize> = (0..ranges.len())
            .filter(|&i| angle(i) >= self.crop.0 - 1e-6 && angle(i) <= self.crop.1 + 1e-6)
            .step_by(self.downsample)
            .collect();
        let first = keep.first().map_or(s.angle_min, |&i| angle(i));
        let last = keep.last().map_or(s.angle_min, |&i| angle(i));
        LaserScan {
            angle_min: first,
            angle_max: last,
            angle_increment: s.angle_increment * self.downsample as f32,
            time_increment: s.time_increment * self.downsample as f32,
            ranges: keep.iter().map(|&i| ranges[i]).collect(),
            intensities: if scan.intensities.len() == scan.ranges.len() {
                keep.iter().map(|&i| scan.intensities[i]).collect()
            } else {
                Vec::new()
            },
            ..s.clone()
        }
    }
}

impl Operator for LaserFilter {
    fn manifest() -> Manifest {
        Manifest::new(
            "laser-filter",
            env!("CARGO_PKG_VERSION"),
            "Cleans laser scans: invalid returns, median, crop, downsample, throttle",
        )
        .required_input("scan", "sensor_msgs/LaserScan", "raw scans")
        .output(
            "scan",
            "sensor_msgs/LaserScan",
            "cleaned scans (+inf: no valid return at that angle)",
        )
        .param(
            ParamSpec::int("median_window", 1)
                .range_int(1, 31)
                .doc("median filter width in readings (1: off; odd)"),
        )
        .param(
            ParamSpec::float("crop_min", -std::f64::consts::PI)
                .range(-7.0, 7.0)
                .doc("keep angles from here [rad]"),
        )
        .param(
            ParamSpec::float("crop_max", std::f64::consts::PI)
                .range(-7.0, 7.0)
                .doc("keep angles up to here [rad]"),
        )
        .param(
            ParamSpec::int("downsample", 1)
                .range_int(1, 64)
                .doc("keep every n-th reading"),
        )
        .param(
            ParamSpec::int("process_every_n", 1)
                .range_int(1, 1000)
                .doc("process every n-th scan, skip the rest"),
        )
    }

    fn new(_ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        let window = p.int("median_window")? as usize;
        if window.is_multiple_of(2) {
            bail!("median_window must be odd, got {window}");
        }
        let crop = (p.float("crop_min")? as f32, p.float("crop_max")? as f32);
        if crop.0 > crop.1 {
            bail!("crop_min {} is above crop_max {}", crop.0, crop.1);
        }
        Ok(LaserFilter {
            window,
            crop,
            downsample: p.int("downsample")? as usize,
            every_n: p.int("process_every_n")? as u64,
            seen: 0,
            invalid: 0,
            readings: 0,
        })
    }

    fn on_input(&mut self, ctx: &mut Context<'_>, _input: &str, pack: DataPack) -> Result<()> {
        self.seen += 1;
        if !(self.seen - 1).is_multiple_of(self.every_n) {
            return Ok(());
        }
        let data = pack.data()?;
        let cleaned = self.clean(&LaserScanView::new(data.as_ref())?);
        ctx.emit_stamped("scan", cleaned.to_arrow()?, pack.timestamp_ns())?;
        if self.readings > 0 {
            ctx.report(
                "invalid",
                format!("{:.1}%", 100.0 * self.invalid as f64 / self.readings as f64),
            );
        }
        Ok(())
    }
}

export_operator!(LaserFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_operator::testing::Harness;

    fn scan(ranges: Vec<f32>) -> LaserScan {
        let n = ranges.len().max(1) as f32;
        LaserScan {
            angle_min: -1.0,
            angle_max: 1.0,
            angle_increment: 2.0 / (n - 1.0).max(1.0),
            range_min: 0.1,
            range_max: 5.0,
            ranges,
            ..LaserScan::default()
        }
    }

    fn run(params: &[(&str, ParamValue)], scans: Vec<LaserScan>) -> Vec<LaserScan> {
        let mut h = Harness::<LaserFilter>::new(params).unwrap();
        for s in scans {
            h.input("scan", Some(s.to_arrow().unwrap())).unwrap();
        }
        h.take_outputs()
            .iter()
            .map(|(_, p)| LaserScan::from_arrow(p.data().unwrap().as_ref()).unwrap())
            .collect()
    }

    #[test]
    fn drops_invalid_returns_keeping_angles() {
        let out = run(&[], vec![scan(vec![1.0, f32::NAN, 0.05, 9.0, f32::INFINITY, 2.0])]);
        assert_eq!(
            out[0].ranges,
            vec![1.0, f32::INFINITY, f32::INFINITY, f32::INFINITY, f32::INFINITY, 2.0]
        );
        assert_eq!(out[0].angle_min, -1.0);
    }

    #[test]
    fn empty_and_all_invalid_scans_are_fine() {
        let out = run(
            &[("median_window", ParamValue::Int(3))],
            vec![scan(vec![]), scan(vec![f32::NAN; 5])],
        );
        assert!(out[0].ranges.is_empty());
        assert!(out[1].ranges.iter().all(|r| *r == f32::INFINITY));
    }

    #[test]
    fn median_fills_isolated_gaps_and_removes_spikes() {
        let out = run(
            &[("median_window", ParamValue::Int(3))],
            vec![scan(vec![2.0, 2.0, f32::NAN, 2.0, 0.2, 2.0, 2.0])],
        );
        assert_eq!(out[0].ranges, vec![2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]);
    }

    #[test]
    fn crops_downsamples_and_throttles() {
        let params = [
            ("crop_min", ParamValue::Float(-0.5)),
            ("crop_max", ParamValue::Float(0.5)),
            ("downsample", ParamValue::Int(2)),
            ("process_every_n", ParamValue::Int(3)),
        ];
        let ranges: Vec<f32> = (0..21).map(|i| 1.0 + i as f32 * 0.1).collect(); // angles -1.0..1.0 by 0.1
        let out = run(
            &params,
            vec![
                scan(ranges.clone()),
                scan(ranges.clone()),
                scan(ranges.clone()),
                scan(ranges),
            ],
        );
        assert_eq!(out.len(), 2, "scans 1 and 4 of 4");
        let r = &out[0];
        assert!(
            (r.angle_min + 0.5).abs() < 1e-5 && (r.angle_max - 0.5).abs() < 1e-5,
            "{r:?}"
        );
        assert!((r.angle_increment - 0.2).abs() < 1e-5);
        assert_eq!(r.ranges.len(), 6);
        assert!((r.ranges[0] - 1.5).abs() < 1e-5);
    }

    #[test]
    fn bad_parameters_are_refused_at_start() {
        assert!(Harness::<LaserFilter>::new(&[("median_window", ParamValue::Int(4))]).is_err());
    }
}
