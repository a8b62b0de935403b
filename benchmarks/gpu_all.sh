#!/bin/bash
# Every GPU check of the project in one command, sized for a short lease (about 9 minutes on an H200).
#
#   bash benchmarks/gpu_all.sh [OUT_DIR]      (default: $OUT, else gpu_out)
#
# Needs a CUDA device and, besides attribmap's own dependencies, captum, grad-cam, ttach and torchcam
# importable (on a machine without a registry: carry their wheels and install them with
# `pip install --no-index --no-deps --target DIR`, then put DIR on PYTHONPATH). Each step has its own
# time limit, so one that hangs or fails does not cost the others; the log and the JSON / rst results
# go to OUT_DIR (at most 9 files: log.txt, metrics_c16.json, metrics_c64.json, faithfulness_cuda.json,
# gc/gpu_check.json, speed_r18.json, speed_r18.rst, speed_r50.json, speed_r50.rst).
# docs/performance.rst quotes them.
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.." || exit 2
out=${1:-${OUT:-gpu_out}}
mkdir -p "$out"
log=$out/log.txt
. benchmarks/step.sh
nvidia-smi -L 2>&1 | tee -a "$log"
device=$(python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" 2>&1) || {
    echo "no CUDA device or no torch: $device" | tee -a "$log"; exit 2; }
echo "$device" | tee -a "$log"
step 120 python3 benchmarks/speed_metrics.py --device cuda --images 16 --chunk 16 --repeat 3 --no-road \
    --no-per-metric --out "$out/metrics_c16.json"
step 70 python3 benchmarks/speed_metrics.py --device cuda --images 16 --chunk 64 --repeat 3 --no-road \
    --no-per-metric --out "$out/metrics_c64.json"
# ROAD (MoRF + LeRF, 9 percentages) vs pytorch-grad-cam with the imputation on the GPU, the imputation
# alone vs the forwards it feeds, and each faithfulness metric beside its bare forward floor
step 180 python3 benchmarks/speed_metrics.py --device cuda --images 16 --road-images 2 --chunk 64 --repeat 3 \
    --no-loop --out "$out/faithfulness_cuda.json"
step 60 python3 -m pytest -q -p no:cacheprovider tests/test_explainer.py::test_cuda_keeps_device \
    tests/test_tokens.py::test_token_layers_on_cuda_keep_the_device
step 150 python3 benchmarks/gpu_check.py --out "$out/gc" --skip-speed
step 100 python3 benchmarks/speed_methods.py --device cuda --archs resnet18 --memory --rounds 3 --warmup 1 \
    --samples 2 --json "$out/speed_r18.json" --table "$out/speed_r18.rst"
step 100 python3 benchmarks/speed_methods.py --device cuda --archs resnet50 --memory --rounds 3 --warmup 1 \
    --samples 2 --methods gradcam,refinecam,scorecam,sscam,iscam,ablationcam \
    --json "$out/speed_r50.json" --table "$out/speed_r50.rst"
echo "=== done $(date +%T)" | tee -a "$log"
