"""SEED from a teacher cache: the same step as with the live teacher, refusals, resuming."""

import numpy as np
import pytest
import torch

from tests.support.solo import needs_solo
from tests.support.teacher_cache import build_cache, parsed, save_teacher

pytestmark = needs_solo


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return save_teacher(tmp_path_factory.mktemp("teacher") / "teacher.pth")


@pytest.fixture(scope="module")
def cache16(tiny_data, teacher, tmp_path_factory):
    """A whole float16 cache, V = 2, made in one pass."""
    return build_cache(tiny_data, teacher, tmp_path_factory.mktemp("c16") / "cache")


def _batch(dataset, keys):
    items = [dataset[k] for k in keys]
    return (torch.stack([it[0] for it in items]), torch.stack([it[1][0] for it in items]),
            torch.tensor([it[2] for it in items]))


def test_a_step_from_the_cache_equals_a_live_step(tiny_data, teacher, tmp_path):
    from seed_solo.harness.methods.seed import SEED
    from seed_solo.teacher_cache.views import (
        CachedRows,
        ReplayedViews,
        epoch_view,
        training_images,
        view_transform,
    )

    path = build_cache(tiny_data, teacher, tmp_path / "cache", "+cache.dtype=float32")
    student = "backbone.name=tiny_resnet10"
    live = SEED(parsed(tiny_data, teacher, student))
    cfg = parsed(tiny_data, teacher, student, f"+method_kwargs.teacher_cache={path}")
    cached = SEED(cfg)
    assert cached.teacher is None and not [k for k, _ in cached.named_parameters()
                                           if k.startswith("teacher.")]
    cached.load_state_dict(live.state_dict())
    dataset = ReplayedViews(training_images(cfg), view_transform(cfg), cfg.seed)
    for step, epoch in enumerate((0, 1)):  # two steps: the second reads the first's queue rows
        keys = [(i, epoch_view(cfg.seed, i, epoch, 2)) for i in range(8 * step, 8 * step + 8)]
        pairs, crops, targets = _batch(dataset, keys)
        results = []
        for model, first in ((live, pairs[:, 0]), (cached, pairs)):
            model.zero_grad()
            batch = [first, [crops], targets]
            if model is cached and step == 1:  # as in training: the loader's rows, not keys
                assert live.on_before_batch_transfer(batch, 0) is batch  # Lightning's own hook
                rows = CachedRows(cached.teacher_cache)([dataset[k] for k in keys])
                torch.testing.assert_close(rows[1][0], crops)  # views and labels as rendered
                torch.testing.assert_close(rows[2], targets)
                batch = [rows[0], [crops], targets]
                assert batch[0].dtype == torch.float32 and batch[0].shape == (8, 96)
                torch.testing.assert_close(
                    batch[0], cached.teacher_cache.lookup(pairs[:, 0], pairs[:, 1]))
            loss = model.training_step(batch, step)
            loss.backward()
            model.on_train_batch_end(None, None, step)
            grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
            results.append((loss.detach(), grads, model.queue.get().clone()))
        (loss_l, grads_l, queue_l), (loss_c, grads_c, queue_c) = results
        torch.testing.assert_close(loss_c, loss_l, rtol=1e-5, atol=1e-6)
        assert grads_l.keys() == grads_c.keys() and "projector.0.weight" in grads_c
        for k in grads_l:  # float32 noise of the teacher's batch (1/tau_T = 100 amplifies it)
            scale = float(grads_l[k].abs().max())
            torch.testing.assert_close(grads_c[k], grads_l[k], rtol=1e-4, atol=1e-5 * scale)
        assert queue_c.shape == (8 * (step + 1), 96)
        torch.testing.assert_close(queue_c, queue_l, rtol=0, atol=1e-6)
    # the student's gradients do depend on which view's embedding is used
    wrong = pairs.clone()
    wrong[:, 1] = 1 - wrong[:, 1]
    cached.zero_grad()
    cached.training_step([wrong, [crops], targets], 2).backward()
    assert not torch.allclose(cached.projector[0].weight.grad, grads_c["projector.0.weight"])


