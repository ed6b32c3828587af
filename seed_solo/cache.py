"""``python -m seed_solo.cache``: the cache pass, the frozen teacher run once over V replayable
views of every image (:mod:`seed_solo.harness.cache_pass`; docs/cache.md).

    python -m seed_solo.cache --config-path DIR --config-name NAME [same overrides as distill] \
        +cache.path=PATH +cache.views=V [+cache.dtype=float16|float32] [+cache.batch_size=B]

Then train with the same command plus ``+method_kwargs.teacher_cache=PATH``
(:mod:`seed_solo.distill`).
"""

from __future__ import annotations

# first: third-party import warnings off before solo-learn, timm and torchmetrics load
from seed_solo.harness import quiet_imports  # noqa: F401

# isort: split

from seed_solo.harness.cache_pass import run
from seed_solo.harness.hydra_cli import run_hydra
from seed_solo.harness.registration import register

HELP = """
usage: python -m seed_solo.cache --config-path DIR --config-name NAME [KEY=VALUE ...] \\
           +cache.path=PATH +cache.views=V [+cache.dtype=float16|float32] [+cache.batch_size=B]

Runs the frozen teacher of a distill config once over V replayable views of every training
image and writes N x V x d embeddings to PATH (embeddings.npy + meta.json). Give the same
config and overrides as the distill run, which then adds +method_kwargs.teacher_cache=PATH.
Under torchrun each process takes a share of the images; rerun the same command to resume.
More settings: +cache.chunk_images (1024, the unit of resuming), +cache.max_chunks (stop after
that many chunks), +cache.num_workers, +cache.device (auto | cpu | cuda:N). See docs/cache.md.
"""


if __name__ == "__main__":
    register()  # before the overrides are checked: they may name the method's keys
    run_hydra(run, HELP)
