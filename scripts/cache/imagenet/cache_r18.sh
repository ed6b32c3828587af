#!/usr/bin/env bash
# Teacher cache for SEED, ResNet-18 student: TEACHER's embeddings of VIEWS (8) views of every image.
# DATA_DIR=... TEACHER=... TEACHER_CACHE=... [VIEWS=8] bash $0 [hydra overrides]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
seed_solo_cache "imagenet" "seed_r18" "$@"
