"""The SEED step with ViT teachers of width 384 and 768 (DINOv2 layout, one block each)."""


import pytest
import torch

from tests.support import vit_files as L
from tests.support.seed_method import fit_steps, make_cfg
from tests.support.solo import needs_solo

pytestmark = needs_solo


@pytest.mark.parametrize("width", [384, 768])
def test_seed_steps_with_a_vit_teacher(tiny_data, tmp_path, width):
    from seed_solo.harness.methods.seed import SEED

    ref = L.dinov2_reference(width, reg=True, grid=2)
    path = tmp_path / f"dinov2_vit{width}.pth"
    torch.save(L.dinov2_checkpoint(ref), path)
    cfg = make_cfg(tiny_data, "knn_eval.enabled=False", "backbone.name=tiny_resnet10",
                   "augmentations.0.crop_size=28",
                   teacher=str(path))
    model = SEED(cfg)
    assert model.teacher.embed_dim == width and model.queue.dim == width
    assert model.projector[-1].out_features == width  # d follows the teacher
    fit_steps(model, cfg, 2)
    queued = model.queue.get()
    assert len(model.queue) == 2 * 8 and queued.shape == (2 * 8, width)
    # the queue holds the teacher's L2-normalised CLS embeddings of the crops it saw
    torch.testing.assert_close(queued.norm(dim=1), torch.ones(16))
