"""Label subsets for fine-tuning: SimCLR's list files and the seeded class-balanced rule, exact,
the same on every rank and world size, and bad input named."""

import hashlib
import random
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from seed_solo.core.errors import ConfigError, DataError
from seed_solo.evaluation import subsets
from seed_solo.evaluation.subsets import SubsetSpec

CLASSES = ["n01440764", "n01443537", "n01484850"]


def imagenet_like(root: Path, sizes=(20, 15, 9)):
    """(samples, classes) of an ImageNet-style folder: ``<wnid>/<wnid>_<n>.JPEG``."""
    samples = [(str(root / c / f"{c}_{100 + i}.JPEG"), label)
               for label, (c, n) in enumerate(zip(CLASSES, sizes)) for i in range(n)]
    return samples, CLASSES


def test_per_class_is_exact_and_follows_the_documented_rank(tmp_path):
    samples, classes = imagenet_like(tmp_path)
    chosen = subsets.balanced(samples, classes, SubsetSpec(per_class=4, seed=7), tmp_path)
    assert [sum(1 for _, y in chosen if y == c) for c in range(3)] == [4, 4, 4]
    # the rule of the module docstring, written out: sha256("<seed>/<class>/<file>"), lowest k
    for c, name in enumerate(classes):
        files = [Path(p).name for p, y in samples if y == c]
        expected = sorted(files, key=lambda f: hashlib.sha256(
            f"7/{name}/{f}".encode()).hexdigest())[:4]
        assert sorted(Path(p).name for p, y in chosen if y == c) == sorted(expected)


def test_fraction_takes_a_rounded_share_of_every_class(tmp_path):
    samples, classes = imagenet_like(tmp_path, sizes=(100, 35, 4))
    chosen = subsets.balanced(samples, classes, SubsetSpec(fraction=0.1), tmp_path)
    assert [sum(1 for _, y in chosen if y == c) for c in range(3)] == [10, 4, 1]  # max(1, .)


def test_the_choice_depends_only_on_seed_and_names(tmp_path):
    samples, classes = imagenet_like(tmp_path)
    spec = SubsetSpec(per_class=3, seed=1)
    first = subsets.balanced(samples, classes, spec, tmp_path)
    shuffled = samples[:]
    random.Random(0).shuffle(shuffled)
    moved = [(p.replace(str(tmp_path), "/elsewhere/imagenet/train"), y) for p, y in samples]
    assert sorted(subsets.balanced(shuffled, classes, spec, tmp_path)) == sorted(first)
    assert subsets.digest(subsets.balanced(moved, classes, spec, tmp_path)) == \
        subsets.digest(first)
    # another image in class 2 leaves classes 0 and 1 as they were
    grown = samples + [(str(tmp_path / CLASSES[2] / "extra.JPEG"), 2)]
    again = subsets.balanced(grown, classes, spec, tmp_path)
    assert [s for s in again if s[1] < 2] == [s for s in first if s[1] < 2]
    other_seed = subsets.balanced(samples, classes, SubsetSpec(per_class=3, seed=2), tmp_path)
    assert other_seed != first


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_every_world_size_trains_on_exactly_the_subset(tmp_path, world):
    """Each rank computes the same list, then its shard: the shards cover the subset, nothing
    else (DistributedSampler pads the last shard with repeats of the subset's own images)."""
    samples, classes = imagenet_like(tmp_path)
    spec = SubsetSpec(per_class=5, seed=3)
    reference = subsets.balanced(samples, classes, spec, tmp_path)
    seen = set()
    for rank in range(world):
        on_rank = subsets.balanced(samples, classes, spec, tmp_path)  # what rank `rank` computes
        assert on_rank == reference
        sampler = DistributedSampler(on_rank, num_replicas=world, rank=rank, shuffle=True, seed=0)
        seen.update(on_rank[i][0] for i in sampler)
    assert seen == {p for p, _ in reference}


def test_simclr_list_files_select_by_file_name(tmp_path):
    samples, classes = imagenet_like(tmp_path)
    names = ["n01443537_103.JPEG", "n01440764_100.JPEG", "n01484850_108.JPEG"]
    listed = tmp_path / "1percent.txt"
    listed.write_text("\n".join(names) + "\n\n")  # SimCLR's format: a name a line
    chosen = subsets.from_list(samples, subsets.read_list(listed), listed, tmp_path)
    assert sorted(Path(p).name for p, _ in chosen) == sorted(names)
    assert [y for _, y in chosen] == [0, 1, 2]  # the training folder's order and labels


