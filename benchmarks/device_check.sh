#!/usr/bin/env bash
# The checks that need a CUDA GPU, as one run (about 8 minutes on an H200):
#   1. the CUDA tests (tests/core/test_cuda.py: no host sync in a step, bf16 / TF32 exactness) and the
#      loss and queue tests, on that machine's torch;
#   2. a short real SEED distillation on the GPU through solo-learn, with DALI where nvidia-dali
#      is importable and solo-learn's image-folder loader otherwise;
#   3. the GPU benchmark: 224 px, batch 256, bf16 autocast, channels_last, the three pairs;
#   4. the DALI tests (tests/data/test_dali.py) with dali.device=gpu (SEED_SOLO_DALI_DEVICE=gpu),
#      where nvidia-dali is importable (a 1 GB install: it must already be on that machine);
#   5. the teacher-cache benchmark at 224 px: live vs. cached SEED, the three pairs (about 4
#      minutes; not run yet on a GPU: the sessions that wrote it had none).
# Run from the repository root; results go to $1, else $OUT, else benchmarks/results:
#   bash benchmarks/device_check.sh /tmp/gpu
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-benchmarks/results}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py=$(command -v python3 || command -v python)
status=0

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.txt"
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
    | tee -a "$out/gpu.txt"

echo "== 1. tests"
timeout 120 $py -m pytest -q -p no:cacheprovider tests/core/test_cuda.py tests/core/test_loss_paper_formula.py \
    tests/core/test_loss_fused.py tests/core/test_queue.py tests/core/test_distributed.py 2>&1 | tee "$out/tests.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

echo "== 2. a real SEED distillation on the GPU (DALI where importable, else image folders)"
if $py -c "import solo, omegaconf, hydra" 2>/dev/null; then
    data=$(mktemp -d)
    $py - "$data" <<'PY'
import sys
from pathlib import Path
from tests.support.data import make_image_folders
make_image_folders(Path(sys.argv[1]), classes=4, train_per_class=64, val_per_class=8, size=64,
                   suffix=".jpg")
PY
    if $py -c "import nvidia.dali" 2>/dev/null; then fmt=dali; else
        fmt=image_folder; echo "nvidia-dali is not importable: the image-folder loader instead"; fi
    timeout 200 $py -m seed_solo.distill --config-path "$PWD/configs/distill/imagenet" \
        --config-name seed_r18 data.dataset=custom data.format=$fmt dali.device=gpu \
        "data.train_path=$data/train" \
        "data.val_path=$data/val" data.num_workers=4 method_kwargs.teacher=torchvision:resnet50 \
        method_kwargs.queue_size=1024 optimizer.batch_size=64 max_epochs=2 devices=1 \
        strategy=auto sync_batchnorm=False "checkpoint.dir=$data/ckpt" wandb.enabled=False \
        2>&1 | tail -40 | tee "$out/distill.log"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
    ls -R "$data/ckpt" | tee -a "$out/distill.log"
else
    echo "GPU distillation not checked: solo-learn, omegaconf or hydra is not importable" \
        | tee "$out/distill.log"
fi

echo "== 3. benchmark"
timeout 270 $py -m benchmarks.bench_seed --device cuda --reps 4 --steps 6 --json "$out/cuda.json" 2>&1 \
    | tee "$out/bench.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

echo "== 4. the DALI tests with dali.device=gpu"
if $py -c "import nvidia.dali, solo" 2>/dev/null; then
    SEED_SOLO_DALI_DEVICE=gpu timeout 300 $py -m pytest -q -p no:cacheprovider tests/data/test_dali.py \
        2>&1 | tee "$out/dali_gpu.log"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
else
    echo "DALI on the GPU not checked: nvidia-dali or solo-learn is not importable" \
        | tee "$out/dali_gpu.log"
fi
echo "== 5. teacher cache: live vs. cached SEED at 224 px"
timeout 300 $py -m benchmarks.bench_cache --device cuda --crop 224 --batch 128 --images 1536 \
    --workers 12 --reps 2 --steps 4 --json "$out/cache_cuda.json" 2>&1 | tee "$out/bench_cache.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
exit $status
