"""The core: pure torch, no solo-learn, no Lightning; usable in any training loop.

- :mod:`objectives`: the losses, one file each (:func:`objectives.seed.seed_loss`...), and
  :mod:`objectives.registry`, the objectives by name.
- :mod:`mixup`: batch mixup of the images teacher and student see (LightlyTrain's).
- :mod:`queue`: the FIFO of teacher embeddings D, kept in the checkpoint.
- :mod:`distributed`: collectives that also run in one process without a process group.
- :mod:`errors`: the project's own error types and the one ``error:`` line a command prints.
- :mod:`unknown_names`: the one "unknown name, did you mean" message.
"""
