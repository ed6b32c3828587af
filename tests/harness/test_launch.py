"""devices and num_nodes must be what torchrun or srun started: the lr is scaled by them."""

from __future__ import annotations

import pytest

from seed_solo.core.errors import UserError
from seed_solo.harness.launch import check_launch, launched

TORCHRUN = {"TORCHELASTIC_RUN_ID": "none", "LOCAL_WORLD_SIZE": "4", "WORLD_SIZE": "8",
            "RANK": "5", "LOCAL_RANK": "1", "GROUP_RANK": "1"}
SRUN = {"SLURM_NTASKS": "16", "SLURM_NTASKS_PER_NODE": "8", "SLURM_NNODES": "2",
        "SLURM_JOB_NAME": "seed_imagenet"}


def test_what_each_launcher_started():
    assert launched({}) is None
    assert launched(TORCHRUN) == ("torchrun", 4, 2)
    assert launched(SRUN) == ("srun", 8, 2)
    assert launched({**SRUN, "SLURM_JOB_NAME": "bash"}) is None  # an interactive allocation
    assert launched({k: v for k, v in SRUN.items() if k != "SLURM_NTASKS_PER_NODE"}) == \
        ("srun", None, 2)
    assert launched({**TORCHRUN, **SRUN})[0] == "srun"  # Lightning, too, picks Slurm first


def test_matching_settings_pass_and_plain_runs_are_not_checked():
    check_launch(4, 2, env=TORCHRUN)
    check_launch(8, 2, env=SRUN)
    check_launch(3, 1, env={})  # devices=[0,1,2] on one machine, no launcher


@pytest.mark.parametrize("devices,nodes", [(8, 1), (2, 4), (4, 1)])
def test_a_mismatch_is_one_sentence_naming_the_fix(devices, nodes):
    # (8, 1): the product matches the world size, which is all Lightning checks
    with pytest.raises(UserError) as err:
        check_launch(devices, nodes, original=list(range(devices)), env=TORCHRUN)
    text = str(err.value)
    assert text.startswith("torchrun started 4 process(es) per node on 2 node(s), but the config "
                           f"says devices={list(range(devices))} ({devices} per node) and "
                           f"num_nodes={nodes}; pass devices=4 num_nodes=2")
    assert "\n" not in text


def test_srun_without_tasks_per_node_checks_the_nodes():
    env = {k: v for k, v in SRUN.items() if k != "SLURM_NTASKS_PER_NODE"}
    check_launch(5, 2, env=env)
    with pytest.raises(UserError, match="pass devices=5 num_nodes=2"):
        check_launch(5, 1, env=env)
