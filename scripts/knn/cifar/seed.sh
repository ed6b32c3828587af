#!/usr/bin/env bash
# Weighted kNN (k=20, cosine, T=0.07, as solo-learn) of a student. RUN_DIR=... DATA_DIR=... bash $0 [options]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
seed_solo_knn cifar10 --k 20 --temperature 0.07 --distance_function cosine \
    --feature_type backbone projector --batch_size 256 --num_workers 8 "$@"
