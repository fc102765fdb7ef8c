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

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from sincut.nets.colour import pitie_transfer, reinhard_transfer  # noqa: E402
from sincut.config import PRESETS  # noqa: E402
from sincut.data.images import load_image, save_image  # noqa: E402
from sincut.evaluation.inception import load_inception  # noqa: E402
from sincut.evaluation.inception_metrics import SifidReference  # noqa: E402
from sincut.evaluation.content import content_scores  # noqa: E402
from sincut.evaluation.style import style_distance  # noqa: E402
from sincut.evaluation.texture import texture_distance  # noqa: E402
from sincut.evaluation.charts import PALETTE, chart_font, nice_ticks, tick_label  # noqa: E402
from sincut.training.run_dir import read_jsonl  # noqa: E402

SAMPLES = ROOT / "samples"
SHARED = ROOT.parent / "shared" / "data"
CANDIDATES = SHARED / "samples_candidates"
PHOTOS = {"montStMichel": SAMPLES / "photo_montStMichel.jpg",
          "machuPicchu": CANDIDATES / "photo_machuPicchu.jpg",
          "greatWall": CANDIDATES / "photo_greatWallofChina.jpg"}
PAINTINGS = {"vanGogh": SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg",
             "bruegel": CANDIDATES / "painting_pieter_brugel_the_harvesters.jpg",
             "bazille": CANDIDATES / "painting_bazille_the_ramparts_at_aigues_mortes.jpg"}
PAIRS: dict[str, tuple[Path, Path]] = {
    "montStMichel-vanGogh": (PHOTOS["montStMichel"], PAINTINGS["vanGogh"]),
    "etretat-monet": (SHARED / "single_image_monet_etretat" / "etretat-normandy-france.jpg",
                      SHARED / "single_image_monet_etretat" / "monet.jpg"),
    "machuPicchu-bruegel": (PHOTOS["machuPicchu"], PAINTINGS["bruegel"]),
    "greatWall-bazille": (PHOTOS["greatWall"], PAINTINGS["bazille"]),
}
ALL_PAIRS = {**PAIRS, **{f"{p}-{q}": (PHOTOS[p], PAINTINGS[q]) for p in PHOTOS for q in PAINTINGS
                         if f"{p}-{q}" not in PAIRS}}
BASELINES = ("photo", "reinhard", "pitie")
BASELINE_COLOURS = {"photo": "#777777", "reinhard": "#b8860b", "pitie": "#8b008b"}
TRANSFERS = ("reinhard", "pitie")
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


def fail(message: str) -> None:
    """Bad input: one line naming the option and the fix, exit status 2."""
    print(f"quality.py: {message}", file=sys.stderr)
    raise SystemExit(2)


def select_pairs(names: str) -> dict[str, tuple[Path, Path]]:
    """The comma-separated pairs (or `all`) that exist here; those under ../shared skipped, with a line, when absent."""
    chosen = list(ALL_PAIRS) if names == "all" else names.split(",")
    pairs = {}
    for name in chosen:
        if name not in ALL_PAIRS:
            fail(f"--pairs: unknown pair {name!r}; choose from all, {', '.join(ALL_PAIRS)}")
        if all(p.is_file() for p in ALL_PAIRS[name]):
            pairs[name] = ALL_PAIRS[name]
        else:
            print(f"skipping {name}: {ALL_PAIRS[name][0].parent} is absent", file=sys.stderr)
    return pairs


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


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        fail(f"--seeds: {text!r} is not a comma-separated list of whole numbers, e.g. 0,1,2")
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        fail(f"--seeds: {text!r} needs distinct non-negative seeds, e.g. 0,1,2")
    return seeds


