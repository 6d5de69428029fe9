#!/usr/bin/env bash
# Round trip graph -> ROS 2 (an rclpy echo node) -> graph, for a Twist and a 640x480 Image
# (benches/RESULTS.md). Not part of CI. Installs real rclpy from PyPI into benches/ros/.venv-ros
# (pinned, ../shared/peers/README.md), builds the release binaries, then runs the benchmark inside
# a private network namespace (root; no DDS packet leaves the machine).
#   benches/ros/run.sh            300 round trips per size + throughput
#   benches/ros/run.sh --quick    30 round trips per size
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv-ros"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import rclpy, geometry_msgs.msg, sensor_msgs.msg' 2>/dev/null; then
  echo "installing rclpy 9.1.2 (Fast DDS) into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'ros-rclpy[fastrtps]==9.1.2' ros-geometry-msgs==5.5.1 ros-sensor-msgs==5.5.1 ros-std-msgs==5.5.1
fi
cd "$root"
cargo build --release -q -p quiver-benches -p quiver -p ros2-bridge -p bench-ros
export QUIVER_ROS_PYTHON="$venv/bin/python"
export FASTDDS_DEFAULT_PROFILES_FILE="$root/tests/ros/fastdds-bigbuf.xml"
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
exec unshare --net sh -c 'ip link set lo up && exec "$0" --ros "$@"' "$root/target/release/quiver-bench" "$@"
