#!/usr/bin/env bash
# The demo: SEED from an ImageNet EfficientNet-Lite0 into a tiny ResNet on Fashion-MNIST, vs.
# the same student trained with MoCo v2+ alone; kNN + linear evaluation, fine-tuning with few
# labels, transfer to digits, detection; tables and plot.
#   bash scripts/distill/demo/seed_demo.sh           # ~16 min on 2 CPU cores, with the
#                                                    # teacher-cache row (--cache-views V: another V)
#   bash scripts/distill/demo/seed_demo.sh --quick   # the whole pipeline in about a minute
# `make demo` sets everything up first; the demo itself names anything missing before it starts.
# Rerunning skips the stages already done; delete demo_runs/<full|quick> to start over.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"  # PYTHON: the set-up's environment
# idle OpenMP threads sleep instead of spinning: on a shared or busy CPU, spinning threads
# of the trainer and the data workers slow each other down several times over
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}"
cd "$ROOT"
exec "$PYTHON" -m seed_solo.demo.run "$@"
