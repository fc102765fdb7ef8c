"""Quality against wall-clock time: what each single-image recipe gives after 1, 2, ... M minutes.

    python benchmarks/quality.py [--minutes 10] [--recipes quick,sincut] [--pairs mont,etretat,...]
                                 [--out benchmarks/results/quality] [--threads N]

Each recipe trains on each photo/painting pair through the real CLI (`sincut train --preset R
--minutes M`, one run at a time, nothing else running), which evaluates the full-resolution
translation once a minute into its metrics.jsonl: SIFID to the painting, SSIM and edge correlation
to the photo, style distance to the painting. The untouched photo is scored too, as the baseline a
translation has to beat. Writes to --out:

- quality.json: every evaluation of every run, the photo baselines, the machine, torch and wall times;
- quality.png: one panel per figure against minutes, one line per recipe and pair (SIFID as a fraction
  of the photo's own SIFID, with the goal of one half dashed);
- contact_sheet.jpg: for each run, the photo, the translation at each evaluation, and the painting.

Pairs: the bundled samples, the paper's Etretat/Monet pair and photo x painting combinations of
../shared/data/samples_candidates (those two skipped when ../shared is absent).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from sincut.data.images import load_image, save_image  # noqa: E402
from sincut.metrics import content_scores, sifid, style_distance  # noqa: E402
from sincut.report import Series, _font, line_chart, read_jsonl  # noqa: E402

SAMPLES = ROOT / "samples"
SHARED = ROOT.parent / "shared" / "data"
CANDIDATES = SHARED / "samples_candidates"
PAIRS: dict[str, tuple[Path, Path]] = {
    "montStMichel-vanGogh": (SAMPLES / "photo_montStMichel.jpg",
                             SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg"),
    "etretat-monet": (SHARED / "single_image_monet_etretat" / "etretat-normandy-france.jpg",
                      SHARED / "single_image_monet_etretat" / "monet.jpg"),
    "machuPicchu-bruegel": (CANDIDATES / "photo_machuPicchu.jpg",
                            CANDIDATES / "painting_pieter_brugel_the_harvesters.jpg"),
    "greatWall-bazille": (CANDIDATES / "photo_greatWallofChina.jpg",
                          CANDIDATES / "painting_bazille_the_ramparts_at_aigues_mortes.jpg"),
}
FIGURES = [("sifid_ratio", "SIFID / photo's SIFID (lower is closer to the painting)", 0.5),
           ("ssim", "SSIM to the photo (higher keeps more)", 0.5),
           ("edge_correlation", "edge correlation to the photo", None),
           ("style_distance", "style distance to the painting (lower)", None)]
THUMB = 150  # px height of a contact-sheet tile


def select_pairs(names: str) -> dict[str, tuple[Path, Path]]:
    """The comma-separated pairs that exist here (those under ../shared skipped, with a line, when absent)."""
    pairs = {}
    for name in names.split(","):
        if name not in PAIRS:
            sys.exit(f"--pairs: unknown pair {name!r}; choose from {', '.join(PAIRS)}")
        if all(p.is_file() for p in PAIRS[name]):
            pairs[name] = PAIRS[name]
        else:
            print(f"skipping {name}: {PAIRS[name][0].parent} is absent", file=sys.stderr)
    return pairs


def photo_baseline(source: Path, target: Path) -> dict:
    """The figures of the untouched photo: where every translation starts."""
    photo, painting = load_image(source), load_image(target)
    ssim, edges = content_scores(photo, photo)
    levels = style_distance([photo], [painting])
    return {"sifid": sifid(photo, painting), "ssim": ssim, "edge_correlation": edges,
            "style_distance": sum(levels) / len(levels)}


def train_run(recipe: str, source: Path, target: Path, minutes: float, run: Path, threads: int | None) -> float:
    """One `sincut train` in a fresh process; returns its wall seconds (start-up included)."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "sincut", "train", str(source), str(target), "--preset", recipe,
           "--minutes", str(minutes), "--out", str(run), "--device", "cpu", "--select-by", "sifid"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def translation_tiles(run: Path) -> list[tuple[float, Image.Image]]:
    """(minutes, translation) of each evaluation, cut from the middle of its preview strip."""
    source = Image.open(run / "source.png")
    tiles = []
    for record in read_jsonl(run / "metrics.jsonl"):
        strip = run / "previews" / f"step_{record['step']:07d}.png"
        if not strip.is_file():
            continue
        sheet = Image.open(strip).convert("RGB")
        width = round(source.width * sheet.height / source.height)
        tiles.append((record["elapsed_seconds"] / 60, sheet.crop((width, 0, 2 * width, sheet.height))))
    return tiles


