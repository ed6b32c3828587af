"""Objectives, pure torch."""

from seed_solo.core.objectives.seed import seed_logits, seed_loss, seed_loss_reference

__all__ = ["seed_logits", "seed_loss", "seed_loss_reference"]