def test_a_subset_written_to_a_run_folder_reads_back_as_the_same_subset(tmp_path):
    # file names repeat across classes here (0.png in every class): the written list names
    # <class>/<file>, which reads back unambiguously
    samples = [(str(tmp_path / f"class{c}" / f"{i}.png"), c) for c in range(3) for i in range(6)]
    classes = ["class0", "class1", "class2"]
    chosen = subsets.balanced(samples, classes, SubsetSpec(per_class=2), tmp_path)
    listed = tmp_path / "subset.txt"
    listed.write_text(subsets.as_list_file(chosen))
    assert subsets.from_list(samples, subsets.read_list(listed), listed, tmp_path) == chosen
    with pytest.raises(DataError, match=r"0.png name\(s\) more than one image.*<class folder>"):
        subsets.from_list(samples, ["0.png"], listed, tmp_path)


def test_a_list_naming_images_not_in_the_folder_names_the_file_and_the_fix(tmp_path):
    samples, classes = imagenet_like(tmp_path)
    listed = tmp_path / "10percent.txt"
    listed.write_text("n01440764_100.JPEG\nn09999999_1.JPEG\n")
    with pytest.raises(DataError) as err:
        subsets.from_list(samples, subsets.read_list(listed), listed, tmp_path)
    assert str(listed) in str(err.value) and "n09999999_1.JPEG" in str(err.value)
    assert "use the list made for this data set" in str(err.value)


def test_a_subset_leaving_a_class_without_labels_is_refused(tmp_path):
    samples, classes = imagenet_like(tmp_path)
    listed = tmp_path / "l.txt"
    listed.write_text("n01440764_100.JPEG\nn01443537_100.JPEG\n")
    with pytest.raises(DataError, match="n01484850 .* without a labelled image"):
        subsets.select(samples, classes, SubsetSpec(file=str(listed)), tmp_path)
    with pytest.raises(DataError, match="class 'n01484850' .* has only 9 images"):
        subsets.select(samples, classes, SubsetSpec(per_class=10), tmp_path)


@pytest.mark.parametrize("section, match", [
    ({}, "got none"),
    ({"per_class": 3, "fraction": 0.1}, "got per_class, fraction"),
    ({"per_class": 0}, "subset.per_class=0"),
    ({"fraction": 1.5}, "subset.fraction=1.5"),
    ({"file": "/no/such/1percent.txt"}, "subset.file=/no/such/1percent.txt does not exist"),
])
def test_the_subset_section_is_checked(section, match):
    with pytest.raises((ConfigError, FileNotFoundError), match=match):
        subsets.subset_spec({"subset": {"seed": 0, **section}})


def test_image_folder_checks_name_empty_classes_and_differing_classes(tmp_path):
    for split, names in (("train", ["a", "b", "c"]), ("val", ["a", "b", "d"])):
        for name in names:
            (tmp_path / split / name).mkdir(parents=True)
            (tmp_path / split / name / "x.png").write_bytes(b"")
    (tmp_path / "train" / "c" / "x.png").unlink()
    with pytest.raises(DataError, match=r"train: the class folder\(s\) c hold no image"):
        subsets.check_image_folder(tmp_path / "train")
    with pytest.raises(DataError, match="only in the first: c; only in the second: d"):
        subsets.check_same_classes(["a", "b", "c"], subsets.check_image_folder(tmp_path / "val"),
                                   tmp_path / "train", tmp_path / "val")


def test_restrict_serves_only_the_subset(tmp_path):
    from torchvision.datasets import ImageFolder

    from tests.support.data import make_image_folders

    make_image_folders(tmp_path, classes=5, train_per_class=4, val_per_class=1)
    data = ImageFolder(str(tmp_path / "train"))
    chosen = subsets.balanced(data.samples, data.classes, SubsetSpec(per_class=1), tmp_path)
    subsets.restrict(data, chosen)
    assert len(data) == 5 and data.targets == [0, 1, 2, 3, 4]
    assert torch.tensor([data[i][1] for i in range(5)]).tolist() == [0, 1, 2, 3, 4]
