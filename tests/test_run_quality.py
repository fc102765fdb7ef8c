"""Quality during training (metrics.jsonl, best.pt, latest.png), `sincut eval` and the run report,
all through the real CLI on a 3-step run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sincut.evaluation.quality import evaluate
from sincut.evaluation.files import evaluate_files
from sincut.cli import main
from sincut.data.images import load_image
from sincut.inference.model import load_generator
from sincut.inference.translator import translate_tensor

from .conftest import SAMPLES, TINY_TRAIN


def run(*args) -> "click.testing.Result":  # noqa: F821
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="sincut")


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    return lines[-1]


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pair")
    src, tgt = folder / "photo.jpg", folder / "painting.png"
    Image.open(SAMPLES / "photo_montStMichel.jpg").resize((96, 54)).save(src, quality=95)
    Image.open(SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg").resize((80, 63)).save(tgt)
    return src, tgt


@pytest.fixture(scope="module")
def evaluated_run(pair_files, tmp_path_factory) -> Path:
    """3 steps, evaluated at every step; no SSIM floor so a 3-step model can become best."""
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("runs") / "run"
    result = run("train", *pair_files, "--out", out, *TINY_TRAIN, "--eval-every", "1", "--select-min-ssim", "0")
    assert result.exit_code == 0, result.output
    assert "eval step 3" in result.output  # the progress display shows the figures
    return out


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------- during training

def test_metrics_are_logged_at_each_eval_step(evaluated_run: Path):
    rows = records(evaluated_run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert len(r["style_levels"]) == 2  # 54 px source: 54 and 27 px levels
        assert r["style_distance"] == pytest.approx(sum(r["style_levels"]) / 2, abs=1e-12)
        assert -1 <= r["edge_correlation"] <= 1 and r["ssim"] <= 1 and r["style_distance"] > 0
    assert rows[-1]["elapsed_seconds"] >= rows[0]["elapsed_seconds"] > 0


def test_logged_figures_are_those_of_the_final_translation(evaluated_run: Path, pair_files):
    """Recomputed from the final checkpoint (the same metric code, outside the loop): the loop measured
    the right image."""
    src, tgt = pair_files
    G, config, step = load_generator(evaluated_run, torch.device("cpu"), "latest")
    assert step == 3
    translated = translate_tensor(G, load_image(src), seed=config.seed)
    expected = evaluate(translated, load_image(tgt), load_image(src)).to_dict()
    logged = records(evaluated_run)[-1]
    for key in ("style_distance", "style_levels", "texture_distance", "ssim", "edge_correlation"):
        assert logged[key] == expected[key], key


def test_best_checkpoint_follows_the_rule(evaluated_run: Path, tmp_path: Path, pair_files):
    rows = records(evaluated_run)
    winner = min(rows, key=lambda r: r["style_distance"])  # every SSIM passes the floor of 0
    # Flags mark each new best as it happened; the last flag is the winner.
    assert [r["step"] for r in rows if r["best"]][-1] == winner["step"]
    state = torch.load(evaluated_run / "checkpoints" / "best.pt", weights_only=True)
    assert state["step"] == winner["step"]
    assert state["quality"]["style_distance"] == winner["style_distance"]
    # translate picks best.pt by default, and best.png is its translation of the source.
    assert run("translate", evaluated_run, pair_files[0], "--out", tmp_path / "auto", "--device", "cpu").exit_code == 0
    assert (tmp_path / "auto" / "photo.png").read_bytes() == (evaluated_run / "best.png").read_bytes()
    assert run("translate", evaluated_run, pair_files[0], "--out", tmp_path / "last", "--checkpoint", "latest",
               "--device", "cpu").exit_code == 0
    assert (tmp_path / "last" / "photo.png").read_bytes() == (evaluated_run / "result.png").read_bytes()


def test_a_lost_content_never_becomes_best(pair_files, tmp_path: Path):
    """A 3-step model keeps SSIM far below 0.99: nothing qualifies, so no best.pt and auto means latest."""
    out = tmp_path / "run"
    result = run("train", *pair_files, "--out", out, *TINY_TRAIN, "--steps", "2", "--select-min-ssim", "0.99")
    assert result.exit_code == 0, result.output
    assert all(not r["best"] and r["ssim"] < 0.99 for r in records(out))
    assert not (out / "checkpoints" / "best.pt").exists() and not (out / "best.png").exists()
    error = one_error_line(run("translate", out, pair_files[0], "--out", tmp_path / "o", "--checkpoint", "best"))
    assert "best.pt" in error and "--checkpoint latest" in error


def test_select_by_is_validated(pair_files, tmp_path: Path):
    result = run("train", *pair_files, "--out", tmp_path / "r", "--select-by", "beauty")
    assert result.exit_code == 2 and "--select-by" in result.output


# ---------------------------------------------------------------- the report

def local_references(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]""", page)


