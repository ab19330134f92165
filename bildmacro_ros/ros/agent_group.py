"""`python -m bildmacro_ros.ros.agent_group`: several agent nodes in one process (see agent.group_main)."""

import sys

from .agent import group_main

if __name__ == "__main__":
    sys.exit(group_main())
