"""What each change of a single-image recipe buys: the same number of steps, or the same minutes, with and
without it.

    python benchmarks/ablation.py --variant base= --variant ema="--ema-halflife 50" \
        [--preset quick] [--steps 1000 | --minutes 8] [--seeds 0,1] [--pairs montStMichel-vanGogh,...]
        [--jobs 2] [--reuse]

Every variant trains each pair through the real CLI (`sincut train --preset P VARIANT_OPTIONS` with
`--steps N` or `--minutes M`).

- `--steps N` (default 1000): two variants see the same schedule and, with one seed, the same patches:
  the difference in their final figures is the change's, not the clock's. Runs may go in parallel
  (`--jobs`, one thread each): quality at a fixed step count does not depend on timing (a CPU run of one
  seed repeats exactly), so the per-step seconds printed are comparable only with --jobs 1.
- `--minutes M`: each variant gets the wall-clock budget a user gives it, so a change that makes steps
  dearer pays for it in steps (a screen at the budget users run: a few hundred steps show nothing about
  texture). Runs go one at a time (`--jobs 1`), nothing else running.

Prints a table (per pair: SIFID over the better of the two closed-form colour transfers' SIFID, the
texture distance, SSIM and edge correlation to the photo; steps run) and writes
benchmarks/results/ablation/ablation.json (every final evaluation, the baselines, the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

from benchmarks.harness.args import parse_seeds, parser  # noqa: E402
from benchmarks.harness.baselines import best_transfer_sifid, score_baselines  # noqa: E402
from benchmarks.harness.machine import describe  # noqa: E402
from benchmarks.harness.pairs import PAIRS, select_pairs  # noqa: E402
from benchmarks.harness.paths import RESULTS  # noqa: E402
from benchmarks.harness.report import markdown_table, save_result, write_json  # noqa: E402
from benchmarks.harness.training_runs import (  # noqa: E402
    final_figures, median_seconds_per_step, recorded, run_steps, train_command, train_once)
from sincut.config import PRESETS  # noqa: E402
from sincut.evaluation.inception import load_inception  # noqa: E402


def train(run: Path, source: Path, target: Path, preset: str, length: list[str], seed: int, options: list[str],
          threads: int, reuse: bool = False, device: str = "cpu") -> dict:
    """One `sincut train` in a fresh process (`length` = ["--steps", N] or ["--minutes", M]); its final
    evaluation, steps and wall seconds. With `reuse`, a finished run of the same command and the same
    preset values in `run` is read instead of trained again."""
    cmd = train_command(source, target, run, ["--preset", preset, *length, "--seed", str(seed),
                                              "--select-by", "sifid", *options], device)
    record = run / "ablation_run.json"
    request = {"command": cmd[1:],  # a run is reused only if the preset still means the same
               "preset_values": json.loads(json.dumps(PRESETS[preset]))}
    saved = recorded(record, request) if reuse else None
    if saved is not None:
        return saved["result"]
    if run.exists():
        shutil.rmtree(run)
    wall = train_once(cmd, threads, hint=f" ({run.name})")
    result = {"wall_seconds": round(wall, 1), "steps": run_steps(run),
              "seconds_per_step": median_seconds_per_step(run), **final_figures(run)}
    write_json(record, {**request, "result": result})
    return result


def print_table(args: argparse.Namespace, variants: dict[str, list[str]], pairs: list[str], results: list[dict],
                budget: str) -> None:
    """Per variant and pair: SIFID over the better transfer's, texture, SSIM, edges (steps), each seed."""
    print(f"\n{args.preset}, {budget}, seeds {args.seeds}: per pair SIFID / best colour transfer's, texture "
          "distance, SSIM, edge correlation (steps)\n")
    rows = []
    for variant, options in variants.items():
        cells, speeds = [], []
        for pair in pairs:
            mine = [r for r in results if r["variant"] == variant and r["pair"] == pair]
            speeds += [r["seconds_per_step"] for r in mine]
            cells.append(" ; ".join(f"{r['sifid_over_best_transfer']:.2f} / {r['texture_distance']:.3f} / "
                                    f"{r['ssim']:.2f} / {r['edge_correlation']:.2f} ({r['steps']:,})" for r in mine))
        shown = " ".join(options) or "(preset)"
        rows.append([variant, f"`{shown}`", *cells, f"{statistics.median_high(speeds):.2f}"])
    print(markdown_table(["variant", "options", *pairs, "s/step"], rows))


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--variant", action="append", required=True, metavar='NAME="OPTIONS"',
                    help="a name and the `sincut train` options that make it (empty for the preset itself)")
    ap.add_argument("--preset", default="quick")
    length = ap.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help="fixed steps per run (default 1000)")
    length.add_argument("--minutes", type=float, default=None,
                        help="wall-clock budget per run instead (runs one at a time: --jobs 1)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds; each variant runs once per seed")
    ap.add_argument("--pairs", default="montStMichel-vanGogh,greatWall-bazille",
                    help=f"comma-separated, from {', '.join(PAIRS)}")
    ap.add_argument("--device", default="cpu", help="where each run trains (cpu, cuda)")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once, each with 2 // jobs threads (at least 1)")
    ap.add_argument("--out", type=Path, default=RESULTS / "ablation")
    ap.add_argument("--json", type=Path, default=None, help="where the JSON goes (default: OUT/ablation.json)")
    ap.add_argument("--reuse", action="store_true", help="read finished runs of the same command from OUT/runs "
                                                         "instead of training them again")
    args = ap.parse_args()

    if args.minutes is not None and args.jobs != 1:
        ap.error("--minutes budgets wall-clock time, which parallel runs distort: give --jobs 1 (or fixed --steps)")
    if (args.minutes is not None and args.minutes <= 0) or (args.steps is not None and args.steps < 1):
        ap.error("--minutes must be positive and --steps at least 1")
    length = ["--minutes", f"{args.minutes:g}"] if args.minutes is not None else ["--steps", str(args.steps or 1000)]
    budget = f"{length[1]} {length[0][2:]}"  # "8 minutes" or "1000 steps"
    variants = {}
    for spec in args.variant:
        name, _, options = spec.partition("=")
        variants[name] = shlex.split(options)
    pairs = select_pairs(args.pairs)
    seeds = parse_seeds(args.seeds)
    threads = max(1, (os.cpu_count() or 2) // args.jobs)
    network = load_inception()
    base = {name: score_baselines(name, *paths, args.out, network) for name, paths in pairs.items()}
    jobs = [(v, p, s) for p in pairs for s in seeds for v in variants]

    def one(job: tuple[str, str, int]) -> dict:
        variant, pair, seed = job
        run = args.out / "runs" / f"{variant}-{pair}-seed{seed}"
        result = train(run, *pairs[pair], args.preset, length, seed, variants[variant], threads, args.reuse,
                       args.device)
        result["sifid_ratio"] = result["sifid"] / base[pair]["photo"]["sifid"]
        result["sifid_over_best_transfer"] = result["sifid"] / best_transfer_sifid(base[pair])
        print(f"  {variant} / {pair} / seed {seed}: {result['steps']} steps, SIFID / best transfer "
              f"{result['sifid_over_best_transfer']:.2f}, texture {result['texture_distance']:.3f}, "
              f"SSIM {result['ssim']:.3f}, {result['wall_seconds'] / 60:.1f} min", file=sys.stderr, flush=True)
        return {"variant": variant, "pair": pair, "seed": seed, **result}

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(one, jobs))
    machine = {**describe(), "jobs": args.jobs, "threads_per_run": threads}
    save_result(args.json or args.out / "ablation.json",
                {"machine": machine, "preset": args.preset, "steps": args.steps if args.minutes is None else None,
                 "minutes": args.minutes, "variants": variants, "baselines": base, "runs": results})
    print_table(args, variants, list(pairs), results, budget)


if __name__ == "__main__":
    main()
