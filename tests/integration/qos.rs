//! Queue policies under load: `block` loses nothing, `drop_oldest` and `latest` count every drop.

use std::time::Duration;

use quiver_runtime::{Mode, RunOptions};

use crate::support::{field, record, run_file, temp_dir, values, write};

fn graph(dir: &std::path::Path, limit: u64, queue: &str, delay: &str) -> std::path::PathBuf {
    write(
        dir,
        "g.yaml",
        &format!(
            "name: qos
nodes:
  - id: source
    operator: counter
    params: {{ limit: {limit}, burst: 1000 }}
    inputs: {{ tick: {{ timer: 1ms }} }}
    outputs: [count]
  - id: slow
    operator: recorder
    params: {{ path: {}, delay: {delay} }}
    inputs:
      in: {{ from: source/count, queue: {queue} }}
",
            dir.join("rec.txt").display()
        ),
    )
}

fn realtime() -> RunOptions {
    RunOptions {
        mode: Mode::RealTime {
            duration: Some(Duration::from_secs(120)),
        },
        ..RunOptions::default()
    }
}

#[test]
fn block_loses_nothing_into_a_slow_consumer() {
    let dir = temp_dir("qos-block");
    let summary = run_file(
        &graph(&dir, 100_000, "{ depth: 16, policy: block }", "20us"),
        &realtime(),
    );
    let input = &summary.node("slow").expect("slow").inputs[0];
    assert_eq!(
        (input.received, input.handled, input.dropped),
        (100_000, 100_000, 0),
        "{summary}"
    );
    assert!(input.max_queued <= 16, "{summary}");
    let lines = record(&dir.join("rec.txt"));
    assert_eq!(lines.len(), 100_000);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(field(line, "seq"), i.to_string(), "every sequence number, in order");
        assert_eq!(values(line), vec![i as i64]);
    }
}

#[test]
fn drop_oldest_counts_every_drop() {
    let dir = temp_dir("qos-drop-oldest");
    let summary = run_file(
        &graph(&dir, 20_000, "{ depth: 4, policy: drop_oldest }", "50us"),
        &realtime(),
    );
    let input = &summary.node("slow").expect("slow").inputs[0];
    assert_eq!(input.received, 20_000, "{summary}");
    assert!(input.dropped > 0, "a slow consumer must have dropped some: {summary}");
    assert_eq!(input.handled + input.dropped, input.received, "{summary}");
    assert!(input.max_queued <= 4);
    let seqs: Vec<u64> = record(&dir.join("rec.txt"))
        .iter()
        .map(|l| field(l, "seq").parse().expect("seq"))
        .collect();
    assert_eq!(seqs.len() as u64, input.handled);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "order kept");
    let missing = 20_000 - seqs.len() as u64;
    assert_eq!(
        missing, input.dropped,
        "every missing sequence number is a counted drop"
    );
    assert_eq!(seqs.last(), Some(&19_999), "the newest survives");
}

#[test]
fn latest_keeps_the_newest() {
    let dir = temp_dir("qos-latest");
    let summary = run_file(&graph(&dir, 20_000, "{ policy: latest }", "50us"), &realtime());
    let input = &summary.node("slow").expect("slow").inputs[0];
    assert_eq!((input.depth, input.received), (1, 20_000), "{summary}");
    assert!(input.dropped > 0, "{summary}");
    assert_eq!(input.handled + input.dropped, 20_000);
    let lines = record(&dir.join("rec.txt"));
    assert_eq!(
        values(lines.last().expect("some")),
        vec![19_999],
        "the last value produced is the last handled"
    );
}
