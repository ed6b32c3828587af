"""Where a detector starts: initialisations by label, one architecture for all, torchvision's
supervised weights from this machine's cache only, seeded random weights."""

import json

import pytest
import torch
import torchvision

from seed_solo.core.errors import ConfigError, MissingFileError
from seed_solo.evaluation.detection.inits import (
    Architecture,
    Init,
    architecture,
    init_backbone,
    parse_inits,
)


def _run(folder, method, name="resnet18", kwargs=None):
    folder.mkdir(parents=True)
    (folder / "args.json").write_text(json.dumps({
        "method": method, "backbone": {"name": name, "kwargs": kwargs or {}},
        "data": {"dataset": "imagenet"}}))
    torch.save({"state_dict": {}}, folder / f"{method}-ep=0.ckpt")
    return str(folder)


def test_inits_are_labelled_by_their_runs_method(tmp_path):
    seed = _run(tmp_path / "a", "seed")
    other = _run(tmp_path / "b", "seed")
    moco = _run(tmp_path / "c", "mocov2plus")
    found = parse_inits([seed, other, moco, "supervised", "random"])
    assert [i.label for i in found] == ["seed", "seed-2", "mocov2plus", "supervised", "random"]
    assert parse_inits({"mine": seed}) == [Init("mine", seed)]
    assert architecture(found, {}) == Architecture("resnet18", {}, "imagenet", "seed")
    with pytest.raises(MissingFileError, match="neither a run folder"):
        parse_inits([str(tmp_path / "nowhere")])


def test_one_comparison_is_one_architecture(tmp_path):
    r18 = _run(tmp_path / "a", "seed")
    r34 = _run(tmp_path / "b", "mocov2plus", "resnet34")
    with pytest.raises(ConfigError, match="'seed' and 'mocov2plus' are different architectures"):
        architecture(parse_inits([r18, r34]), {})
    with pytest.raises(ConfigError, match="set backbone.name"):
        architecture(parse_inits(["random"]), {})


def test_supervised_weights_come_from_torchvisions_cache_and_nowhere_else(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    arch = Architecture("resnet18")
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    with pytest.raises(MissingFileError, match=f"download {url} to that file"):
        init_backbone(Init("sup", "supervised"), arch)
    # a file where torchvision keeps its downloads (here random weights of the right layout)
    torch.manual_seed(1)
    published = torchvision.models.resnet18().state_dict()
    cached = tmp_path / "torch" / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    torch.save(published, cached)
    backbone = init_backbone(Init("sup", "supervised"), arch)
    got = backbone.state_dict()
    assert set(got) == {k for k in published if not k.startswith("fc.")}
    for key, value in got.items():
        assert torch.equal(value, published[key]), key
    with pytest.raises(ConfigError, match="3x3 CIFAR stem"):
        init_backbone(Init("sup", "supervised"), Architecture("resnet18", dataset="cifar10"))


def test_random_weights_are_seeded():
    arch = Architecture("tiny_resnet10", {"width": 4})
    a = init_backbone(Init("r", "random"), arch, seed=5).state_dict()
    b = init_backbone(Init("r", "random"), arch, seed=5).state_dict()
    c = init_backbone(Init("r", "random"), arch, seed=6).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["stem.0.weight"], c["stem.0.weight"])


def test_supervised_timm_weights_come_from_the_hugging_face_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants
    import timm
    from safetensors.torch import save_file

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    arch = Architecture("mobilenetv3_small_050")
    with pytest.raises(MissingFileError, match="not in this machine's Hugging Face cache"):
        init_backbone(Init("sup", "supervised"), arch)
    # the layout huggingface_hub leaves after a download (random weights of the right shapes)
    torch.manual_seed(2)
    model = timm.create_model("mobilenetv3_small_050")
    repo = model.pretrained_cfg["hf_hub_id"]
    folder = tmp_path / "hub" / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("abc123")
    (folder / "snapshots" / "abc123").mkdir(parents=True)
    published = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(published, str(folder / "snapshots" / "abc123" / "model.safetensors"))
    got = init_backbone(Init("sup", "supervised"), arch).state_dict()
    assert set(got) == {k for k in published if not k.startswith("classifier.")}
    assert all(torch.equal(got[k], published[k]) for k in got)