def test_lookup_reads_the_rows_of_each_image_and_view(cache16):
    from seed_solo.teacher_cache.store import TeacherCache

    cache = TeacherCache(cache16)
    array = np.load(cache16 / "embeddings.npy")
    assert (cache.size, cache.views, cache.dim) == (40, 2, 96) and array.dtype == np.float16
    norms = np.linalg.norm(array.astype(np.float32), axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=2e-3)  # L2-normalised rows
    z = cache.lookup(torch.tensor([3, 3, 39]), torch.tensor([0, 1, 1]))
    assert z.dtype == torch.float32 and z.shape == (3, 96)
    rows = array[[3, 3, 39], [0, 1, 1]].astype(np.float32)
    np.testing.assert_allclose(z.numpy(), rows, rtol=0, atol=2e-3)  # float16, renormalised
    np.testing.assert_allclose(z.norm(dim=1).numpy(), 1.0, rtol=0, atol=1e-6)
    assert not torch.equal(z[0], z[1])  # two views of one image are two embeddings
    with pytest.raises(IndexError, match="holds 40 images x 2 views"):
        cache.lookup(torch.tensor([40]), torch.tensor([0]))


@pytest.mark.parametrize("override, message", [
    ("augmentations.0.color_jitter.prob=0.5",
     "augmentations differ (color_jitter.prob: 0.8 in the cache, 0.5 in this run)"),
    ("augmentations.0.crop_size=24", "crop_size: 32 in the cache, 24 in this run"),
    ("+seed=7", "seed is 5 in the cache but 7 in this run"),
    ("method_kwargs.teacher=torchvision:resnet18", "teacher is '"),
    ("+data.fraction=0.5", "size is 40 in the cache but 20 in this run"),
    ("data.format=dali", "DALI's pipelines cannot be replayed"),
    ("augmentations.0.num_crops=2", "replays one crop per image, but the augmentations give"),
])
def test_a_cache_for_another_run_is_refused_naming_the_setting(
        tiny_data, teacher, cache16, override, message):
    from seed_solo.core.errors import EXPECTED
    from seed_solo.teacher_cache.views import cached_train_loader

    with pytest.raises(EXPECTED) as err:  # the crop count is refused by the parse already
        cached_train_loader(parsed(tiny_data, teacher, override,
                                   f"+method_kwargs.teacher_cache={cache16}"))
    assert message in str(err.value)


def test_another_teacher_file_or_image_list_is_refused(tiny_data, teacher, cache16, tmp_path):
    import json
    import shutil

    from seed_solo.core.errors import UserError
    from seed_solo.harness.methods.seed import SEED
    from seed_solo.teacher_cache.views import cached_train_loader

    other = save_teacher(tmp_path / "teacher.pth", seed=1)
    cfg = parsed(tiny_data, teacher, f"+method_kwargs.teacher_cache={cache16}")
    cfg.method_kwargs.teacher = str(other)
    with pytest.raises(UserError, match="teacher is '.*' in the cache but '.*' in this run"):
        cached_train_loader(cfg)
    # the same path holding other bytes: a cache whose recorded file fingerprint differs
    edited = tmp_path / "edited"
    shutil.copytree(cache16, edited)
    meta = json.loads((edited / "meta.json").read_text())
    meta["teacher_file"] = "1528213:0123456789abcdef"
    (edited / "meta.json").write_text(json.dumps(meta))
    cfg = parsed(tiny_data, teacher, f"+method_kwargs.teacher_cache={edited}")
    with pytest.raises(UserError, match="teacher_file is '1528213:0123456789abcdef' in the cache"):
        cached_train_loader(cfg)
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    (data / "train/class0/0.png").rename(data / "train/class0/renamed.png")
    cfg = parsed(data, teacher, f"+method_kwargs.teacher_cache={cache16}")
    with pytest.raises(UserError, match="the image list differs"):
        cached_train_loader(cfg)
    with pytest.raises(ValueError, match="teacher cache .* embeds into 96 dimensions"):
        SEED(parsed(tiny_data, teacher, "method_kwargs.proj_output_dim=64",
                    f"+method_kwargs.teacher_cache={cache16}"))