def parse_seeds_of(items: list[str], recipes: dict[str, list[str]], default: list[int]) -> dict[str, list[int]]:
    """Recipe -> its seeds: --seeds for every recipe, except those given NAME=SEEDS (a slow baseline recipe
    such as the paper's may run one seed beside three of the recipe under test)."""
    seeds = {name: default for name in recipes}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in recipes:
            fail(f"--seeds-of: {item!r} must be RECIPE=SEEDS for one of the recipes ({', '.join(recipes)}), "
                 "e.g. sincut=0")
        seeds[name] = parse_seeds(text)
    return seeds


# ---------------------------------------------------------------- scoring

def score(image: torch.Tensor, photo: torch.Tensor, painting: torch.Tensor,
          sifid_ref: SifidReference | None) -> dict:
    """The benchmark's figures of one image, as the training loop measures them."""
    ssim, edges = content_scores(image, photo)
    levels = style_distance([image], [painting])
    return {"sifid": sifid_ref.distance(image) if sifid_ref else None,
            "texture_distance": texture_distance([image], [painting]),
            "ssim": ssim, "edge_correlation": edges, "style_distance": sum(levels) / len(levels)}


def baselines(pair: str, source: Path, target: Path, out: Path, network) -> dict[str, dict]:
    """The photo and its two colour transfers, scored and saved as out/baselines/PAIR-NAME.png."""
    photo, painting = load_image(source), load_image(target)
    sifid_ref = SifidReference(painting, network) if network is not None else None
    images = {"photo": photo, "reinhard": reinhard_transfer(photo, painting),
              "pitie": pitie_transfer(photo, painting, iterations=20, seed=0)}
    (out / "baselines").mkdir(parents=True, exist_ok=True)
    figures = {}
    for name, image in images.items():
        save_image(image, out / "baselines" / f"{pair}-{name}.png")
        figures[name] = score(image, photo, painting, sifid_ref)
    return figures


def best_transfer_sifid(base: dict[str, dict]) -> float | None:
    values = [base[t]["sifid"] for t in TRANSFERS if base[t]["sifid"] is not None]
    return min(values) if values else None


# ---------------------------------------------------------------- running

def run_dir(out: Path, recipe: str, pair: str, seed: int) -> Path:
    return out / "runs" / f"{recipe}-{pair}-s{seed}"


def write_json(path: Path, data: dict) -> None:
    """Atomic: a reader (or an interrupted benchmark) never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def finished(run: Path, request: dict) -> dict | None:
    """The stamp of a finished run made with exactly these arguments, else None."""
    stamp = run / "benchmark.json"
    if not (stamp.is_file() and (run / "metrics.jsonl").is_file() and (run / "result.png").is_file()):
        return None
    recorded = json.loads(stamp.read_text())
    return recorded if all(recorded.get(k) == v for k, v in request.items()) else None


def train_run(words: list[str], source: Path, target: Path, minutes: float, seed: int, run: Path,
              threads: int | None, select_by: str) -> float:
    """One `sincut train` in a fresh process; returns its wall seconds (start-up included)."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "sincut", "train", str(source), str(target), *words, "--minutes", str(minutes),
           "--seed", str(seed), "--out", str(run), "--device", "cpu", "--select-by", select_by]
    t0 = time.perf_counter()
    code = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL).returncode
    if code != 0:
        fail(f"`sincut train {shlex.join(words)}` exited with status {code} (its message is above); "
             "fix --recipes / --recipe-args")
    return time.perf_counter() - t0


def read_run(run: Path) -> tuple[int, list[dict]]:
    """(steps, evaluations after step 0) of a finished run."""
    config = json.loads((run / "config.json").read_text())
    keys = ("step", "sifid", "texture_distance", "ssim", "edge_correlation", "style_distance")
    evaluations = [{"minutes": r["elapsed_seconds"] / 60, **{k: r[k] for k in keys if k in r}}
                   for r in read_jsonl(run / "metrics.jsonl") if r["step"] > 0]
    return config["steps"], evaluations


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        cpu = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M %Z")}


# ---------------------------------------------------------------- summaries

def spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def groups(results: dict) -> dict[tuple[str, str], list[dict]]:
    """(recipe, pair) -> its runs, in seed order."""
    out: dict[tuple[str, str], list[dict]] = {}
    for r in results["runs"]:
        out.setdefault((r["recipe"], r["pair"]), []).append(r)
    return out


def final_figures(run: dict, base: dict) -> dict:
    last = dict(run["evaluations"][-1])
    best = best_transfer_sifid(base)
    last[RATIO] = last["sifid"] / best if best and last.get("sifid") is not None else None
    return last


def _cell(values: list[float | None], digits: int) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mid, lo, hi = spread(values)
    return f"{mid:.{digits}f}" if len(values) == 1 else f"{mid:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


COLUMNS = [("sifid", 1), (RATIO, 2), ("texture_distance", 3), ("ssim", 3), ("edge_correlation", 3)]


def seeds_text(results: dict) -> str:
    """`0,1,2`, or per recipe where --seeds-of gave some recipe other seeds: `quick 0,1,2; sincut 0`."""
    per_recipe = results.get("recipe_seeds", {})
    if not per_recipe or all(v == results["seeds"] for v in per_recipe.values()):
        return ",".join(map(str, results["seeds"]))
    return "; ".join(f"{name} {','.join(map(str, v))}" for name, v in per_recipe.items())


