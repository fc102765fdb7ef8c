#!/usr/bin/env bash
# One prepared GPU check, sized for a 15-minute device lease (one call of about 9 minutes; on one H200 the
# presets' steps took 0.1-0.25 s, launch-bound, so the picture runs are short):
# 1) seconds per step of sincut, cut and fastcut at fp32 (TF32) and bf16 autocast and peak GPU memory
#    (benchmarks/gpu_steps.py); 2) the paper's recipe at a fixed step count in fp32 and in
#    bf16, two pairs x three seeds, six runs at a time on the one GPU (their wall times are not speed figures);
#    the results come back in $OUT/precision_sincut_gpu.tar for SIFID, texture and SSIM on the CPU
#    (`sincut eval`). The paper's recipe on a CPU at that step count would take hours.
# Extra inputs travel in .gpu_inputs/ (the Great Wall / Bazille pair of ../shared, which does not travel);
# kornia, missing on the device image, travels as wheels in .whl/ (see CONTRIBUTING.md).
# Settings (environment): OUT, GPU_DEVICE, GPU_PRESETS, GPU_WARMUP_STEPS, GPU_TIMED_STEPS, GPU_TIMING_SECONDS,
# GPU_PICTURE_STEPS (0: part 1 only).
set -uo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 0
fi
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
OUT="${OUT:-benchmarks/results/gpu}"
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
STEPS="${GPU_PICTURE_STEPS:-300}"
DEVICE="${GPU_DEVICE:-cuda}"  # GPU_DEVICE=cpu GPU_PICTURE_STEPS=2 checks the script's plumbing on a CPU

# --- 1) step times, fp32 against bf16 (benchmarks/gpu_steps.py) -------------------------------------------
timeout "${GPU_TIMING_SECONDS:-200}" python3 benchmarks/gpu_steps.py --device "$DEVICE" \
  --presets "${GPU_PRESETS:-sincut,cut,fastcut}" --warmup "${GPU_WARMUP_STEPS:-10}" \
  --timed "${GPU_TIMED_STEPS:-20}" --json "$OUT/gpu_steps.json"

# --- 2) the paper's recipe at a fixed step count, fp32 against bf16 ----------------------------------------
[ "$STEPS" = 0 ] && exit 0
PAIRS="montStMichel:samples/photo_montStMichel.jpg:samples/painting_vincent_van_gogh_village_street_in_auver.jpg"
if [ -f .gpu_inputs/photo_greatWallofChina.jpg ]; then
  PAIRS="$PAIRS greatWall:.gpu_inputs/photo_greatWallofChina.jpg:.gpu_inputs/painting_bazille_the_ramparts_at_aigues_mortes.jpg"
fi
RUNS=/tmp/precision_sincut_gpu
rm -rf "$RUNS"; mkdir -p "$RUNS"
jobs=()
for pair in $PAIRS; do
  IFS=: read -r name src tgt <<<"$pair"
  for seed in 0 1 2; do
    for precision in fp32 bf16; do
      jobs+=("$name $src $tgt $seed $precision")
    done
  done
done
printf '%s\n' "${jobs[@]}" | timeout 300 xargs -P 6 -L 1 bash -c '
  run='"$RUNS"'/$4-$0-seed$3
  t0=$(date +%s.%N)
  OMP_NUM_THREADS=2 python3 -m sincut train "$1" "$2" --preset sincut --steps '"$STEPS"' --seed "$3" \
      --precision "$4" --device '"$DEVICE"' --select-by style --preview-every 150 --checkpoint-every 100000 \
      --out "$run" >"$run.log" 2>&1 || { echo "$run failed"; tail -3 "$run.log"; exit 0; }
  echo "$(basename $run): $(python3 -c "print(round($(date +%s.%N) - $t0))") s"
' 2>&1
echo "steps $STEPS" > "$RUNS/steps.txt"
(cd "$RUNS/.." && tar cf "$OUT/precision_sincut_gpu.tar" \
   $(cd "$RUNS/.." && ls -d precision_sincut_gpu/*/result.png precision_sincut_gpu/*/metrics.jsonl \
     precision_sincut_gpu/*/config.json precision_sincut_gpu/steps.txt 2>/dev/null))
ls -la "$OUT"
