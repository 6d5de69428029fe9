//! Stepped mode: simulated time, fixed order, deterministic; cycles see a message one step late.

use crate::support::{field, quiver, record, stderr, stdout, temp_dir, values, write};

const CYCLE: &str = "name: cycle
nodes:
  - id: ticker
    operator: counter
    params: { limit: 30, burst: 3 }
    inputs: { tick: { timer: 10ms } }
    outputs: [count]
  - id: loop
    operator: probe
    inputs:
      a: ticker/count
      b: { from: plus/value, queue: { depth: 4, policy: drop_oldest } }
    outputs: [out, seen_b]
  - id: plus
    operator: scale
    params: { factor: 1, offset: 1000 }
    inputs: { value: loop/out }
    outputs: [value]
  - id: sink
    operator: recorder
    params: { path: rec.txt }
    inputs: { in: loop/seen_b }
";

#[test]
fn two_stepped_runs_give_identical_outputs() {
    let dir = temp_dir("stepped-determinism");
    write(&dir, "g.yaml", CYCLE);
    let a = quiver(&dir, &["run", "g.yaml", "--stepped", "--for", "1s"]);
    assert!(a.status.success(), "{}", stderr(&a));
    let first = std::fs::read_to_string(dir.join("rec.txt")).expect("record");
    let b = quiver(&dir, &["run", "g.yaml", "--stepped", "--for", "1s"]);
    let second = std::fs::read_to_string(dir.join("rec.txt")).expect("record");
    assert_eq!(stdout(&a), stdout(&b), "summaries");
    assert_eq!(first, second, "recorded packs, timestamps included");
    assert!(stdout(&a).contains("(all sources finished)"), "{}", stdout(&a));
    // Simulated timestamps: the first pack is produced at the first tick, 10 ms.
    assert_eq!(field(first.lines().next().expect("a line"), "t"), "10000000");
}

#[test]
fn a_message_sent_around_a_cycle_arrives_one_step_later() {
    let dir = temp_dir("stepped-cycle");
    write(&dir, "g.yaml", CYCLE);
    let o = quiver(&dir, &["run", "g.yaml", "--stepped"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("(all sources finished)"), "{}", stdout(&o));
    let lines = record(&dir.join("rec.txt"));
    assert_eq!(lines.len(), 30, "nothing lost around the loop");
    for (i, line) in lines.iter().enumerate() {
        let produced: u64 = field(line, "t").parse().expect("t");
        let seen: u64 = field(line, "at").parse().expect("at");
        // `plus` ran in the step of `t`; `loop` ran before it, so it sees the value next step.
        assert_eq!(seen - produced, 10_000_000, "{line}");
        assert_eq!(values(line), vec![i as i64 + 1000]);
    }
}

#[test]
fn steps_are_counted_and_the_step_size_can_be_set() {
    let dir = temp_dir("stepped-steps");
    write(&dir, "g.yaml", CYCLE);
    let o = quiver(&dir, &["run", "g.yaml", "--stepped", "--steps", "7", "--step", "5ms"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("stepped, 7 steps, 0.035s simulated (duration reached)"),
        "{}",
        stdout(&o)
    );
    // Ticks at 10, 20, 30 ms: 9 numbers sent.
    assert!(stdout(&o).contains("count=9"), "{}", stdout(&o));
}

/// A stepped run that would not end in reasonable time or memory is refused, saying what to
/// set: 2 billion steps of a 1 ns timer, or a step spanning a million periods of a timer
/// (before: every tick fired in one step until memory ran out).
#[test]
fn unbounded_stepped_runs_are_refused() {
    let dir = temp_dir("stepped-bounds");
    write(
        &dir,
        "g.yaml",
        "name: bounds
nodes:
  - id: ticker
    operator: counter
    inputs: { tick: { timer: 1ns } }
    outputs: [count]
",
    );
    let o = quiver(&dir, &["run", "g.yaml", "--stepped", "--for", "2s"]);
    let err = stderr(&o);
    // Refused before anything runs: exit 2 (README: a run that could not be prepared).
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("2000000000 steps of 1ns: more than 100000000; set a coarser --step"),
        "{err}"
    );
    let o = quiver(&dir, &["run", "g.yaml", "--stepped", "--step", "1ms", "--steps", "3"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--step 1ms is 1000000 periods of timer `tick` of node `ticker` (1ns): at most 1000 ticks fire in one step; use --step 1us or less"),
        "{err}"
    );
    // Within the bounds it runs.
    let o = quiver(&dir, &["run", "g.yaml", "--stepped", "--step", "1us", "--steps", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("stepped, 3 steps"), "{}", stdout(&o));
}
