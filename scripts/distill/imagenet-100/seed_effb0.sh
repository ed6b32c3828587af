#!/usr/bin/env bash
# SEED, EfficientNet-B0 student. DATA_DIR=... TEACHER=... [TEACHER_CACHE=...] bash $0 [hydra overrides]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
seed_solo_distill "imagenet-100" "seed_effb0" "$@"
