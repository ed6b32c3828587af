"""Any timm or torchvision model as the student: distilled, then linear- and kNN-evaluated by the
entry points, which rebuild it by its prefixed name from args.json / the linear config."""

import json

import pytest
import torch

from tests.support.commands import REPO, on_cpu, only, run
from tests.support.solo import needs_solo

pytestmark = [needs_solo, pytest.mark.slow]
CPU = [*on_cpu(), "optimizer.batch_size=8"]

STUDENTS = {  # name -> F, read off a dry forward
    "timm:convnext_atto": 320,
    "timm:mobilenetv4_conv_small": 1280,
    "timm:resnet18": 512,
    "torchvision:mobilenet_v3_small": 576,
}


@pytest.mark.parametrize("name", list(STUDENTS))
def test_library_student_distils_and_evaluates(name, tiny_data, tmp_path):
    from seed_solo.students.registry import create_student

    run(["bash", "scripts/distill/imagenet/seed_r18.sh", *CPU, "max_epochs=1",
         f"backbone.name={name}", "method_kwargs.queue_size=64", "augmentations.0.crop_size=32",
         "knn_eval.enabled=False", f"checkpoint.dir={tmp_path / 'runs'}"],
        env={"DATA_DIR": str(tiny_data), "TEACHER": "torchvision:resnet18"})
    ckpt = only(tmp_path / "runs" / "seed", "*/*.ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    backbone = {k[len("backbone."):] for k in state if k.startswith("backbone.")}
    assert backbone == set(create_student(name).state_dict())
    assert state["classifier.weight"].shape[1] == STUDENTS[name]  # solo sized it by F

    # the evaluation entry points in this process (their scripts are tested in test_e2e_solo)
    from seed_solo import knn, linear
    from seed_solo.harness.config import compose_config

    cfg = compose_config(REPO / "configs/linear/imagenet", "seed_r18", [
        *CPU, "max_epochs=1", f"backbone.name={name}", "+data.augmentations.crop_size=32",
        f"data.train_path={tiny_data}/train", f"data.val_path={tiny_data}/val",
        f"pretrained_feature_extractor={ckpt.parent}", f"checkpoint.dir={tmp_path / 'linear'}"])
    result = linear.run(cfg)
    assert result["epochs"] == 1 and 0 <= result["val_acc1"] <= result["val_acc5"] <= 100

    out = tmp_path / "knn.json"
    knn.main(["--pretrained_checkpoint_dir", str(ckpt.parent), "--dataset", "custom",
              "--train_data_path", f"{tiny_data}/train", "--val_data_path", f"{tiny_data}/val",
              "--num_workers", "0", "--batch_size", "16", "--device", "cpu",
              "--feature_type", "backbone", "projector", "--output_json", str(out)])
    kinds = {r["feature_type"]: r for r in json.loads(out.read_text())["results"]}
    assert set(kinds) == {"backbone", "projector"}
    assert all(0 <= r["acc1"] <= r["acc5"] <= 100 for r in kinds.values())
