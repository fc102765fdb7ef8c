"""The report's drawing kit, in Pillow only: a line chart with readable ticks, fonts, captioned and
side-by-side images. benchmarks/quality.py draws its figures with it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from ..data.images import fit_height


PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def chart_font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) inside [lo, hi]; whole numbers only
    when `integer` (training steps)."""
    span = hi - lo
    raw = max(span / max(count, 1), 1.0) if integer else span / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integer and magnitude < 10 else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in steps if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def tick_label(v: float) -> str:
    if v == int(v) and abs(v) < 1e12:
        return f"{int(v):,}"
    return f"{v:.6g}"


@dataclass
class Series:
    name: str
    xs: list[float]
    ys: list[float]
    dots: bool = False


def line_chart(title: str, series: list[Series], x_label: str, y_label: str, size: tuple[int, int] = (600, 340),
               hline: tuple[float, str] | None = None, mark: tuple[float, float, str] | None = None) -> Image.Image:
    """A line chart with axes, ticks, grid, axis labels and a legend; drawn at 2x, then downsampled
    so lines are smooth. `hline` is a dashed reference line, `mark` a labelled point."""
    k = 2
    w, h = size[0] * k, size[1] * k
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    f_title, f_text = chart_font(15 * k), chart_font(12 * k)
    left, right, top, bottom = 70 * k, 30 * k, 34 * k, 48 * k
    x0, y0, x1, y1 = left, top, w - right, h - bottom
    d.text((w // 2, 8 * k), title, fill="black", font=f_title, anchor="mt")
    points = [(x, y) for s in series for x, y in zip(s.xs, s.ys) if math.isfinite(y)]
    if not points:
        d.text(((x0 + x1) // 2, (y0 + y1) // 2), "no data yet", fill="gray", font=f_text, anchor="mm")
        return img.resize(size, Image.LANCZOS)
    ys_all = [p[1] for p in points] + ([hline[0]] if hline else [])
    xlo, xhi = min(p[0] for p in points), max(p[0] for p in points)
    ylo, yhi = min(ys_all), max(ys_all)
    if xhi == xlo:
        xlo, xhi = xlo - 1, xhi + 1
    if yhi == ylo:
        pad = abs(ylo) * 0.1 or 1.0
        ylo, yhi = ylo - pad, yhi + pad
    pad = (yhi - ylo) * 0.06
    ylo, yhi = ylo - pad, yhi + pad

    def px(x: float, y: float) -> tuple[float, float]:
        return x0 + (x - xlo) / (xhi - xlo) * (x1 - x0), y1 - (y - ylo) / (yhi - ylo) * (y1 - y0)

    for t in nice_ticks(ylo, yhi):
        _, yy = px(xlo, t)
        d.line([(x0, yy), (x1, yy)], fill="#e6e6e6", width=k)
        d.text((x0 - 6 * k, yy), tick_label(t), fill="black", font=f_text, anchor="rm")
    for t in nice_ticks(xlo, xhi, integer=True):
        xx, _ = px(t, ylo)
        d.line([(xx, y0), (xx, y1)], fill="#e6e6e6", width=k)
        d.line([(xx, y1), (xx, y1 + 5 * k)], fill="black", width=k)
        d.text((xx, y1 + 7 * k), tick_label(t), fill="black", font=f_text, anchor="mt")
    d.rectangle([x0, y0, x1, y1], outline="black", width=k)
    d.text(((x0 + x1) // 2, h - 6 * k), x_label, fill="black", font=f_text, anchor="md")
    label = Image.new("RGBA", (int(d.textlength(y_label, font=f_text)) + 4, 16 * k), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((2, 0), y_label, fill="black", font=f_text)
    label = label.rotate(90, expand=True)
    img.paste(label, (4 * k, (y0 + y1 - label.height) // 2), label)

    if hline is not None:
        _, yy = px(xlo, hline[0])
        dash = 8 * k
        for xs in range(int(x0), int(x1), 2 * dash):
            d.line([(xs, yy), (min(xs + dash, x1), yy)], fill="#555555", width=k)
        d.text((x0 + 6 * k, yy + 3 * k), hline[1], fill="#555555", font=f_text, anchor="lt")
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        pts = [px(x, y) for x, y in zip(s.xs, s.ys) if math.isfinite(y)]
        if len(pts) > 1:
            d.line(pts, fill=color, width=2 * k, joint="curve")
        if (s.dots and len(pts) <= 40) or len(pts) == 1:
            for x, y in pts:
                d.ellipse([x - 3 * k, y - 3 * k, x + 3 * k, y + 3 * k], fill=color)
    if mark is not None:
        mx, my = px(mark[0], mark[1])
        d.ellipse([mx - 7 * k, my - 7 * k, mx + 7 * k, my + 7 * k], outline="black", width=2 * k)
        right = mx < x1 - 60 * k
        d.text((mx + 10 * k if right else mx - 10 * k, my - 8 * k), mark[2], fill="black", font=f_text,
               anchor="ld" if right else "rd")
    # Legend: top-right inside the plot, on white.
    rows = [(s.name, PALETTE[i % len(PALETTE)]) for i, s in enumerate(series)]
    lw = max(d.textlength(n, font=f_text) for n, _ in rows) + 34 * k
    lx, ly = x1 - lw - 6 * k, y0 + 6 * k
    d.rectangle([lx, ly, x1 - 6 * k, ly + len(rows) * 16 * k + 6 * k], fill="white", outline="#999999", width=k)
    for j, (name, color) in enumerate(rows):
        yy = ly + 11 * k + j * 16 * k
        d.line([(lx + 6 * k, yy), (lx + 24 * k, yy)], fill=color, width=3 * k)
        d.text((lx + 30 * k, yy), name, fill="black", font=f_text, anchor="lm")
    return img.resize(size, Image.LANCZOS)


def captioned(img: Image.Image, caption: str, height: int) -> Image.Image:
    """The image at `height` px with a caption line under it."""
    tile = fit_height(img, height)
    out = Image.new("RGB", (max(tile.width, 60), height + 22), "white")
    out.paste(tile, (0, 0))
    ImageDraw.Draw(out).text((out.width // 2, height + 4), caption, fill="black", font=chart_font(13), anchor="mt")
    return out
