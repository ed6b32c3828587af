#!/usr/bin/env bash
# SEED, ResNet-18 student on CIFAR. DATA_DIR=... TEACHER=... [TEACHER_CACHE=...] bash $0 [hydra overrides]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
seed_solo_distill "cifar" "seed_r18" "$@"
