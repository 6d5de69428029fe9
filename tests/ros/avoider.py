"""The seed's laser obstacle avoidance as a real rclpy node (../shared/seeds/rclpy-integration.md):
subscribe /scan, publish /cmd_vel every 100 ms: stop and turn when something is near, else drive.
The seed takes the minimum over the whole scan; here it is the front sector (+-35 degrees), or a
robot beside a wall would turn for ever. Prints `ready` once its endpoints exist; runs until
killed.

usage: python avoider.py
"""
import math

import rclpy
from geometry_msgs.msg import Twist
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import LaserScan

SAFE_DISTANCE = 0.7  # m
FRONT = math.radians(35)


class Avoider(Node):
    def __init__(self):
        super().__init__("laser_avoider")
        self.scan = None
        self.create_subscription(LaserScan, "scan", self.on_scan, qos_profile_sensor_data)
        self.cmd = self.create_publisher(Twist, "cmd_vel", 10)
        self.create_timer(0.1, self.control)

    def on_scan(self, msg):
        self.scan = msg

    def control(self):
        cmd = Twist()
        if self.scan is None:
            self.cmd.publish(cmd)  # no scan yet: stand still
            return
        s = self.scan
        front = [
            r
            for i, r in enumerate(s.ranges)
            if abs(math.remainder(s.angle_min + i * s.angle_increment, 2 * math.pi)) <= FRONT
            and s.range_min <= r <= s.range_max
        ]
        nearest = min(front, default=float("inf"))
        if nearest < SAFE_DISTANCE:
            cmd.linear.x = 0.0
            cmd.angular.z = 0.8  # turn away
        else:
            cmd.linear.x = 0.4
        self.cmd.publish(cmd)


def main():
    rclpy.init()
    node = Avoider()
    print("ready", flush=True)
    rclpy.spin(node)


main()
