"""``python -m seed_solo.detect``: a student transferred to detection (Faster R-CNN) or
instance segmentation (Mask R-CNN), torchvision's detectors over an FPN on its stages, trained
on VOC or COCO data and scored with COCO's AP (pycocotools) and VOC2007's AP50.

    python -m seed_solo.detect --config-path configs/detect --config-name voc \
        data.root=/data/VOCdevkit inits='{seed: trained_models/seed/RUN, random: random}'

One command compares initialisations: every entry of ``inits`` (a student's run folder, the
architecture's ``supervised`` ImageNet weights, ``random``) trains the same detector with the
same schedule, in its own run folder ``<checkpoint.dir>/<label>/<run>`` (``args.json``,
checkpoints, ``metrics.jsonl``, ``results.json``, ``results.md``); the table of all of them is
``<checkpoint.dir>/comparison.md``. A rerun resumes each run (same settings) from its last
checkpoint and skips finished ones. DDP as for distillation (``devices``, torchrun, srun);
evaluation runs on the first process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from lightning.pytorch import seed_everything
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from seed_solo.core.errors import ConfigError
from seed_solo.evaluation.detection.backbones import DetectorSpec, build_detector
from seed_solo.evaluation.detection.data import DetectionData, DetectionSet, collate, load_data
from seed_solo.evaluation.detection.evaluate import evaluate
from seed_solo.evaluation.detection.inits import (
    Architecture,
    Init,
    architecture,
    init_backbone,
    parse_inits,
)
from seed_solo.evaluation.detection.train import DetectorTraining, Schedule
from seed_solo.harness.backbones import register_students
from seed_solo.harness.checkpointer import checkpoint_and_resume, run_folder
from seed_solo.harness.config import devices_for_parse, global_batch, processes
from seed_solo.harness.hydra_cli import run_hydra
from seed_solo.harness.trainer import build_trainer
from seed_solo.runs.atomic import write_json
from seed_solo.runs.tables import markdown_table

RESULTS = "results.json"


def run(cfg: DictConfig) -> List[Dict[str, Any]]:
    """Train and evaluate the detector from every initialisation; the comparison's rows."""
    cfg, devices = parse_detect(cfg)
    data = load_data(cfg.data.format, cfg.data.root, cfg.data.train, cfg.data.val,
                     cfg.data.classes)
    inits = parse_inits(OmegaConf.to_container(cfg.inits))
    arch = architecture(inits, OmegaConf.to_container(cfg.backbone))
    rows = [train_and_evaluate(cfg, init, arch, data, devices) for init in inits]
    rows = [r for r in rows if r is not None]  # the first process's
    if rows:
        table = comparison(rows)
        Path(cfg.checkpoint.dir).mkdir(parents=True, exist_ok=True)
        (Path(cfg.checkpoint.dir) / "comparison.md").write_text(table + "\n")
        print("\n" + table)
    return rows


def parse_detect(cfg: DictConfig) -> Tuple[DictConfig, Any]:
    """The checked config and the Trainer's ``devices``."""
    OmegaConf.set_struct(cfg, False)
    register_students()  # a run of a solo-learn method may have a seed-solo student
    if int(cfg.schedule.iterations) < 1:
        raise ConfigError(f"schedule.iterations={cfg.schedule.iterations}: train for at least "
                          "1 iteration.")
    devices = devices_for_parse(cfg)
    spec = detector_spec(cfg)  # checks arch and norm before any data is read
    many = processes(cfg) > 1
    if spec.norm == "sync" and many and cfg.accelerator == "cpu":
        raise ConfigError("detector.norm=sync needs GPUs (torch synchronises BatchNorm on "
                          "CUDA only); on CPU processes use detector.norm=bn or frozen.")
    if spec.arch == "mask_rcnn" and cfg.data.format == "voc":
        raise ConfigError("detector.arch=mask_rcnn needs instance masks, which VOC's XML "
                          "annotations lack; use COCO-format data or detector.arch=faster_rcnn.")
    return cfg, devices


def detector_spec(cfg: DictConfig) -> DetectorSpec:
    d = OmegaConf.to_container(cfg.detector, resolve=True)
    for key in ("min_size", "image_mean", "image_std"):
        d[key] = tuple(d[key])
    return DetectorSpec(**d)


def run_config(cfg: DictConfig, init: Init, arch: Architecture) -> DictConfig:
    """The config of one initialisation's run (what its ``args.json`` and identity hold)."""
    one = cfg.copy()
    one.name = f"{cfg.name}-{init.label}"
    one.init = {"label": init.label, "source": init.source}
    one.backbone = {"name": arch.name, "kwargs": arch.kwargs}
    one.max_steps = int(cfg.schedule.iterations)
    one.max_epochs = -1
    # what makes two runs one (runs/identity.py): not the length (a rerun with more
    # iterations extends a run), nor the loader's workers
    solver = {k: v for k, v in OmegaConf.to_container(cfg.schedule).items() if k != "iterations"}
    data = {k: v for k, v in OmegaConf.to_container(cfg.data).items() if k != "num_workers"}
    one.detection = {"init": one.init, "detector": cfg.detector, "data": data,
                     "schedule": solver, "batch_size": cfg.optimizer.batch_size,
                     "seed": cfg.seed}
    return one


def finished(ckpt: Optional[str], cfg: DictConfig) -> Optional[Dict[str, Any]]:
    """The results of a run that already trained all its iterations, else None."""
    if ckpt is None:
        return None
    path = Path(ckpt).parent / RESULTS
    if not path.is_file():
        return None
    found = json.loads(path.read_text())
    return found if found.get("iterations") == int(cfg.schedule.iterations) else None


