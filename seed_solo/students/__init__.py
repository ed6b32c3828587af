"""Students: the registry of backbones, and the one way to load a trained one.

- :mod:`registry`: names -> builders (``create_student``), ``timm:NAME`` / ``torchvision:NAME``.
- :mod:`solo_backbone`: a backbone rebuilt by its ``args.json`` name, as solo-learn builds it.
- :mod:`spatial`: a backbone's last feature map (dense objectives).
- :mod:`load`: a trained student (backbone, optionally its projector) from a run folder or
  checkpoint; evaluation and export go through it, and never import teacher code.
"""
