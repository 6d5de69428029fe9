#!/usr/bin/env bash
# dora-rs 1.1.0 between machines, beside benches/machines/run.sh (see README.md). Needs root.
# Builds two private hosts, `near` (10.254.8.1) and `far` (10.254.8.2): network namespaces joined
# by a bridge in its own namespace, each host with its own /dev/shm. `dora coordinator` and the
# daemon `--machine-id near` run on near, the daemon `--machine-id far` on far; the source node is
# placed on near and the sink on far (`deploy: { machine: ... }`), so every message crosses the
# veth link (Zenoh, TCP). One-way latency, receiver idle between messages.
#   benches/dora/machines.sh            1000 samples per size
#   benches/dora/machines.sh --quick    50 samples per size
#   benches/dora/machines.sh --smoke    8 B only, 20 samples (checks the setup)
# Data path observed (ss on far): the sink dials the source's own Zenoh listener on near and every
# payload arrives on that node-to-node TCP connection; the daemons only carry control traffic.
# The environment reaches the daemons and their nodes (e.g. DORA_ZENOH_CONFIG_OVERLAY=<json5>
# layers Zenoh settings over dora's). KEEP_LOGS=1 keeps the scratch directory (logs, samples).
# Writes nothing in the repository except the venv (benches/dora/.venv-dora, as run.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-dora"
py="$venv/bin/python"

mode=full
case "${1:-}" in
  "") ;;
  --quick) mode=quick ;;
  --smoke) mode=smoke ;;
  *) echo "usage: $0 [--quick|--smoke]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 2; }

warmup=50
case "$mode" in
  full)  samples=1000; sizes=(8 65536 1048576 4194304) ;;
  quick) samples=50;   sizes=(8 65536 1048576 4194304) ;;
  smoke) samples=20;   sizes=(8) ;;
esac

# Pinned peer: dora CLI + Python node API 1.1.0 from PyPI (no Rust build), the venv of run.sh.
if ! "$py" -c 'import dora, pyarrow, numpy; assert dora.__version__ == "1.1.0"' 2>/dev/null \
   || [ ! -x "$venv/bin/dora" ]; then
  echo "installing dora-rs 1.1.0 into $venv" >&2
  python3 -m venv "$venv"
  timeout 600 "$venv/bin/pip" install -q dora-rs-cli==1.1.0 dora-rs==1.1.0 pyarrow==26.0.1 numpy==2.4.6
fi
dora="$venv/bin/dora"

T=dmb$$                     # name prefix of everything this run creates
BR=$T-br
NEAR=$T-near FAR=$T-far
NEAR_IP=10.254.8.1 FAR_IP=10.254.8.2
ZPORT=5456                  # each daemon's Zenoh listener
CPORT=6013                  # the coordinator's WebSocket port (on near)
work="$(mktemp -d /tmp/dora-machines.XXXXXX)"
keep_work=${KEEP_LOGS:-0}   # KEEP_LOGS=1 keeps the logs and samples
pids=()

# Every process this script starts lives in one of its namespaces: stop the dataflows, then the
# daemons and coordinator by pid, then whatever is left in the two hosts (nodes), by pid.
cleanup() {
  set +e
  if ip netns list | grep -qw "$NEAR"; then
    in_near timeout 10 "$dora" stop --all --force --coordinator-addr "$NEAR_IP" >/dev/null 2>&1
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 50); do
    alive=0
    for p in "${pids[@]}"; do  # running, not a zombie waiting for `wait`
      [ -r "/proc/$p/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$p/stat" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for ns in "$NEAR" "$FAR" "$BR"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for ns in "$NEAR" "$FAR" "$BR"; do ip netns del "$ns" 2>/dev/null; done
  if [ "$keep_work" = 0 ]; then rm -rf "$work"; else echo "logs kept in $work" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { keep_work=1; echo "$*" >&2; exit 1; }

# Two hosts on a bridge; loopback and 10.254.8.x only, nothing routes out.
ip netns add "$BR"
ip -n "$BR" link set lo up
ip -n "$BR" link add br0 type bridge
ip -n "$BR" link set br0 up
i=0
for ns in "$NEAR" "$FAR"; do
  i=$((i + 1))
  ip netns add "$ns"
  ip link add "${T}h$i" type veth peer name "${T}b$i"
  ip link set "${T}h$i" netns "$ns"
  ip link set "${T}b$i" netns "$BR"
  ip -n "$ns" link set "${T}h$i" name eth0
  ip -n "$ns" addr add "10.254.8.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$BR" link set "${T}b$i" master br0
  ip -n "$BR" link set "${T}b$i" up
done

# A command on a host: its own /dev/shm (a private mount namespace per `ip netns exec`), HOME in
# the scratch directory (the coordinator and daemons keep state under it).
in_host() { # <ns> <cmd...>
  local ns=$1; shift
  HOME="$work/home" ip netns exec "$ns" sh -c 'mount -t tmpfs tmpfs /dev/shm && exec "$0" "$@"' "$@"
}
in_near() { in_host "$NEAR" "$@"; }
# bg_host <ns> <log> <cmd...>: a long-lived process on a host; its pid (the dora process itself,
# through the exec chain) goes to $pids.
bg_host() {
  local ns=$1 log=$2; shift 2
  (exec env HOME="$work/home" ip netns exec "$ns" sh -c 'mount -t tmpfs tmpfs /dev/shm && exec "$0" "$@"' "$@" >"$log" 2>&1) &
  pids+=($!)
}
mkdir -p "$work/home"

# The coordinator and daemons write logs under their working directory (out/) and the daemons run
# nodes in <cwd>/_work/<uuid>: keep all of it in the scratch directory.
cd "$work"

# Coordinator on near (in memory), one daemon per host. Each daemon binds its Zenoh listener on
# its host's address and dials the other one (dora's explicit mesh, no multicast scouting).
bg_host "$NEAR" "$work/coordinator.log" "$dora" coordinator --interface "$NEAR_IP" --port "$CPORT" --store memory
for _ in $(seq 100); do
  timeout 2 ip netns exec "$NEAR" bash -c "echo >/dev/tcp/$NEAR_IP/$CPORT" 2>/dev/null && break
  sleep 0.1
done
start_daemon() { # <ns> <machine-id> <ip> <other-ip>
  bg_host "$1" "$work/daemon-$2.log" "$dora" daemon --machine-id "$2" --coordinator-addr "$NEAR_IP" \
    --coordinator-port "$CPORT" --zenoh-listen "$3:$ZPORT" --zenoh-connect "tcp/$4:$ZPORT" \
    --zenoh-no-multicast
}
start_daemon "$NEAR" near "$NEAR_IP" "$FAR_IP"
start_daemon "$FAR" far "$FAR_IP" "$NEAR_IP"
ok=0
for _ in $(seq 60); do
  st=$(in_near timeout 5 "$dora" cluster status --coordinator-addr "$NEAR_IP" 2>&1 || true)
  if grep -qw near <<<"$st" && grep -qw far <<<"$st"; then ok=1; break; fi
  sleep 0.5
done
[ "$ok" = 1 ] || fail "daemons did not register with the coordinator within 30 s: $st"

# The receiver is idle between messages: the same pace as run.sh and quiver's benchmark.
period_ms() {
  local s=$1
  if   [ "$s" -le 65536 ];   then echo 1
  elif [ "$s" -le 1048576 ]; then echo 5
  elif [ "$s" -le 4194304 ]; then echo 10
  else echo 50; fi
}

label() {
  case "$1" in
    8) echo "8 B" ;; 65536) echo "64 KiB" ;; 1048576) echo "1 MiB" ;;
    4194304) echo "4 MiB" ;; *) echo "$1 B" ;;
  esac
}

