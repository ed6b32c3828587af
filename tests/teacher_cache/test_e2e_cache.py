"""The teacher cache through the commands a user runs: the cache script, then the distill script
with TEACHER_CACHE, 2 epochs with 2 data workers; an unfinished cache is refused."""

import socket
import sys

import numpy as np
import pytest

from seed_solo.teacher_cache.views import epoch_views
from tests.support.commands import REPO, checkpoint_state, only, run
from tests.support.solo import needs_solo
from tests.support.teacher_cache import CPU, TEACHER_FORMAT, build_cache, save_teacher

pytestmark = [needs_solo, pytest.mark.slow]

VIEWS, SEED, QUEUE = 2, 5, 64  # 40 images, batch 8: 40 queue rows an epoch


@pytest.fixture(scope="module")
def scripted(tiny_data, tmp_path_factory):
    """A cache made by the cache script: (env of the scripts, folder)."""
    tmp = tmp_path_factory.mktemp("scripted")
    teacher = save_teacher(tmp / "teacher.pth")
    env = {"DATA_DIR": str(tiny_data), "TEACHER": str(teacher), "VIEWS": str(VIEWS),
           "TEACHER_CACHE": str(tmp / "cache")}
    args = [*CPU, f"method_kwargs.teacher_format={TEACHER_FORMAT}", "+cache.chunk_images=16"]
    made = run(["bash", "scripts/cache/imagenet/cache_r18.sh", *args], env=env)
    assert "img/s" in made.stdout and "ETA" in made.stdout
    return env, tmp / "cache"


def test_cache_then_distill_uses_the_cached_view_of_every_sample(scripted, tmp_path):
    env, path = scripted
    cache = np.load(path / "embeddings.npy").astype(np.float32)  # 40 x V x 96

    run(["bash", "scripts/distill/imagenet/seed_r18.sh", *CPU, "max_epochs=2",
         "backbone.name=tiny_resnet10",
         "data.num_workers=2", f"checkpoint.dir={tmp_path / 'runs'}",
         f"method_kwargs.teacher_format={TEACHER_FORMAT}"], env=env)
    state = checkpoint_state(only(tmp_path / "runs/seed", "*/*.ckpt"))
    assert not [k for k in state if k.startswith("teacher.")]
    queue, ptr = state["queue.embeddings"].numpy(), int(state["queue.ptr"])
    assert queue.shape == (QUEUE, 96) and ptr == 80 % QUEUE
    # every queue row is the cached embedding of one image's view of the epoch it was used in
    flat = cache.reshape(-1, cache.shape[-1])

    def pair(row):  # (image, view) whose cached row this queue row is (renormalised float16)
        gaps = np.abs(flat - row).max(axis=1)
        nearest = int(gaps.argmin())
        assert gaps[nearest] < 1e-3 and np.sort(gaps)[1] > 5e-3
        return divmod(nearest, VIEWS)

    for epoch, positions in ((1, range(ptr - 40, ptr)), (0, range(ptr - 64, ptr - 40))):
        pairs = [pair(queue[p % QUEUE]) for p in positions]
        images = [i for i, _ in pairs]
        assert [v for _, v in pairs] == epoch_views(SEED, images, epoch, VIEWS).tolist()
        assert len(set(images)) == len(images)
        assert epoch == 0 or sorted(images) == list(range(40))

def test_distill_refuses_a_cache_whose_pass_did_not_finish(tiny_data, tmp_path):
    teacher = save_teacher(tmp_path / "teacher.pth")
    build_cache(tiny_data, teacher, tmp_path / "cache", "+cache.max_chunks=1")  # 1 of 3 chunks
    env = {"DATA_DIR": str(tiny_data), "TEACHER": str(teacher),
           "TEACHER_CACHE": str(tmp_path / "cache")}
    refused = run(["bash", "scripts/distill/imagenet/seed_r18.sh", *CPU, "max_epochs=1",
                   f"method_kwargs.teacher_format={TEACHER_FORMAT}",
                   f"checkpoint.dir={tmp_path / 'runs'}"], env=env, expect=2)
    assert (f"error: no teacher cache at {tmp_path / 'cache'} (no meta.json); a pass into it "
            "was interrupted: rerun the same") in refused.stderr
    assert not list(tmp_path.rglob("*.ckpt"))


def test_two_torchrun_processes_write_the_same_cache_as_one(tiny_data, scripted, tmp_path):
    env, path = scripted
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               f"--master_port={port}", "-m", "seed_solo.cache", "--config-path",
               str(REPO / "configs/distill/imagenet"), "--config-name", "seed_r18", *CPU,
               f"data.train_path={tiny_data}/train", f"data.val_path={tiny_data}/val",
               f"method_kwargs.teacher={env['TEACHER']}",
               f"method_kwargs.teacher_format={TEACHER_FORMAT}", f"+cache.path={tmp_path / 'c'}",
               f"+cache.views={VIEWS}", "+cache.chunk_images=16"])
    assert "24/24 images of this rank's shard" in out.stdout  # rank 0: chunks 0 and 2
    assert (tmp_path / "c/embeddings.npy").read_bytes() == (path / "embeddings.npy").read_bytes()
    assert (tmp_path / "c/meta.json").read_text() == (path / "meta.json").read_text()
