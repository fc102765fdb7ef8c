"""Where a skyline's coloured rim and a hill's "emboss" come from, measured on finished two-image runs.

    python benchmarks/rim_profile.py RUN [RUN ...] [--json docs/results/rim_profile.json]

Issue 30 s.2: translations of the Great Wall draw an orange rim along the ridge and an embossed relief on the
hill. Per run, at step 0 (a residual G's start: the photo, or its colour transfer with --colour-init) and at
each kept checkpoint, source.png (the evaluation size of result.png and the previews) is translated again
as the run did (the weight average, its seed and border):

- profile: the change (translation - photo, clamped as saved) in R, G, B averaged along the skyline at
  offsets -16..+16 px (negative = sky), and what D asks for there: the gradient of D's logit with respect to
  the translation on crop-size windows (zoom-1 patches) centred on the skyline every 16 columns, x 1e3; D is
  the checkpoint's own, at step 0 the last one's. The skyline: per column, the first of 6 rows of green, dark
  land (g > b + 0.1, luminance < 0.2 in [-1, 1]: the hill, not the clouds), a 9-column median, 40 px margins;
- rim: the red change 0..+4 px below the skyline against deeper land (+8..+16, and +32..+48 beyond a wide
  rim), D's wish for red in the first two bands; a rim at step 0 is the transfer's or the guided filter's;
- emboss: the correlation of the change's high band (luminance minus a 6 px Gaussian) with the photo's (detail
  amplified), the result's high-band RMS over the photo's, and the best |correlation| of the change's high
  band with a directional derivative of the photo's luminance (24 directions: a relief lit from one side).

Prints a table per run and step and the last step's profile; writes the JSON (every profile, the machine).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from kornia.filters import gaussian_blur2d, spatial_gradient  # noqa: E402

from benchmarks.harness.args import fail, parser  # noqa: E402
from benchmarks.harness.machine import describe  # noqa: E402
from benchmarks.harness.report import markdown_table, save_result  # noqa: E402
from sincut.config import TrainConfig  # noqa: E402
from sincut.data.images import load_image  # noqa: E402
from sincut.errors import UserError  # noqa: E402
from sincut.inference.model import load_generator  # noqa: E402
from sincut.inference.translator import translate_tensor  # noqa: E402
from sincut.nets import build_discriminator  # noqa: E402
from sincut.run_folder import checkpoint_step, list_checkpoints, load_checkpoint  # noqa: E402

OFFSETS = list(range(-16, 17))
RIM, DEEP, FAR = range(0, 5), range(8, 17), range(32, 49)  # px below the skyline
SIGMA = 6.0  # the high band: minus a Gaussian of this many px
MARGIN, EVERY = 40, 16  # columns left out at the sides; the spacing of D's windows
LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def luma(x: torch.Tensor) -> torch.Tensor:
    return (x * LUMA).sum(1, keepdim=True)


def high_band(x: torch.Tensor) -> torch.Tensor:
    """Luminance minus its Gaussian blur: the detail finer than SIGMA."""
    y, r = luma(x), math.ceil(3 * SIGMA)
    return y - gaussian_blur2d(y, (2 * r + 1, 2 * r + 1), (SIGMA, SIGMA), border_type="reflect")


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm() + 1e-12))


def skyline(photo: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row of the skyline per column, the columns to average over): the first row of 6 land rows in the
    top 70 %, a 9-column median; columns where no land starts are left out."""
    _, g, b = photo[0]
    top = int(photo.shape[-2] * 0.7)
    land = ((g > b + 0.1) & (luma(photo)[0, 0] < 0.2))[:top].float()
    run6 = F.conv1d(land.T[:, None], torch.ones(1, 1, 6))[:, 0] >= 6  # [W, top - 5]: rows y..y+5 all land
    found = run6.any(1)
    rows = torch.where(found, run6.float().argmax(1), torch.full_like(found, top - 6, dtype=torch.long))
    rows = F.pad(rows[None, None].float(), (4, 4), mode="replicate")[0, 0].unfold(0, 9, 1).median(1).values.long()
    cols = torch.arange(photo.shape[-1])
    keep = found & (cols >= MARGIN) & (cols < photo.shape[-1] - MARGIN)
    return rows, keep


