"""What the tests share, imported as ``tests.support.<module>``.

- :mod:`commands`: the repository, the one list of CPU overrides, the one subprocess runner.
- :mod:`solo`: the solo-learn gate (``needs_solo``).
- :mod:`data`: tiny image folders.
- :mod:`teacher_files`, :mod:`vit_files`, :mod:`solo_checkpoints`: teacher checkpoints in the
  publishers' layouts, written by the tests.
- :mod:`teacher_cache`: a tiny teacher and the cache pass's configs.
- :mod:`distill_cpu`: ``python -m seed_solo.distill`` on several CPU processes (torchrun nodes).
- :mod:`gloo`, :mod:`host_reads`, :mod:`http_server`, :mod:`vectors`: process groups, reads
  back from the device, a loopback file server, unit vectors.
"""
