#!/usr/bin/env bash
# Linear evaluation of a seed_r18 student. DATA_DIR=... CKPT=... bash $0 [hydra overrides]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
seed_solo_linear "imagenet-100" "seed_r18" "$@"
