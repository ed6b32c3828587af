"""The whole journey in one call per step: from a folder of images to an exported student.

    from seed_solo.journey import distill, export, knn, linear

    run = distill("my_images", teacher="dinov2-vits14", student="resnet18", out="runs/r18",
                  epochs=100, export="onnx")
    knn(run.run_dir, "labelled_images")    # train/ and val/ of class sub-folders
    linear(run.run_dir, "labelled_images")
    export(run.run_dir, "torchvision")

``seed-solo distill DATA --teacher T --student S --out OUT`` (and ``seed-solo knn``, ``linear``,
``export``) run the same calls. Each composes the scripts' own hydra config, picks what a user
should not have to know (labelled or flat folder, a crop valid for the teacher's patch, CPU or
GPU, workers, precision), prints what it chose and where its results are. docs/journey.md.
"""

# first: third-party import warnings off before solo-learn, timm and torchmetrics load
from seed_solo.harness import quiet_imports  # noqa: F401

# isort: split

from seed_solo.journey.steps import Distilled, distill, knn, linear
from seed_solo.journey.steps import export_step as export

__all__ = ["Distilled", "distill", "export", "knn", "linear"]
