#!/usr/bin/env bash
# One prepared GPU check (fits a 15-minute device lease): the suite on the GPU, each preset at fp32 (TF32)
# and bf16 with its fraction of the floor at each, then the sincut step with the opt-in fast path, and the
# projected time of the full 100,000-step schedule. The quick recipe (a CPU recipe) and step_profile.py
# stay off the lease: CPU-sized nets tell little on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python benchmarks/run.py --device cuda --precisions fp32,bf16 --json "${OUT:-benchmarks/results}/gpu_suite.json"
python - <<'PY'
import statistics, sys, time, torch
sys.path.insert(0, ".")
from benchmarks.run import image_pair
from sincut.config import make_config
from sincut.training.trainer import Trainer, make_data
dev = torch.device("cuda")
torch.backends.cudnn.benchmark = True
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
# fp32 against bf16 is in run.py's table above; bf16 stays here as the baseline of the compiled rows
for label, extra in [("bf16", {"precision": "bf16"}), ("bf16+compile", {"precision": "bf16", "compile": True}),
                     ("bf16+compile+r1-every-16", {"precision": "bf16", "compile": True, "r1_every": 16})]:
    cfg = make_config("sincut", **extra)
    trainer = Trainer.build(cfg, make_data(cfg, *image_pair(), dev), dev)
    for i in range(32):
        trainer.step(i)
    torch.cuda.synchronize()
    times = []
    for i in range(32, 128):  # six whole periods of lazy R1 every 16: the mean holds R1 in proportion
        t = time.perf_counter(); trainer.step(i); torch.cuda.synchronize(); times.append(time.perf_counter() - t)
    s = statistics.mean(times)
    print(f"{label:<28} {s * 1000:7.1f} ms/step   100k steps: {s * 1e5 / 60:6.1f} min")
PY
