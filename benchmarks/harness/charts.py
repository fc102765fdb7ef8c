"""Line charts of figures against minutes: each series as its median over seeds with a translucent min-max band,
baselines as dashed horizontal lines, the legend on the right. Drawn with sincut's Pillow chart kit, so the
benchmark's pictures look like the training report's."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from PIL import Image, ImageDraw

from sincut.evaluation.charts import chart_font, nice_ticks, tick_label

from .report import spread


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
