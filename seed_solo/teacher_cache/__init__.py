"""The teacher cache: the frozen teacher's embeddings of V replayable views of every image.

- :mod:`store`: a cache folder (``embeddings.npy`` + ``meta.json``): lookup and the check that
  it was made for this run. Pure numpy/torch.
- :mod:`views`: replayable views (``(seed, image, view)`` fixes a crop), the cached run's
  sampler, data set and loader.

The pass that fills a cache is :mod:`seed_solo.harness.cache_pass` (``python -m
seed_solo.cache``).
"""
