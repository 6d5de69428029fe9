#!/usr/bin/env bash
# Between machines: builds three private hosts (network namespaces joined by a bridge in its own
# namespace, addresses 10.254.9.x that exist only there), then runs `quiver-benches --machines`
# on host `near`; it starts daemons on `far` and `third` itself. Needs root. Not part of CI.
#   benches/machines/run.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p quiver -p quiver-benches -p bench-source -p bench-sink -p counter -p scale -p recorder
T=qbm$$
BR=$T-br
cleanup() {
    for n in near far third; do ip netns del "$T-$n" 2>/dev/null || true; done
    ip netns del "$BR" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$BR"
ip -n "$BR" link set lo up
ip -n "$BR" link add br0 type bridge
ip -n "$BR" link set br0 up
i=0
for n in near far third; do
    i=$((i + 1))
    ip netns add "$T-$n"
    ip link add "${T}h$i" type veth peer name "${T}b$i"
    ip link set "${T}h$i" netns "$T-$n"
    ip link set "${T}b$i" netns "$BR"
    ip -n "$T-$n" link set "${T}h$i" name eth0
    ip -n "$T-$n" addr add "10.254.9.$i/24" dev eth0
    ip -n "$T-$n" link set eth0 up
    ip -n "$T-$n" link set lo up
    ip -n "$BR" link set "${T}b$i" master br0
    ip -n "$BR" link set "${T}b$i" up
done
export NEAR_IP=10.254.9.1 FAR_NS=$T-far FAR_IP=10.254.9.2 THIRD_NS=$T-third THIRD_IP=10.254.9.3
export BRIDGE_NS=$BR FAR_PORT=${T}b2
ip netns exec "$T-near" sh -c 'mount -t tmpfs tmpfs /dev/shm && exec "$0" "$@"' \
    "$PWD/target/release/quiver-bench" --machines "$@"
