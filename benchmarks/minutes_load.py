"""--minutes under load: does a run end on its budget when the machine is busier at the start or at the end?

    python benchmarks/minutes_load.py [--minutes 3] [--conditions quiet,start,end] [--json PATH]

Each condition is one real `sincut train SOURCE TARGET --preset quick --minutes M` in a fresh process (on
the bundled photo and painting unless --source/--target), timed from its launch to its exit, so start-up
and the final outputs (checkpoint, evaluation, result.png, report) count:

    quiet   nothing else running (run the benchmark on an otherwise idle machine)
    start   --hogs busy processes during the run's first --hog-first seconds (40)
    end     --hogs busy processes during the budget's last --hog-last seconds (60), until the run ends

Prints a table (budget, wall seconds, steps, deviation from the budget) and writes JSON (default
benchmarks/results/minutes_load.json). The goal: every run within 5% of its budget.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

from benchmarks.harness.args import add_json_option, comma_list, fail, parser  # noqa: E402
from benchmarks.harness.machine import describe  # noqa: E402
from benchmarks.harness.paths import RESULTS, SAMPLE_PAINTING, SAMPLE_PHOTO  # noqa: E402
from benchmarks.harness.report import markdown_table, save_result  # noqa: E402
from benchmarks.harness.training_runs import run_steps, threads_env, train_command  # noqa: E402

CONDITIONS = ("quiet", "start", "end")
GOAL = 5.0  # per cent of the budget
FIRST_SIZING = re.compile(r"minutes at ([\d.]+) s per step: ([\d,]+) steps")


def hog_window(condition: str, budget: float, hog_first: float, hog_last: float) -> tuple[float, float] | None:
    """Seconds after the launch between which the hogs run (the end: until the run exits)."""
    if condition == "start":
        return 0.0, min(hog_first, budget)
    if condition == "end":
        return max(0.0, budget - hog_last), float("inf")
    return None


class Hogs:
    """`count` processes that keep one core each busy, started and stopped by this benchmark only."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.running: list[subprocess.Popen] = []

    def start(self) -> None:
        self.running = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.count)]

    def stop(self) -> None:
        for process in self.running:
            process.kill()
            process.wait()
        self.running = []


def timed_run(cmd: list[str], env: dict, log: Path, window: tuple[float, float] | None,
              hogs: Hogs) -> tuple[float, int, list[float]]:
    """(wall seconds, exit status, [hogs' start, stop] in seconds after the launch) of one run."""
    span: list[float] = []
    with open(log, "w", encoding="utf-8") as err:
        t0 = time.perf_counter()
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            while process.poll() is None:
                t = time.perf_counter() - t0
                if window and not span and t >= window[0]:
                    hogs.start()
                    span.append(round(t, 1))
                if hogs.running and t >= window[1]:
                    hogs.stop()
                    span.append(round(t, 1))
                time.sleep(0.05)
            wall = time.perf_counter() - t0
        finally:
            if hogs.running:
                hogs.stop()
                span.append(round(time.perf_counter() - t0, 1))
            if process.poll() is None:  # interrupted: the run goes too
                process.terminate()
                process.wait()
    return wall, process.returncode, span


def first_sizing(log: Path) -> dict:
    """The first sizing's step time and total, from the run's console lines (later sizings move it)."""
    found = FIRST_SIZING.search(log.read_text(encoding="utf-8", errors="replace"))
    if not found:
        return {"first_seconds_per_step": None, "first_steps": None}
    return {"first_seconds_per_step": float(found.group(1)), "first_steps": int(found.group(2).replace(",", ""))}


def table(runs: list[dict], budget: float, hog_first: float, hog_last: float) -> str:
    """The markdown table docs/benchmarks.md shows."""
    def busy(condition: str) -> str:
        window = hog_window(condition, budget, hog_first, hog_last)
        if window is None:
            return "-"
        return f"{window[0]:g} s to the end" if window[1] == float("inf") else f"{window[0]:g}-{window[1]:g} s"

    head = ["condition", "busy processes during", f"wall seconds (budget {budget:g})", "deviation",
            "steps first sized", "steps run"]
    return markdown_table(head, [[r["condition"], busy(r["condition"]), f"{r['wall_seconds']:.1f}",
                                  f"{r['deviation_percent']:.1f}%",
                                  "-" if r["first_steps"] is None else f"{r['first_steps']:,}", f"{r['steps']:,}"]
                                 for r in runs])


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--minutes", type=float, default=3.0, help="each run's budget")
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help=f"comma-separated, from {', '.join(CONDITIONS)}")
    ap.add_argument("--hogs", type=int, default=2, help="busy processes while the machine is loaded")
    ap.add_argument("--hog-first", type=float, default=40.0, help="start: seconds of load after the launch")
    ap.add_argument("--hog-last", type=float, default=60.0, help="end: seconds of load before the budget's end")
    ap.add_argument("--source", type=Path, default=SAMPLE_PHOTO)
    ap.add_argument("--target", type=Path, default=SAMPLE_PAINTING)
    ap.add_argument("--out", type=Path, default=RESULTS / "minutes_load", help="the runs' folders (replaced)")
    add_json_option(ap, "minutes_load")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per run (default: torch's)")
    args = ap.parse_args()
    conditions = comma_list(args.conditions)
    unknown = sorted(set(conditions) - set(CONDITIONS))
    if unknown or not conditions:
        fail(f"--conditions: {', '.join(unknown) or 'none given'}; choose from {', '.join(CONDITIONS)}")
    if args.minutes < 0.1:
        fail(f"--minutes must be at least 0.1 (sincut's own minimum), got {args.minutes:g}")
    if args.hogs < 1:
        fail(f"--hogs must be at least 1, got {args.hogs}")
    for path in (args.source, args.target):
        if not path.exists():
            fail(f"{path} does not exist")
    args.out.mkdir(parents=True, exist_ok=True)
    budget = args.minutes * 60
    results = {"machine": describe(), "minutes": args.minutes, "hogs": args.hogs, "hog_first": args.hog_first,
               "hog_last": args.hog_last, "goal_percent": GOAL, "runs": []}
    for condition in conditions:
        run = args.out / condition
        cmd = train_command(args.source, args.target, run,
                            ["--preset", "quick", "--minutes", f"{args.minutes:g}", "--seed", "0"])
        if run.exists():
            shutil.rmtree(run)  # this benchmark's own earlier run: sincut refuses to train into it
        print(f"{condition}: {args.minutes:g} minutes ...", file=sys.stderr, flush=True)
        window = hog_window(condition, budget, args.hog_first, args.hog_last)
        log = args.out / f"{condition}.log"
        wall, status, span = timed_run(cmd, threads_env(args.threads), log, window, Hogs(args.hogs))
        if status != 0:
            fail(f"{condition}: `{shlex.join(cmd)}` exited with status {status}; its output is in {log}")
        results["runs"].append({"condition": condition, "budget_seconds": budget, "wall_seconds": round(wall, 1),
                                "steps": run_steps(run), **first_sizing(log),
                                "deviation_percent": round(100 * (wall - budget) / budget, 2), "hog_span": span,
                                "run": str(run)})
        save_result(args.json, results)
    print(table(results["runs"], budget, args.hog_first, args.hog_last))
    missed = [r["condition"] for r in results["runs"] if abs(r["deviation_percent"]) > GOAL]
    print(f"within {GOAL:g}% of the budget: {'all' if not missed else 'not ' + ', '.join(missed)}; {args.json}")


if __name__ == "__main__":
    main()
