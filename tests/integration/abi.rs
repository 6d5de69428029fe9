//! The plugin ABI: a plugin built against another major version of arrow works.

use std::process::Command;

use crate::support::{quiver, record, stderr, target_dir, temp_dir, values, workspace, write};

fn locked_version(lock: &str, package: &str) -> String {
    let needle = format!("name = \"{package}\"\nversion = \"");
    let at = lock
        .find(&needle)
        .unwrap_or_else(|| panic!("{package} not in lockfile"));
    lock[at + needle.len()..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_operator_built_against_another_arrow_major_exchanges_data() {
    let crate_dir = workspace().join("tests/abi-compat-op");
    let ours = locked_version(
        &std::fs::read_to_string(workspace().join("Cargo.lock")).expect("lock"),
        "arrow-array",
    );
    let theirs = locked_version(
        &std::fs::read_to_string(crate_dir.join("Cargo.lock")).expect("lock"),
        "arrow-array",
    );
    let major = |v: &str| v.split('.').next().unwrap_or_default().to_string();
    assert_ne!(
        major(&ours),
        major(&theirs),
        "the compat operator must use another arrow major ({ours} vs {theirs})"
    );

    let compat_target = target_dir().join("abi-compat");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&crate_dir)
        .args(["build", "--quiet", "--locked", "--target-dir"])
        .arg(&compat_target)
        .status()
        .expect("cargo build of the compat operator");
    assert!(status.success(), "building tests/abi-compat-op failed");
    let lib = compat_target
        .join("debug")
        .join(quiver_runtime::library_file_name("abi-compat"));

    let dir = temp_dir("abi-compat");
    write(
        &dir,
        "g.yaml",
        &format!(
            "nodes:
  - id: ticker
    operator: counter
    params: {{ limit: 5, start: 1 }}
    inputs: {{ tick: {{ timer: 1ms }} }}
    outputs: [count]
  - id: old_arrow
    path: {}
    inputs: {{ value: ticker/count }}
    outputs: [value]
  - id: sink
    operator: recorder
    params: {{ path: rec.txt }}
    inputs: {{ in: old_arrow/value }}
",
            lib.display()
        ),
    );
    let o = quiver(&dir, &["run", "g.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got: Vec<i64> = record(&dir.join("rec.txt")).iter().flat_map(|l| values(l)).collect();
    assert_eq!(got, vec![-1, -2, -3, -4, -5], "negated by the arrow {theirs} plugin");
}
