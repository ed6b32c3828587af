"""Frozen features on disk: extracted once, reused, extracted again when the model changes, and
an extraction killed mid-way resumes at its first missing chunk."""

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from seed_solo.evaluation.feature_store import DONE, META, stored_features

CPU = torch.device("cpu")


class Images(Dataset):
    """(3, 4, 4) images i/N and label i % 3; ``fail_at`` raises like an unreadable file."""

    def __init__(self, n=23, fail_at=None):
        self.n, self.fail_at = n, fail_at

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise OSError(f"image {i} is truncated")
        return torch.full((3, 4, 4), i / self.n), i % 3


class Counting(nn.Module):
    """A fixed linear map of the mean pixel; counts the images it has seen."""

    def __init__(self):
        super().__init__()
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([m, 2 * m, -m], dim=1)


def extract(folder, model, dataset, meta=None, log=None):
    return stored_features(folder, meta or {"fingerprint": "a"}, model, dataset, CPU,
                           batch_size=4, num_workers=0, log=log or (lambda *_: None), chunk=5)


def test_features_are_stored_then_reused(tmp_path):
    model = Counting()
    x, y = extract(tmp_path, model, Images())
    assert x.shape == (23, 3) and x.dtype == np.float32 and y.tolist() == [i % 3 for i in
                                                                             range(23)]
    assert np.allclose(x[:, 0], np.arange(23) / 23)
    assert model.seen == 23 and (tmp_path / DONE).is_file()
    assert not list(tmp_path.glob("part-*"))  # merged into one file
    assert json.loads((tmp_path / META).read_text())["images"] == 23

    lines = []
    x2, y2 = extract(tmp_path, model, Images(), log=lines.append)
    assert model.seen == 23  # nothing extracted again
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert lines == [f"seed-solo: reusing the features in {tmp_path}"]


def test_another_model_file_means_new_features(tmp_path):
    extract(tmp_path, Counting(), Images(), {"fingerprint": "a"})
    model, lines = Counting(), []
    extract(tmp_path, model, Images(), {"fingerprint": "b"}, log=lines.append)
    assert model.seen == 23
    assert "fingerprint: 'a' -> 'b'" in lines[0] and "extracting them again" in lines[0]


def test_a_killed_extraction_resumes_at_its_first_missing_chunk(tmp_path):
    with pytest.raises(OSError, match="image 12 is truncated"):
        extract(tmp_path, Counting(), Images(fail_at=12))
    assert sorted(p.name for p in tmp_path.glob("part-*")) == ["part-00000.npz",
                                                                "part-00001.npz"]
    assert not (tmp_path / DONE).exists()
    (tmp_path / ".part-00002.npz.999.part").write_bytes(b"half")  # a write cut short
    model = Counting()
    x, y = extract(tmp_path, model, Images())
    assert model.seen == 23 - 10  # chunks 0 and 1 (10 images) were kept
    clean, _ = extract(tmp_path / "clean", Counting(), Images())
    assert np.array_equal(x, clean)
    assert not list(tmp_path.glob(".*.part"))