def profile(image: torch.Tensor, rows: torch.Tensor, keep: torch.Tensor,
            offsets: list[int] | range = OFFSETS) -> list[list[float]]:
    """Mean R, G, B of `image` at each offset from the skyline, over the kept columns inside the image."""
    h, cols = image.shape[-2], keep.nonzero()[:, 0]
    out = []
    for d in offsets:
        y = rows[cols] + d
        inside = (y >= 0) & (y < h)
        out.append([round(float(v), 4) for v in image[0][:, y[inside], cols[inside]].mean(1)])
    return out


def d_wish(D: torch.nn.Module, image: torch.Tensor, rows: torch.Tensor, keep: torch.Tensor, window: int) -> list:
    """D's gradient (toward 'real') on windows of D's crop size centred on the skyline, as a profile (x 1e3):
    over each window's 16 centre columns, each read at its own column's skyline."""
    h, w, half = image.shape[-2], image.shape[-1], window // 2
    centres = [(int(rows[x]), x) for x in range(MARGIN + 8, w - MARGIN - 8, EVERY)
               if keep[x] and half <= rows[x] <= h - half]
    if not centres:
        return []
    windows = torch.cat([image[:, :, y - half:y + half, x - half:x + half] for y, x in centres]).requires_grad_(True)
    with torch.enable_grad():
        D(windows).sum().backward()
    grad = windows.grad[:, :, :, half - 8:half + 8]  # [N, 3, window, 16]: row `half` is the centre's skyline
    shift = torch.stack([rows[x - 8:x + 8] - y for y, x in centres])  # [N, 16]: each column's own skyline
    out = []
    for d in OFFSETS:
        at, inside = half + d + shift, (half + d + shift >= 0) & (half + d + shift < window)
        picked = grad.gather(2, at.clamp(0, window - 1)[:, None, None].expand(-1, 3, 1, -1))[:, :, 0] * inside[:, None]
        out.append([round(float(v) * 1e3, 4) for v in picked.sum((0, 2)) / inside.sum()] if inside.any() else None)
    return out


def discriminator(path: Path) -> torch.nn.Module:
    state = load_checkpoint(path)
    D = build_discriminator(TrainConfig.from_dict(state["config"]))
    D.load_state_dict(state["D"])
    return D.eval().requires_grad_(False)


def band(values: list[list[float]] | list, offsets: range, channel: int = 0) -> float | None:
    picked = [values[OFFSETS.index(d)][channel] for d in offsets if values and values[OFFSETS.index(d)]]
    return round(sum(picked) / len(picked), 4) if picked else None


def emboss(photo: torch.Tensor, translated: torch.Tensor) -> dict:
    """The change's high band against the photo's (amplified) and against directional derivatives (relief)."""
    change_high, photo_high = high_band(translated - photo), high_band(photo)
    grad = spatial_gradient(luma(photo))[:, 0]  # [1, 2, H, W]: d/dx, d/dy
    best = max((abs(corr(change_high, math.cos(t) * grad[:, 0] + math.sin(t) * grad[:, 1])), t)
               for t in (math.pi * i / 24 for i in range(24)))
    return {"corr_change_high_photo_high": round(corr(change_high, photo_high), 3),
            "result_high_rms_over_photo": round(float(high_band(translated).std() / photo_high.std()), 3),
            "best_directional_corr": round(best[0], 3), "direction_deg": round(math.degrees(best[1])),
            "change_high_rms": round(float(change_high.pow(2).mean().sqrt()), 4)}


