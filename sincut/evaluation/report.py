"""The run report: `report.html` (one self-contained file: images embedded as base64, no network)
and `report.png` (the same story in one picture), built only from the files of a run directory:

config.json, log.jsonl (losses), metrics.jsonl (quality), source.png / target.png (the inputs),
result.png, best.png, latest.png and previews/step_*.png. Plots are drawn with Pillow (plots/*.png).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from ..data.images import atomic_write, fit_height, hstack, save_image
from ..errors import UserError
from ..run_folder import (BEST_IMAGE, CONFIG_FILE, LATEST_IMAGE, LOG_FILE, METRICS_FILE, REPORT_HTML, REPORT_PNG,
                          RESULT_IMAGE, SOURCE_IMAGE, TARGET_IMAGE, list_previews, read_jsonl)
from .charts import Series, captioned, chart_font, line_chart


HISTORY_TILES = 8       # previews shown in the history strip, spread over the run
THUMB_HEIGHT = 320      # px of the embedded source / translation / target images


@dataclass
class RunFiles:
    run: Path
    config: dict
    log: list[dict]
    metrics: list[dict]
    previews: list[tuple[int, Path]] = field(default_factory=list)

    @classmethod
    def read(cls, run: str | os.PathLike) -> "RunFiles":
        run = Path(run)
        if not (run / CONFIG_FILE).is_file():
            raise UserError(f"{run}: not a sincut run directory (no config.json); pass the --out folder of "
                            "`sincut train`")
        try:
            config = json.loads((run / CONFIG_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{run / CONFIG_FILE}: not valid JSON ({e}); the run directory is damaged") from None
        return cls(run, config, read_jsonl(run / LOG_FILE), read_jsonl(run / METRICS_FILE), list_previews(run))

    def image(self, name: str) -> Image.Image | None:
        path = self.run / name
        if not path.is_file():
            return None
        with Image.open(path) as img:
            return img.convert("RGB")

    @property
    def best(self) -> dict | None:
        flagged = [m for m in self.metrics if m.get("best")]
        return flagged[-1] if flagged else None


def _smooth(ys: list[float]) -> tuple[list[float], int]:
    """Trailing mean over about 1/25 of the points, so the trend shows through the noise."""
    window = max(1, len(ys) // 25)
    out, total = [], 0.0
    for i, y in enumerate(ys):
        total += y
        if i >= window:
            total -= ys[i - window]
        out.append(total / min(i + 1, window))
    return out, window


def loss_plot(log: list[dict]) -> Image.Image:
    """D's and G's losses against the step, side by side."""
    skip = {"step", "lr", "seconds_per_step"}
    keys = [k for k in (log[0] if log else {}) if k not in skip]
    steps = [r["step"] for r in log]
    charts = []
    for title, group in (("Discriminator losses", [k for k in keys if k.startswith("D_")]),
                         ("Generator losses", [k for k in keys if not k.startswith("D_")])):
        series, window = [], 1
        for key in group:
            ys, window = _smooth([float(r.get(key, math.nan)) for r in log])
            series.append(Series(key, steps, ys))
        note = f" (mean of {window} logged steps)" if window > 1 else ""
        charts.append(line_chart(title + note, series, "step", "loss"))
    return hstack(charts, gap=0)


def metric_plot(files: RunFiles) -> Image.Image:
    """Style distance, and the content figures with the SSIM floor of the best-checkpoint rule."""
    m = files.metrics
    steps = [r["step"] for r in m]
    best = files.best
    cfg = files.config
    style_mark = (best["step"], best["style_distance"], "best") if best else None
    style_series = [Series("style distance (mean)", steps, [r["style_distance"] for r in m], dots=True)]
    with_texture = [r for r in m if r.get("texture_distance") is not None]
    if with_texture:  # both L1 sliced Wasserstein distances of standardised 7x7 patches, of like size
        style_series.append(Series("texture distance (high-pass Y, 512 px)", [r["step"] for r in with_texture],
                                   [r["texture_distance"] for r in with_texture], dots=True))
    style = line_chart("Style and texture distance to TARGET (lower: closer)", style_series,
                       "step", "sliced Wasserstein distance", mark=style_mark)
    floor = None
    if cfg.get("select_by", "style") in ("style", "sifid"):
        floor = (float(cfg.get("select_min_ssim", 0.5)), "best-checkpoint SSIM floor")
    content = line_chart("Content kept from SOURCE (higher: more kept)",
                         [Series("SSIM (luminance)", steps, [r["ssim"] for r in m], dots=True),
                          Series("edge correlation", steps, [r["edge_correlation"] for r in m], dots=True)],
                         "step", "similarity", hline=floor)
    charts = [style, content]
    with_sifid = [r for r in m if r.get("sifid") is not None]
    if with_sifid:  # only where the FID Inception network was installed
        mark = (best["step"], best["sifid"], "best") if best and best.get("sifid") is not None else None
        charts.insert(1, line_chart("SIFID to TARGET (lower: closer in look)",
                                    [Series("SIFID", [r["step"] for r in with_sifid],
                                            [r["sifid"] for r in with_sifid], dots=True)],
                                    "step", "SIFID (Conv2d_4a, 256 px)", mark=mark))
    return hstack(charts, gap=0)


def history_tiles(files: RunFiles, height: int) -> list[tuple[int, Image.Image]]:
    """The translation panel of up to HISTORY_TILES previews, evenly spread, each with its step."""
    previews = files.previews
    if len(previews) > HISTORY_TILES:
        picks = sorted({round(i * (len(previews) - 1) / (HISTORY_TILES - 1)) for i in range(HISTORY_TILES)})
        previews = [previews[i] for i in picks]
    source = files.image(SOURCE_IMAGE) or files.image(RESULT_IMAGE)
    tiles = []
    for step, path in previews:
        with Image.open(path) as sheet:
            sheet = sheet.convert("RGB")
        if source is not None:  # a preview is source | translation | target at one height
            tile_w = max(1, round(source.width * sheet.height / source.height))
            if 2 * tile_w <= sheet.width:
                sheet = sheet.crop((tile_w, 0, 2 * tile_w, sheet.height))
        tiles.append((step, captioned(sheet, f"step {step:,}", height)))
    return tiles


def _duration(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {s:02d} s"


def timing_rows(files: RunFiles) -> list[tuple[str, str]]:
    cfg, log, m = files.config, files.log, files.metrics
    done = max([r["step"] for r in log] + [r["step"] for r in m] + [0])
    rows = [("steps", f"{done:,} of {cfg.get('steps', '?'):,}" if isinstance(cfg.get("steps"), int) else str(done))]
    if m:
        rows.append(("wall time to the last evaluation", _duration(m[-1]["elapsed_seconds"])))
        rows.append(("time per evaluation", f"{sum(r['eval_seconds'] for r in m) / len(m):.2f} s "
                                              f"(mean of {len(m)})"))
    per_step = sorted(r["seconds_per_step"] for r in log if "seconds_per_step" in r)
    if per_step:
        rows.append(("seconds per training step", f"{per_step[len(per_step) // 2]:.3f} (median of "
                                                  f"{len(per_step)} logged steps)"))
    return rows


def quality_rows(files: RunFiles) -> list[tuple[str, str, str]]:
    """(figure, at the last evaluation, at the best one)."""
    if not files.metrics:
        return []
    last, best = files.metrics[-1], files.best

    def col(r: dict | None, key: str, level: int | None = None) -> str:
        if r is None:
            return "-"
        v = r[key][level] if level is not None else r[key]
        return f"{v:.4f}"

    rows = [("step", str(last["step"]), str(best["step"]) if best else "none qualified")]
    for i in range(len(last["style_levels"])):
        name = "low-pass" if i == len(last["style_levels"]) - 1 else f"1/{2 ** i}" if i else "full size"
        rows.append((f"style distance, level {i} ({name})", col(last, "style_levels", i), col(best, "style_levels", i)))
    rows.append(("style distance (mean)", col(last, "style_distance"), col(best, "style_distance")))
    if last.get("texture_distance") is not None:  # runs before the figure existed lack it
        rows.append(("texture distance (high-pass Y, 512 px)", col(last, "texture_distance"),
                     col(best, "texture_distance") if best and "texture_distance" in best else "-"))
    if last.get("sifid") is not None:
        rows.append(("SIFID", col(last, "sifid"), col(best, "sifid") if best and "sifid" in best else "-"))
    rows += [("SSIM (luminance)", col(last, "ssim"), col(best, "ssim")),
             ("edge correlation", col(last, "edge_correlation"), col(best, "edge_correlation"))]
    return rows


def selection_text(config: dict) -> str:
    by = config.get("select_by", "style")
    if by in ("style", "sifid"):
        figure = "style distance" if by == "style" else "SIFID"
        return f"best = lowest {figure} among evaluations with SSIM >= {config.get('select_min_ssim', 0.5)}"
    return f"best = highest {'SSIM' if by == 'ssim' else 'edge correlation'}"


def _result_images(files: RunFiles) -> list[tuple[str, str, Image.Image]]:
    """(caption, file name, image) for source, final translation (or the latest preview), best, target."""
    shown = []
    for caption, name in (("source", SOURCE_IMAGE), ("translation (final)", RESULT_IMAGE)):
        img = files.image(name)
        if img is not None:
            shown.append((caption, name, img))
    if files.image(RESULT_IMAGE) is None and files.image(LATEST_IMAGE) is not None:
        shown = [("latest preview: source | translation | target", LATEST_IMAGE, files.image(LATEST_IMAGE))]
        return shown
    best = files.best
    if best is not None and files.image(BEST_IMAGE) is not None and best["step"] != files.metrics[-1]["step"]:
        shown.append((f"translation (best, step {best['step']:,})", BEST_IMAGE, files.image(BEST_IMAGE)))
    target = files.image(TARGET_IMAGE)
    if target is not None:
        shown.append(("target", TARGET_IMAGE, target))
    return shown


def _headline(files: RunFiles) -> str:
    cfg = files.config
    parts = [f"sincut run: {files.run.resolve().name}", f"preset {cfg.get('preset', '?')} in {cfg.get('precision', '?')}"]
    if files.metrics:
        last, best = files.metrics[-1], files.best
        sifid = f"SIFID {last['sifid']:.2f}, " if last.get("sifid") is not None else ""
        if last.get("texture_distance") is not None:
            sifid += f"texture {last['texture_distance']:.3f}, "
        parts.append(f"step {last['step']:,}: style {last['style_distance']:.3f}, {sifid}SSIM {last['ssim']:.3f}, "
                     f"edges {last['edge_correlation']:.3f}")
        parts.append(f"best: step {best['step']:,}" if best else "best: none qualified")
    return "  |  ".join(parts)


def summary_image(files: RunFiles, losses: Image.Image, metrics: Image.Image) -> Image.Image:
    """report.png: headline, the images, the preview history, the metric and loss curves."""
    width = max(losses.width, metrics.width)
    blocks: list[Image.Image] = []
    head = Image.new("RGB", (width, 40), "white")
    ImageDraw.Draw(head).text((12, 20), _headline(files), fill="black", font=chart_font(18), anchor="lm")
    blocks.append(head)
    shown = _result_images(files)
    if shown:  # as tall as fits the width (at most 300 px), so captions keep their size
        aspect = sum(max(img.width / img.height, 60 / 300) for _, _, img in shown)
        height = int(min(300, (width - 12 * (len(shown) - 1)) / aspect))
        blocks.append(hstack([captioned(img, cap, height) for cap, _, img in shown], gap=12))
    tiles = [t for _, t in history_tiles(files, 120)]
    if tiles:
        strip = hstack(tiles, gap=6)
        if strip.width > width:  # smaller tiles rather than smaller captions
            height = int(120 * (width - 6 * len(tiles)) / (strip.width - 6 * len(tiles)))
            strip = hstack([t for _, t in history_tiles(files, height)], gap=6)
        blocks.append(strip)
    blocks += [metrics, losses]
    sheet = Image.new("RGB", (width, sum(b.height for b in blocks) + 10 * len(blocks)), "white")
    y = 0
    for b in blocks:
        sheet.paste(b, ((width - b.width) // 2, y))
        y += b.height + 10
    return sheet


def _data_uri(img: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 88} if fmt == "JPEG" else {}))
    mime = "image/jpeg" if fmt == "JPEG" else "image/png"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _table(rows: list[tuple], header: tuple | None = None) -> str:
    e = html.escape
    head = "<tr>" + "".join(f"<th>{e(str(c))}</th>" for c in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


_CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1280px;
padding:0 16px;color:#222}h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
figure{display:inline-block;margin:0 12px 12px 0;vertical-align:top}figcaption{text-align:center;
font-size:.9em;color:#444}img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:3px 10px;text-align:left}.strip{white-space:nowrap;overflow-x:auto}
.strip figure{margin-right:6px}.note{color:#555}"""


