"""Counts the FLOPs of one optimizer step of the paper's unmodified train.py and profiles another.

    OFFICIAL_VENV/bin/python benchmarks/paper_probe.py CLONE_DIR WARMUP PROFILE_TXT -- <train.py args>

Run by `benchmarks/run.py --official DIR --profile OUT` with the arguments bench.sh used. train.py runs
as is (runpy); only CUTModel.optimize_parameters is wrapped, by name, to let WARMUP steps pass, count
the next one with the benchmarks' FLOP counter (harness/flops.py, the one our side is counted with),
profile the one after with torch.profiler (op table, sorted by self time, into PROFILE_TXT) and stop.
Prints one JSON line: {"gflop": ..., "gflop_by_op": ..., "profile": ...}.
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Done(Exception):
    """Raised out of the paper's training loop once the profiled step is written."""


def probe(clone: Path, warmup: int, profile_txt: Path, train_args: list[str]) -> dict:
    """Run the clone's train.py with `train_args`, its optimizer step wrapped; what the wrapper found."""
    sys.path.insert(0, str(clone))  # the paper's packages (models, data, util, options) first
    sys.path.append(str(ROOT))  # then benchmarks.harness, behind them
    sys.argv = [str(clone / "train.py"), *train_args]

    from torch.profiler import ProfilerActivity, profile

    import models.cut_model as cut_model  # the paper's code, from CLONE
    from benchmarks.harness.flops import CountFlops

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
            found["gflop"] = counter.total / 1e9
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
    return found


def main() -> None:
    ap = argparse.ArgumentParser(usage="%(prog)s [-h] CLONE WARMUP PROFILE_TXT -- TRAIN_ARGS...", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clone", type=Path, help="the paper's code (its train.py and models/)")
    ap.add_argument("warmup", type=int, help="optimizer steps to let pass first")
    ap.add_argument("profile_txt", type=Path, help="where the op table goes")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)  # what follows -- is train.py's, untouched
    args = ap.parse_args(argv[:split])
    if split == len(argv):
        ap.error("give train.py's arguments after --")
    print(json.dumps(probe(args.clone.resolve(), args.warmup, args.profile_txt, argv[split + 1:])))


if __name__ == "__main__":
    main()
