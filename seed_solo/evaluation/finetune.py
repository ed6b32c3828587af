"""Fine-tuning the whole student with a new classifier (semi-supervised evaluation).

The model is solo-learn's ``LinearModel`` with ``finetune=True`` (backbone and classifier
trained together, the backbone in train mode), with two changes that follow SimCLR's
fine-tuning code (github.com/google-research/simclr, ``run.py`` with
``--zero_init_logits_layer=True`` and ``model_util.get_optimizer``):

- the new classifier starts at zero (SimCLR's ``zero_init_logits_layer``);
- with LARS, the classifier takes plain momentum-SGD steps, outside the layer-wise trust ratio,
  as SimCLR's LARS leaves out ``head_supervised`` (and, with
  ``optimizer.kwargs.exclude_bias_n_norm``, biases and norm layers). solo-learn's own LARS
  applies the trust ratio to every weight matrix: a zero-initialised classifier would then move
  by 1e-3 of its own (tiny) norm per step and barely learn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig
from solo.methods.linear import LinearModel
from solo.utils.lars import LARS
from torch import nn

from seed_solo.evaluation.linear import linear_model
from seed_solo.evaluation.subsets import SUBSET_FILE, Sample, as_list_file
from seed_solo.runs.atomic import atomic_path

#: parameter groups (by name prefix, as solo-learn's LinearModel names them) kept out of the
#: LARS trust ratio
PLAIN_GROUPS = ("classifier",)


class HeadLARS(LARS):
    """solo-learn's LARS (same update, same options), except that parameter groups whose
    ``name`` starts with one of :data:`PLAIN_GROUPS` take the plain momentum-SGD step
    ``buf = momentum * buf + (g + wd * p); p -= lr * buf`` (no trust ratio)."""

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            plain = str(group.get("name", "")).startswith(PLAIN_GROUPS)
            wd, momentum = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad
                adapt = not plain and (p.ndim != 1 or not group["exclude_bias_n_norm"])
                p_norm, g_norm = torch.norm(p.data), torch.norm(p.grad.data)
                if adapt and p_norm != 0 and g_norm != 0:
                    lars_lr = group["eta"] * p_norm / (g_norm + p_norm * wd + group["eps"])
                    if group["clip_lr"]:
                        lars_lr = min(lars_lr / group["lr"], 1)
                    d_p = d_p.add(p, alpha=wd) * lars_lr
                elif plain and wd:
                    d_p = d_p.add(p, alpha=wd)
                if momentum != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        buf = state["momentum_buffer"] = torch.clone(d_p).detach()
                    else:
                        buf = state["momentum_buffer"]
                        buf.mul_(momentum).add_(d_p, alpha=1 - group["dampening"])
                    d_p = d_p.add(buf, alpha=momentum) if group["nesterov"] else buf
                p.add_(d_p, alpha=-group["lr"])
        return loss


class FineTuneModel(LinearModel):
    """solo-learn's ``LinearModel`` training the whole backbone (in train mode), its classifier
    zero-initialised, its LARS :class:`HeadLARS`."""

    _OPTIMIZERS = {**LinearModel._OPTIMIZERS, "lars": HeadLARS}

    def __init__(self, backbone: nn.Module, cfg: DictConfig, **kwargs: Any):
        cfg.finetune = True
        super().__init__(backbone, cfg, **kwargs)
        nn.init.zeros_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)
        # a loaded backbone comes in eval mode, and Lightning keeps each module's mode: its
        # BatchNorm must train (batch statistics, running averages updated)
        self.backbone.train()


def finetune_model(backbone: nn.Module, cfg: DictConfig) -> FineTuneModel:
    """:class:`FineTuneModel` over ``backbone``, laid out as the linear model is."""
    return linear_model(backbone, cfg, FineTuneModel)


class SubsetRecord(Callback):
    """Writes the labelled images of the run to ``subset.txt`` in its run folder (rank 0), in the
    list-file format of :mod:`seed_solo.evaluation.subsets`."""

    def __init__(self, samples: Sequence[Sample], checkpointer: Optional[Any]) -> None:
        self.text = as_list_file(samples)
        self.checkpointer = checkpointer

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:  # after the checkpointer's
        folder = getattr(self.checkpointer, "path", None)
        if folder is None or not trainer.is_global_zero:
            return
        with atomic_path(Path(folder) / SUBSET_FILE) as tmp:
            tmp.write_text(self.text)
