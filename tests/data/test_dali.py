"""data.format=dali through seed-solo: solo-learn's DALI data modules on tiny JPEG folders.

Runs on the CPU (dali.device=cpu, DALI's CPU operators, no GPU needed). The device check
(benchmarks/device_check.sh) runs the same tests with SEED_SOLO_DALI_DEVICE=gpu on a GPU.
Every ImageNet config sets data.format=dali, so this is the loader those runs use.
"""

import json
import os
import re
import sys

import numpy as np
import pytest
import torch

from tests.support.commands import CPU, REPO, checkpoint_state, only, run
from tests.support.data import make_image_folders
from tests.support.solo import needs_solo

pytestmark = [needs_solo, pytest.mark.slow]

DEVICE = os.environ.get("SEED_SOLO_DALI_DEVICE", "cpu")
ACCELERATOR = "gpu" if DEVICE == "gpu" else "cpu"
if DEVICE not in ("cpu", "gpu"):
    raise ValueError(f"SEED_SOLO_DALI_DEVICE={DEVICE!r}; set it to cpu or gpu.")
if DEVICE == "gpu" and not torch.cuda.is_available():
    pytestmark.append(pytest.mark.skip(reason="SEED_SOLO_DALI_DEVICE=gpu needs a CUDA GPU"))

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])  # ImageNet's


def no_colour_ops(augs):
    """Overrides that turn off the colour operators of every augmentation pipeline."""
    return [f"augmentations.{i}.{op}.prob=0" for i in range(2 if augs else 1)
            for op in ("color_jitter", "grayscale", "gaussian_blur")]


SMALL = ["augmentations=mocov2_small_patches", "augmentations.1.crop_size=8",
         "augmentations.1.num_crops=2"]
# the launch scripts' CPU overrides (docs/usage.md, "On a CPU"), with DALI kept
RUN = [o for o in CPU if not o.startswith(("data.format=", "data.num_workers=", "accelerator="))
       ] + ["data.format=dali", f"dali.device={DEVICE}", "data.num_workers=1",
            f"accelerator={ACCELERATOR}"]


def colour(i):
    """The RGB colour of image ``i`` of a colour-coded folder: R tells the image apart."""
    return np.array([12 + 22 * i, 200 - 9 * i, 90], dtype=np.float64)


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """5 classes of 8 noisy 32 px JPEGs (train) and 4 (val), as DALI reads ImageNet."""
    return make_image_folders(tmp_path_factory.mktemp("jpegs"), suffix=".jpg")


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    """2 classes x 5 flat-colour 24 px JPEGs; image i of the sorted file list has colour(i)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("coded")
    files = []
    for c in range(2):
        (root / "train" / f"c{c}").mkdir(parents=True)
        (root / "val" / f"c{c}").mkdir(parents=True)
        for j in range(5):
            i = len(files)
            img = np.broadcast_to(colour(i).astype(np.uint8), (24, 24, 3))
            Image.fromarray(np.ascontiguousarray(img)).save(root / "train" / f"c{c}" / f"{j}.jpg",
                                                            quality=100)
            Image.fromarray(np.ascontiguousarray(img)).save(root / "val" / f"c{c}" / f"{j}.jpg")
            files.append((f"c{c}/{j}.jpg", c))
    return root, files


def make_cfg(data, *overrides, fmt="dali"):
    from seed_solo.harness.config import compose_config
    from seed_solo.harness.pretrain import parse_pretrain

    cfg = compose_config(REPO / "configs/distill/imagenet", "seed_r18", [
        "data.dataset=custom", f"data.format={fmt}", f"dali.device={DEVICE}",
        "data.num_workers=1", "optimizer.batch_size=5", "augmentations.0.crop_size=16",
        "method_kwargs.queue_size=64", "method_kwargs.teacher=torchvision:resnet18",
        "+performance.disable_channel_last=True", "knn_eval.enabled=False", "devices=1",
        f"data.train_path={data}/train", f"data.val_path={data}/val", *overrides])
    return parse_pretrain(cfg)[0]


def first_batch(cfg):
    """One training batch from seed-solo's data path for ``cfg`` (DALI or torchvision)."""
    from lightning.pytorch import Trainer
    from solo.data.pretrain_dataloader import prepare_dataloader, prepare_datasets

    from seed_solo.data.dali import pretrain_datamodule
    from seed_solo.data.pretrain import pretrain_transform

    dali = cfg.data.format == "dali"
    transform = pretrain_transform(cfg, dali)
    if not dali:
        data = prepare_datasets("custom", transform, train_data_path=cfg.data.train_path)
        return next(iter(prepare_dataloader(data, batch_size=cfg.optimizer.batch_size,
                                            num_workers=0)))
    module = pretrain_datamodule(cfg, transform)
    module.trainer = Trainer(accelerator=ACCELERATOR, devices=1, logger=False)
    module.setup("fit")
    return next(iter(module.train_dataloader()))