def test_an_interrupted_pass_is_never_used_and_resumes_to_the_same_file(
        tiny_data, teacher, cache16, tmp_path):
    from seed_solo.core.errors import UserError
    from seed_solo.teacher_cache.store import TeacherCache

    path = tmp_path / "cache"
    build_cache(tiny_data, teacher, path, "+cache.max_chunks=1")  # 1 of 3 chunks
    partial = tmp_path / "cache.partial"
    assert not path.exists() and sorted(p.name for p in (partial / "done").iterdir()) == [
        "000000"]
    with pytest.raises(UserError, match="interrupted: rerun the same"):
        TeacherCache(path)
    with pytest.raises(ValueError, match=r"another cache \(views: 2 there, 3 now\)"):
        build_cache(tiny_data, teacher, path, views=3)
    build_cache(tiny_data, teacher, path, "+cache.max_chunks=1")  # 2 of 3
    assert sorted(p.name for p in (partial / "done").iterdir()) == ["000000", "000001"]
    build_cache(tiny_data, teacher, path)
    assert not partial.exists() and sorted(p.name for p in path.iterdir()) == [
        "checksums.json", "embeddings.npy", "meta.json"]
    assert (path / "embeddings.npy").read_bytes() == (cache16 / "embeddings.npy").read_bytes()
    assert TeacherCache(path).checksums() == TeacherCache(cache16).checksums()
    assert TeacherCache(path).meta == TeacherCache(cache16).meta


def _copy_of(cache, tmp_path):
    import shutil

    return shutil.copytree(cache, tmp_path / "copy")


def test_flipped_bytes_in_a_cache_are_refused_naming_the_chunk(cache16, tmp_path):
    from seed_solo.core.errors import DataError
    from seed_solo.teacher_cache.store import EMBEDDINGS, TeacherCache

    path = _copy_of(cache16, tmp_path)
    array = np.load(path / EMBEDDINGS, mmap_mode="r+")
    array[20, 1, :4] = np.nan  # image 20 is in chunk 1 (16 images a chunk)
    array.flush()
    del array
    with pytest.raises(DataError, match=r"the rows of images 16..31 \(chunk 1\) in "
                       r"embeddings.npy differ from what the cache pass wrote: the file is "
                       r"corrupt. .*rebuild it with `python -m seed_solo.cache`"):
        TeacherCache(path)


def test_a_truncated_cache_names_the_file_and_the_fix(cache16, tmp_path):
    from seed_solo.core.errors import DataError
    from seed_solo.teacher_cache.store import EMBEDDINGS, TeacherCache

    path = _copy_of(cache16, tmp_path)
    whole = (path / EMBEDDINGS).stat().st_size
    with open(path / EMBEDDINGS, "r+b") as f:
        f.truncate(whole - 100)
    with pytest.raises(DataError, match=rf"teacher cache {path}: embeddings.npy is truncated "
                       rf"\({whole - 100} of {whole} bytes\), a copy or a disk cut short; copy "
                       r"the whole folder again, or delete it and rebuild it"):
        TeacherCache(path)


def test_a_second_pass_into_the_same_cache_says_another_pass_holds_it(tiny_data, teacher,
                                                                     tmp_path):
    import subprocess
    import sys

    from seed_solo.core.errors import ConfigError
    from tests.support.commands import REPO

    path = tmp_path / "cache"
    holder = subprocess.Popen(  # a pass in another process, holding the cache's lock
        [sys.executable, "-c", "import sys, time\n"
         "from seed_solo.runs.locks import folder_lock\n"
         f"with folder_lock({str(tmp_path)!r}, name='cache.lock'):\n"
         "    print('held', flush=True); time.sleep(60)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=rf"another cache pass is writing {path} \(it "
                           rf"holds {path}.lock\); wait for it to finish and run this command "
                           r"again .*, or choose another cache.path."):
            build_cache(tiny_data, teacher, path)
        assert not (tmp_path / "cache.partial").exists()  # nothing touched
    finally:
        holder.kill()
        holder.wait()
    build_cache(tiny_data, teacher, path)  # the lock is free again
    assert (path / "checksums.json").is_file()
