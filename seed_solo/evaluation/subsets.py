"""Label subsets for semi-supervised fine-tuning: which labelled images a run may train on.

Two kinds, one rule each:

- **A list file**: one image file name per line, the format of the ImageNet 1 % and 10 % lists
  SimCLR published (``imagenet_subsets/1percent.txt``, 12,811 names, and ``10percent.txt``,
  128,116 names, in github.com/google-research/simclr; e.g. ``n01440764_10026.JPEG``) and that
  BYOL, CompRess and SEED fine-tuned on. A name is matched against the file names (not the
  folders) of the training folder, so the same list serves any copy of the data set; a
  ``<class folder>/<file name>`` line names one image where file names repeat across classes.
  Blank lines and lines starting with ``#`` are ignored.
- **Seeded and class-balanced**: ``per_class`` images of every class, or ``fraction`` of every
  class (``max(1, round(fraction * n_c))`` of class c's ``n_c`` images). An image is ranked
  within its class by ``sha256("<seed>/<class folder>/<file name>")`` and the first ones are
  taken: the choice depends on nothing but the seed and the names, so it is the same on every
  run, rank, world size and machine, whatever the order the files are listed in, and an image
  added to one class changes no other class's choice.

Every rank computes the same list before the loader shards it (Lightning's
``DistributedSampler`` or DALI's ``shard_id``), so no rank ever trains on an image outside it.
The chosen subset is written to the run folder as ``subset.txt`` in the list-file format
(``<class folder>/<file name>`` lines), so a seeded subset can be given back as a file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from torchvision.datasets.folder import IMG_EXTENSIONS

from seed_solo.core.errors import ConfigError, DataError, MissingFileError

#: (image path, class index), as torchvision's ImageFolder lists them
Sample = Tuple[str, int]
SUBSET_FILE = "subset.txt"


@dataclass(frozen=True)
class SubsetSpec:
    """Exactly one of ``file``, ``per_class`` and ``fraction`` (``subset.*`` in the config)."""

    file: Optional[str] = None
    per_class: Optional[int] = None
    fraction: Optional[float] = None
    seed: int = 0

    def describe(self) -> str:
        if self.file:
            return f"the images listed in {self.file}"
        if self.per_class:
            return f"{self.per_class} images per class (seed {self.seed})"
        return f"{self.fraction:g} of each class (seed {self.seed})"


def subset_spec(cfg: Mapping[str, Any]) -> SubsetSpec:
    """The ``subset`` section of a fine-tuning config, checked.

    Raises:
        ConfigError: none or several of ``subset.file``, ``subset.per_class``,
            ``subset.fraction`` set, or a value out of range.
    """
    section = dict(cfg.get("subset") or {})
    spec = SubsetSpec(file=section.get("file") or None, per_class=section.get("per_class"),
                      fraction=section.get("fraction"), seed=int(section.get("seed") or 0))
    given = [k for k in ("file", "per_class", "fraction") if getattr(spec, k) is not None]
    if len(given) != 1:
        raise ConfigError(
            f"set exactly one of subset.file (a list of image file names, e.g. SimCLR's "
            f"1percent.txt), subset.per_class (k images per class) or subset.fraction (0-1 of "
            f"each class); got {', '.join(given) or 'none'}."
        )
    if spec.per_class is not None and (not isinstance(spec.per_class, int) or spec.per_class < 1):
        raise ConfigError(f"subset.per_class={spec.per_class!r}: give a whole number >= 1.")
    if spec.fraction is not None and not 0 < float(spec.fraction) <= 1:
        raise ConfigError(f"subset.fraction={spec.fraction!r}: give a fraction in (0, 1].")
    if spec.file is not None and not Path(spec.file).is_file():
        raise MissingFileError(
            f"subset.file={spec.file} does not exist; give the list of image file names to "
            "train on (SimCLR's imagenet_subsets/1percent.txt or 10percent.txt for ImageNet)."
        )
    return spec


def read_list(path: Union[str, Path]) -> List[str]:
    """The file names of a list file, in its order (blank and ``#`` lines skipped)."""
    names = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line)
    return names


def check_image_folder(root: Any) -> List[str]:
    """The class folders of the image folder ``root``, each checked to hold an image.

    Raises:
        MissingFileError: ``root`` is not a folder of class folders.
        DataError: naming the class folders that hold no image.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(f"{root} is not a folder; give an image folder of class folders.")
    classes = sorted(d.name for d in os.scandir(root) if d.is_dir())
    if not classes:
        raise DataError(f"{root} holds no class folder; put each class's images in "
                        f"{root}/<class>/.")
    empty = [c for c in classes
             if not any(e.name.lower().endswith(IMG_EXTENSIONS) for e in os.scandir(root / c))]
    if empty:
        raise DataError(
            f"{root}: the class folder(s) {', '.join(empty[:5])} hold no image; add their "
            "images or remove the empty folders."
        )
    return classes


def check_same_classes(train: Sequence[str], test: Sequence[str], train_root: Any,
                       test_root: Any) -> None:
    """Train and test/val folders name the same classes, in the same order.

    Raises:
        DataError: naming the classes only one of them has.
    """
    if list(train) == list(test):
        return
    only_train = sorted(set(train) - set(test))
    only_test = sorted(set(test) - set(train))
    raise DataError(
        f"the classes of {train_root} and {test_root} differ (only in the first: "
        f"{', '.join(only_train[:5]) or '-'}; only in the second: "
        f"{', '.join(only_test[:5]) or '-'}); both must hold the same class folders."
    )


def relative_name(path: str) -> str:
    """``<class folder>/<file name>`` of an image of an image folder."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


