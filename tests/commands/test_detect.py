"""``python -m seed_solo.detect`` on tiny VOC and COCO sets written by the test, on the CPU:
the detector learns the trivially separable squares to a stated AP, keeps the student's
frozen weights, writes its run folder and table, resumes a finished run without training, and
bad input ends with one ``error:`` line."""

from __future__ import annotations

import importlib.util
import json
import re
import sys

import pytest
import torch

from tests.support.commands import checkpoint_state, error_lines, only, run
from tests.support.detection_data import make_coco, make_voc, voc_xml
from tests.support.solo import needs_solo

pytestmark = [needs_solo,
              pytest.mark.skipif(importlib.util.find_spec("pycocotools") is None,
                                 reason="the detection extra (make setup installs it)")]
SIZE = 48
#: a CPU-sized detector: a small FPN and heads, few proposals, 4 images per step
CPU = ["accelerator=cpu", "devices=1", "strategy=auto", "+enable_progress_bar=False",
       "data.num_workers=0", "detector.norm=bn",
       "detector.fpn_channels=16", "detector.box_head_dim=32", "detector.mask_head_dim=8",
       f"detector.min_size=[{SIZE}]", f"detector.max_size={SIZE}", "optimizer.batch_size=4",
       "schedule.warmup_iters=3", "eval_batch_size=8",
       "detector.options={rpn_pre_nms_top_n_train:100,rpn_post_nms_top_n_train:50,"
       "rpn_pre_nms_top_n_test:50,rpn_post_nms_top_n_test:20,rpn_batch_size_per_image:32,"
       "box_batch_size_per_image:32,box_detections_per_img:10}"]


def student_run(tmp_path, seed):
    """A SEED run folder of a tiny_resnet10 (width 8, random weights from ``seed``) as
    solo-learn writes it."""
    from seed_solo.students.registry import create_student

    folder = tmp_path / "trained" / "seed" / "run1"
    folder.mkdir(parents=True)
    torch.manual_seed(seed)
    net = create_student("tiny_resnet10", width=8)
    (folder / "args.json").write_text(json.dumps({
        "method": "seed", "backbone": {"name": "tiny_resnet10", "kwargs": {"width": 8}},
        "data": {"dataset": "custom"}}))
    state = {"backbone." + k: v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 0}, folder / "seed-run1-ep=0.ckpt")
    return folder, state


def detect(config, *overrides, expect=0):
    # idle OpenMP threads sleep: spinning ones slow a shared CPU down several times over
    return run([sys.executable, "-m", "seed_solo.detect", "--config-path", "configs/detect",
                "--config-name", config, *CPU, *overrides], {"OMP_WAIT_POLICY": "PASSIVE"},
               expect=expect, timeout=600)


