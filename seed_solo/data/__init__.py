"""Data: image sets and loaders for training and evaluation.

- :mod:`unreadable`: unreadable images named, or skipped (``data.on_corrupt=skip``).
- :mod:`image_folders`: a data folder there, whose symbolic links list no image twice.
- :mod:`pretrain`: the training transform and loader of a distill run (image folders).
- :mod:`loaders`: labelled loaders for evaluation (linear, kNN, online kNN).
- :mod:`dali`: solo-learn's DALI data modules, on GPUs and on a CPU.
"""
