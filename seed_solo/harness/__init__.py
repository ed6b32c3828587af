"""The glue to solo-learn and Lightning: what the commands are built from.

- :mod:`registration`: ``register()`` adds the ``seed`` method and the students to solo-learn.
- :mod:`methods`: the solo-learn methods (``methods.seed.SEED``).
- :mod:`config`: composing a hydra config as the commands do, and parsing it as solo-learn does.
- :mod:`config_keys`: the keys the groups seed-solo owns may hold; any other refused by name.
- :mod:`launch`: devices and nodes checked against what torchrun or srun started.
- :mod:`trainer`: the Lightning Trainer, the per-epoch ``metrics.jsonl``, the finite guard.
- :mod:`checkpointer`: atomic saves and identity-checked auto-resume.
- :mod:`schedule`: a resumed run follows its own lr schedule.
- :mod:`hydra_cli`: the command line of the hydra commands.
- :mod:`cache_pass`: the teacher-cache pass behind ``python -m seed_solo.cache``.
"""
