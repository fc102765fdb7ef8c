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

A screen at a budget whose designs differ in step cost runs each design at its own step count (one call each,
its `--json`), then merges the calls' JSONs into one table, JSON and contact sheet:

    python benchmarks/ablation.py --merge A.json B.json ... --json SCREEN.json --sheet SCREEN.jpg \
        [--note "how the step counts were chosen"]

The sheet has a row per design (its result.png on every pair, captioned with the figures) under the photo
and painting of each pair.
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

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

from benchmarks.harness.args import fail, parse_seeds, parser  # noqa: E402
from benchmarks.harness.baselines import best_transfer_sifid, score_baselines  # noqa: E402
from benchmarks.harness.machine import describe  # noqa: E402
from benchmarks.harness.pairs import PAIRS, select_pairs  # noqa: E402
from benchmarks.harness.paths import RESULTS  # noqa: E402
from benchmarks.harness.report import markdown_table, save_result, write_json  # noqa: E402
from benchmarks.harness.sheets import sheet_row, stacked  # noqa: E402
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


SHEET_HEIGHT = 200  # px of each result on the contact sheet


def screen_sheet(merged: dict) -> Image.Image:
    """A row of the photos, one of the paintings, then a row per design: its result on every pair, captioned
    with its figures (SIFID over the better transfer's / texture / SSIM / edges, steps)."""
    pairs = list(merged["baselines"])
    rows = [sheet_row("photo", [(pair, Image.open(PAIRS[pair][0])) for pair in pairs], SHEET_HEIGHT),
            sheet_row("painting", [(pair, Image.open(PAIRS[pair][1])) for pair in pairs], SHEET_HEIGHT)]
    for variant, options in merged["variants"].items():
        cells = []
        for pair in pairs:
            for r in (r for r in merged["runs"] if r["variant"] == variant and r["pair"] == pair):
                caption = (f"{r['sifid_over_best_transfer']:.2f} / {r['texture_distance']:.3f} / {r['ssim']:.2f} / "
                           f"{r['edge_correlation']:.2f} ({r['steps']:,} steps)")
                cells.append((caption, Image.open(Path(r["run"]) / "result.png")))
        rows.append(sheet_row(f"{variant}: {' '.join(options) or '(preset)'}", cells, SHEET_HEIGHT))
    return stacked(rows)


def merge(paths: list[Path], note: str) -> dict:
    """Several calls' JSONs as one: their variants and runs in order, the baselines of the first call that
    scored each pair, every call's machine and command."""
    calls = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    merged = {"note": note, "preset": calls[0]["preset"], "calls": [], "variants": {}, "baselines": {}, "runs": []}
    for path, call in zip(paths, calls):
        if call["preset"] != merged["preset"]:
            fail(f"{path}: preset {call['preset']} differs from {paths[0]}'s {merged['preset']}")
        merged["calls"].append({"json": path.name, "command": call.get("command"), "machine": call["machine"],
                                "steps": call["steps"], "minutes": call["minutes"]})
        merged["variants"].update(call["variants"])
        for pair, base in call["baselines"].items():
            merged["baselines"].setdefault(pair, base)
        # calls that did not record a run's folder: runs/ beside their JSON (where --out put it)
        merged["runs"] += [{"run": str(path.parent / "runs" / f"{r['variant']}-{r['pair']}-seed{r['seed']}"), **r}
                           for r in call["runs"]]
    return merged


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                    help="merge these calls' JSONs (--json, --sheet) instead of training")
    ap.add_argument("--sheet", type=Path, default=None, help="with --merge: write the contact sheet here")
    ap.add_argument("--note", default="", help="with --merge: how the designs' step counts were chosen")
    ap.add_argument("--variant", action="append", metavar='NAME="OPTIONS"',
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
    if args.merge:
        merged = merge(args.merge, args.note)
        save_result(args.json or args.out / "ablation.json", merged)
        if args.sheet:
            screen_sheet(merged).save(args.sheet, quality=88)
        steps = sorted({r["steps"] for r in merged["runs"]})
        print_table(argparse.Namespace(preset=merged["preset"], seeds=",".join(sorted({str(r["seed"]) for r in
                                                                                 merged["runs"]}))),
                    merged["variants"], list(merged["baselines"]), merged["runs"],
                    f"{steps[0]:,}-{steps[-1]:,} steps" if len(steps) > 1 else f"{steps[0]:,} steps")
        return
    if not args.variant:
        ap.error("give --variant NAME=OPTIONS (or --merge JSON...)")
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
        return {"variant": variant, "pair": pair, "seed": seed, "run": str(run), **result}

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(one, jobs))
    machine = {**describe(), "jobs": args.jobs, "threads_per_run": threads}
    save_result(args.json or args.out / "ablation.json",
                {"machine": machine, "preset": args.preset, "steps": args.steps if args.minutes is None else None,
                 "minutes": args.minutes, "variants": variants, "baselines": base, "runs": results})
    print_table(args, variants, list(pairs), results, budget)


if __name__ == "__main__":
    main()
