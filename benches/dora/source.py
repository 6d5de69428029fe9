"""dora benchmark source node (dora-rs 1.1.0 Python API).

    source.py latency    <bytes> <count> <stats-file>   one message per `tick` timer event
    source.py throughput <bytes> <count> <stats-file>   <count> messages back to back

The payload is a uint8 pyarrow array of <bytes> bytes built once over a numpy buffer; only its
first 8 bytes are rewritten per send: time.time_ns() (CLOCK_REALTIME), little-endian int64.
dora's `send_output` copies the array into a dora-owned sample on every call (shared memory
above dora's small zero-copy threshold when the node's pool has room), so each send includes
one copy of the payload.
The time of each `send_output` call is written to <stats-file> (one value in ns per line).
"""

import sys
import time

import numpy as np
import pyarrow as pa
from dora import Node

START_DELAY_S = 1.0


def main() -> None:
    mode, size, count, stats_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if size < 8:
        raise SystemExit("payload must hold the 8-byte timestamp")

    backing = np.zeros(size, dtype=np.uint8)
    payload = pa.Array.from_buffers(pa.uint8(), size, [None, pa.py_buffer(backing)])
    # The array must share the numpy buffer, or the stamp would not reach it.
    assert payload.buffers()[1].address == backing.ctypes.data
    stamp = backing[:8].view(np.int64)

    node = Node()  # returns once every node of the dataflow is ready
    # Let the sink get past its own start-up before the first (warm-up) message; ticks that
    # arrive meanwhile are ignored (the tick input keeps only the latest one).
    start = time.monotonic() + START_DELAY_S
    send_ns = []
    sent = 0

    def send() -> None:
        nonlocal sent
        t0 = time.time_ns()
        stamp[0] = t0
        node.send_output("out", payload)
        send_ns.append(time.time_ns() - t0)
        sent += 1

    if mode == "throughput":
        time.sleep(max(0.0, start - time.monotonic()))
        for _ in range(count):
            send()
    elif mode == "latency":
        while sent < count:
            event = node.next()
            if event is None or event["type"] == "STOP":
                break
            if event["type"] == "INPUT" and time.monotonic() >= start:  # the `tick` timer
                send()
    else:
        raise SystemExit(f"unknown mode {mode!r}")

    with open(stats_path, "w") as f:
        f.write("".join(f"{v}\n" for v in send_ns))
    print(f"source: sent {sent} of {count} messages of {size} B", file=sys.stderr)


if __name__ == "__main__":
    main()
