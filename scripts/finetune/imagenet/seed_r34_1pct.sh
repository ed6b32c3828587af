#!/usr/bin/env bash
# Fine-tuning a seed_r34 student on 1 % of ImageNet's labels (SimCLR's recipe, docs/evaluation.md).
# SUBSET=imagenet_subsets/1percent.txt CKPT=... DATA_DIR=... bash $0 [hydra overrides]
# Without SUBSET: a seeded, class-balanced 0.01 of each class (not SimCLR's list).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
seed_solo_finetune "imagenet" "seed_r34_1pct" "0.01" "$@"
