"""Replayable views: (seed, image, view) fixes the crop, whatever the workers, ranks or RNG."""

import os
import random

import numpy as np
import pytest
import torch

from seed_solo.teacher_cache.views import epoch_view, epoch_views, view_seed
from tests.support.commands import REPO
from tests.support.gloo import run_ranks
from tests.support.solo import needs_solo

DATA_ENV = "SEED_SOLO_TEST_VIEWS_DATA"
SEED, VIEWS = 5, 3


@pytest.mark.parametrize("views", [1, 2, 5])
def test_every_view_is_used_once_per_round_and_rounds_differ(views):
    indexes = np.arange(200)
    schedule = np.stack([epoch_views(SEED, indexes, e, views) for e in range(3 * views)], 1)
    for r in range(3):  # each round of `views` epochs is a permutation of range(views)
        rounds = np.sort(schedule[:, r * views:(r + 1) * views], axis=1)
        assert (rounds == np.arange(views)).all()
    assert [epoch_view(SEED, 7, e, views) for e in range(3 * views)] == schedule[7].tolist()
    if views == 5:  # fresh permutations: the rounds of an image are not all the same order
        assert (schedule[:, :5] != schedule[:, 5:10]).any(axis=1).mean() > 0.9
        assert len({tuple(row) for row in schedule[:, :5]}) > 50  # and images differ
    assert epoch_view(SEED + 1, 7, 0, 5) in range(5)
    assert view_seed(SEED, 1, 2) != view_seed(SEED, 2, 1) != view_seed(SEED + 1, 1, 2)


def _pipeline():
    from omegaconf import OmegaConf
    from solo.data.pretrain_dataloader import build_transform_pipeline, prepare_datasets

    from seed_solo.teacher_cache.views import ReplayedViews

    aug = OmegaConf.load(REPO
                         / "configs/distill/imagenet/augmentations/mocov2.yaml")[0]
    aug.crop_size = 24
    aug.solarization.prob = 0.2  # every kind of random step, solo-learn's python-random blur too
    images = prepare_datasets("custom", None, train_data_path=os.environ[DATA_ENV] + "/train")
    return ReplayedViews(images, build_transform_pipeline("custom", aug), SEED)


@needs_solo
def test_a_view_is_the_same_whatever_the_global_rng_and_leaves_it_untouched(tiny_data):
    os.environ[DATA_ENV] = str(tiny_data)
    views = _pipeline()
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    first = views[(4, 1)]
    states = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    torch.rand(3)
    random.random()
    again = views[(4, 1)]
    assert torch.equal(first[0], torch.tensor([4, 1])) and first[2] == 0
    assert torch.equal(first[1][0], again[1][0]) and first[1][0].shape == (3, 24, 24)
    assert not torch.equal(first[1][0], views[(4, 2)][1][0])
    assert not torch.equal(first[1][0], views[(5, 1)][1][0])
    torch.manual_seed(0)
    random.seed(0)
    views[(4, 1)]
    after = torch.get_rng_state(), random.getstate(), np.random.get_state()[1]
    assert torch.equal(after[0], states[0]) and after[1] == states[1]
    assert (after[2] == states[2]).all()


def _epochs(num_workers: int):
    from torch.utils.data import DataLoader

    from seed_solo.teacher_cache.views import ViewSampler

    views = _pipeline()
    sampler = ViewSampler(len(views), VIEWS, SEED)
    loader = DataLoader(views, batch_size=8, sampler=sampler, num_workers=num_workers)
    out = []
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        torch.manual_seed(100 + epoch)  # the workers' global RNG differs from run to run
        out.append([(keys, crops[0]) for keys, crops, _ in loader])
    return views, out


@needs_solo
def test_views_match_across_worker_counts_and_follow_the_epoch_schedule(tiny_data):
    os.environ[DATA_ENV] = str(tiny_data)
    views, serial = _epochs(0)
    _, parallel = _epochs(2)
    for epoch, (a, b) in enumerate(zip(serial, parallel)):
        keys = torch.cat([k for k, _ in a])
        assert sorted(keys[:, 0].tolist()) == list(range(40))  # every image once an epoch
        assert keys[:, 1].tolist() == epoch_views(SEED, keys[:, 0], epoch, VIEWS).tolist()
        for (ka, ca), (kb, cb) in zip(a, b):
            assert torch.equal(ka, kb) and torch.equal(ca, cb)
        # the crop a batch carries is the view its key names, rendered anew in this process
        k0, c0 = a[0]
        for j in range(8):
            assert torch.equal(c0[j], views[tuple(k0[j].tolist())][1][0])
    assert not torch.equal(torch.cat([k for k, _ in serial[0]]),
                           torch.cat([k for k, _ in serial[1]]))  # a fresh order per epoch


def _rank_views(rank: int, world: int):
    """This rank's share of epoch 1, as Lightning's DDP sampler wrapper deals it out."""
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    from seed_solo.teacher_cache.views import ViewSampler

    views = _pipeline()
    torch.manual_seed(rank)  # each rank's global RNG differs
    sampler = DistributedSamplerWrapper(ViewSampler(len(views), VIEWS, SEED), num_replicas=world,
                                        rank=rank, shuffle=True, seed=0)
    sampler.set_epoch(1)
    items = [views[key] for key in sampler]
    return {"keys": torch.stack([k for k, _, _ in items]),
            "crops": torch.stack([c[0] for _, c, _ in items])}


@pytest.mark.slow
@needs_solo
def test_views_match_across_one_and_two_gloo_ranks(tiny_data, tmp_path):
    os.environ[DATA_ENV] = str(tiny_data)  # inherited by the spawned ranks
    one = _rank_views(0, 1)
    two = run_ranks(_rank_views, tmp_path, world=2)
    keys = torch.cat([r["keys"] for r in two])
    assert sorted(keys[:, 0].tolist()) == list(range(40))
    assert keys[:, 1].tolist() == epoch_views(SEED, keys[:, 0], 1, VIEWS).tolist()
    single = {tuple(k.tolist()): c for k, c in zip(one["keys"], one["crops"])}
    assert len(single) == 40
    for r in two:
        for k, c in zip(r["keys"], r["crops"]):
            assert torch.equal(c, single[tuple(k.tolist())])
