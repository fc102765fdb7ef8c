"""Counts the FLOPs of one optimizer step of the paper's unmodified train.py and profiles another.

    OFFICIAL_VENV/bin/python benchmarks/paper_probe.py CLONE_DIR WARMUP PROFILE_TXT -- <train.py args>

Run by `benchmarks/run.py --official DIR --profile OUT` with the arguments bench.sh used. train.py runs
as is (runpy); only CUTModel.optimize_parameters is wrapped, by name, to let WARMUP steps pass, count
the next one with torch.utils.flop_counter, profile the one after with torch.profiler (op table,
sorted by self time, into PROFILE_TXT) and stop. Prints one JSON line: {"gflop": ..., "profile": ...}.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path

clone, warmup, profile_txt = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
assert sys.argv[4] == "--", "usage: paper_probe.py CLONE WARMUP PROFILE_TXT -- <train.py args>"
sys.path.insert(0, clone)
sys.argv = [os.path.join(clone, "train.py"), *sys.argv[5:]]

from torch.profiler import ProfilerActivity, profile  # noqa: E402

import models.cut_model as cut_model  # noqa: E402  (the paper's code, from CLONE)
from flop_count import CountFlops  # noqa: E402  (beside this script)


class Done(Exception):
    pass


original_step = cut_model.CUTModel.optimize_parameters
calls = {"n": 0}
found: dict = {}


def probed_step(self) -> None:
    calls["n"] += 1
    if calls["n"] <= warmup:
        return original_step(self)
    if "gflop" not in found:
        counter = CountFlops()
        with counter:
            original_step(self)
        found["gflop"] = sum(counter.by_op.values()) / 1e9
        found["gflop_by_op"] = {op: n / 1e9 for op, n in counter.by_op.items()}
        return None
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        original_step(self)
    profile_txt.parent.mkdir(parents=True, exist_ok=True)
    profile_txt.write_text(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40,
                                                     max_name_column_width=48))
    found["profile"] = str(profile_txt)
    raise Done


cut_model.CUTModel.optimize_parameters = probed_step
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except Done:
    pass
print(json.dumps(found))
