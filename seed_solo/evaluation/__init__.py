"""Evaluating a trained student (or a teacher): the pieces behind the evaluation commands.

- :mod:`features`: a model's features of every image of a loader.
- :mod:`knn`: solo-learn's weighted kNN classifier on those features.
- :mod:`linear`: the linear classifier on a frozen backbone (solo-learn's ``LinearModel``).
- :mod:`subsets`, :mod:`finetune`: fine-tuning the whole student on a subset of the labels.
- :mod:`transfer_data`, :mod:`feature_store`, :mod:`logistic`: transfer classification with
  frozen features (Kornblith et al., 2019).
- :mod:`detection`: detectors over a student's stages, their data, training and metrics.
"""
