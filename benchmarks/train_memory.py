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

import shlex
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

from PIL import Image  # noqa: E402

from benchmarks.harness.args import add_json_option, parse_size, parser  # noqa: E402
from benchmarks.harness.machine import describe  # noqa: E402
from benchmarks.harness.paths import SAMPLE_PAINTING, SAMPLE_PHOTO  # noqa: E402
from benchmarks.harness.report import markdown_table, save_result  # noqa: E402
from benchmarks.harness.timing import run_to_end  # noqa: E402
from benchmarks.harness.training_runs import train_command  # noqa: E402

DEFAULT_RUNS = ["--steps 2 --crop-size 32 --batch-size 4", "--steps 2", "--preset quick --steps 16"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--size", default="6000x4000", help="SOURCE size, WIDTHxHEIGHT")
    ap.add_argument("--runs", action="append", help="sincut train options of one run (repeatable)")
    add_json_option(ap, "train_memory")
    args = ap.parse_args()
    width, height = parse_size(args.size, "--size")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / f"photo_{width}x{height}.jpg"
        Image.open(SAMPLE_PHOTO).convert("RGB").resize((width, height), Image.BICUBIC).save(source, quality=92)
        for options in args.runs or DEFAULT_RUNS:
            run = Path(work) / f"run{len(rows)}"
            code, seconds, peak = run_to_end(train_command(source, SAMPLE_PAINTING, run, shlex.split(options)))
            full_size = (run / "result.png").exists() and Image.open(run / "result.png").size == (width, height)
            rows.append({"options": options, "exit_code": code, "peak_rss_gib": round(peak, 3),
                         "seconds": round(seconds, 1), "result_full_size": full_size})
            print(f"{options}: exit {code}, peak {peak:.2f} GiB, {seconds:.1f} s, full-size result: {full_size}",
                  file=sys.stderr, flush=True)
    print(markdown_table(["`sincut train` options", "peak memory", "wall clock", "exit", "full-size result"],
                         [[f"`{r['options']}`", f"{r['peak_rss_gib']:.2f} GiB", f"{r['seconds'] / 60:.1f} min",
                           r["exit_code"], "yes" if r["result_full_size"] else "no"] for r in rows]))
    machine = describe()
    # "cpus", "python", "date" and "torch" stand at the top as well, where this file's earlier readers look
    save_result(args.json, {"size": args.size, "machine": machine, "cpus": machine["cores"],
                            "python": machine["python"], "date": machine["date"], "torch": machine["torch"],
                            "runs": rows})


if __name__ == "__main__":
    main()