def test_report_is_self_contained(evaluated_run: Path):
    page = (evaluated_run / "report.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and "<script" not in page
    refs = local_references(page)
    assert refs and any(r.startswith("data:image/") for r in refs)
    for ref in refs:
        if not ref.startswith("data:"):
            assert not re.match(r"^[a-z]+:", ref) and not ref.startswith("/"), ref
            assert (evaluated_run / ref).is_file(), ref
    config = json.loads((evaluated_run / "config.json").read_text())
    for text in ("Preview history", "Timing", "Configuration", "lambda_nce", "style distance (mean)",
                 f"preset {config['preset']} in {config['precision']}"):  # the precision that ran
        assert text in page, text
    for name in ("report.png", "plots/losses.png", "plots/metrics.png", "source.png", "target.png"):
        assert (evaluated_run / name).is_file(), name


def test_report_png_has_content(evaluated_run: Path):
    with Image.open(evaluated_run / "report.png") as img:
        arr = np.asarray(img.convert("L"), dtype=np.float32)
    assert img.width >= 1000 and img.height >= 800
    assert arr.std() > 20  # images and plots, not a blank page


def test_sincut_report_rebuilds_and_refuses_a_non_run(evaluated_run: Path, tmp_path: Path):
    (evaluated_run / "report.html").unlink()
    result = run("report", evaluated_run)
    assert result.exit_code == 0, result.output
    assert (evaluated_run / "report.html").is_file()
    assert "config.json" in one_error_line(run("report", tmp_path))


# Appended to a copy of the page: once everything has loaded, each image records what the browser
# decoded (naturalWidth x naturalHeight) and, drawn into a canvas, how many of its pixels are coloured
# (channels differing by > 60: the curves' lines, not the white, grey and black of axes and text).
PROBE = """<script>
window.addEventListener('load', () => {
  for (const img of document.images) {
    img.setAttribute('data-natural', img.naturalWidth + 'x' + img.naturalHeight);
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    let coloured = -1;
    try {
      const g = c.getContext('2d'); g.drawImage(img, 0, 0);
      const px = g.getImageData(0, 0, c.width, c.height).data;
      coloured = 0;
      for (let i = 0; i < px.length; i += 4) {
        if (Math.max(px[i], px[i + 1], px[i + 2]) - Math.min(px[i], px[i + 1], px[i + 2]) > 60) coloured++;
      }
    } catch (e) {}
    img.setAttribute('data-coloured', coloured);
  }
  document.body.setAttribute('data-probed', 'yes');
});
</script>"""


def chromium(*args: str) -> str:
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--allow-file-access-from-files", *args], check=True, timeout=180, capture_output=True,
                          text=True).stdout


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium to render the page (.ci/run installs it)")
def test_report_renders_in_a_headless_browser(evaluated_run: Path, tmp_path: Path):
    """What a person opening report.html sees: every image decoded by a real browser, the curves drawn."""
    page = (evaluated_run / "report.html").read_text(encoding="utf-8")
    probe = evaluated_run / "probe.html"  # beside report.html, so its relative links resolve the same
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        dom = chromium("--virtual-time-budget=20000", "--dump-dom", probe.as_uri())
    finally:
        probe.unlink()
    assert 'data-probed="yes"' in dom
    images = re.findall(r"<img\b[^>]*>", dom)
    assert len(images) == len(re.findall(r"<img\b", page)) >= 5
    for tag in images:
        width, height = map(int, re.search(r'data-natural="(\d+)x(\d+)"', tag).groups())
        assert width > 0 and height > 0, f"not loaded: {tag[:200]}"
    for alt in ("loss curves", "quality curves"):
        tag = next(t for t in images if f"alt=\"{alt}\"" in t)
        assert int(re.search(r'data-coloured="(-?\d+)"', tag).group(1)) > 500, f"{alt}: no lines drawn"
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1280,2000", (evaluated_run / "report.html").as_uri())
    with Image.open(shot) as img:
        rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
    assert rgb.std() > 10  # a page with pictures, not a blank or an error page
    assert ((rgb.max(axis=2) - rgb.min(axis=2)) > 60).mean() > 0.05  # colour: the photos and paintings shown


# ---------------------------------------------------------------- sincut eval

