# SPDX-License-Identifier: Apache-2.0
"""The config's graph section, checked as its type requires (core/graph.py draws the graph)."""

from __future__ import annotations

from .fields import _choice, _float, _int, _mapping, ConfigError

GRAPH_TYPES = ("erdos_renyi", "complete", "ring", "explicit", "geometric")
GRAPH_KEYS = ("type", "edge_probability", "mean_degree", "radius", "weights", "edges")
# the keys only one type takes
OWN_KEYS = {"edge_probability": "erdos_renyi", "mean_degree": "erdos_renyi",
            "radius": "geometric", "edges": "explicit"}


def graph_section(spec: dict, agents: int) -> dict:
    """
    Return the graph section complete and typed.

    An Erdős–Rényi graph takes edge_probability (dense, as in the paper) or mean_degree (sparse,
    for large swarms); a geometric one links the robots that start within `radius` metres.
    """
    spec = _mapping("graph", spec, GRAPH_KEYS)
    kind = _choice("graph.type", spec.get("type", "erdos_renyi"), GRAPH_TYPES)
    for key, owner in OWN_KEYS.items():
        if key in spec and owner != kind:
            raise ConfigError(f"graph.{key}", f"only applies to graph.type {owner}, not {kind}")
    out = {"type": kind,
           "weights": _choice("graph.weights", spec.get("weights", "metropolis"), ("metropolis",))}
    if kind == "erdos_renyi" and "mean_degree" in spec:
        if "edge_probability" in spec:
            raise ConfigError("graph.mean_degree",
                              "give edge_probability or mean_degree, not both")
        out["mean_degree"] = _float("graph.mean_degree", spec["mean_degree"], 0, agents - 1,
                                    low_open=True)
    elif kind == "erdos_renyi":
        out["edge_probability"] = _float("graph.edge_probability",
                                         spec.get("edge_probability", 0.5), 0, 1, low_open=True)
    if kind == "geometric":
        if "radius" not in spec:
            raise ConfigError("graph.radius", "a geometric graph needs its radius in metres (the "
                                              "robots' radio range)")
        out["radius"] = _float("graph.radius", spec["radius"], 0, low_open=True)
    if kind == "explicit":
        out["edges"] = _edges(spec.get("edges"), agents)
    return out


def _edges(edges, agents: int) -> list[list[int]]:
    if not isinstance(edges, list) or not edges:
        raise ConfigError("graph.edges",
                          "must be a non-empty list of [i, j] pairs (0-based agent ids)")
    clean = []
    for n, edge in enumerate(edges):
        if not isinstance(edge, list) or len(edge) != 2:
            raise ConfigError(f"graph.edges[{n}]", f"must be a pair [i, j], got {edge!r}")
        i, j = (_int(f"graph.edges[{n}]", v, 0, agents - 1) for v in edge)
        if i == j:
            raise ConfigError(f"graph.edges[{n}]",
                              f"is a self loop [{i}, {j}]; self weights are implicit")
        clean.append([i, j])
    return clean
