//! A small SVG plot: one-way latency p50 against payload size, log-log, one line per system.

use std::collections::BTreeMap;

const W: f64 = 720.0;
const H: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 50.0;
const COLORS: &[&str] = &["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];

fn size_label(bytes: f64) -> String {
    match bytes {
        b if b >= (1 << 20) as f64 => format!("{} MiB", b / (1 << 20) as f64),
        b if b >= 1024.0 => format!("{} KiB", b / 1024.0),
        b => format!("{b} B"),
    }
}

/// `csv`: `system,bytes,p50_us,p99_us` rows (a header line first).
pub fn latency_svg(csv: &str) -> String {
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if let [system, bytes, p50, ..] = f[..]
            && let (Ok(b), Ok(p)) = (bytes.parse::<f64>(), p50.parse::<f64>())
            && p > 0.0
        {
            series.entry(system.to_string()).or_default().push((b, p));
        }
    }
    let (xmin, xmax) = (8f64.log2(), ((40u64 << 20) as f64).log2());
    let ys: Vec<f64> = series.values().flatten().map(|p| p.1).collect();
    let ymin = ys.iter().copied().fold(f64::MAX, f64::min).max(0.1).log10().floor();
    let ymax = ys.iter().copied().fold(1.0, f64::max).log10().ceil().max(ymin + 1.0);
    let px = |b: f64| LEFT + (b.log2() - xmin) / (xmax - xmin) * (W - LEFT - RIGHT);
    let py = |us: f64| H - BOTTOM - (us.log10() - ymin) / (ymax - ymin) * (H - TOP - BOTTOM);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">One-way latency between two processes (p50, log-log)</text>\n",
        (LEFT + W - RIGHT) / 2.0
    );
    // Axes and grid.
    for e in (ymin as i32)..=(ymax as i32) {
        let y = py(10f64.powi(e));
        let label = if e >= 3 {
            format!("{} ms", 10f64.powi(e - 3))
        } else {
            format!("{} µs", 10f64.powi(e))
        };
        s += &format!(
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>\n",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for b in [
        8.0,
        1024.0,
        65536.0,
        (1 << 20) as f64,
        (4 << 20) as f64,
        (40 << 20) as f64,
    ] {
        let x = px(b);
        s += &format!(
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            H - BOTTOM,
            H - BOTTOM + 18.0,
            size_label(b)
        );
    }
    s += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">payload</text>\n",
        (LEFT + W - RIGHT) / 2.0,
        H - 12.0
    );
    for (i, (name, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let mut pts = points.clone();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> = pts.iter().map(|&(b, p)| format!("{:.1},{:.1}", px(b), py(p))).collect();
        s += &format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n",
            path.join(" ")
        );
        for &(b, p) in &pts {
            s += &format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>\n",
                px(b),
                py(p)
            );
        }
        let ly = TOP + 20.0 + 20.0 * i as f64;
        s += &format!(
            "<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"2\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{name}</text>\n",
            W - RIGHT + 12.0,
            W - RIGHT + 32.0,
            W - RIGHT + 38.0,
            ly + 4.0
        );
    }
    s += "</svg>\n";
    s
}
