"""CDR oracle for quiver's integration tests: rosbags (an independent pure-Python ROS 2 CDR
implementation) decodes quiver's CDR bytes and encodes the same message again.

usage: python cdr_oracle.py CASES.json MSG_DIR
CASES.json: [{"type": "geometry_msgs/msg/Twist", "cdr": "<hex>"}, ...]
MSG_DIR: quiver's msg-defs/msg, for the types rosbags does not ship (quiver_msgs).
Prints [{"values": <message as JSON>, "cdr": "<hex of rosbags' own encoding>"}, ...].
uint8 arrays are given as {"u8hex": "<hex>"} to keep big images small; floats as {"f64bits": N}
(the bits of the float64 value), so no decimal formatting or parsing can blur a comparison.
"""
import dataclasses
import json
import pathlib
import struct
import sys

import numpy
from rosbags.typesys import Stores, get_types_from_msg, get_typestore


def to_json(v):
    if dataclasses.is_dataclass(v):
        # The message's fields as its definition lists them (not its constants).
        _consts, fields = STORE.fielddefs[v.__msgtype__]
        return {name: to_json(getattr(v, name)) for name, *_ in fields}
    if isinstance(v, numpy.ndarray):
        if v.dtype == numpy.uint8:
            return {"u8hex": v.tobytes().hex()}
        return [to_json(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, numpy.generic):
        return to_json(v.item())
    if isinstance(v, float):
        return {"f64bits": struct.unpack("<Q", struct.pack("<d", v))[0]}
    return v


STORE = get_typestore(Stores.ROS2_KILTED)


def main():
    cases = json.loads(pathlib.Path(sys.argv[1]).read_text())
    store = STORE
    msg_dir = pathlib.Path(sys.argv[2])
    for path in sorted(msg_dir.glob("quiver_msgs/*.msg")):
        name = f"quiver_msgs/msg/{path.stem}"
        store.register(get_types_from_msg(path.read_text(), name))
    out = []
    for case in cases:
        msg = store.deserialize_cdr(bytes.fromhex(case["cdr"]), case["type"])
        again = store.serialize_cdr(msg, case["type"])
        out.append({"values": to_json(msg), "cdr": bytes(again).hex()})
    json.dump(out, sys.stdout)


main()
