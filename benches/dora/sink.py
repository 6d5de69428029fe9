"""dora benchmark sink node (dora-rs 1.1.0 Python API).

    sink.py latency    <bytes> <count> <out-file>   writes one latency (ns) per line
    sink.py throughput <bytes> <count> <out-file>   writes "<received> <first_ns> <last_ns>"

The clock is read as soon as `node.next()` returns (that call includes dora's hand-over of the
Arrow array to Python, zero-copy); the latency is now - the sender's time.time_ns() stamp held
in the payload's first 8 bytes. The node stops after <count> messages, or earlier if the input
closes or the dataflow is stopped (the run script then reports the shortfall).
"""

import sys
import time

import numpy as np
import pyarrow  # noqa: F401  (dora hands inputs over as pyarrow arrays: import it before the first one)
from dora import Node


def main() -> None:
    mode, size, count, out_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    node = Node()
    lat = []
    received = 0
    first = last = 0
    bad = 0
    while received < count:
        event = node.next()
        now = time.time_ns()
        if event is None or event["type"] in ("STOP", "ERROR"):
            break
        if event["type"] != "INPUT":
            continue  # INPUT_CLOSED etc.: the STOP / None that follows ends the loop
        value = event["value"]
        if len(value) != size:
            bad += 1
            continue
        if mode == "latency":
            sent = np.frombuffer(value.buffers()[1], dtype=np.int64, count=1, offset=value.offset)[0]
            lat.append(now - int(sent))
        elif received == 0:
            first = now
        last = now
        received += 1

    with open(out_path, "w") as f:
        if mode == "latency":
            f.write("".join(f"{v}\n" for v in lat))
        else:
            f.write(f"{received} {first} {last}\n")
    if bad:
        print(f"sink: {bad} messages of the wrong size", file=sys.stderr)
    print(f"sink: received {received} of {count} messages of {size} B", file=sys.stderr)


if __name__ == "__main__":
    main()
