#!/usr/bin/env bash
# One prepared GPU check, sized for a 15-minute device lease (one call of about 9 minutes; on one H200 the
# presets' steps took 0.1-0.25 s, launch-bound, so the picture runs are short):
# 1) seconds per step of sincut, cut and fastcut at fp32 (TF32) and bf16 autocast, peak GPU memory, and the
#    projected time of each preset's full schedule; 2) the paper's recipe at a fixed step count in fp32 and in
#    bf16, two pairs x three seeds, six runs at a time on the one GPU (their wall times are not speed figures);
#    the results come back in $OUT/precision_sincut_gpu.tar for SIFID, texture and SSIM on the CPU
#    (`sincut eval`). The paper's recipe on a CPU at that step count would take hours.
# Extra inputs travel in .gpu_inputs/ (the Great Wall / Bazille pair of ../shared, which does not travel);
# kornia, missing on the device image, travels as wheels in .whl/ (see CONTRIBUTING.md).
set -uo pipefail
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

# --- 1) step times, fp32 against bf16 ---------------------------------------------------------------------
timeout "${GPU_TIMING_SECONDS:-200}" python3 - "$OUT/gpu_steps.json" <<'PY'
import json, statistics, sys, tempfile, time, torch
from pathlib import Path
sys.path.insert(0, "benchmarks")
from run import inputs_for
from sincut.config import make_config
from sincut.training.trainer import Trainer, make_data
dev = torch.device("cuda")
rows = []
scratch = Path(tempfile.mkdtemp())
import os
for preset in os.environ.get("GPU_PRESETS", "sincut,cut,fastcut").split(","):
    for precision in ("fp32", "bf16"):
        cfg = make_config(preset, precision=precision, **({"steps": 1000} if preset != "sincut" else {}))
        trainer = Trainer.build(cfg, make_data(cfg, *inputs_for(preset, scratch), dev), dev)
        for i in range(10):
            trainer.step(i)
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(dev)
        times = []
        for i in range(10, 10 + int(os.environ.get("GPU_TIMED_STEPS", "20"))):
            t = time.perf_counter(); trainer.step(i); torch.cuda.synchronize(); times.append(time.perf_counter() - t)
        s = statistics.median(times)
        full = make_config(preset)
        steps = full.steps if full.steps else None
        row = {"preset": preset, "precision": precision, "seconds_per_step": round(s, 5),
               "peak_gpu_mib": round(torch.cuda.max_memory_allocated(dev) / 2**20)}
        rows.append(row)
        print(f"{preset:<8} {precision:<5} {s * 1000:7.1f} ms/step  peak {row['peak_gpu_mib']} MiB", flush=True)
        del trainer
        torch.cuda.empty_cache()
meta = {"gpu": torch.cuda.get_device_name(dev), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
Path(sys.argv[1]).write_text(json.dumps({"machine": meta, "rows": rows}, indent=2))
PY

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
