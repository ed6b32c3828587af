#!/usr/bin/env bash
# SEED, MobileNetV3-Large student. DATA_DIR=... TEACHER=... [TEACHER_CACHE=...] bash $0 [hydra overrides]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
seed_solo_distill "imagenet" "seed_mbv3" "$@"