def pixels(crop):
    """Per-image mean RGB in 0-255 of a normalised NCHW crop batch, as numpy (N x 3)."""
    per_image = crop.float().mean(dim=(2, 3)).cpu().numpy()
    return (per_image * STD + MEAN) * 255


@pytest.mark.parametrize("augs", [[], SMALL], ids=["mocov2", "small_patches"])
def test_dali_batch_has_the_torchvision_layout_and_normalisation(coded, augs):
    root, _ = coded
    batches = {fmt: first_batch(make_cfg(root, *augs, *no_colour_ops(augs), fmt=fmt))
               for fmt in ("dali", "image_folder")}
    dali, tv = batches["dali"], batches["image_folder"]
    assert len(dali) == len(tv) == 3
    (d_idx, d_crops, d_y), (t_idx, t_crops, t_y) = dali, tv
    large, small = (1, 2) if augs else (1, 0)
    assert len(d_crops) == len(t_crops) == large + small
    for d, t in zip(d_crops, t_crops):
        assert d.shape == t.shape and d.dtype == t.dtype == torch.float32
    assert [c.shape[-1] for c in d_crops] == [16] + [8] * small
    assert d_idx.shape == t_idx.shape == d_y.shape == t_y.shape == (5,)
    assert d_y.dtype == t_y.dtype == torch.int64 and d_idx.dtype == torch.int64
    # a flat image stays flat through crops and flips: each crop's mean is its colour,
    # normalised by ImageNet's mean and std, in RGB order, in DALI as in torchvision
    for crops, idx in ((d_crops, None), (t_crops, t_idx)):
        for crop in crops:
            got = pixels(crop)
            if idx is not None:  # torchvision's indexes are the true ones
                np.testing.assert_allclose(got, [colour(int(i)) for i in idx], atol=2.5)
            r = np.round((got[:, 0] - 12) / 22).astype(int)
            np.testing.assert_allclose(got, [colour(i) for i in r], atol=2.5)


@pytest.mark.parametrize("encode", [True, False], ids=["encoded", "plain"])
def test_indices_and_labels_reaching_seed_are_the_true_ones(coded, encode):
    """A SEED fit on DALI batches: each batch's labels (and, encoded, its indices) are those of
    the files its crops came from; small crops come from DALI and from the same image."""
    from lightning.pytorch import Callback, Trainer

    from seed_solo.data.dali import pretrain_datamodule
    from seed_solo.data.pretrain import pretrain_transform
    from seed_solo.harness.methods.seed import SEED

    root, files = coded
    cfg = make_cfg(root, *SMALL, *no_colour_ops(SMALL), f"dali.encode_indexes_into_labels={encode}")
    seen = []

    class Record(Callback):  # the batch Lightning hands to SEED.training_step
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append([batch[0].cpu(), [pixels(c) for c in batch[1]], batch[2].cpu()])

    model = SEED(cfg)
    trainer = Trainer(accelerator=ACCELERATOR, devices=1, max_epochs=1, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, callbacks=[Record()])
    trainer.fit(model, datamodule=pretrain_datamodule(cfg, pretrain_transform(cfg, True)))

    assert len(seen) == 2  # 10 images, batches of 5
    images = []
    for idx, crops, y in seen:
        which = np.round((crops[0][:, 0] - 12) / 22).astype(int)  # the file each sample is
        for c in crops[1:]:  # the two small crops of a sample are of its own image
            np.testing.assert_allclose(c, [colour(i) for i in which], atol=2.5)
        assert y.tolist() == [files[i][1] for i in which]
        if encode:
            assert idx.tolist() == which.tolist()
        else:  # solo-learn's rule without encoding: positions in the batch, not image indices
            assert idx.tolist() == list(range(5))
        images += which.tolist()
    assert sorted(images) == list(range(10))  # one epoch: every image exactly once
    assert (len(model.queue), len(model.small_queue)) == (10, 20)


