"""Peak resident memory of `sincut train` on a camera-sized SOURCE (issue: under 3 GiB on a CPU).

    python benchmarks/train_memory.py [--size 6000x4000] [--runs "--steps 2 --crop-size 32 --batch-size 4"]
                                      [--json benchmarks/results/train_memory.json]

Makes a JPEG of the bundled photo resized to --size and runs the real command on it against the
bundled painting, each run in its own process, to the end: training, the evaluations (SOURCE
downscaled), the checkpoint, and result.png/best.png at full size through the tiled translator.
The peak is the child's own maximum resident set size (ru_maxrss from wait4, so one run's peak
never leaks into the next). Slow with the default generator on a CPU: the full-size result alone
takes minutes (about 25 minutes on a 2-core AVX2 EPYC at 24 megapixels).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "samples" / "photo_montStMichel.jpg"
PAINTING = ROOT / "samples" / "painting_vincent_van_gogh_village_street_in_auver.jpg"
DEFAULT_RUNS = ["--steps 2 --crop-size 32 --batch-size 4", "--steps 2", "--preset quick --steps 16"]


def peak_of(argv: list[str]) -> tuple[int, float, float]:
    """(exit code, peak RSS in GiB, seconds) of one command run to its end."""
    t0 = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, usage.ru_maxrss / 2**20, time.perf_counter() - t0  # ru_maxrss is in KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="6000x4000", help="SOURCE size, WIDTHxHEIGHT")
    parser.add_argument("--runs", action="append", help="sincut train options of one run (repeatable)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "train_memory.json")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / f"photo_{width}x{height}.jpg"
        Image.open(PHOTO).convert("RGB").resize((width, height), Image.BICUBIC).save(source, quality=92)
        for options in args.runs or DEFAULT_RUNS:
            run = Path(work) / f"run{len(rows)}"
            argv = [sys.executable, "-m", "sincut", "train", str(source), str(PAINTING), "--out", str(run),
                    "--device", "cpu", *shlex.split(options)]
            code, peak, seconds = peak_of(argv)
            full_size = (run / "result.png").exists() and Image.open(run / "result.png").size == (width, height)
            rows.append({"options": options, "exit_code": code, "peak_rss_gib": round(peak, 3),
                         "seconds": round(seconds, 1), "result_full_size": full_size})
            print(f"{options:45s} exit {code}  peak {peak:.2f} GiB  {seconds:7.1f} s  full-size result: {full_size}",
                  flush=True)
    report = {"size": args.size, "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"), "runs": rows}
    try:
        import torch
        report["torch"] = torch.__version__
    except ImportError:
        pass
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
