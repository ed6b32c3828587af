"""solo-learn methods, thin adapters over the core: ``seed.SEED`` (every objective but one,
by ``method_kwargs.objective``), ``seed_mocov2.SEEDMoCoV2`` (SEED + MoCo v2), and what they
share (``distillation``)."""