def contact_sheet(rows: list[tuple[str, Path, Path, list[tuple[float, Image.Image]]]]) -> Image.Image:
    font = _font(13)
    lines = []
    for title, source, target, tiles in rows:
        cells = [("photo", Image.open(source).convert("RGB"))]
        cells += [(f"{m:.1f} min", im) for m, im in tiles]
        cells.append(("painting", Image.open(target).convert("RGB")))
        pics = []
        for caption, im in cells:
            im = im.resize((max(1, round(im.width * THUMB / im.height)), THUMB), Image.LANCZOS)
            tile = Image.new("RGB", (im.width, THUMB + 18), "white")
            tile.paste(im, (0, 0))
            ImageDraw.Draw(tile).text((im.width // 2, THUMB + 2), caption, fill="black", font=font, anchor="mt")
            pics.append(tile)
        width = sum(p.width for p in pics) + 4 * (len(pics) - 1)
        line = Image.new("RGB", (width, THUMB + 40), "white")
        ImageDraw.Draw(line).text((2, 2), title, fill="black", font=_font(15))
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


def plot(results: list[dict]) -> Image.Image:
    panels = []
    for key, title, goal in FIGURES:
        series = []
        for r in results:
            xs = [0.0] + [e["minutes"] for e in r["evaluations"]]
            base = r["photo"]["sifid"] if key == "sifid_ratio" else None
            ys = [1.0 if base else r["photo"][key]]
            ys += [(e["sifid"] / base) if base else e[key] for e in r["evaluations"]]
            series.append(Series(f"{r['recipe']} / {r['pair']}", xs, ys, dots=True))
        panels.append(line_chart(title, series, "minutes of wall clock", key.replace("_", " "), size=(640, 380),
                                 hline=(goal, f"goal {goal}") if goal is not None else None))
    sheet = Image.new("RGB", (2 * 640, 2 * 380), "white")
    for i, panel in enumerate(panels):
        sheet.paste(panel, ((i % 2) * 640, (i // 2) * 380))
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget of each run")
    ap.add_argument("--recipes", default="quick,sincut", help="comma-separated presets")
    ap.add_argument("--pairs", default=",".join(PAIRS), help=f"comma-separated, from {', '.join(PAIRS)}")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "quality")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per run (default: torch's)")
    args = ap.parse_args()

    pairs = select_pairs(args.pairs)
    args.out.mkdir(parents=True, exist_ok=True)
    results, rows = [], []
    for recipe in args.recipes.split(","):
        for name, (source, target) in pairs.items():
            run = args.out / "runs" / f"{recipe}-{name}"
            if run.exists():
                shutil.rmtree(run)
            print(f"{recipe} on {name}: {args.minutes:g} minutes ...", file=sys.stderr, flush=True)
            wall = train_run(recipe, source, target, args.minutes, run, args.threads)
            config = json.loads((run / "config.json").read_text())
            evaluations = [{"minutes": r["elapsed_seconds"] / 60, **{k: r[k] for k in
                            ("step", "sifid", "ssim", "edge_correlation", "style_distance") if k in r}}
                           for r in read_jsonl(run / "metrics.jsonl") if r["step"] > 0]
            results.append({"recipe": recipe, "pair": name, "source": source.name, "target": target.name,
                            "wall_seconds": round(wall, 1), "steps": config["steps"],
                            "photo": photo_baseline(source, target), "evaluations": evaluations})
            rows.append((f"{recipe} / {name}: {config['steps']} steps in {wall / 60:.1f} min", source, target,
                         translation_tiles(run)))
            last = evaluations[-1]
            print(f"  {wall / 60:.1f} min wall, {config['steps']} steps: SIFID {last['sifid']:.1f} "
                  f"(photo {results[-1]['photo']['sifid']:.1f}), SSIM {last['ssim']:.3f}", file=sys.stderr)

    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "threads": torch.get_num_threads() if args.threads is None else args.threads,
               "torch": torch.__version__, "python": platform.python_version(),
               "date": time.strftime("%Y-%m-%d")}
    (args.out / "quality.json").write_text(json.dumps({"machine": machine, "minutes": args.minutes,
                                                        "runs": results}, indent=2))
    save_image(plot(results), args.out / "quality.png")
    save_image(contact_sheet(rows), args.out / "contact_sheet.jpg", quality=88)
    print(f"\n| recipe | pair | steps | wall min | SIFID (photo) | ratio | SSIM | edges |\n|---|---|---|---|---|---|---|---|")
    for r in results:
        e = r["evaluations"][-1]
        print(f"| {r['recipe']} | {r['pair']} | {r['steps']} | {r['wall_seconds'] / 60:.1f} | {e['sifid']:.1f} "
              f"({r['photo']['sifid']:.1f}) | {e['sifid'] / r['photo']['sifid']:.2f} | {e['ssim']:.3f} | "
              f"{e['edge_correlation']:.3f} |")
    print(f"\nwrote {args.out}/quality.json, quality.png, contact_sheet.jpg", file=sys.stderr)


if __name__ == "__main__":
    main()