def report_html(files: RunFiles, losses: Image.Image, metrics: Image.Image) -> str:
    e = html.escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(_headline(files))}</title>"
             f"<style>{_CSS}</style></head><body>", f"<h1>{e(_headline(files))}</h1>"]
    parts.append("<h2>Result</h2><div>")
    for caption, name, img in _result_images(files):
        parts.append(f"<figure><a href='{e(name)}'><img alt='{e(caption)}' "
                     f"src='{_data_uri(fit_height(img, THUMB_HEIGHT), 'JPEG')}'></a>"
                     f"<figcaption>{e(caption)}</figcaption></figure>")
    parts.append("</div><p class='note'>Click an image for the full-resolution file in the run folder.</p>")
    parts.append("<h2>Quality</h2>")
    q = quality_rows(files)
    if q:
        parts.append(_table(q[1:], header=("", f"last evaluation (step {q[0][1]})", f"best (step {q[0][2]})")))
        parts.append(f"<p class='note'>{e(selection_text(files.config))}; checkpoints/best.pt holds it. "
                     "Style distance: sliced Wasserstein distance of 7x7 patches per Laplacian level (lower "
                     "is closer to TARGET). SSIM and edge correlation: against SOURCE's luminance "
                     "(1 = identical).</p>")
    else:
        parts.append("<p class='note'>No evaluation yet.</p>")
    tiles = history_tiles(files, 160)
    if tiles:
        parts.append("<h2>Preview history</h2><div class='strip'>")
        parts += [f"<figure><img alt='translation at step {step}' src='{_data_uri(t, 'JPEG')}'></figure>"
                  for step, t in tiles]
        parts.append("</div>")
    parts.append("<h2>Curves</h2>")
    parts.append(f"<p><img alt='quality curves' src='{_data_uri(metrics)}'></p>")
    parts.append(f"<p><img alt='loss curves' src='{_data_uri(losses)}'></p>")
    parts.append("<h2>Timing</h2>" + _table(timing_rows(files)))
    config_rows = [(k, ",".join(map(str, v)) if isinstance(v, list) else v) for k, v in files.config.items()]
    parts.append("<h2>Configuration</h2>" + _table(config_rows, header=("option", "value")))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run: str | os.PathLike) -> tuple[Path, Path]:
    """Write report.html, report.png and plots/{losses,metrics}.png into the run directory."""
    files = RunFiles.read(run)
    losses, metrics = loss_plot(files.log), metric_plot(files)
    save_image(losses, files.run / "plots" / "losses.png")
    save_image(metrics, files.run / "plots" / "metrics.png")
    png = save_image(summary_image(files, losses, metrics), files.run / REPORT_PNG)
    page = report_html(files, losses, metrics).encode("utf-8")
    html_path = atomic_write(files.run / REPORT_HTML, page)
    return html_path, png