@pytest.fixture(scope="module")
def dali_run(jpegs, tmp_path_factory):
    """One epoch of SEED through the ImageNet launch script with data.format=dali."""
    out = tmp_path_factory.mktemp("dali_run")
    run(["bash", "scripts/distill/imagenet/seed_r18.sh", *RUN, "optimizer.batch_size=16",
         "max_epochs=1", "method_kwargs.queue_size=100", "augmentations.0.crop_size=32",
         f"checkpoint.dir={out}"],
        env={"DATA_DIR": str(jpegs), "TEACHER": "torchvision:resnet18"})
    return only(out / "seed", "*/*.ckpt").parent


def test_launch_script_with_dali_fills_one_queue_row_per_image_seen(dali_run):
    args = json.loads((dali_run / "args.json").read_text())
    assert (args["data"]["format"], args["dali"]["device"]) == ("dali", DEVICE)
    state = checkpoint_state(only(dali_run, "*.ckpt"))
    # 40 images, batches of 16, DALI drops the short last batch: 2 steps, 32 teacher rows
    assert (int(state["queue.num_filled"]), int(state["queue.ptr"])) == (32, 32)
    rows = state["queue.embeddings"]
    assert torch.allclose(rows[:32].norm(dim=1), torch.ones(32), atol=1e-5)
    assert rows[32:].abs().sum() == 0
    assert torch.unique(rows[:32], dim=0).shape[0] == 32


def test_linear_evaluation_trains_on_dali_and_evaluates(dali_run, jpegs, tmp_path):
    out = tmp_path / "linear.json"
    run(["bash", "scripts/linear/imagenet/seed_r18.sh", *RUN, "optimizer.batch_size=16",
         "max_epochs=1", "+data.augmentations.crop_size=32", f"checkpoint.dir={tmp_path}",
         f"+output_json={out}"],
        env={"CKPT": str(dali_run), "DATA_DIR": str(jpegs)})
    result = json.loads(out.read_text())
    assert result["epochs"] == 1
    assert 0 <= result["val_acc1"] <= result["val_acc5"] <= 100
    ckpt = torch.load(only(tmp_path / "linear", "*/*.ckpt"), map_location="cpu",
                      weights_only=False)
    # DALI's training reader: 40 images, batches of 16, the short one dropped: 2 steps
    assert ckpt["global_step"] == 2
    assert torch.isfinite(ckpt["state_dict"]["classifier.weight"]).all()


def test_dali_on_gpu_with_a_cpu_accelerator_is_a_clear_error(jpegs, tmp_path):
    cpu = [o for o in RUN if not o.startswith(("dali.device", "accelerator"))]
    proc = run([sys.executable, "-m", "seed_solo.distill", "--config-path",
                str(REPO / "configs/distill/imagenet"), "--config-name", "seed_r18",
                *cpu, "accelerator=cpu", "dali.device=gpu",
                "max_epochs=1", f"data.train_path={jpegs}/train", f"data.val_path={jpegs}/val",
                "method_kwargs.teacher=torchvision:resnet18", f"checkpoint.dir={tmp_path}"],
               expect=2)
    assert "error: dali.device=gpu needs a CUDA GPU" in proc.stderr
    assert "dali.device=cpu" in proc.stderr


@pytest.mark.parametrize("dali, accelerator, cuda, match", [
    ({"device": "tpu"}, "cpu", False, "dali.device='tpu' is not a DALI device"),
    ({"device": "gpu"}, "gpu", False, "dali.device=gpu needs a CUDA GPU"),
    (None, "cpu", True, "dali.device=gpu needs a CUDA GPU"),  # no dali block: solo's default
])
def test_dali_device_is_checked_before_anything_runs(dali, accelerator, cuda, match):
    from omegaconf import OmegaConf

    from seed_solo.data.dali import check_device

    cfg = OmegaConf.create({"accelerator": accelerator, **({"dali": dali} if dali else {})})
    with pytest.raises(ValueError, match=re.escape(match)):
        check_device(cfg, cuda_available=cuda)
    check_device(OmegaConf.create({"accelerator": "cpu", "dali": {"device": "cpu"}}), cuda)
