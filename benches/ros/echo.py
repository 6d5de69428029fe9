"""An rclpy echo node for quiver's ROS 2 round-trip benchmark: republishes every message of TYPE
from IN_TOPIC on OUT_TOPIC unchanged, with QoS `default` (reliable, volatile, keep last 10) or
`sensor_data` (best effort, keep last 5). Prints `ready`; every second it rewrites STATS with how
many it received, so the benchmark can tell which direction lost a message.

usage: python echo.py TYPE IN_TOPIC OUT_TOPIC STATS [default|sensor_data]
"""
import importlib
import sys

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

type_name, in_topic, out_topic = sys.argv[1:4]
stats = sys.argv[4]
qos = qos_profile_sensor_data if sys.argv[5:] == ["sensor_data"] else 10
pkg, _, name = type_name.split("/")
cls = getattr(importlib.import_module(f"{pkg}.msg"), name)

rclpy.init()
node = Node("quiver_echo")
pub = node.create_publisher(cls, out_topic, qos)
count = [0]


def echo(msg):
    count[0] += 1
    pub.publish(msg)


def write_stats():
    with open(stats, "w") as f:
        f.write(f"{count[0]}\n")


node.create_subscription(cls, in_topic, echo, qos)
node.create_timer(1.0, write_stats)
print("ready", flush=True)
rclpy.spin(node)
