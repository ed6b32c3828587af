#!/usr/bin/env bash
# Linear evaluation of a seed_mbv3 student on CIFAR. DATA_DIR=... CKPT=... bash $0 [hydra overrides]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
seed_solo_linear "cifar" "seed_mbv3" "$@"
