#!/usr/bin/env bash
# One prepared GPU call of at most 8 minutes (timeouts 80 + 55 + 335 s). First, on the CPU side:
# `benchmarks/gpu_prepare.sh GIT_DIR` (the paper's checkout, its bench tools, the Great Wall pair and the wheels
# the GPU image lacks, in the git-ignored .gpu_inputs/ and .whl/); then the call:
#   run(command="bash benchmarks/gpu.sh", carry=[".gpu_inputs", ".whl"], timeout_s=540)
# 1) each preset's step, eager and captured (--cuda-graphs), at fp32 (TF32) and bf16: seconds per step over
#    whole lazy-R1 periods, peak GPU memory, the fraction of the GPU's peak (benchmarks/gpu_steps.py ->
#    $OUT/gpu_steps.json; a mode that fails records its error);
# 2) the paper's own train.py for sincut, cut and fastcut on the same GPU (benchmarks/paper_gpu.py ->
#    $OUT/paper_gpu.json; skipped with a line without .gpu_inputs/official);
# 3) the quick recipe for 1, 2 and 5 minutes on the Mont Saint-Michel / Van Gogh and Great Wall / Bazille pairs,
#    the six runs at once on the one GPU (so each has a share of it: say so beside the figures), captured where
#    part 1's captured quick row ran, else eager; each pair's runs (result.png, metrics.jsonl, log.jsonl,
#    config.json, run.json, the console log) come back as $OUT/quick_PAIR.tar (at most 8 files of 16 MiB come
#    back), to be scored on the CPU like the CPU runs (SIFID ratio, texture, SSIM, edges: `sincut eval`).
# The whole log is $OUT/gpu.log. Settings (environment): OUT, GPU_DEVICE, GPU_PRESETS, GPU_PRECISIONS, GPU_MODES,
# GPU_WARMUP_STEPS, GPU_TIMED_STEPS, GPU_TIMING_SECONDS, GPU_PAPER_SECONDS, GPU_QUICK_SLACK (seconds the quick
# runs may take beyond their minutes), GPU_OFFICIAL (default
# .gpu_inputs/official), GPU_QUICK_MINUTES (comma-separated; 0 skips part 3), GPU_QUICK_PAIRS ("NAME:PHOTO:PAINTING
# ..."), GPU_QUICK_ARGS (added to each run).
# A dry run on a CPU checks the plumbing: GPU_DEVICE=cpu GPU_PRESETS=quick GPU_QUICK_MINUTES=0.1 with a small pair
# and tiny networks in GPU_QUICK_ARGS (tests/test_benchmarks.py runs it).
set -uo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 0
fi
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
OUT="${OUT:-benchmarks/results/gpu}"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.log") 2>&1
if ls .whl/*.whl >/dev/null 2>&1; then  # kornia, kornia_rs, dominate: missing on the GPU image
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
DEVICE="${GPU_DEVICE:-cuda}"
OFFICIAL="${GPU_OFFICIAL:-.gpu_inputs/official}"

# --- 1) our step, eager and captured, fp32 and bf16 (benchmarks/gpu_steps.py) ---------------------------------
timeout "${GPU_TIMING_SECONDS:-80}" python3 benchmarks/gpu_steps.py --device "$DEVICE" \
  --presets "${GPU_PRESETS:-sincut,quick,cut,fastcut}" --precisions "${GPU_PRECISIONS:-fp32,bf16}" \
  --modes "${GPU_MODES:-eager,captured}" --warmup "${GPU_WARMUP_STEPS:-3}" --timed "${GPU_TIMED_STEPS:-10}" \
  --json "$OUT/gpu_steps.json"

# --- 2) the paper's train.py on the same GPU (benchmarks/paper_gpu.py) -----------------------------------------
if [ -f "$OFFICIAL/cut/train.py" ]; then
  timeout "${GPU_PAPER_SECONDS:-55}" python3 benchmarks/paper_gpu.py --official "$OFFICIAL" --device "$DEVICE" \
    --iters 10 --warmup 3 --timeout 18 --json "$OUT/paper_gpu.json"
else
  echo "part 2 skipped: no $OFFICIAL/cut/train.py (benchmarks/gpu_prepare.sh lays it out)"
fi

# --- 3) the quick recipe for a few minutes on two pairs, all at once -------------------------------------------
MINUTES="${GPU_QUICK_MINUTES:-1,2,5}"
[ "$MINUTES" = 0 ] && { ls -la "$OUT"; exit 0; }
CAPTURED=$(python3 - "$OUT/gpu_steps.json" <<'EOF'
import json, sys
try:
    rows = json.load(open(sys.argv[1]))["rows"]
except (OSError, ValueError, KeyError):
    rows = []
print("--cuda-graphs" if any(r["preset"] == "quick" and r.get("mode") == "captured" and r.get("graphs")
                             and "error" not in r for r in rows) else "")
EOF
)
echo "part 3: quick runs ${CAPTURED:-eager (no captured quick row ran in part 1)}"
PAIRS="montStMichel:samples/photo_montStMichel.jpg:samples/painting_vincent_van_gogh_village_street_in_auver.jpg"
if [ -f .gpu_inputs/photo_greatWallofChina.jpg ]; then
  PAIRS="$PAIRS greatWall:.gpu_inputs/photo_greatWallofChina.jpg:.gpu_inputs/painting_bazille_the_ramparts_at_aigues_mortes.jpg"
fi
PAIRS="${GPU_QUICK_PAIRS:-$PAIRS}"
RUNS=/tmp/gpu_quick
rm -rf "$RUNS"; mkdir -p "$RUNS"
jobs=()
longest=0
for pair in $PAIRS; do
  for m in ${MINUTES//,/ }; do
    jobs+=("$pair:$m")
    longest=$(python3 -c "print(max($longest, $m))")
  done
done
printf '%s\n' "${jobs[@]}" | timeout "$(python3 -c "print(int($longest * 60 + ${GPU_QUICK_SLACK:-35}))")" xargs -P "${#jobs[@]}" -L 1 bash -c '
  IFS=: read -r name src tgt minutes <<<"$0"
  run='"$RUNS"'/$name/quick-${minutes}min
  mkdir -p "$(dirname "$run")"
  t0=$(date +%s.%N)
  OMP_NUM_THREADS=2 python3 -m sincut train "$src" "$tgt" --preset quick --minutes "$minutes" --seed 0 \
      --device '"$DEVICE"' '"$CAPTURED"' '"${GPU_QUICK_ARGS:-}"' --checkpoint-every 100000 --out "$run" \
      >"$run.log" 2>&1 || { echo "$run failed"; tail -3 "$run.log"; exit 0; }
  echo "$name quick ${minutes} min: $(python3 -c "print(round($(date +%s.%N) - $t0))") s wall, \
$(python3 -c "import json; print(json.load(open(\"$run/config.json\"))[\"steps\"])") steps"
'
for dir in "$RUNS"/*/; do
  name=$(basename "$dir")
  (cd "$RUNS" && tar cf - $(cd "$RUNS" && ls -d "$name"/*.log "$name"/*/result.png \
     "$name"/*/metrics.jsonl "$name"/*/log.jsonl "$name"/*/config.json "$name"/*/run.json 2>/dev/null)) \
     > "$OUT/quick_$name.tar"
done
ls -la "$OUT"