def markdown_table(results: dict) -> str:
    heading = (f"{results['minutes']:g} min per run, seeds {seeds_text(results)}; "
               "recipes: median (min-max) over seeds at their last evaluation" if results["runs"] else
               "the photo and its closed-form colour transfers (no recipe was run)")
    lines = [heading, "",
             "| pair | method | seeds | steps | SIFID | SIFID / best transfer | texture | SSIM | edges |",
             "|---|---|---|---|---|---|---|---|---|"]
    by_group = groups(results)
    for pair, base in results["baselines"].items():
        best = best_transfer_sifid(base)
        for name in BASELINES:
            f = base[name]
            ratio = f["sifid"] / best if best and f["sifid"] is not None else None
            values = {**f, RATIO: ratio}
            lines.append(f"| {pair} | {name} | - | - | " + " | ".join(_cell([values[k]], d) for k, d in COLUMNS) + " |")
        for recipe in results["recipes"]:
            runs = by_group.get((recipe, pair), [])
            if not runs:
                continue
            finals = [final_figures(r, base) for r in runs]
            steps = _cell([r["steps"] for r in runs], 0)
            lines.append(f"| {pair} | **{recipe}** | {len(runs)} | {steps} | "
                         + " | ".join(_cell([f.get(k) for f in finals], d) for k, d in COLUMNS) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- pictures

@dataclass
class Band:
    """A recipe's curve: median over seeds at each evaluation, with the min-max band."""
    name: str
    colour: str
    xs: list[float]
    mid: list[float]
    lo: list[float]
    hi: list[float]


def band_of(runs: list[dict], key: str, scale: float | None = None) -> tuple[list[float], ...]:
    """Evaluations aligned by index (runs of one budget evaluate at about the same minutes)."""
    n = min(len(r["evaluations"]) for r in runs)
    xs, mid, lo, hi = [], [], [], []
    for i in range(n):
        values = [r["evaluations"][i].get(key) for r in runs]
        if any(v is None for v in values):
            continue
        values = [v / scale for v in values] if scale else values
        m, a, b = spread(values)
        xs.append(statistics.median(r["evaluations"][i]["minutes"] for r in runs))
        mid.append(m)
        lo.append(a)
        hi.append(b)
    return xs, mid, lo, hi


def band_chart(title: str, bands: list[Band], hlines: list[tuple[float, str, str]], size: tuple[int, int],
               legend_width: int = 190) -> Image.Image:
    """Median lines with translucent min-max bands, dashed horizontal baselines, legend on the right."""
    k = 2
    w, h = size[0] * k, size[1] * k
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    f_title, f_text = chart_font(14 * k), chart_font(11 * k)
    x0, y0, x1, y1 = 52 * k, 28 * k, w - legend_width * k, h - 34 * k
    d.text(((x0 + x1) // 2, 7 * k), title, fill="black", font=f_title, anchor="mt")
    xs_all = [x for b in bands for x in b.xs] or [0.0, 1.0]
    ys_all = [y for b in bands for y in b.lo + b.hi] + [v for v, _, _ in hlines]
    if not ys_all:
        return img.resize(size, Image.LANCZOS)
    xlo, xhi = 0.0, max(xs_all) * 1.04 or 1.0
    ylo, yhi = min(ys_all), max(ys_all)
    if yhi == ylo:
        ylo, yhi = ylo - (abs(ylo) * 0.1 or 1.0), yhi + (abs(yhi) * 0.1 or 1.0)
    pad = (yhi - ylo) * 0.08
    ylo, yhi = ylo - pad, yhi + pad

    def px(x: float, y: float) -> tuple[float, float]:
        return x0 + (x - xlo) / (xhi - xlo) * (x1 - x0), y1 - (y - ylo) / (yhi - ylo) * (y1 - y0)

    for t in nice_ticks(ylo, yhi, count=4):
        _, yy = px(xlo, t)
        d.line([(x0, yy), (x1, yy)], fill="#e6e6e6", width=k)
        d.text((x0 - 5 * k, yy), tick_label(t), fill="black", font=f_text, anchor="rm")
    for t in nice_ticks(xlo, xhi, count=5):
        xx, _ = px(t, ylo)
        d.line([(xx, y0), (xx, y1)], fill="#e6e6e6", width=k)
        d.text((xx, y1 + 5 * k), tick_label(t), fill="black", font=f_text, anchor="mt")
    d.text(((x0 + x1) // 2, h - 4 * k), "minutes of wall clock", fill="black", font=f_text, anchor="md")
    overlay = Image.new("RGBA", img.size, (255, 255, 255, 0))
    od = ImageDraw.Draw(overlay)
    for b in bands:
        if len(b.xs) > 1:
            rgb = tuple(int(b.colour[i:i + 2], 16) for i in (1, 3, 5))
            od.polygon([px(x, y) for x, y in zip(b.xs, b.hi)] + [px(x, y) for x, y in reversed(list(zip(b.xs, b.lo)))],
                       fill=(*rgb, 60))
    img.paste(overlay, (0, 0), overlay)
    d = ImageDraw.Draw(img)
    for value, _, colour in hlines:
        _, yy = px(xlo, value)
        for xs in range(int(x0), int(x1), 14 * k):
            d.line([(xs, yy), (min(xs + 8 * k, x1), yy)], fill=colour, width=2 * k)
    for b in bands:
        pts = [px(x, y) for x, y in zip(b.xs, b.mid)]
        if len(pts) > 1:
            d.line(pts, fill=b.colour, width=2 * k, joint="curve")
        for x, y in pts:
            d.ellipse([x - 3 * k, y - 3 * k, x + 3 * k, y + 3 * k], fill=b.colour)
    d.rectangle([x0, y0, x1, y1], outline="black", width=k)
    ly = y0
    for b in bands:
        d.line([(x1 + 8 * k, ly + 7 * k), (x1 + 26 * k, ly + 7 * k)], fill=b.colour, width=3 * k)
        d.text((x1 + 30 * k, ly + 7 * k), b.name, fill="black", font=f_text, anchor="lm")
        ly += 15 * k
    for _, label, colour in hlines:
        for xs in (x1 + 8 * k, x1 + 19 * k):
            d.line([(xs, ly + 7 * k), (xs + 7 * k, ly + 7 * k)], fill=colour, width=2 * k)
        d.text((x1 + 30 * k, ly + 7 * k), label, fill="black", font=f_text, anchor="lm")
        ly += 15 * k
    return img.resize(size, Image.LANCZOS)


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
    font = chart_font(13)
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
        pics = []
        for caption, im in cells:
            im = im.resize((max(1, round(im.width * THUMB / im.height)), THUMB), Image.LANCZOS)
            tile = Image.new("RGB", (im.width, THUMB + 18), "white")
            tile.paste(im, (0, 0))
            ImageDraw.Draw(tile).text((im.width // 2, THUMB + 2), caption, fill="black", font=font, anchor="mt")
            pics.append(tile)
        title = (f"{recipe} / {pair}, seed {run['seed']}: {run['steps']} steps in {run['wall_seconds'] / 60:.1f} min"
                 "  (captions: SIFID to the painting)")
        width = sum(p.width for p in pics) + 4 * (len(pics) - 1)
        line = Image.new("RGB", (max(width, 700), THUMB + 40), "white")
        ImageDraw.Draw(line).text((2, 2), title, fill="black", font=chart_font(15))
        x = 0
        for p in pics:
            line.paste(p, (x, 20))
            x += p.width + 4
        lines.append(line)
    sheet = Image.new("RGB", (max(line.width for line in lines), sum(line.height for line in lines)), "white")
    y = 0
    for line in lines:
        sheet.paste(line, (0, y))
        y += line.height
    return sheet


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "quality")
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
    args.out.mkdir(parents=True, exist_ok=True)
    network = load_inception()
    select_by = "sifid" if network is not None else "style"
    results = {"machine": {**machine(), "threads": args.threads or torch.get_num_threads()},
               "command": shlex.join(["python", *sys.argv]), "minutes": args.minutes, "seeds": seeds,
               "recipe_seeds": recipe_seeds,
               "recipes": recipes, "pairs": {n: [s.name, t.name] for n, (s, t) in pairs.items()},
               "definitions": DEFINITIONS, "baselines": {}, "runs": []}
    for name, (source, target) in pairs.items():
        print(f"baselines on {name} ...", file=sys.stderr, flush=True)
        results["baselines"][name] = baselines(name, source, target, args.out, network)
    for recipe, words in recipes.items():
        for name, (source, target) in pairs.items():
            for seed in recipe_seeds[recipe]:
                run = run_dir(args.out, recipe, name, seed)
                request = {"args": words, "minutes": args.minutes, "seed": seed, "source": str(source),
                           "target": str(target), "select_by": select_by}
                stamp = finished(run, request) if args.reuse else None
                if stamp is None:
                    if run.exists():
                        shutil.rmtree(run)
                    print(f"{recipe} on {name}, seed {seed}: {args.minutes:g} minutes ...", file=sys.stderr,
                          flush=True)
                    wall = train_run(words, source, target, args.minutes, seed, run, args.threads, select_by)
                    stamp = {**request, "wall_seconds": round(wall, 1)}
                    write_json(run / "benchmark.json", stamp)
                else:
                    print(f"{recipe} on {name}, seed {seed}: reusing {run}", file=sys.stderr)
                steps, evaluations = read_run(run)
                results["runs"].append({"recipe": recipe, "pair": name, "seed": seed, "args": words,
                                        "run": str(run.relative_to(args.out)), "source": source.name,
                                        "target": target.name, "wall_seconds": stamp["wall_seconds"],
                                        "steps": steps, "evaluations": evaluations})
                final = final_figures(results["runs"][-1], results["baselines"][name])
                ratio = f" ({final[RATIO]:.2f} of the best transfer)" if final.get(RATIO) else ""
                sifid = f"SIFID {final['sifid']:.1f}{ratio}, " if final.get("sifid") is not None else ""
                print(f"  {steps} steps: {sifid}texture {final['texture_distance']:.3f}, SSIM {final['ssim']:.3f}",
                      file=sys.stderr)
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


if __name__ == "__main__":
    main()
