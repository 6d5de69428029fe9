#!/usr/bin/env bash
# dora-rs 1.1.0 beside quiver's between-process benchmark (see README.md).
#   benches/dora/run.sh            1000 samples per size, 200k throughput messages
#   benches/dora/run.sh --quick    50 samples per size, 20k throughput messages
#   benches/dora/run.sh --smoke    8 B only, 20 samples, 2k throughput messages
# Writes benches/dora/results.csv (--smoke: results-smoke.csv, not committed).
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

warmup=50
case "$mode" in
  full)  samples=1000; tput=200000; csv="$here/results.csv"
         sizes=(8 65536 1048576 4194304 41943040) ;;
  quick) samples=50;   tput=20000;  csv="$here/results.csv"
         sizes=(8 65536 1048576 4194304 41943040) ;;
  smoke) samples=20;   tput=2000;   csv="$here/results-smoke.csv"
         sizes=(8) ;;
esac

# Pinned peer: dora CLI + Python node API 1.1.0 from PyPI (no Rust build).
if ! "$py" -c 'import dora, pyarrow, numpy; assert dora.__version__ == "1.1.0"' 2>/dev/null \
   || [ ! -x "$venv/bin/dora" ]; then
  echo "installing dora-rs 1.1.0 into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q dora-rs-cli==1.1.0 dora-rs==1.1.0 pyarrow==26.0.1 numpy==2.4.6
fi
dora="$venv/bin/dora"

work="$(mktemp -d /tmp/dora-bench.XXXXXX)"
keep_work=0
cleanup() { if [ "$keep_work" = 0 ]; then rm -rf "$work"; else echo "logs kept in $work" >&2; fi; }
trap cleanup EXIT

# The receiver is idle between messages: the same pace as quiver's benchmark.
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
    4194304) echo "4 MiB" ;; 41943040) echo "40 MiB" ;; *) echo "$1 B" ;;
  esac
}

# run_dataflow <name> <timeout-s> <yaml>: one `dora run` (no coordinator) in its own directory.
run_dataflow() {
  local name=$1 timeout=$2 yaml=$3 dir="$work/$1"
  mkdir -p "$dir"
  printf '%s' "$yaml" >"$dir/dataflow.yml"
  if ! (cd "$dir" && "$dora" run dataflow.yml --stop-after "${timeout}s" >"$dir/dora.log" 2>&1); then
    keep_work=1
    echo "dora run failed for $name; last lines of $dir/dora.log:" >&2
    tail -n 30 "$dir/dora.log" >&2
    exit 1
  fi
}

# Both nodes are Python processes started by dora; the pool of the sending node is 512 MB so
# that 40 MiB messages go through shared memory too (dora's default pool is 8 MB). The sink's
# queue holds every message (dora drops the oldest input when a queue is full: a slow message
# must show in the latencies, not vanish); the source keeps only the latest timer tick.
node_yaml() { # <mode> <bytes> <count> <timer-input-or-empty> <queue_size>
  local m=$1 size=$2 count=$3 timer=$4 qs=$5 tick=""
  [ -n "$timer" ] && tick=$'\n    inputs:\n      tick:\n        source: '"$timer"$'\n        queue_size: 1'
  cat <<EOF
nodes:
  - id: source
    path: "$py"
    args: "$here/source.py $m $size $count $work/$m-$size.send"$tick
    outputs:
      - out
    shared_memory_pool_size: 512MB
  - id: sink
    path: "$py"
    args: "$here/sink.py $m $size $count $work/$m-$size.out"
    inputs:
      in:
        source: source/out
        queue_size: $qs
EOF
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

echo "dora-rs $("$dora" --version | awk '{print $2}') (Python nodes), one hop source -> sink between processes, receiver idle between messages ($samples samples per size after $warmup warm-up)"
echo
rows="system,bytes,p50_us,p99_us"
table="| payload | dora p50 (µs) | dora p99 (µs) |
|---|---:|---:|"
sends=""
for size in "${sizes[@]}"; do
  count=$((warmup + samples))
  p=$(period_ms "$size")
  timeout=$(( count * p * 2 / 1000 + 60 ))
  run_dataflow "latency-$size" "$timeout" "$(node_yaml latency "$size" "$count" "dora/timer/millis/$p" "$count")"
  got=$(wc -l <"$work/latency-$size.out")
  if [ "$got" -le "$warmup" ]; then
    keep_work=1; echo "only $got of $count messages arrived for $(label "$size")" >&2; exit 1
  fi
  [ "$got" -lt "$count" ] && echo "warning: $(label "$size"): $got of $count messages arrived" >&2
  lat=$(stats "$work/latency-$size.out" "$warmup")
  send=$(stats "$work/latency-$size.send" "$warmup")
  read -r _ p50 p99 <<<"$lat"
  read -r _ s50 _ <<<"$send"
  table+=$'\n'"| $(label "$size") | $p50 | $p99 |"
  rows+=$'\n'"dora,$size,$p50,$p99"
  sends+="${sends:+, }$(label "$size") $s50"
done
echo "$table"
echo
echo "(sender's send_output call, p50 µs, includes dora's copy of the array: $sends)"
printf '%s\n' "$rows" >"$csv"

# Back to back: the source sends without a timer; the sink's queue holds every message.
run_dataflow "throughput" 300 "$(node_yaml throughput 8 "$tput" "" "$tput")"
read -r received first last <"$work/throughput-8.out"
[ "$received" -lt "$tput" ] && echo "warning: throughput: $received of $tput messages arrived" >&2
rate=$("$py" -c "print(f'{$received / (($last - $first) / 1e9):,.0f}')")
echo
echo "Back-to-back 8 B messages, dora: $rate messages/s ($received messages, timed at the sink from first to last)"
echo
echo "(written to $csv)"
