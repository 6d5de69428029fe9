"""An rclpy echo node for quiver's ROS 2 round-trip benchmark: republishes every message of TYPE
from IN_TOPIC on OUT_TOPIC unchanged (reliable, volatile, keep last 10). Prints `ready`.

usage: python echo.py TYPE IN_TOPIC OUT_TOPIC
"""
import importlib
import sys

import rclpy
from rclpy.node import Node

type_name, in_topic, out_topic = sys.argv[1:4]
pkg, _, name = type_name.split("/")
cls = getattr(importlib.import_module(f"{pkg}.msg"), name)

rclpy.init()
node = Node("quiver_echo")
pub = node.create_publisher(cls, out_topic, 10)
node.create_subscription(cls, in_topic, pub.publish, 10)
print("ready", flush=True)
rclpy.spin(node)
