# SPDX-License-Identifier: Apache-2.0
"""The Fast DDS profiles a swarm's processes get: shipped in config/, or written for a run."""

from __future__ import annotations

import os
from pathlib import Path

# Where Fast DDS (rmw_fastrtps) looks for an XML profile, under the names of its versions 2 and 3.
# A plan folder's nodes (robots on separate computers) get the shipped config/fastdds.xml, which
# keeps every datagram below the MTU: a lossy link then loses fragments that reliable QoS
# repairs, not whole messages. One machine's swarm does not: its messages never cross a network,
# and the profile's short heartbeat cost 6% of its rounds/s (docs/deployment.md). It gets
# config/fastdds_one_machine.xml, whose short lease ends within 5 s the harm a killed process
# does to its neighbours' shared memory (docs/faults.md). A profile the user set wins.
DDS_PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
DDS_PROFILE = "fastdds.xml"
ONE_MACHINE_PROFILE = "fastdds_one_machine.xml"

# With LOCALHOST discovery rmw_fastrtps (Jazzy, 8.4.1) announces a participant to the ports of the
# first 32 participants of the domain on the machine only (rmw_fastrtps_shared_cpp/src/
# participant.cpp, lines 196-204: maxInitialPeersRange = 32, set in code, which no profile
# changes). Two processes beyond the 32nd never find each other: a swarm of 40 agent processes
# stalled at round 0 with exactly its 9 last-started agents waiting for each other. A run's
# profile therefore lists the discovery ports of the participants after those 32 as initial
# peers of its own, for all of its processes and as many others again (a second swarm, RViz, a
# process of the last run still ending), which costs each announcement a datagram per port.
RMW_LOCALHOST_PEERS = 32
# RTPS 9.6.1.1 (the well-known ports Fast DDS uses): a participant's discovery unicast port
PORT_BASE, DOMAIN_GAIN, PARTICIPANT_GAIN, DISCOVERY_UNICAST_OFFSET = 7400, 250, 2, 10


def dds_profile(name: str = DDS_PROFILE) -> Path | None:
    """Return a shipped Fast DDS profile (config/<name>), wherever the package is."""
    from .core.config import preset_dirs

    return next((d / name for d in preset_dirs() if (d / name).is_file()), None)


def user_dds_profile() -> bool:
    """Tell whether the user set a Fast DDS profile of their own: it wins over the shipped ones."""
    return any(os.environ.get(name) for name in DDS_PROFILE_VARIABLES)


def one_machine_environment(profile: Path | None = None) -> dict:
    """Return the DDS profile variables of a swarm on one machine: none if the user set one."""
    profile = profile or dds_profile(ONE_MACHINE_PROFILE)
    if profile is None or user_dds_profile():
        return {}
    return {name: str(profile) for name in DDS_PROFILE_VARIABLES}


def discovery_port(domain: int, participant: int) -> int:
    """Return the port on which participant slot `participant` of `domain` hears discovery."""
    return PORT_BASE + DOMAIN_GAIN * domain + DISCOVERY_UNICAST_OFFSET + \
        PARTICIPANT_GAIN * participant


def profile_with_peers(shipped: str, domain: int, participants: int) -> str:
    """
    Return the one-machine profile with initial peers beyond rmw_fastrtps's 32.

    Ports for participant slots 32 .. 32 + 2 participants - 1 on 127.0.0.1: a port given is
    taken as it is, where rmw's own peer (127.0.0.1, no port) stands for the first 32.
    """
    peers = "".join(f"\n            <locator><udpv4><address>127.0.0.1</address>"
                    f"<port>{discovery_port(domain, slot)}</port></udpv4></locator>"
                    for slot in range(RMW_LOCALHOST_PEERS,
                                      RMW_LOCALHOST_PEERS + 2 * participants))
    listed = (f"<builtin>\n        <!-- written for this run (bildmacro_ros/dds_profiles.py): "
              f"discovery ports of domain {domain}'s participants beyond rmw_fastrtps's 32 -->"
              f"\n        <initialPeersList>{peers}\n        </initialPeersList>")
    if shipped.count("<builtin>") != 1:
        raise ValueError("the one-machine profile needs exactly one <builtin> element")
    return shipped.replace("<builtin>", listed, 1)


def one_machine_dds(participants: int, run_dir: Path | None) -> tuple[dict, dict]:
    """
    Return (environment, files) for a swarm of `participants` DDS participants on one machine.

    With a run folder: its own copy of the one-machine profile, with the peers that LOCALHOST
    discovery would miss (written with the node parameters); without, the shipped profile.
    Nothing if the user set a profile of their own.
    """
    shipped = dds_profile(ONE_MACHINE_PROFILE)
    if shipped is None or user_dds_profile() or run_dir is None:
        return one_machine_environment(shipped), {}
    try:
        domain = int(os.environ.get("ROS_DOMAIN_ID") or 0)
    except ValueError:  # rclpy refuses it in every node, with its own message
        return one_machine_environment(shipped), {}
    path = Path(run_dir) / ONE_MACHINE_PROFILE
    return one_machine_environment(path), \
        {str(path): profile_with_peers(shipped.read_text(), domain, participants)}
