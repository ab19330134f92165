# SPDX-License-Identifier: Apache-2.0
"""`agent_group`: several agent nodes in one process, on one executor, sharing a ProcessBus."""

import sys

from rclpy.node import Node

from .agent import AgentNode, agents_done
from .lifecycle import parameter_services, run_nodes
from .parameters import read_parameters
from .process_bus import ProcessBus
from ..core.scenario import warm_kernel
from ..protocol.node_parameters import AGENT_GROUP_PARAMETERS
from ..protocol.parameters import ParameterError
from ..scheduling import schedule_agent


def main() -> int:
    """
    Run the agents named by agent_ids in one process.

    Each takes its parameters by node name (agent_<i>) from the --params-file the launcher passes.
    """

    def make():
        helper = Node("agent_group", start_parameter_services=parameter_services())
        ids = read_parameters(helper, AGENT_GROUP_PARAMETERS).agent_ids
        if not ids or len(set(ids)) != len(ids):
            raise ParameterError(f"parameter 'agent_ids': needs distinct agent ids, got {ids}")
        bus = ProcessBus(helper)
        agents = [AgentNode(f"agent_{i}", bus=bus) for i in ids]
        bus.connect()
        return [helper] + agents

    schedule_agent()  # before ROS starts its threads, which inherit it
    warm_kernel()  # before the participant: its start-up is all CPU (core/scenario.py)
    return run_nodes(make, agents_done)


if __name__ == "__main__":
    sys.exit(main())
