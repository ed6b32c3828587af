"""The teacher's layer: EfficientNet-Lite0's pooled block with the best kNN top-1 of held-out
training images against the training subset; the shallowest block within
``LAYER_TOLERANCE`` points of the best (cheaper to run live, equally good). Never the test set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torchvision import datasets, transforms
from tqdm import tqdm

from seed_solo.demo.plan import KNN, LAYER_TOLERANCE, Plan
from seed_solo.evaluation.knn import knn_accuracy
from seed_solo.nets.lite0 import efficientnet_lite0
from seed_solo.nets.normalize import IMAGENET_MEAN, IMAGENET_STD


def image_loader(folder: Path, batch_size: int, per_class: Optional[int] = None):
    """Un-augmented 32 px ImageNet-normalised images, as the evaluation pipelines give."""
    tf = transforms.Compose([transforms.ToTensor(),
                             transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    data = datasets.ImageFolder(str(folder), tf)
    if per_class is not None:  # the first per_class of each class: folders are shuffled already
        seen: Dict[int, int] = {}
        keep = []
        for i, (_, y) in enumerate(data.samples):
            if seen.get(y, 0) < per_class:
                seen[y] = seen.get(y, 0) + 1
                keep.append(i)
        data = torch.utils.data.Subset(data, keep)
    return torch.utils.data.DataLoader(data, batch_size=batch_size, num_workers=0)


def pooled_per_block(model: Any, loader: Any, desc: str):
    """([per block: (N, C_b) pooled features], labels) of every image of ``loader``."""
    feats: List[List[torch.Tensor]] = []
    labels = []
    with torch.inference_mode():
        for x, y in tqdm(loader, desc=desc, leave=False):
            out = model.pooled_per_block(x)
            feats = [[] for _ in out] if not feats else feats
            for bucket, f in zip(feats, out):
                bucket.append(f)
            labels.append(y)
    return [torch.cat(f) for f in feats], torch.cat(labels)


def select_layer(paths: Dict[str, Path], plan: Plan) -> Dict[str, Any]:
    """kNN top-1 of held-out training images per teacher block; pick the block."""
    model, _ = efficientnet_lite0()
    model.eval()
    bank, bank_y = pooled_per_block(
        model, image_loader(paths["train"], 256, plan.layer_bank_per_class),
        "teacher features (train)")
    query, query_y = pooled_per_block(model, image_loader(paths["heldout"], 256),
                                      "teacher features (held-out)")
    accs = [knn_accuracy(b, bank_y, q, query_y, min(KNN["k"], len(bank_y)), KNN["T"],
                         KNN["distance"])[0] for b, q in zip(bank, query)]
    best = max(accs)
    # the last entry is the 1280-d head; blocks are 0..15
    block = next(i for i, a in enumerate(accs) if a >= best - LAYER_TOLERANCE)
    names = [f"block {i}" for i in range(len(accs) - 1)] + ["head"]
    for name, a in zip(names, accs):
        mark = "  <- chosen" if name == names[block] else ""
        print(f"  {name:>8}: held-out kNN top-1 {a:5.1f}{mark}")
    return {"block": None if block == len(accs) - 1 else block,
            "knn_by_layer": dict(zip(names, accs)),
            "bank_images": len(bank_y), "heldout_images": len(query_y)}