@pytest.mark.slow
def test_voc_faster_rcnn_learns_the_squares_and_keeps_the_students_weights(tmp_path):
    make_voc(tmp_path / "voc", {"trainval": 24, "test": 12}, size=SIZE)
    folder, student = student_run(tmp_path, seed=1)
    out = tmp_path / "detect"
    # the backbone frozen (its weights must come out as the student's), FPN and heads train
    args = [f"data.root={tmp_path / 'voc'}", "data.train=[VOC2007/trainval]",
            "data.classes=[red,green]", f"inits={{seed:{folder}}}", "schedule.iterations=40",
            "schedule.base_lr=0.16", "detector.trainable_stages=0", f"checkpoint.dir={out}"]
    first = detect("voc", *args)
    run_dir = only(out / "seed", "*")
    results = json.loads((run_dir / "results.json").read_text())
    # 40 iterations of 4 images find the squares (measured: VOC07 AP50 80.9, the same with 1
    # or 2 threads; 72-81 from other random students; an untrained detector scores 0)
    assert results["iterations"] == 40 and results["voc07_AP50"] >= 65.0
    assert results["box_AP50"] >= 65.0 and results["voc07_AP"] <= results["voc07_AP50"]
    assert "| init | VOC07 AP50 | VOC07 AP | VOC07 AP75 | box AP |" in first.stdout
    # a run bounded by steps counts them in its epoch lines (24 images of 4: 6 per epoch)
    assert re.search(r"seed-solo: epoch 1 \(step 6/40\) in \d+ s; train_loss [\d.e-]+; about",
                     first.stdout), first.stdout[-2000:]
    assert (out / "comparison.md").read_text().startswith("| init | VOC07 AP50")
    args_json = json.loads((run_dir / "args.json").read_text())
    assert args_json["init"] == {"label": "seed", "source": str(folder)}
    assert args_json["backbone"] == {"name": "tiny_resnet10", "kwargs": {"width": 8}}
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert "train_loss" in history[0] and history[-1]["voc07_AP50"] == results["voc07_AP50"]

    # the backbone in the trained detector is the student's, every tensor of it
    # (FrozenBatchNorm keeps no num_batches_tracked), while the FPN trained
    state = checkpoint_state(only(run_dir, "*.ckpt"))
    body = {k[len("detector.backbone.body.model."):]: v for k, v in state.items()
            if k.startswith("detector.backbone.body.model.")}
    assert len(body) == len([k for k in student if not k.endswith("num_batches_tracked")])
    for key, value in body.items():
        assert torch.equal(value, student["backbone." + key]), key
    assert "detector.backbone.fpn.layer_blocks.0.0.weight" in state

    # a rerun finds the finished run (same settings) and trains nothing
    again = detect("voc", *args)
    assert "seed: finished before" in again.stdout
    assert json.loads((run_dir / "results.json").read_text()) == results


@pytest.mark.slow
def test_coco_mask_rcnn_segments_the_squares(tmp_path):
    make_coco(tmp_path / "coco", {"train": 24, "val": 12}, size=SIZE)
    folder, _ = student_run(tmp_path, seed=2)
    out = tmp_path / "detect"
    detect("coco", f"data.root={tmp_path / 'coco'}", "data.train=[train]", "data.val=val",
           f"inits=[{folder}]", "schedule.iterations=40", "schedule.base_lr=0.16",
           "detector.trainable_stages=0", f"checkpoint.dir={out}")
    results = json.loads((only(out / "seed", "*") / "results.json").read_text())
    # the backbone frozen, 40 iterations (measured: box AP50 46.2, mask AP50 54.9; polygon
    # and RLE masks alike in training; an untrained detector scores 0)
    assert results["box_AP50"] >= 35.0 and results["mask_AP50"] >= 35.0
    assert 0 < results["mask_AP"] <= results["mask_AP50"]


def _vit_run(tmp_path):
    """A run folder whose student is a ViT: its stages all have stride 16."""
    from seed_solo.students.registry import create_student

    folder = tmp_path / "trained" / "seed" / "vit"
    folder.mkdir(parents=True)
    kwargs = {"img_size": 32, "dynamic_img_size": True}
    net = create_student("timm:vit_tiny_patch16_224", **kwargs)
    (folder / "args.json").write_text(json.dumps({
        "method": "seed", "backbone": {"name": "timm:vit_tiny_patch16_224", "kwargs": kwargs},
        "data": {"dataset": "custom"}}))
    torch.save({"state_dict": {"backbone." + k: v for k, v in net.state_dict().items()}},
               folder / "seed-vit-ep=0.ckpt")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("case", ["box outside its image", "student without a pyramid"])