def train_and_evaluate(cfg: DictConfig, init: Init, arch: Architecture, data: DetectionData,
                       devices: Any) -> Optional[Dict[str, Any]]:
    """One initialisation: train (or resume) its detector, evaluate it, write its table."""
    one = run_config(cfg, init, arch)
    callbacks, ckpt = checkpoint_and_resume(one, init.label)
    done = finished(ckpt, one)
    if done is not None:
        print(f"{init.label}: finished before ({Path(ckpt).parent}), not trained again.")
        return done if rank_zero_only.rank == 0 else None
    seed_everything(int(cfg.seed), workers=True)
    spec = detector_spec(cfg)
    masks = spec.arch == "mask_rcnn"
    named = f"{arch.name} of {init.source}" if init.is_run else arch.name  # for messages
    detector = build_detector(init_backbone(init, arch, int(cfg.seed)), named,
                              len(data.classes), spec)
    batch = int(cfg.optimizer.batch_size)
    model = DetectorTraining(detector, Schedule(**schedule_kwargs(cfg)), batch)
    loader = DataLoader(train_set(data, masks, global_batch(cfg)),
                        batch_size=batch, shuffle=True, num_workers=int(cfg.data.num_workers),
                        collate_fn=collate, drop_last=True,
                        persistent_workers=int(cfg.data.num_workers) > 0)
    trainer = build_trainer(one, callbacks, devices)
    start = time.time()
    trainer.fit(model, loader, ckpt_path=ckpt)
    if not trainer.is_global_zero:
        return None
    wall = time.time() - start
    metrics = evaluate(model.detector, data.val, data.classes, data.format, masks,
                       trainer.strategy.root_device, int(cfg.eval_batch_size),
                       int(cfg.data.num_workers))
    folder = run_folder(callbacks, ckpt) or Path(cfg.checkpoint.dir) / init.label
    row = {"label": init.label, "source": init.source, "backbone": arch.name,
           "arch": spec.arch, "iterations": int(trainer.global_step), "train_s": wall,
           "run_dir": str(folder), **metrics}
    write_run(folder, row)
    return row


def train_set(data: DetectionData, masks: bool, global_batch: int) -> DetectionSet:
    """The training images (those with an object to learn), at least one global batch."""
    found = DetectionSet(data.train, masks=masks, train=True)
    if len(found) < global_batch:
        raise ConfigError(f"{len(found)} training images with objects are fewer than one "
                          f"global batch ({global_batch}); lower optimizer.batch_size or "
                          "devices, or add training images.")
    return found


def schedule_kwargs(cfg: DictConfig) -> Dict[str, Any]:
    s = OmegaConf.to_container(cfg.schedule, resolve=True)
    s["steps"] = tuple(s.get("steps") or ())
    return s


METRIC_NAMES = {"voc07_AP50": "VOC07 AP50", "voc07_AP": "VOC07 AP", "voc07_AP75": "VOC07 AP75",
                "box_AP": "box AP", "box_AP50": "box AP50", "box_AP75": "box AP75",
                "mask_AP": "mask AP", "mask_AP50": "mask AP50", "mask_AP75": "mask AP75"}


def _table(rows: List[Dict[str, Any]], first: str) -> str:
    keys = [k for k in METRIC_NAMES if k in rows[0]]
    header = [first, *(METRIC_NAMES[k] for k in keys), "iterations", "train wall (s)"]
    return markdown_table(header, [[r["label"], *(r[k] for k in keys), r["iterations"],
                                    f"{r['train_s']:.0f}"] for r in rows])


def write_run(folder: Path, row: Dict[str, Any]) -> None:
    """``results.json``, ``results.md`` (the run's table) and a last ``metrics.jsonl`` row."""
    write_json(folder / RESULTS, row)
    table = _table([row], "init")
    (folder / "results.md").write_text(
        f"{table}\n\n{row['arch']} on {row['backbone']} from {row['source']}, "
        f"{row['iterations']} iterations.\n")
    with open(folder / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": row["iterations"],
                            **{k: row[k] for k in METRIC_NAMES if k in row}}) + "\n")
    print(table)


def comparison(rows: List[Dict[str, Any]]) -> str:
    """The table of every initialisation's run."""
    return _table(rows, "init") + (
        f"\n\n{rows[0]['arch']} on {rows[0]['backbone']}, the same detector and schedule "
        f"from each initialisation; AP in %.")


HELP = """
usage: python -m seed_solo.detect --config-path DIR --config-name NAME [KEY=VALUE ...]

Trains torchvision's Faster R-CNN or Mask R-CNN over an FPN on a student's stages, from one or
more initialisations, on VOC or COCO data; reports COCO's AP/AP50/AP75 (pycocotools) for boxes
and masks and VOC2007's 11-point AP50. DIR may be relative to this folder.

Configs (in a checkout): configs/detect/voc.yaml (Faster R-CNN, VOC07+12 -> VOC07 test, 24k
iterations) and configs/detect/coco.yaml (Mask R-CNN, COCO 1x), both MoCo's protocol with an FPN.
Keys to set: data.root, inits ({label: run folder | .ckpt | supervised | random}).
Often changed: devices, accelerator (cpu), optimizer.batch_size, schedule.iterations,
detector.norm (sync | bn | frozen), detector.trainable_stages, detector.min_size,
checkpoint.dir. docs/detection.md has the details.
"""


if __name__ == "__main__":
    run_hydra(run, HELP)
