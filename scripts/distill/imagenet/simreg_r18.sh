#!/usr/bin/env bash
# simreg, ResNet-18 student (configs/distill/imagenet/simreg_r18.yaml; docs/objectives.md).
# DATA_DIR=... TEACHER=... [TEACHER_CACHE=...] bash $0 [hydra overrides]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
seed_solo_distill "imagenet" "simreg_r18" "$@"
