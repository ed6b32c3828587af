"""Objectives, pure torch, one file each; :mod:`registry` names them."""

from seed_solo.core.objectives.dense import dense_loss, to_grid
from seed_solo.core.objectives.l2 import l2_loss
from seed_solo.core.objectives.queue_kl import queue_kl
from seed_solo.core.objectives.seed import seed_logits, seed_loss, seed_loss_reference
from seed_solo.core.objectives.simreg import simreg_loss
from seed_solo.core.objectives.token_kl import token_kl

__all__ = ["dense_loss", "l2_loss", "queue_kl", "seed_logits", "seed_loss",
           "seed_loss_reference", "simreg_loss", "to_grid", "token_kl"]
