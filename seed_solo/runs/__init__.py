"""A run's files: written atomically, found by one rule, told apart by one identity.

- :mod:`atomic`: a file is written beside its destination, fsynced, then renamed.
- :mod:`checkpoint_files`: reading ``torch.save`` files safely, loading state dicts with every
  key checked.
- :mod:`folders`: run folders as solo-learn writes them, ``args.json``, and the one rule for
  "which checkpoint of a folder".
- :mod:`identity`: what makes two runs the same run, the one "which setting differs", and the
  fingerprint of a teacher file.
- :mod:`tables`: a results table as CSV and Markdown.
"""
