"""Real solo-learn pretrain checkpoints for the tests: a method from ``solo.methods.METHODS``,
saved in Lightning's layout (``state_dict`` plus ``lr_schedulers`` holding the pickled
``functools.partial`` solo's ``static_lr`` puts there) with ``args.json`` beside it."""

from __future__ import annotations

import json
from pathlib import Path

import torch

METHOD_KWARGS = {
    "mocov2plus": {"proj_hidden_dim": 24, "proj_output_dim": 8, "temperature": 0.2,
                   "queue_size": 16},
    "simclr": {"proj_hidden_dim": 24, "proj_output_dim": 8, "temperature": 0.2},
    "byol": {"proj_hidden_dim": 24, "proj_output_dim": 8, "pred_hidden_dim": 12},
    "mocov3": {"proj_hidden_dim": 24, "proj_output_dim": 8, "pred_hidden_dim": 12,
               "temperature": 0.2},
    "dino": {"proj_hidden_dim": 24, "proj_output_dim": 8, "num_prototypes": 32},
    "swav": {"proj_hidden_dim": 24, "proj_output_dim": 8, "temperature": 0.1,
             "num_prototypes": 32, "queue_size": 0},
    "simsiam": {"proj_hidden_dim": 24, "proj_output_dim": 8, "pred_hidden_dim": 12},
    "vicreg": {"proj_hidden_dim": 24, "proj_output_dim": 8},
    "barlow_twins": {"proj_hidden_dim": 24, "proj_output_dim": 8},
    "vibcreg": {"proj_hidden_dim": 24, "proj_output_dim": 8, "iternorm": False},
}
MOMENTUM = {"mocov2plus", "byol", "mocov3", "dino"}


def solo_cfg(method: str, backbone: str = "resnet18", dataset: str = "cifar10"):
    from omegaconf import OmegaConf

    cfg = {
        "name": "teacher", "method": method,
        "backbone": {"name": backbone, "kwargs": {}},
        "data": {"dataset": dataset, "train_path": ".", "val_path": ".", "format": "image_folder",
                 "num_workers": 0, "num_large_crops": 2, "num_small_crops": 0,
                 "num_classes": 5},
        "optimizer": {"name": "sgd", "batch_size": 2, "lr": 0.1, "classifier_lr": 0.1,
                      "weight_decay": 1e-5, "kwargs": {"momentum": 0.9}},
        "scheduler": {"name": "warmup_cosine"},
        "checkpoint": {"enabled": False}, "auto_resume": {"enabled": False},
        "max_epochs": 1, "devices": 1, "accelerator": "cpu", "num_nodes": 1,
        "method_kwargs": dict(METHOD_KWARGS[method]),
    }
    if method in MOMENTUM:
        cfg["momentum"] = {"base_tau": 0.99, "final_tau": 1.0}
    cfg = OmegaConf.create(cfg)
    OmegaConf.set_struct(cfg, False)
    return cfg


def make_solo_checkpoint(tmp: Path, method: str, backbone: str = "resnet18",
                         dataset: str = "cifar10", epoch: int = 3):
    """Build ``METHODS[method]``, perturb its BatchNorm statistics so eval-mode BN is not the
    identity, and save ``<tmp>/<method>/run1/teacher-run1-ep=<epoch>.ckpt`` + ``args.json``.

    Returns:
        (solo model in eval mode, checkpoint path).
    """
    from omegaconf import OmegaConf
    from solo.methods import METHODS

    from seed_solo.harness.registration import register

    register()  # seed-solo's students in solo-learn's table, as a user of solo's own code does
    torch.manual_seed(0)
    cfg = solo_cfg(method, backbone, dataset)
    model = METHODS[method](cfg)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.uniform_(-0.2, 0.2)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    model.eval()
    # Lightning's checkpoint layout; solo-learn's configure_optimizers sets
    # scheduler.get_lr = partial(static_lr, get_lr=scheduler.get_lr, ...) for methods with
    # static-lr parameter groups, so the saved scheduler state holds that partial
    from functools import partial

    from solo.methods.base import static_lr

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    sched.get_lr = partial(static_lr, get_lr=sched.get_lr, param_group_indexes=[0],
                           lrs_to_replace=[0.1])
    sched_state = sched.state_dict()
    ckpt = {"epoch": epoch, "global_step": 10, "pytorch-lightning_version": "2.1.2",
            "state_dict": model.state_dict(), "loops": {}, "callbacks": {},
            "optimizer_states": [], "lr_schedulers": [sched_state]}
    run_dir = tmp / method / "run1"
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"teacher-run1-ep={epoch}.ckpt"
    torch.save(ckpt, path)
    with open(run_dir / "args.json", "w") as f:
        json.dump(OmegaConf.to_container(model.cfg, resolve=True), f)
    return model, path
