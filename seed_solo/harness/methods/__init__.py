"""solo-learn methods, thin adapters over the core (``seed.SEED``)."""
