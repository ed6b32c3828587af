#!/usr/bin/env bash
# lightly_v3, ResNet-18 student (configs/distill/imagenet/lightly_v3_r18.yaml; docs/objectives.md).
# DATA_DIR=... TEACHER=... [TEACHER_CACHE=...] bash $0 [hydra overrides]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
seed_solo_distill "imagenet" "lightly_v3_r18" "$@"
