"""Two torchrun "nodes" of 2 CPU processes each (4 ranks, gloo, rendezvous on 127.0.0.1) run
``python -m seed_solo.distill`` with ``num_nodes=2 devices=2``: 3 steps of 2 images per rank.

Checked against computations made here, in one process:
- the checkpoint's queue holds the teacher embeddings of the images each rank saw, step by step,
  in rank order (the views are fixed: every augmentation off; each rank's images follow from
  Lightning's DistributedSampler, seeded with the run's seed);
- the logged SEED loss equals the loss computed over each step's 4 batches concatenated, with
  the queue as it was before that step (lr 0 keeps the student as it started; BatchNorm
  normalises each rank's own batch, as DDP on CPUs without SyncBatchNorm does);
- each "node" downloads the zoo teacher once, from a server on 127.0.0.1 that pauses mid-file:
  the other rank of the node waits and reads only the whole file.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data.distributed import DistributedSampler

from seed_solo.core.objectives import seed_loss
from tests.support.commands import environment
from tests.support.data import make_image_folders
from tests.support.distill_cpu import (
    BATCH,
    SEED,
    images_of,
    overrides,
    torchrun_nodes,
    write_teacher,
)
from tests.support.solo import needs_solo

pytestmark = [needs_solo, pytest.mark.slow]
NODES, PER_NODE = 2, 2
WORLD = NODES * PER_NODE


def batches(count):
    """batches[step][rank]: the dataset indices rank ``rank`` trained on at ``step``."""
    per_rank = [list(DistributedSampler(range(count), WORLD, r, shuffle=True, seed=SEED))
                for r in range(WORLD)]
    return [[per_rank[r][s * BATCH:(s + 1) * BATCH] for r in range(WORLD)]
            for s in range(count // (WORLD * BATCH))]


def test_two_torchrun_nodes_fill_one_queue_and_compute_the_one_process_loss(tmp_path, server):
    data = make_image_folders(tmp_path / "data", classes=3, train_per_class=8, val_per_class=1)
    blob = write_teacher(tmp_path / "teacher.pth.tar").read_bytes()
    server.files["tiny-moco.pth.tar"] = blob
    server.pause["tiny-moco.pth.tar"] = 1.0
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(f"tiny-moco:\n  method: MoCo v1\n  arch: resnet50\n  format: moco\n"
                   f"  embed_dim: 16\n  url: {server.url}/tiny-moco.pth.tar\n  top1: 1.0\n"
                   "  licence: MIT\n")
    caches = [tmp_path / f"cache-node{n}" for n in range(NODES)]
    out = tmp_path / "runs"
    args = overrides(data, out, "tiny-moco", PER_NODE, NODES, "optimizer.lr=0.0",
                     "scheduler.name=none", "max_epochs=1")
    envs = [environment(SEED_SOLO_ZOO=str(zoo), SEED_SOLO_DOWNLOADS=str(c)) for c in caches]
    for node, result in enumerate(torchrun_nodes(args, envs, PER_NODE)):
        assert result.returncode == 0, f"node {node}:\n{result.stderr[-4000:]}"

    # the zoo file: once per node, whole, never a partial file left behind
    assert server.hits["tiny-moco.pth.tar"] == NODES
    for cache in caches:
        assert (cache / "tiny-moco.pth.tar").read_bytes() == blob
        assert not list(cache.glob(".*.part"))

    (run,) = [p for p in (out / "seed").iterdir() if p.is_dir()]
    (ckpt,) = run.glob("*.ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["global_step"] == 3
    queue = state["state_dict"]
    rows = WORLD * BATCH * 3
    assert int(queue["queue.ptr"]) == rows and int(queue["queue.num_filled"]) == rows

    from seed_solo.evaluation.features import trained_model
    from seed_solo.teachers import load_teacher

    images = images_of(data)
    plan = batches(len(images))
    assert len(plan) == 3
    teacher = load_teacher("tiny-moco", zoo_file=str(zoo), download_dir=str(caches[0]))
    expected = torch.cat([teacher(images[idx]) for step in plan for idx in step])
    distinct = torch.cdist(expected, expected) + torch.eye(rows) * 9
    assert distinct.min() > 1e-2  # so that any other order of the rows would be caught
    torch.testing.assert_close(queue["queue.embeddings"][:rows], expected, rtol=0, atol=2e-5)

    student, cfg, _ = trained_model(run)
    student.train()  # BatchNorm on each rank's batch, as in training
    kw = cfg.method_kwargs
    losses = []
    with torch.no_grad():
        for s, step in enumerate(plan):
            z_s = torch.cat([student(images[idx])["z"] for idx in step])  # ranks concatenated
            z_t = expected[s * WORLD * BATCH:(s + 1) * WORLD * BATCH]
            bank = expected[: s * WORLD * BATCH]  # the queue before this step
            losses.append(seed_loss(z_s, z_t, bank, kw.tau_teacher, kw.tau_student))
    (logged,) = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert losses[0] == 0  # an empty queue: the own embedding is the only key
    torch.testing.assert_close(torch.tensor(logged["train_seed_loss"]),
                               torch.stack(losses).mean(), rtol=1e-5, atol=1e-6)


def test_torchrun_with_other_devices_stops_with_one_line(tmp_path):
    """One process started, devices=2 asked: the lr would be scaled for twice the batch."""
    data = make_image_folders(tmp_path / "data", classes=3, train_per_class=2, val_per_class=1)
    args = overrides(data, tmp_path / "runs", "torchvision:resnet18", 2, 1, "max_epochs=1")
    (result,) = torchrun_nodes(args, [environment()], per_node=1)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: torchrun started 1 process(es) per node on 1 node(s), but the "
                      "config says devices=2 (2 per node) and num_nodes=1; pass devices=1 "
                      "num_nodes=1, so that the lr is scaled by the global batch that really "
                      "runs."]
    assert not (tmp_path / "runs").exists()
