//! Shared helpers: build the plugins and the CLI once, run `quiver`, make temporary graphs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use quiver_runtime::{Registry, RunOptions, SearchPath, Summary};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `target/<profile>`: where the plugins and the CLI are.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// Builds the CLI and the operators once per test run (a no-op when they are fresh).
pub fn build() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace()).arg("build").arg("--quiet");
        if target_dir().file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        // The whole workspace, as `cargo test --workspace` resolves features: building a
        // subset (`-p ...`) unifies them differently and rebuilt Zenoh on every switch (~2 min).
        cmd.arg("--workspace");
        // What cargo set for this test binary must not reach the build: ring's build script
        // reruns when CARGO_MANIFEST_DIR changes (and Zenoh's TLS with it).
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_BIN_")
                || matches!(
                    k.as_ref(),
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "OUT_DIR"
                )
            {
                cmd.env_remove(k.as_ref());
            }
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "building the plugins failed");
    });
}

/// A fresh, empty folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = target_dir().join("test-tmp").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

/// Writes `yaml` as `dir/name`.
pub fn write(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, yaml).expect("writing a graph");
    p
}

/// Runs the `quiver` CLI in `cwd` with the build output as operator path.
pub fn quiver(cwd: &Path, args: &[&str]) -> Output {
    quiver_env(cwd, args, &[])
}

/// `quiver` with extra environment variables.
pub fn quiver_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    build();
    Command::new(target_dir().join("quiver"))
        .current_dir(cwd)
        .env("QUIVER_OPERATOR_PATH", target_dir())
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("running quiver")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A registry that finds the built operators.
pub fn registry() -> Registry {
    build();
    Registry::new(SearchPath {
        dirs: vec![target_dir()],
    })
}

/// Loads and runs a graph file through the library API.
pub fn run_file(path: &Path, options: &RunOptions) -> Summary {
    let registry = registry();
    let graph = quiver_runtime::load_graph(path, &registry).unwrap_or_else(|e| panic!("invalid graph:\n{e}"));
    quiver_runtime::run(&graph, &registry, options).unwrap_or_else(|e| panic!("run failed: {e}"))
}

/// Lines of a recorder's file.
pub fn record(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

/// The value of `key=` in a recorder line.
pub fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

/// The values after the fields of a recorder line.
pub fn values(line: &str) -> Vec<i64> {
    line.split(' ')
        .skip(5)
        .map(|v| v.parse().unwrap_or_else(|_| panic!("not an int: {v} in {line}")))
        .collect()
}

/// The Python packages of the ROS 2 peers (`../shared/peers/README.md`), pinned.
const ROS_PEERS: &[&str] = &[
    "rosbags==0.11.9",
    "ros-rclpy[fastrtps]==9.1.2",
    "ros-geometry-msgs==5.5.1",
    "ros-sensor-msgs==5.5.1",
    "ros-std-msgs==5.5.1",
];

/// A Python with the ROS 2 peers installed: a venv under `target/peers/ros`, created (and
/// `pip install`ed from PyPI) on first use, reused after. Panics with what to do when that fails:
/// these tests check quiver against independent implementations and must not be skipped.
pub fn ros_python() -> PathBuf {
    peer_python("ros", ROS_PEERS)
}

/// The Zenoh Python API (a foreign Zenoh peer, same version as ours).
pub fn zenoh_python() -> PathBuf {
    peer_python("zenoh", &["eclipse-zenoh==1.10.2"])
}

/// A venv under `target/peers/NAME` with `packages` from PyPI, made once (a stamp file records
/// what it holds).
fn peer_python(name: &str, packages: &[&str]) -> PathBuf {
    static MADE: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, p)) = made.iter().find(|(n, _)| n == name) {
        return p.clone();
    }
    let venv = workspace().join("target/peers").join(name);
    let python = venv.join("bin/python");
    let stamp = venv.join("quiver-requirements.txt");
    let wanted = packages.join("\n");
    if !(std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists()) {
        let run = |cmd: &mut Command, what: &str| {
            let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(
                out.status.success(),
                "{what} failed (needs python3 with venv and access to PyPI):\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(
            Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv),
            &format!("python3 -m venv target/peers/{name}"),
        );
        run(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(packages),
            &format!("pip install {}", packages.join(" ")),
        );
        std::fs::write(&stamp, wanted).expect("writing the venv stamp");
    }
    made.push((name.to_string(), python.clone()));
    python
}