def analyse(run: Path) -> dict:
    """Every measure at step 0 (a residual G) and at each kept checkpoint of one run folder."""
    checkpoints = list_checkpoints(run)
    if not checkpoints:
        fail(f"{run}: no checkpoints/step_*.pt to translate with; pass a finished sincut run folder")
    photo = load_image(run / "source.png")  # a UserError naming the file when missing
    rows, keep = skyline(photo)
    if int(keep.sum()) < 16:
        fail(f"{run}: no skyline found (green, dark land below sky in under 16 columns); pass a Great Wall run")
    steps = []
    for i, path in enumerate(checkpoints[:1] + checkpoints):  # the first twice: step 0, then itself
        G, config, _ = load_generator(path, torch.device("cpu"))
        start = i == 0
        if start and not config.residual:
            continue  # a plain G starts from noise: no meaningful step 0
        for weight in G.to_rgb.parameters() if start else ():  # as initialised: G's own change is 0, not T's
            weight.zero_()
        translated = translate_tensor(G, photo, seed=config.seed, border=config.border).clone()
        change = translated.clamp(-1, 1) - photo
        prof, far = profile(change, rows, keep), profile(change, rows, keep, FAR)
        d_path = checkpoints[-1] if start else path
        wish = d_wish(discriminator(d_path), translated, rows, keep, config.crop_size)
        steps.append({"step": 0 if start else checkpoint_step(path), "d_step": checkpoint_step(d_path),
                      "rim": {"red_0_4": band(prof, RIM), "red_8_16": band(prof, DEEP),
                              "red_32_48": round(sum(v[0] for v in far) / len(far), 4),
                              "d_red_0_4": band(wish, RIM), "d_red_8_16": band(wish, DEEP)},
                      **emboss(photo, translated.clamp(-1, 1)), "change": prof, "d_wish_x1e3": wish})
    saved = load_image(run / "result.png") if (run / "result.png").is_file() else photo[:, :, :0]
    check = round(float((translated.clamp(-1, 1) - saved).abs().max()) * 127.5, 2) if saved.shape == photo.shape \
        else None  # the last translation against result.png, in 8-bit levels: the run's own, at its size
    return {"run": str(run), "name": run.name, "skyline_columns": int(keep.sum()),
            "skyline_row_median": int(rows[keep].median()), "result_png_max_level_difference": check,
            "config": {k: getattr(config, k) for k in ("preset", "ngf", "residual", "guide_radius", "detail_sigma",
                                                      "colour_init", "identity_every", "nce_identity")},
            "steps": steps}


def signed(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:+.{digits}f}"


def print_tables(runs: list[dict]) -> None:
    """One row per run and step (rim, D's wish, emboss); then the final step's profile per run."""
    rows = [[r["name"], s["step"], *(signed(s["rim"][k]) for k in ("red_0_4", "red_8_16", "red_32_48")),
             f"{signed(s['rim']['d_red_0_4'], 2)} / {signed(s['rim']['d_red_8_16'], 2)} ({s['d_step']})",
             f"{s['corr_change_high_photo_high']:+.2f}", f"{s['result_high_rms_over_photo']:.2f}",
             f"{s['best_directional_corr']:.2f} ({s['direction_deg']} deg)"] for r in runs for s in r["steps"]]
    print("\nRed change below the skyline ([-1, 1]; px 0..+4, +8..+16, +32..+48), D's wish for red at 0..+4 / "
          "+8..+16 (x 1e3; D of step), emboss (high band: luminance minus a 6 px Gaussian)\n")
    print(markdown_table(["run", "step", "dR 0..4", "dR 8..16", "dR 32..48", "D dR 0..4 / 8..16 (D)",
                          "corr hi(change), hi(photo)", "hi RMS result/photo", "best directional corr"], rows))
    shown = [-16, -8, -4, -2, 0, 2, 4, 8, 16]
    print("\nLast step along the skyline, by offset (px, negative = sky)\n")
    print(markdown_table(["run", "", *map(str, shown)], [
        [r["name"], f"{label} {channel}", *(signed(band(r["steps"][-1][key], range(d, d + 1), c), 2) for d in shown)]
        for r in runs for key, label in (("change", "change"), ("d_wish_x1e3", "D wish x1e3"))
        for c, channel in enumerate("RGB")]))


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="finished run folders (two-image runs)")
    ap.add_argument("--json", type=Path, default=ROOT / "docs" / "results" / "rim_profile.json",
                    help="where the JSON goes (default: docs/results/rim_profile.json)")
    args = ap.parse_args()
    runs = []
    for run in args.runs:
        try:
            runs.append(analyse(run))
        except UserError as e:
            fail(str(e))
        print(f"  {run.name}: steps {[s['step'] for s in runs[-1]['steps']]}", file=sys.stderr, flush=True)
    save_result(args.json, {"machine": describe(), "offsets": OFFSETS, "rim_rows": list(RIM), "deep_rows": list(DEEP),
                            "far_rows": list(FAR), "high_band_sigma": SIGMA, "runs": runs})
    print_tables(runs)


if __name__ == "__main__":
    main()