# The dataflow of run.sh (same nodes, pool and queues) with the source on near, the sink on far.
node_yaml() { # <bytes> <count> <period-ms>
  local size=$1 count=$2 p=$3
  cat <<EOF
nodes:
  - id: source
    path: "$py"
    args: "$here/source.py latency $size $count $work/latency-$size.send"
    inputs:
      tick:
        source: dora/timer/millis/$p
        queue_size: 1
    outputs:
      - out
    shared_memory_pool_size: 512MB
    deploy:
      machine: near
  - id: sink
    path: "$py"
    args: "$here/sink.py latency $size $count $work/latency-$size.out"
    inputs:
      in:
        source: source/out
        queue_size: $count
    deploy:
      machine: far
EOF
}

# run_dataflow <name> <timeout-s> <yaml>: `dora start --attach` on near, bounded.
run_dataflow() {
  local name=$1 limit=$2 dir="$work/$1"
  mkdir -p "$dir"
  printf '%s' "$3" >"$dir/dataflow.yml"
  if ! (cd "$dir" && in_near timeout "$limit" "$dora" start dataflow.yml --name "$name" --attach \
          --coordinator-addr "$NEAR_IP" --coordinator-port "$CPORT" >"$dir/dora.log" 2>&1); then
    keep_work=1
    echo "dora start failed or timed out for $name; last lines of $dir/dora.log:" >&2
    tail -n 30 "$dir/dora.log" >&2
    exit 1
  fi
}

# p50/p99 in µs of a file of ns values (nearest rank, as quiver's benchmark), after the warm-up.
stats() { # <file> <skip>
  "$py" - "$1" "$2" <<'EOF'
import sys
v = sorted(int(l) for l in open(sys.argv[1]).read().split()[int(sys.argv[2]):])
pct = lambda p: v[round((len(v) - 1) * p)] / 1000.0
print(f"{len(v)} {pct(0.5):.1f} {pct(0.99):.1f}")
EOF
}

echo "dora-rs $("$dora" --version | awk '{print $2}') (Python nodes), one hop source@near -> sink@far between two netns hosts (veth + bridge; coordinator + daemon on near, daemon on far; Zenoh over TCP), receiver idle between messages ($samples samples per size after $warmup warm-up)"
echo
table="| payload | dora p50 (µs) | dora p99 (µs) | received |
|---|---:|---:|---:|"
sends=""
for size in "${sizes[@]}"; do
  count=$((warmup + samples))
  p=$(period_ms "$size")
  limit=$(( count * p * 2 / 1000 + 60 ))
  run_dataflow "latency-$size" "$limit" "$(node_yaml "$size" "$count" "$p")"
  [ -f "$work/latency-$size.out" ] || fail "the sink wrote no results for $(label "$size")"
  got=$(wc -l <"$work/latency-$size.out")
  [ "$got" -gt "$warmup" ] || fail "only $got of $count messages arrived for $(label "$size")"
  [ "$got" -lt "$count" ] && echo "warning: $(label "$size"): $got of $count messages arrived" >&2
  read -r _ p50 p99 <<<"$(stats "$work/latency-$size.out" "$warmup")"
  read -r _ s50 _ <<<"$(stats "$work/latency-$size.send" "$warmup")"
  table+=$'\n'"| $(label "$size") | $p50 | $p99 | $got / $count |"
  sends+="${sends:+, }$(label "$size") $s50"
done
echo "$table"
echo
echo "(sender's send_output call, p50 µs: $sends)"
echo "(percentiles over the messages that arrived, warm-up included in 'received'; a lost message is not counted)"