def from_list(samples: Sequence[Sample], names: Sequence[str], list_path: Any,
              root: Any) -> List[Sample]:
    """The samples ``names`` lists, in the training folder's order: a bare file name (SimCLR's
    lists) matches the image of that name, a ``<class folder>/<file name>`` entry (what
    ``subset.txt`` holds) that image of that class.

    Raises:
        DataError: a listed name that no image of ``root`` has, or a bare name two images share.
    """
    by_name: Dict[str, List[Sample]] = {}
    by_path: Dict[str, Sample] = {}
    for sample in samples:
        by_name.setdefault(Path(sample[0]).name, []).append(sample)
        by_path[relative_name(sample[0])] = sample
    missing, ambiguous, chosen = [], [], set()
    for name in dict.fromkeys(names):
        found = [by_path[name]] if name in by_path else by_name.get(name, [])
        if not found:
            missing.append(name)
        elif len(found) > 1:
            ambiguous.append(name)
        else:
            chosen.add(found[0][0])
    if missing:
        raise DataError(
            f"subset.file={list_path} names {len(missing)} image(s) that are not in {root} "
            f"(e.g. {', '.join(missing[:3])}); use the list made for this data set (SimCLR's "
            "imagenet_subsets/ lists name ImageNet's training files) or check data.train_path."
        )
    if ambiguous:
        raise DataError(
            f"subset.file={list_path}: {', '.join(ambiguous[:3])} name(s) more than one image "
            f"of {root}; write such entries as <class folder>/<file name>."
        )
    return [s for s in samples if s[0] in chosen]


def _rank_key(seed: int, class_name: str, path: str) -> str:
    return hashlib.sha256(f"{seed}/{class_name}/{Path(path).name}".encode()).hexdigest()


def balanced(samples: Sequence[Sample], classes: Sequence[str], spec: SubsetSpec,
             root: Any) -> List[Sample]:
    """``spec.per_class`` (or ``spec.fraction`` of each class's) images of every class, by the
    seeded rank of the module docstring; returned in the training folder's order.

    Raises:
        DataError: a class with fewer images than ``per_class``.
    """
    by_class: Dict[int, List[Sample]] = {}
    for sample in samples:
        by_class.setdefault(sample[1], []).append(sample)
    chosen = set()
    for label, members in sorted(by_class.items()):
        if spec.per_class is not None:
            k = spec.per_class
            if k > len(members):
                raise DataError(
                    f"subset.per_class={k}, but class {classes[label]!r} of {root} has only "
                    f"{len(members)} images; lower subset.per_class or use subset.fraction."
                )
        else:
            k = max(1, round(float(spec.fraction) * len(members)))
        ranked = sorted(members, key=lambda s: _rank_key(spec.seed, classes[label], s[0]))
        chosen.update(s[0] for s in ranked[:k])
    return [s for s in samples if s[0] in chosen]


def select(samples: Sequence[Sample], classes: Sequence[str], spec: SubsetSpec,
           root: Any) -> List[Sample]:
    """The labelled training images of ``spec`` among ``samples`` (an image folder's list)."""
    if spec.file:
        chosen = from_list(samples, read_list(spec.file), spec.file, root)
    else:
        chosen = balanced(samples, classes, spec, root)
    missing = sorted(set(range(len(classes))) - {label for _, label in chosen})
    if missing:
        raise DataError(
            f"{spec.describe()} leaves class(es) {', '.join(classes[i] for i in missing[:5])} "
            f"of {root} without a labelled image; every class needs one."
        )
    return chosen


def digest(samples: Sequence[Sample]) -> str:
    """The subset's identity: sha256 (16 hex digits) of its sorted ``<class>/<file>`` names and
    labels (the same for any copy of the data set, wherever it lies)."""
    h = hashlib.sha256()
    for name, label in sorted((relative_name(p), int(y)) for p, y in samples):
        h.update(f"{name}\t{label}\n".encode())
    return h.hexdigest()[:16]


def as_list_file(samples: Sequence[Sample]) -> str:
    """``samples`` in the list-file format, one ``<class folder>/<file name>`` per line, sorted
    (unambiguous even where two classes hold files of the same name)."""
    return "".join(f"{name}\n" for name in sorted(relative_name(p) for p, _ in samples))


def restrict(dataset: Any, samples: Sequence[Sample]) -> None:
    """Make an image-folder data set (torchvision's ``ImageFolder``) serve only ``samples``."""
    dataset.samples = list(samples)
    dataset.imgs = dataset.samples
    dataset.targets = [label for _, label in samples]
