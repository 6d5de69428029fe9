"""A real rclpy node for quiver's ROS 2 tests (rclpy from PyPI, Fast DDS).

usage: python peer.py listen TYPE TOPIC COUNT OUT.json   # subscribe, write COUNT messages as JSON
       python peer.py talk TYPE TOPIC IN.json COUNT      # publish IN.json every 100 ms, COUNT times
                                                         # (the reader may match later than we do)
       python peer.py loop CASES.json OUT.json           # per case {type, to, back, value}: publish value
                                                         # on `to` every 100 ms until 3 messages came
                                                         # back on `back`; write them per `back` topic
       python peer.py graph NODE OUT.json                # wait for ROS node /NODE with endpoints; write
                                                         # what the ROS graph says of it as JSON

TYPE is e.g. geometry_msgs/msg/Twist. JSON as in cdr_oracle.py: floats as {"f64bits": N}, uint8
arrays as {"u8hex": ...}. QoS: reliable, volatile, keep last 10 (rclpy's default); with a last
argument `best_effort`: best effort instead.
"""
import array
import importlib
import json
import struct
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy


def msg_class(type_name):
    pkg, _, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def to_json(v):
    if hasattr(v, "get_fields_and_field_types"):
        return {k: to_json(getattr(v, k)) for k in v.get_fields_and_field_types()}
    if isinstance(v, (bytes, bytearray)):
        return {"u8hex": bytes(v).hex()}
    if isinstance(v, array.array):
        if v.typecode == "B":
            return {"u8hex": v.tobytes().hex()}
        return [to_json(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, float):
        return {"f64bits": struct.unpack("<Q", struct.pack("<d", v))[0]}
    return v


def from_json(cls, value):
    msg = cls()
    for field, ftype in cls.get_fields_and_field_types().items():
        v = value[field]
        current = getattr(msg, field)
        setattr(msg, field, convert(current, ftype, v))
    return msg


def convert(current, ftype, v):
    if isinstance(v, dict) and "f64bits" in v:
        return struct.unpack("<d", struct.pack("<Q", v["f64bits"]))[0]
    if isinstance(v, dict) and "u8hex" in v:
        return bytes.fromhex(v["u8hex"])
    if isinstance(v, dict):
        return from_json(type(current), v)
    if isinstance(v, list):
        if "float" in ftype or "double" in ftype:
            return [struct.unpack("<d", struct.pack("<Q", x["f64bits"]))[0] for x in v]
        return v
    return v


def graph(node_name, out):
    """What rclpy's graph API (the one `ros2 node list` / `ros2 node info` use) says of NODE."""
    rclpy.init()
    node = Node("quiver_test_graph")
    print("ready", flush=True)
    found = {}
    deadline = time.time() + 60
    while time.time() < deadline:
        rclpy.spin_once(node, timeout_sec=0.2)
        nodes = node.get_node_names_and_namespaces()
        if (node_name, "/") not in nodes:
            continue
        pubs = node.get_publisher_names_and_types_by_node(node_name, "/")
        subs = node.get_subscriber_names_and_types_by_node(node_name, "/")
        if pubs and subs:
            found = {"nodes": sorted(list(n) for n in nodes), "publishers": sorted([t, list(ty)] for t, ty in pubs),
                     "subscribers": sorted([t, list(ty)] for t, ty in subs)}
            break
    with open(out, "w") as f:
        json.dump(found, f)
    node.destroy_node()
    rclpy.shutdown()


def loop(cases_file, out):
    """Several topics at once, through a graph and back: one process, so the test stays light."""
    cases = json.load(open(cases_file))
    rclpy.init()
    node = Node("quiver_test_loop")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    got = {c["back"]: [] for c in cases}
    pubs = []
    for c in cases:
        cls = msg_class(c["type"])
        node.create_subscription(cls, c["back"], lambda m, b=c["back"]: got[b].append(to_json(m)), qos)
        pubs.append((node.create_publisher(cls, c["to"], qos), from_json(cls, c["value"]), c["back"]))
    print("ready", flush=True)
    deadline = time.time() + 60
    while time.time() < deadline and any(len(got[b]) < 3 for _, _, b in pubs):
        for pub, msg, back in pubs:
            if len(got[back]) < 3:
                pub.publish(msg)
        end = time.time() + 0.1
        while time.time() < end:
            rclpy.spin_once(node, timeout_sec=0.01)
    with open(out, "w") as f:
        json.dump(got, f)
    node.destroy_node()
    rclpy.shutdown()


def main():
    if sys.argv[1] == "graph":
        return graph(sys.argv[2], sys.argv[3])
    if sys.argv[1] == "loop":
        return loop(sys.argv[2], sys.argv[3])
    best_effort = sys.argv[-1] == "best_effort"
    if best_effort:
        sys.argv.pop()
    qos = QoSProfile(
        depth=10,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
    )
    mode, type_name, topic = sys.argv[1:4]
    cls = msg_class(type_name)
    rclpy.init()
    node = Node("quiver_test_peer")
    if mode == "listen":
        count, out = int(sys.argv[4]), sys.argv[5]
        got = []
        node.create_subscription(cls, topic, lambda m: got.append(to_json(m)), qos)
        print("ready", flush=True)
        deadline = time.time() + 60
        while len(got) < count and time.time() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        with open(out, "w") as f:
            json.dump(got, f)
    else:
        value, count = json.load(open(sys.argv[4])), int(sys.argv[5])
        pub = node.create_publisher(cls, topic, qos)
        deadline = time.time() + 60
        while pub.get_subscription_count() == 0 and time.time() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        print("matched", flush=True)
        msg = from_json(cls, value)
        for _ in range(count):
            pub.publish(msg)
            rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    rclpy.shutdown()


main()
