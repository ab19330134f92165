# SPDX-License-Identifier: Apache-2.0
"""The launchers a pip install runs: `bildmacro swarm`, `bildmacro robot`, `bildmacro record`."""
