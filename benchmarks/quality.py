"""Quality against wall-clock time: what each single-image recipe gives after 1, 2, ... M minutes,
judged against closed-form colour transfers rather than the untouched photo alone.

    python benchmarks/quality.py [--minutes 10] [--recipes quick,sincut] [--seeds 0,1,2] [--seeds-of sincut=0]
                                 [--pairs montStMichel-vanGogh,...|all] [--recipe-args NAME=ARGS ...]
                                 [--reuse] [--out benchmarks/results/quality] [--threads N]
    python benchmarks/quality.py --table [--out DIR]      # the markdown table of DIR/quality.json

Each recipe trains on each photo/painting pair with each seed through the real CLI (`sincut train
--preset R --minutes M --seed S`, one run at a time, nothing else running), which evaluates the
translation about once a minute into its metrics.jsonl: SIFID and texture distance to the painting,
SSIM and edge correlation to the photo, style distance. Beside the recipes, three baselines per pair
are scored the same way: the untouched photo, Reinhard's colour transfer (mean and std in l-alpha-beta)
and Pitie's iterative distribution transfer (sincut/nets/colour.py). A recipe is judged against the better
of the two transfers: "SIFID / best transfer" below 1 means it moved further toward the painting's
look than a colour transfer does. Writes to --out:

- quality.json: every evaluation of every run, the baselines, the recipes' arguments, the machine,
  torch, date and the command line (rewritten after each run);
- quality.png: SIFID / best transfer for every recipe and pair on top, then one row per pair: SIFID,
  texture distance, SSIM, edge correlation against minutes, each recipe as its median over seeds with
  the min-max band, each baseline as a dashed horizontal line;
- contact_sheet.jpg: per recipe and pair, the photo, both transfers, the first seed's translation at
  each evaluation, the other seeds' final results, and the painting, each with its SIFID;
- runs/RECIPE-PAIR-sSEED/: the run directories (`--reuse` keeps finished ones).

Pairs: the four defaults (the bundled samples, the paper's Etretat/Monet pair and two photo x painting
combinations of ../shared/data/samples_candidates); `--pairs all` adds the other seven combinations of
those three photos and three paintings. Pairs under ../shared are skipped, with a line, when absent.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from benchmarks.harness.args import fail, parse_seeds, parser  # noqa: E402
from benchmarks.harness.baselines import BASELINES, best_transfer_sifid, score_baselines  # noqa: E402
from benchmarks.harness.charts import Band, band_chart, band_of  # noqa: E402
from benchmarks.harness.machine import describe  # noqa: E402
from benchmarks.harness.pairs import ALL_PAIRS, PAIRS, select_pairs  # noqa: E402
from benchmarks.harness.paths import RESULTS  # noqa: E402
from benchmarks.harness.sheets import sheet_row, stacked  # noqa: E402
from benchmarks.harness.report import command_line, markdown_table as table, median_range, write_json  # noqa: E402
from benchmarks.harness.training_runs import (  # noqa: E402
    FIGURE_KEYS, evaluations, recorded, run_steps, train_command, train_once)
from sincut.config import PRESETS  # noqa: E402
from sincut.data.images import save_image  # noqa: E402
from sincut.evaluation.charts import PALETTE, chart_font  # noqa: E402
from sincut.evaluation.inception import load_inception  # noqa: E402

BASELINE_COLOURS = {"photo": "#777777", "reinhard": "#b8860b", "pitie": "#8b008b"}
FIGURES = [("sifid", "SIFID to the painting (lower)"), ("texture_distance", "texture distance (lower)"),
           ("ssim", "SSIM to the photo (higher)"), ("edge_correlation", "edge correlation to the photo (higher)")]
RATIO = "sifid_vs_best_transfer"
DEFINITIONS = {
    "sifid": "single-image FID to the painting, Inception Conv2d_4a, 256 px short side (sincut/evaluation/inception_metrics.py)",
    "texture_distance": "sliced Wasserstein distance of 7x7 patches of the high-passed luminance (minus its "
                        "sigma-2 blur, over its own std), both images at 512 px short side (sincut/evaluation/texture.py)",
    "ssim": "SSIM of the luminance to the photo", "edge_correlation": "Pearson correlation of Sobel magnitudes",
    "style_distance": "multi-scale SWD of 7x7 RGB patches to the painting",
    RATIO: "the run's SIFID over the lower SIFID of the Reinhard and Pitie transfers (below 1: beats both)",
    "final": "a run's figures are those of its last evaluation; tables give median (min-max) over seeds",
}
RESERVED = {"--minutes", "--seed", "--out", "--device", "--select-by"}  # set by the benchmark itself
THUMB = 150  # px height of a contact-sheet tile
COLUMNS = [("sifid", 1), (RATIO, 2), ("texture_distance", 3), ("ssim", 3), ("edge_correlation", 3)]


def parse_recipes(names: str, recipe_args: list[str]) -> dict[str, list[str]]:
    """Recipe name -> the `sincut train` arguments that make it.

    A preset name alone means `--preset NAME`. `--recipe-args NAME=ARGS` (repeatable) or a JSON
    mapping {"NAME": "ARGS"} gives a named variant its arguments (shell words; `--preset P` defaults
    to NAME when NAME is a preset); a variant named only there joins the recipes.
    """
    extra: dict[str, str] = {}
    for item in recipe_args:
        if item.lstrip().startswith("{"):
            try:
                mapping = json.loads(item)
            except json.JSONDecodeError as e:
                fail(f"--recipe-args: not valid JSON ({e.msg}); pass NAME=ARGS or {{\"NAME\": \"ARGS\"}}")
            if not all(isinstance(v, str) for v in mapping.values()):
                fail("--recipe-args: JSON values must be strings of arguments, e.g. {\"q\": \"--preset quick\"}")
            extra.update(mapping)
        elif "=" in item:
            name, _, args = item.partition("=")
            extra[name.strip()] = args
        else:
            fail(f"--recipe-args: {item!r} has no '='; pass NAME=\"--preset quick --option value\"")
    order = [n for n in names.split(",") if n] + [n for n in extra if n not in names.split(",")]
    recipes = {}
    for name in order:
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            fail(f"--recipes: {name!r} must be letters, digits, '-', '_' or '.' (it names run folders)")
        words = shlex.split(extra.get(name, ""))
        if "--preset" not in words:
            if name not in PRESETS:
                fail(f"--recipes: {name!r} is no preset ({', '.join(PRESETS)}); give it arguments with "
                     f"--recipe-args {name}=\"--preset quick ...\"")
            words = ["--preset", name, *words]
        clash = RESERVED.intersection(w.split("=")[0] for w in words)
        if clash:
            fail(f"--recipe-args {name}: {', '.join(sorted(clash))} is set by the benchmark; use --minutes/--seeds")
        recipes[name] = words
    return recipes


def parse_seeds_of(items: list[str], recipes: dict[str, list[str]], default: list[int]) -> dict[str, list[int]]:
    """Recipe -> its seeds: --seeds for every recipe, except those given NAME=SEEDS (a slow baseline recipe
    such as the paper's may run one seed beside three of the recipe under test)."""
    seeds = {name: default for name in recipes}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in recipes:
            fail(f"--seeds-of: {item!r} must be RECIPE=SEEDS for one of the recipes ({', '.join(recipes)}), "
                 "e.g. sincut=0")
        seeds[name] = parse_seeds(text, "--seeds-of")
    return seeds


# ---------------------------------------------------------------- running

def run_dir(out: Path, recipe: str, pair: str, seed: int) -> Path:
    return out / "runs" / f"{recipe}-{pair}-s{seed}"


def finished(run: Path, request: dict) -> dict | None:
    """The stamp of a finished run made with exactly these arguments, else None."""
    if not ((run / "metrics.jsonl").is_file() and (run / "result.png").is_file()):
        return None
    return recorded(run / "benchmark.json", request)


def read_run(run: Path) -> tuple[int, list[dict]]:
    """(steps, evaluations after step 0, with their minutes) of a finished run."""
    keys = ("step", *FIGURE_KEYS)
    return run_steps(run), [{"minutes": r["elapsed_seconds"] / 60, **{k: r[k] for k in keys if k in r}}
                            for r in evaluations(run) if r["step"] > 0]


# ---------------------------------------------------------------- summaries

def groups(results: dict) -> dict[tuple[str, str], list[dict]]:
    """(recipe, pair) -> its runs, in seed order."""
    out: dict[tuple[str, str], list[dict]] = {}
    for r in results["runs"]:
        out.setdefault((r["recipe"], r["pair"]), []).append(r)
    return out


def final_figures(run: dict, base: dict) -> dict:
    """A run's last evaluation, with its SIFID over the better colour transfer's."""
    last = dict(run["evaluations"][-1])
    best = best_transfer_sifid(base)
    last[RATIO] = last["sifid"] / best if best and last.get("sifid") is not None else None
    return last


def seeds_text(results: dict) -> str:
    """`0,1,2`, or per recipe where --seeds-of gave some recipe other seeds: `quick 0,1,2; sincut 0`."""
    per_recipe = results.get("recipe_seeds", {})
    if not per_recipe or all(v == results["seeds"] for v in per_recipe.values()):
        return ",".join(map(str, results["seeds"]))
    return "; ".join(f"{name} {','.join(map(str, v))}" for name, v in per_recipe.items())


def markdown_table(results: dict) -> str:
    """What docs/benchmarks.md shows of a quality.json: per pair, the baselines, then each recipe's median
    (min-max) over seeds at its last evaluation."""
    heading = (f"{results['minutes']:g} min per run, seeds {seeds_text(results)}; "
               "recipes: median (min-max) over seeds at their last evaluation" if results["runs"] else
               "the photo and its closed-form colour transfers (no recipe was run)")
    head = ["pair", "method", "seeds", "steps", "SIFID", "SIFID / best transfer", "texture", "SSIM", "edges"]
    rows = []
    by_group = groups(results)
    for pair, base in results["baselines"].items():
        best = best_transfer_sifid(base)
        for name in BASELINES:
            f = base[name]
            values = {**f, RATIO: f["sifid"] / best if best and f["sifid"] is not None else None}
            rows.append([pair, name, "-", "-", *(median_range([values[k]], d) for k, d in COLUMNS)])
        for recipe in results["recipes"]:
            runs = by_group.get((recipe, pair), [])
            if runs:
                finals = [final_figures(r, base) for r in runs]
                rows.append([pair, f"**{recipe}**", len(runs), median_range([r["steps"] for r in runs], 0),
                             *(median_range([f.get(k) for f in finals], d) for k, d in COLUMNS)])
    return f"{heading}\n\n{table(head, rows)}"


# ---------------------------------------------------------------- pictures

def plot(results: dict) -> Image.Image:
    """Top: SIFID / best transfer of every recipe x pair. Below: one row per pair, one panel per figure."""
    by_group = groups(results)
    recipes = list(results["recipes"])
    colour = {r: PALETTE[i % len(PALETTE)] for i, r in enumerate(recipes)}
    panel = (440, 270)
    width = panel[0] * len(FIGURES)
    ratio_bands = []
    for i, (pair, base) in enumerate(results["baselines"].items()):
        best = best_transfer_sifid(base)
        for recipe in recipes:
            runs = by_group.get((recipe, pair))
            if runs and best:
                c = PALETTE[(i * len(recipes) + recipes.index(recipe)) % len(PALETTE)]
                ratio_bands.append(Band(f"{recipe} / {pair}", c, *band_of(runs, "sifid", best)))
    rows = [band_chart("SIFID / best colour transfer's SIFID (below 1: beats Reinhard and Pitie)", ratio_bands,
                       [(1.0, "best colour transfer", "#333333")], (width, 330), legend_width=260)]
    for pair, base in results["baselines"].items():
        panels = []
        for key, title in FIGURES:
            bands = [Band(f"{recipe} (n={len(runs)})", colour[recipe], *band_of(runs, key))
                     for recipe in recipes if (runs := by_group.get((recipe, pair)))]
            hlines = [(base[b][key], f"{b} {base[b][key]:.3g}", BASELINE_COLOURS[b]) for b in BASELINES
                      if base[b].get(key) is not None]
            panels.append(band_chart(title, bands, hlines, panel, legend_width=150))
        row = Image.new("RGB", (width, panel[1] + 26), "white")
        draw = ImageDraw.Draw(row)
        draw.line([(0, 2), (width, 2)], fill="#999999", width=1)
        draw.text((8, 6), f"{pair}  (dashed: baselines; lines: recipes' median over seeds, band: min-max)",
                  fill="black", font=chart_font(16))
        for j, p in enumerate(panels):
            row.paste(p, (j * panel[0], 26))
        rows.append(row)
    sheet = Image.new("RGB", (width, sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    return sheet


def translation_tiles(run: Path, evaluations: list[dict]) -> list[tuple[str, Image.Image]]:
    """(caption, translation) of each evaluation, cut from the middle of its preview strip."""
    source = Image.open(run / "source.png")
    tiles = []
    for e in evaluations:
        strip = run / "previews" / f"step_{e['step']:07d}.png"
        if not strip.is_file():
            continue
        sheet = Image.open(strip).convert("RGB")
        width = round(source.width * sheet.height / source.height)
        sifid = f", {e['sifid']:.0f}" if e.get("sifid") is not None else ""
        tiles.append((f"{e['minutes']:.1f} min{sifid}", sheet.crop((width, 0, 2 * width, sheet.height))))
    return tiles


def contact_sheet(results: dict, out: Path, paintings: dict[str, Path]) -> Image.Image:
    """Per recipe x pair: photo, Reinhard, Pitie, the first seed's evaluations, the other seeds' final
    results, painting; SIFID under each.
    `paintings` maps each pair to its painting's file (quality.json keeps only file names)."""
    lines = []
    for (recipe, pair), runs in groups(results).items():
        run = runs[0]
        base = results["baselines"][pair]
        cells = []
        for name in BASELINES:
            path = out / "baselines" / f"{pair}-{name}.png"
            sifid = f", {base[name]['sifid']:.0f}" if base[name]["sifid"] is not None else ""
            cells.append((f"{name}{sifid}", Image.open(path).convert("RGB")))
        cells += translation_tiles(out / run["run"], run["evaluations"])
        for other in runs[1:]:  # one GAN run decides nothing: every other seed's final result beside it
            final = other["evaluations"][-1]
            sifid = f", {final['sifid']:.0f}" if final.get("sifid") is not None else ""
            result = Image.open(out / other["run"] / "result.png").convert("RGB")
            cells.append((f"seed {other['seed']} final{sifid}", result))
        cells.append(("painting", Image.open(paintings[pair]).convert("RGB")))
        title = (f"{recipe} / {pair}, seed {run['seed']}: {run['steps']} steps in {run['wall_seconds'] / 60:.1f} min"
                 "  (captions: SIFID to the painting)")
        lines.append(sheet_row(title, cells, THUMB))
    return stacked(lines)


# ---------------------------------------------------------------- main

def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget of each run")
    ap.add_argument("--recipes", default="quick,sincut",
                    help=f"comma-separated recipes: presets ({', '.join(PRESETS)}) or names given --recipe-args")
    ap.add_argument("--recipe-args", action="append", default=[], metavar="NAME=ARGS",
                    help='extra `sincut train` arguments of a recipe, e.g. quick-pitie="--preset quick '
                         '--colour-init pitie", or a JSON mapping {"NAME": "ARGS"}; repeatable')
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds; every recipe x pair x seed runs")
    ap.add_argument("--seeds-of", action="append", default=[], metavar="RECIPE=SEEDS",
                    help="other seeds for one recipe, e.g. sincut=0 (the paper's recipe once per pair); repeatable")
    ap.add_argument("--pairs", default=",".join(PAIRS), help=f"comma-separated or all, from {', '.join(ALL_PAIRS)}")
    ap.add_argument("--out", type=Path, default=RESULTS / "quality")
    ap.add_argument("--reuse", action="store_true",
                    help="keep a finished run made with the same arguments instead of training it again")
    ap.add_argument("--table", action="store_true", help="print the markdown table of --out/quality.json and exit")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per run (default: torch's)")
    args = ap.parse_args()

    if args.table:
        path = args.out / "quality.json"
        if not path.is_file():
            fail(f"--table: {path} does not exist; run the benchmark with this --out first")
        print(markdown_table(json.loads(path.read_text())))
        return
    if args.minutes <= 0:
        fail(f"--minutes must be positive, got {args.minutes:g}")
    recipes = parse_recipes(args.recipes, args.recipe_args)
    seeds = parse_seeds(args.seeds)
    recipe_seeds = parse_seeds_of(args.seeds_of, recipes, seeds)
    pairs = select_pairs(args.pairs)
    if not pairs:
        fail("--pairs: none of the chosen pairs is present here; choose montStMichel-vanGogh (bundled)")
    network = load_inception()
    select_by = "sifid" if network is not None else "style"
    results = {"machine": {**describe(), "threads": args.threads or torch.get_num_threads()},
               "command": command_line(), "minutes": args.minutes, "seeds": seeds, "recipe_seeds": recipe_seeds,
               "recipes": recipes, "pairs": {n: [s.name, t.name] for n, (s, t) in pairs.items()},
               "definitions": DEFINITIONS, "baselines": {}, "runs": []}
    for name, (source, target) in pairs.items():
        print(f"baselines on {name} ...", file=sys.stderr, flush=True)
        results["baselines"][name] = score_baselines(name, source, target, args.out, network)
    for recipe, words in recipes.items():
        for name, (source, target) in pairs.items():
            for seed in recipe_seeds[recipe]:
                results["runs"].append(one_run(args, recipe, words, name, seed, select_by))
                final = final_figures(results["runs"][-1], results["baselines"][name])
                ratio = f" ({final[RATIO]:.2f} of the best transfer)" if final.get(RATIO) else ""
                sifid = f"SIFID {final['sifid']:.1f}{ratio}, " if final.get("sifid") is not None else ""
                print(f"  {results['runs'][-1]['steps']} steps: {sifid}texture {final['texture_distance']:.3f}, "
                      f"SSIM {final['ssim']:.3f}", file=sys.stderr)
                write_json(args.out / "quality.json", results)
    write_json(args.out / "quality.json", results)
    save_image(plot(results), args.out / "quality.png")
    written = "quality.json, quality.png"
    if results["runs"]:  # --recipes "" scores the baselines alone: no translations to show
        paintings = {n: t for n, (_, t) in pairs.items()}
        save_image(contact_sheet(results, args.out, paintings), args.out / "contact_sheet.jpg", quality=88)
        written += ", contact_sheet.jpg"
    print(markdown_table(results))
    print(f"\nwrote {args.out}/{written}", file=sys.stderr)


def one_run(args, recipe: str, words: list[str], pair: str, seed: int, select_by: str) -> dict:
    """One recipe on one pair with one seed, trained (or with --reuse, found finished), as quality.json
    lists it."""
    source, target = ALL_PAIRS[pair]
    run = run_dir(args.out, recipe, pair, seed)
    request = {"args": words, "minutes": args.minutes, "seed": seed, "source": str(source), "target": str(target),
               "select_by": select_by}
    stamp = finished(run, request) if args.reuse else None
    if stamp is None:
        if run.exists():
            shutil.rmtree(run)
        print(f"{recipe} on {pair}, seed {seed}: {args.minutes:g} minutes ...", file=sys.stderr, flush=True)
        options = [*words, "--minutes", str(args.minutes), "--seed", str(seed), "--select-by", select_by]
        wall = train_once(train_command(source, target, run, options), args.threads,
                          hint="; fix --recipes / --recipe-args")
        stamp = {**request, "wall_seconds": round(wall, 1)}
        write_json(run / "benchmark.json", stamp)
    else:
        print(f"{recipe} on {pair}, seed {seed}: reusing {run}", file=sys.stderr)
    steps, evaluated = read_run(run)
    return {"recipe": recipe, "pair": pair, "seed": seed, "args": words, "run": str(run.relative_to(args.out)),
            "source": source.name, "target": target.name, "wall_seconds": stamp["wall_seconds"], "steps": steps,
            "evaluations": evaluated}


if __name__ == "__main__":
    main()
