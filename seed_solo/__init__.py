"""seed-solo: SEED self-supervised distillation as a solo-learn plugin.

Importing the package does nothing but define ``__version__``. The commands
(``python -m seed_solo.distill``, ``.linear``, ``.knn``, ``.cache``; ``seed-solo``) register the
``seed`` method and the students with solo-learn themselves. To use them from solo-learn's own
scripts, register first::

    from seed_solo.harness.registration import register
    register()

The whole journey, from a folder of images to an exported student, is one call per step:
``from seed_solo.journey import distill, knn, linear, export`` (``seed-solo distill``;
docs/journey.md).

The folders, from the bottom up: ``core`` (pure torch: objectives, queue, collectives, errors),
``runs`` (a run's files), ``nets``, ``students``, ``teachers``, ``data``, ``teacher_cache``,
``harness`` (solo-learn and Lightning glue), ``evaluation``; then the commands, the
``journey`` and the ``demo``.
docs/design.md is the map.
"""

__version__ = "0.1.0"
