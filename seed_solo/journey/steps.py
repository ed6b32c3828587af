"""The journey's steps: distil, evaluate (kNN, linear), export; each one call that picks its own
settings, runs the same command the scripts run, and says where its results are.

Each step composes the scripts' hydra config (``configs/<kind>/imagenet/``) with the picks of
:mod:`seed_solo.journey.settings` and then the user's overrides, and calls the command's own
``run`` (:mod:`seed_solo.distill`, :mod:`seed_solo.linear`, :mod:`seed_solo.knn`,
:mod:`seed_solo.export`). Everything that can be checked before training is checked before
anything is written: the data folder here, the teacher, its patch and the loader in the
command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

import seed_solo.journey.settings as pick
from seed_solo import distill as distill_command
from seed_solo import export as export_command
from seed_solo import knn as knn_command
from seed_solo import linear as linear_command
from seed_solo.core.errors import CheckpointError, DataError
from seed_solo.data.folders import ImageFolderShape, folder_shape
from seed_solo.harness.config import compose_config
from seed_solo.runs.folders import METRICS_FILE, find_checkpoint, last_checkpoint, read_args

Log = Callable[[str], Any]
PathLike = Union[str, Path]


@rank_zero_only
def say(message: str) -> None:
    """Print on the first process only (DDP starts one per GPU, each running the journey)."""
    print(message, flush=True)


def teacher_source(teacher: str) -> str:
    """An existing file or folder as an absolute path (a run's identity then does not depend
    on the folder it was started from); a zoo name, url or ``timm:NAME`` as it is."""
    path = Path(teacher).expanduser()
    return str(path.resolve()) if path.exists() else teacher


@dataclass
class Distilled:
    """What :func:`distill` made.

    Attributes:
        run_dir: the run folder (``OUT/seed/<run>/``).
        checkpoint: its last checkpoint.
        metrics: its ``metrics.jsonl`` (one JSON line per epoch).
        exported: the exported student, when ``export`` was asked for.
        data: the shape of the training folder.
    """

    run_dir: Path
    checkpoint: Optional[Path]
    metrics: Path
    exported: Optional[Path]
    data: ImageFolderShape


def distill(data: PathLike, teacher: str, student: str = "resnet18",
            out: PathLike = "runs/seed", *, epochs: Optional[int] = None,
            objective: str = pick.SEED_OBJECTIVE, export: Optional[str] = None,
            crop: Optional[int] = None, batch_size: Optional[int] = None, fresh: bool = False,
            overrides: Sequence[str] = (), log: Log = say) -> Distilled:
    """Distil ``teacher`` into ``student`` on the images of ``data``; runs go to ``out``.

    Args:
        data: a folder of images: flat (unlabelled), one sub-folder per class, or ``train/``
            and ``val/`` of class sub-folders (online kNN on ``val/`` each epoch).
        teacher: a zoo name (``dinov2-vits14``), a checkpoint file, a url, or ``timm:NAME``.
        student: a registered student (``resnet18``, ``mobilenetv3_large``...) or
            ``timm:NAME`` / ``torchvision:NAME``.
        out: the folder of this journey's runs (``checkpoint.dir``): ``out/seed/<run>/``.
        epochs: ``max_epochs`` (default: the config's, the paper's 200).
        objective: the distillation objective (:func:`settings.objectives`).
        export: after training, export the student: ``auto``, ``onnx``, ``timm`` or
            ``torchvision`` (None: no export).
        crop: the training crop in px (default 224, a multiple of every ViT patch).
        batch_size: images per device and step (default 32, at most the images per device).
        fresh: a new run even when ``out`` holds a run of the same settings (default: resume
            it, or say it is complete).
        overrides: hydra overrides of the config, applied last (``method_kwargs.queue_size=
            4096``, ``+method_kwargs.teacher_options.embedding=mean``...).
        log: where the journey's lines go.
    """
    started = time.time()
    shape = folder_shape(data)  # before anything is written
    machine = pick.this_machine()
    config, student_args = pick.student_config(student)
    batch = pick.batch_size(shape, machine.devices, batch_size)
    picks = [*pick.data_overrides(shape),
             f"method_kwargs.teacher={pick.quoted(teacher_source(teacher))}",
             *student_args, f"name={pick.run_name(student)}", *machine.overrides(),
             f"optimizer.batch_size={batch}",
             f"augmentations.0.crop_size={crop or pick.DEFAULT_CROP}",
             f"checkpoint.dir={pick.quoted(Path(out).expanduser().resolve())}",
             f"auto_resume.enabled={not fresh}", pick.progress_bar(),
             *pick.objective_overrides(objective)]
    picks += [f"max_epochs={epochs}"] if epochs else []
    cfg = compose_config(pick.config_dir("distill"), config, pick.merged(picks, overrides))
    log(start_lines(cfg, shape, machine, objective, config, overrides))
    run_dir = distill_command.run(cfg)
    if run_dir is None:
        raise CheckpointError("the run wrote no run folder (checkpoint.enabled=False); leave "
                              "checkpoint.enabled on to keep the student.")
    exported = None
    if export:
        exported = export_step(run_dir, export, log=log).path
    result = Distilled(run_dir, last_checkpoint(run_dir, log=lambda *_: None),
                       run_dir / METRICS_FILE, exported, shape)
    log(end_lines(result, time.time() - started))
    return result


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def start_lines(cfg: DictConfig, shape: ImageFolderShape, machine: pick.Machine,
                objective: str, config: str, overrides: Sequence[str]) -> str:
    """What the run is about to do, with every setting the journey chose."""
    kwargs = cfg.method_kwargs
    crops = ", ".join(f"{a.crop_size} px x{a.num_crops}" for a in cfg.augmentations)
    skipped = pick.skipped_evaluations(shape) or "online kNN on val/ after every epoch"
    rows = [
        ("data", shape.describe()),
        ("teacher", f"{kwargs.teacher}"),
        ("student", f"{cfg.backbone.name}"),
        ("objective", objective),
        ("machine", machine.describe()),
        ("training", f"{plural(cfg.max_epochs, 'epoch')}, batch {cfg.optimizer.batch_size} "
                     f"per device, crops {crops}, queue K = {kwargs.queue_size}"),
        ("evaluation", skipped),
        ("runs", f"{Path(cfg.checkpoint.dir) / cfg.method}/<run>/"
                 + (" (a rerun of the same settings resumes its run)"
                    if cfg.auto_resume.enabled else " (a fresh run)")),
        ("config", f"configs/distill/imagenet/{config}.yaml"
                   + (f" + your overrides {' '.join(overrides)}" if overrides else "")),
    ]
    return "seed-solo distill:\n" + "\n".join(f"  {k:<11}{v}" for k, v in rows)


def end_lines(result: Distilled, seconds: float) -> str:
    """Where the results are, and the exact commands that come next."""
    run = result.run_dir
    rows = [("run folder", run), ("checkpoint", result.checkpoint or "none"),
            ("metrics", f"{result.metrics} (one line per epoch)")]
    rows += [("exported", result.exported)] if result.exported else []
    data = result.data
    labelled = (str(data.train.parent) if data.val is not None
                else "LABELLED  # a folder with train/ and val/ of class sub-folders")
    nexts = [f"seed-solo knn {run} {labelled}", f"seed-solo linear {run} {labelled}"]
    if result.exported is None:
        nexts.append(f"seed-solo export {run}")
    nexts.append(f"seed-solo runs {run.parent}")
    return (f"seed-solo distill: done in {seconds / 60:.1f} min\n"
            + "\n".join(f"  {k:<11}{v}" for k, v in rows)
            + "\nnext:\n" + "\n".join(f"  {c}" for c in nexts))


def run_folder_of(run: PathLike) -> Path:
    """The run folder of ``run`` (a run folder, or a checkpoint inside one)."""
    ckpt = find_checkpoint(run)
    if not ckpt.is_file():
        raise CheckpointError(f"{run} is neither a run folder with a checkpoint nor a "
                              "checkpoint; pass the run folder seed-solo distill printed.")
    return ckpt.parent


def labelled_with_val(data: PathLike, what: str) -> ImageFolderShape:
    """The shape of ``data``, which ``what`` needs labelled with ``train/`` and ``val/``."""
    shape = folder_shape(data)
    if not shape.labelled or shape.val is None:
        raise DataError(f"{what} needs labelled images: {data} holds {shape.describe()}; pass "
                        "a folder with train/ and val/, each with one sub-folder per class.")
    return shape


def knn(run: PathLike, data: PathLike, *, k: int = 20, temperature: float = 0.07,
        log: Log = say) -> List[Dict[str, Any]]:
    """Weighted kNN top-1/top-5 of the student of ``run`` (its backbone's pooled features) on
    ``data/val`` against ``data/train``; writes ``<run>/knn.json``."""
    run_dir, shape = run_folder_of(run), labelled_with_val(data, "kNN evaluation")
    out = run_dir / "knn.json"
    argv = ["--pretrained_checkpoint_dir", str(run_dir), "--dataset", "custom",
            "--train_data_path", str(shape.train), "--val_data_path", str(shape.val),
            "--k", str(k), "--temperature", str(temperature),
            "--num_workers", str(pick.this_machine().workers), "--output_json", str(out)]
    log("seed-solo knn: python -m seed_solo.knn " + " ".join(argv))
    return knn_command.main(argv)


def linear(run: PathLike, data: PathLike, *, epochs: Optional[int] = None,
           batch_size: Optional[int] = None, overrides: Sequence[str] = (),
           log: Log = say) -> Dict[str, Any]:
    """A linear classifier on the frozen student of ``run`` (solo-learn's linear protocol,
    ``configs/linear/imagenet``), trained on ``data/train`` and scored on ``data/val`` at the
    run's crop; its run folder is ``<run>/linear/<run>/``, its result ``<run>/linear.json``."""
    run_dir, shape = run_folder_of(run), labelled_with_val(data, "linear evaluation")
    args = read_args(run_dir)
    student = str(args["backbone"]["name"])
    kwargs = args["backbone"].get("kwargs") or {}
    machine = pick.this_machine()
    config, _ = pick.student_config(student)
    crop = int((args.get("augmentations") or [{}])[0].get("crop_size", pick.DEFAULT_CROP))
    picks = [*pick.data_paths(shape), f"backbone.name={student}",
             *(f"+backbone.kwargs.{k}={v}" for k, v in kwargs.items()),
             f"pretrained_feature_extractor={pick.quoted(run_dir)}",
             f"pretrain_method={args.get('method', 'seed')}", *machine.overrides(),
             f"optimizer.batch_size={pick.batch_size(shape, machine.devices, batch_size or 256)}",
             f"+data.augmentations.crop_size={crop}", f"checkpoint.dir={pick.quoted(run_dir)}",
             f"+output_json={pick.quoted(run_dir / 'linear.json')}", pick.progress_bar()]
    picks += [f"max_epochs={epochs}"] if epochs else []
    cfg = compose_config(pick.config_dir("linear"), config, pick.merged(picks, overrides))
    log(f"seed-solo linear: {plural(cfg.max_epochs, 'epoch')} on {shape.describe()}, crop "
        f"{crop} px, {machine.describe()}")
    result = linear_command.run(cfg)
    log(f"seed-solo linear: top-1 {result.get('val_acc1', float('nan')):.2f}; run folder "
        f"{result['run_folder']}; results {run_dir / 'linear.json'}")
    return result


def export_step(run: PathLike, to: str = export_command.AUTO, out: Optional[PathLike] = None,
                log: Log = say) -> export_command.Exported:
    """The student of ``run`` as a file for timm, torchvision or ONNX (``auto``: the one that
    fits it; :func:`seed_solo.export.export`), checked against the student before it is kept."""
    done = export_command.export(run, to, out)
    log("seed-solo export: " + "\n  ".join(done.report()))
    return done