def test_bad_input_is_one_error_line_naming_the_file(tmp_path, case):
    make_voc(tmp_path / "voc", {"trainval": 2, "test": 1}, size=SIZE)
    xml = tmp_path / "voc" / "VOC2007" / "Annotations" / "000002.xml"
    init = "inits=[random]"
    if case == "box outside its image":
        xml.write_text(voc_xml("000002", SIZE, [("red", (5, 5, 60, 20), 0)]))  # xmax > 48
        expected = [f"error: {xml}: object 0 ", "outside its 48 x 48 image",
                    "correct the box or remove the object"]
    else:
        folder = _vit_run(tmp_path)
        init = f"inits=[{folder}]"
        expected = [f"error: the student timm:vit_tiny_patch16_224 of {folder} cannot feed an "
                    "FPN: its stages have strides [16, 16", "pick a convolutional student"]
    proc = detect("voc", f"data.root={tmp_path / 'voc'}", "data.train=[VOC2007/trainval]",
                  "data.classes=[red,green]", init, "backbone.name=resnet18",
                  "optimizer.batch_size=1", "schedule.iterations=1",
                  f"checkpoint.dir={tmp_path / 'out'}", expect=2)
    lines = error_lines(proc)
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines[0].startswith(expected[0]), lines[0]
    assert all(part in lines[0] for part in expected[1:]), lines[0]


@pytest.mark.parametrize("overrides, message", [
    (["devices=2", "strategy=ddp", "detector.norm=sync"], "detector.norm=sync needs GPUs"),
    (["detector.arch=mask_rcnn"], "needs instance masks, which VOC's XML annotations lack"),
    (["detector.norm=group"], "detector.norm='group' is not one of sync, bn, frozen"),
])
def test_settings_that_cannot_work_are_refused_before_any_data_is_read(overrides, message):
    from seed_solo.core.errors import ConfigError
    from seed_solo.detect import parse_detect
    from seed_solo.harness.config import compose_config

    cfg = compose_config("configs/detect", "voc", [
        "accelerator=cpu", "devices=1", "data.root=/nowhere", "inits=[random]", *overrides])
    with pytest.raises(ConfigError, match=message):
        parse_detect(cfg)


def test_a_run_is_continued_only_with_the_same_solver_data_and_start():
    from seed_solo.detect import run_config
    from seed_solo.evaluation.detection.inits import Architecture, Init
    from seed_solo.harness.checkpointer import run_identity
    from seed_solo.harness.config import compose_config
    from seed_solo.runs.identity import first_difference

    def identity(*overrides, source="/runs/a"):
        cfg = compose_config("configs/detect", "voc", ["data.root=/voc", "inits=[random]",
                                                       *overrides])
        return run_identity(run_config(cfg, Init("seed", source), Architecture("resnet18")))

    base = identity()
    # longer schedules and other loader workers extend the same run
    assert first_difference(base, identity("schedule.iterations=30000",
                                           "data.num_workers=8")) is None
    for changed in (["schedule.base_lr=0.01"], ["detector.norm=frozen"],
                    ["data.train=[VOC2007/trainval]"], ["optimizer.batch_size=4"]):
        assert first_difference(base, identity(*changed)).startswith("detection."), changed
    assert first_difference(base, identity(source="/runs/b")) is not None


@pytest.mark.slow
def test_two_processes_train_one_run_and_scale_the_lr_by_the_global_batch(tmp_path):
    """Lightning's DDP on 2 CPU processes (gloo): one run folder, evaluated once, and the lr
    of detectron2's 16-image recipe scaled to 2 processes x 2 images."""
    make_voc(tmp_path / "voc", {"trainval": 8, "test": 2}, size=SIZE)
    out = tmp_path / "detect"
    detect("voc", f"data.root={tmp_path / 'voc'}", "data.train=[VOC2007/trainval]",
           "data.classes=[red,green]", "inits=[random]", "backbone.name=tiny_resnet10",
           "+backbone.kwargs.width=4", "devices=2", "strategy=ddp", "optimizer.batch_size=2",
           "schedule.iterations=4",
           "schedule.base_lr=0.08", f"checkpoint.dir={out}")
    run_dir = only(out / "random", "*")
    assert json.loads((run_dir / "results.json").read_text())["iterations"] == 4
    ckpt = torch.load(only(run_dir, "*.ckpt"), map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 4
    group = ckpt["optimizer_states"][0]["param_groups"][0]
    assert group["initial_lr"] == pytest.approx(0.08 * 2 * 2 / 16)
    assert (out / "comparison.md").read_text().count("| random |") == 1