def test_eval_json_of_identical_images(pair_files):
    src, _ = pair_files
    result = run("eval", src, "--style", src, "--content", src, "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["style_distance"] == 0.0 and figures["ssim"] == 1.0 and figures["texture_distance"] == 0.0
    assert figures["edge_correlation"] == pytest.approx(1.0, abs=1e-12)


def test_eval_table_matches_the_library(evaluated_run: Path, pair_files):
    src, tgt = pair_files
    result = run("eval", evaluated_run / "result.png", "--style", tgt, "--content", src)
    assert result.exit_code == 0, result.output
    q = evaluate_files([(evaluated_run / "result.png", src)], [tgt])
    for label, value in (("style distance (mean)", q.style_distance), ("SSIM", q.ssim),
                         ("edge correlation", q.edge_correlation), ("texture distance", q.texture_distance)):
        line = next(line for line in result.stdout.splitlines() if label in line)
        assert f"{value:.4f}" in line, label


def test_eval_folders_average_the_pairs(pair_files, tmp_path: Path):
    src, tgt = pair_files
    outs, sources = tmp_path / "out", tmp_path / "src"
    outs.mkdir()
    sources.mkdir()
    photo = Image.open(src).convert("RGB")
    for name, img in (("a", photo), ("b", photo.transpose(Image.FLIP_LEFT_RIGHT))):
        img.save(sources / f"{name}.jpg", quality=95)
        img.point(lambda v: min(255, int(v * 0.8) + 30)).save(outs / f"{name}.png")
    result = run("eval", outs, "--style", tgt, "--content", sources, "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    singles = [json.loads(run("eval", outs / f"{n}.png", "--style", tgt, "--content", sources / f"{n}.jpg",
                              "--json").stdout) for n in ("a", "b")]
    assert figures["pairs"] == 2 and figures["fid"] is None and figures["kid"] is None
    assert figures["ssim"] == pytest.approx((singles[0]["ssim"] + singles[1]["ssim"]) / 2, abs=1e-12)
    if figures["sifid"] is None:  # the FID Inception network is not installed: one line says how
        assert "sincut[metrics]" in result.stderr
    else:  # per-image SIFID against the one --style image, as eval on each file alone gives it
        assert figures["sifid_per_image"] == {"a.png": singles[0]["sifid"], "b.png": singles[1]["sifid"]}


def test_eval_errors_are_one_line(pair_files, tmp_path: Path):
    src, tgt = pair_files
    (tmp_path / "out").mkdir()
    (tmp_path / "src").mkdir()
    Image.open(src).save(tmp_path / "out" / "stray.png")
    Image.open(src).save(tmp_path / "src" / "other.png")
    assert "stray.png" in one_error_line(run("eval", tmp_path / "out", "--style", tgt, "--content", tmp_path / "src"))
    assert "nope.png" in one_error_line(run("eval", tmp_path / "nope.png", "--style", tgt, "--content", src))
    assert "two image files or two folders" in one_error_line(
        run("eval", src, "--style", tgt, "--content", tmp_path / "src"))


def test_report_of_a_long_run_in_progress(tmp_path: Path):
    """Written from files alone, mid-run (no result.png yet): 8 evenly spread previews, the latest sheet."""
    from sincut.evaluation.charts import nice_ticks
    from sincut.evaluation.report import write_report

    run_dir = tmp_path / "long"
    (run_dir / "previews").mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"preset": "sincut", "steps": 200000, "select_by": "style",
                                                     "select_min_ssim": 0.5}))
    rng = np.random.default_rng(0)
    (run_dir / "log.jsonl").write_text("".join(
        json.dumps({"step": s, "lr": 0.002, "seconds_per_step": 0.1, "D_real": float(rng.random()),
                    "NCE": 3.0 - s / 1e5}) + "\n" for s in range(10, 100001, 10)) + '{"step": 100010, "D_r')
    (run_dir / "metrics.jsonl").write_text("".join(
        json.dumps({"step": s, "style_distance": 1 - s / 2e5, "style_levels": [1 - s / 2e5], "ssim": 0.6,
                    "edge_correlation": 0.5, "best": True, "eval_seconds": 1.0, "elapsed_seconds": s / 10}) + "\n"
        for s in range(1000, 100001, 1000)))
    sheet = Image.fromarray(rng.integers(0, 255, (64, 3 * 96, 3), dtype=np.uint8))
    for s in range(1000, 100001, 1000):
        sheet.save(run_dir / "previews" / f"step_{s:07d}.png")
    sheet.save(run_dir / "latest.png")
    Image.new("RGB", (96, 64), "gray").save(run_dir / "source.png")
    html_path, png_path = write_report(run_dir)
    page = html_path.read_text(encoding="utf-8")
    # 100 previews, 8 shown at indices round(i * 99 / 7): 0, 14, 28, 42, 57, 71, 85, 99.
    shown = [int(s) for s in re.findall(r"translation at step (\d+)", page)]
    assert shown == [1000, 15000, 29000, 43000, 58000, 72000, 86000, 100000]
    assert "latest.png" in page and "10,000 of 200,000" not in page and "100,000 of 200,000" in page
    assert "(median of 10000 logged steps)" in page  # the torn last line is skipped
    assert Image.open(png_path).width >= 1000
    assert nice_ticks(0, 100000, integer=True) == [0, 20000, 40000, 60000, 80000, 100000]
    assert nice_ticks(1, 3, integer=True) == [1, 2, 3]
    assert nice_ticks(0.37, 0.52) == [0.4, 0.45, 0.5]
