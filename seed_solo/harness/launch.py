"""What an outside launcher started: torchrun (TorchElastic) or srun, one process per device.

Lightning takes ranks and the world size from the launcher's environment, while solo-learn
scales the learning rate by ``len(devices) * num_nodes`` from the config. The two must agree,
or the run trains at another lr than its global batch asks for (Lightning itself checks only
the product under torchrun): :func:`check_launch` says so in one sentence before anything runs.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Tuple

from seed_solo.core.errors import ConfigError


def launched(env: Mapping[str, str] = os.environ) -> Optional[Tuple[str, Optional[int], int]]:
    """(launcher, processes per node, nodes) when srun or torchrun started this process, else
    None. Slurm first, as Lightning picks it first; its processes per node are known only from
    ``--ntasks-per-node``."""
    if "SLURM_NTASKS" in env and env.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
        per_node = env.get("SLURM_NTASKS_PER_NODE")
        return ("srun", int(per_node) if per_node else None, int(env.get("SLURM_NNODES", "1")))
    if "TORCHELASTIC_RUN_ID" in env and "LOCAL_WORLD_SIZE" in env:
        per_node = int(env["LOCAL_WORLD_SIZE"])
        return "torchrun", per_node, int(env["WORLD_SIZE"]) // per_node
    return None


def check_launch(devices: int, num_nodes: int, original: object = None,
                 env: Mapping[str, str] = os.environ) -> None:
    """Raise :class:`ConfigError` when ``devices`` per node or ``num_nodes`` differ from what the
    launcher started (``original``: the ``devices`` value as the user wrote it)."""
    found = launched(env)
    if found is None:
        return
    launcher, per_node, nodes = found
    if (per_node is None or per_node == devices) and nodes == num_nodes:
        return
    per_node_text = per_node if per_node is not None else devices
    raise ConfigError(
        f"{launcher} started {per_node_text} process(es) per node on {nodes} node(s), but the "
        f"config says devices={original if original is not None else devices} "
        f"({devices} per node) and num_nodes={num_nodes}; pass devices={per_node_text} "
        f"num_nodes={nodes}, so that the lr is scaled by the global batch that really runs."
    )
