# SPDX-License-Identifier: Apache-2.0
"""Robot nodes in tests: start one from a NodeSpec, stop it, and a probe node to watch them."""

import subprocess
import threading
import time

from geometry_msgs.msg import PoseStamped
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from bildmacro_ros.launch_plan import NodeSpec, params_yaml
from bildmacro_ros.launchers.processes import process_command


def start(spec: NodeSpec, tmp_path):
    params = tmp_path / f"{spec.name}.params.yaml"
    params.write_text(params_yaml([spec]))  # no YAML aliases, which rcl refuses
    log = open(tmp_path / f"{spec.name}.log", "w")
    return subprocess.Popen(process_command(spec, "", params), stdout=log,
                            stderr=subprocess.STDOUT)


def stop(procs):
    for proc in procs:
        proc.send_signal(2)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Probe:
    """A test node on its own executor thread."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node("probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def wait(self, condition, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=5)


def pose_msg(x, y):
    msg = PoseStamped()
    msg.header.frame_id = "map"
    msg.pose.position.x, msg.pose.position.y = float(x), float(y)
    msg.pose.orientation.w = 1.0
    return msg
