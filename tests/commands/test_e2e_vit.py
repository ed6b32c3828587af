"""A DINOv2 ViT-S/14 teacher, named by its zoo name, distilled by the ImageNet MobileNetV3 script.

The teacher is the real ViT-S/14 architecture (12 blocks, 384 wide, 37 x 37 position grid) with
random weights, saved in Meta's published layout where the zoo's cache expects
``dinov2_vits14_pretrain.pth``; nothing is downloaded.
"""


import pytest
import timm
import torch

from tests.support import vit_files as L
from tests.support.commands import on_cpu, only, run
from tests.support.solo import needs_solo

pytestmark = [needs_solo, pytest.mark.slow]
CPU = [*on_cpu(), "optimizer.batch_size=8"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    ref = L.randomize(timm.create_model("vit_small_patch14_dinov2", pretrained=False,
                                        num_classes=0))
    folder = tmp_path_factory.mktemp("cache")
    torch.save(L.dinov2_checkpoint(ref), folder / "dinov2-vits14.pth")
    return folder


def test_dinov2_s_distils_into_mobilenetv3_through_the_script(tiny_data, cache, tmp_path):
    run(["bash", "scripts/distill/imagenet/seed_mbv3.sh", *CPU, "max_epochs=1",
         "method_kwargs.queue_size=64", "augmentations.0.crop_size=56",
         "knn_eval.enabled=False", f"checkpoint.dir={tmp_path}"],
        env={"DATA_DIR": str(tiny_data), "TEACHER": "dinov2-vits14",
             "SEED_SOLO_DOWNLOADS": str(cache), "SEED_SOLO_OFFLINE": "1"})
    ckpt = only(tmp_path / "seed", "*/*.ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert state["queue.embeddings"].shape == (64, 384)  # d = the DINOv2-S CLS token
    assert int(state["queue.num_filled"]) == 40  # every image of the epoch, one large crop each
    assert not [k for k in state if k.startswith("teacher.")]


def test_offline_without_the_file_says_where_to_put_it(tiny_data, tmp_path):
    proc = run(["bash", "scripts/distill/imagenet/seed_mbv3.sh", *CPU, "max_epochs=1",
                f"checkpoint.dir={tmp_path}"],
               env={"DATA_DIR": str(tiny_data), "TEACHER": "dinov2-vits14",
                    "SEED_SOLO_DOWNLOADS": str(tmp_path / "empty"), "SEED_SOLO_OFFLINE": "1"},
               expect=2)  # an expected error: one line, exit 2
    out = proc.stdout + proc.stderr
    assert "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth" in out
    assert str(tmp_path / "empty" / "dinov2-vits14.pth") in out
