"""`sincut batch`: one model per (source, target) pair, results, contact sheet, resume and failures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from sincut.batch import BACKGROUND, GAP, THUMBNAIL
from sincut.cli import main

from .conftest import SAMPLES, TINY_TRAIN


def run(*args) -> "click.testing.Result":  # noqa: F821
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="sincut")


def counts(output: str) -> dict[str, int]:
    row = [line for line in output.splitlines() if re.match(r"^\W*\d+\W+\d+\W+\d+\W", line)][-1]
    return dict(zip(("trained", "skipped", "failed"), map(int, re.findall(r"\d+", row)[:3])))


def cell(sheet: np.ndarray, row: int, col: int) -> np.ndarray:
    y, x = GAP + row * (THUMBNAIL + GAP), GAP + col * (THUMBNAIL + GAP)
    return sheet[y:y + THUMBNAIL, x:x + THUMBNAIL]


def is_empty(pixels: np.ndarray) -> bool:
    return bool((pixels == np.array(BACKGROUND, dtype=np.uint8)).all())


def test_batch_trains_each_pair_isolates_failures_and_resumes(tmp_path: Path):
    photos = tmp_path / "photos"
    (photos / "more").mkdir(parents=True)
    Image.open(SAMPLES / "photo_montStMichel.jpg").resize((64, 40)).save(photos / "mont.jpg")
    Image.open(SAMPLES / "photo_montStMichel.jpg").resize((48, 48)).transpose(Image.FLIP_LEFT_RIGHT).save(
        photos / "more" / "flipped.png")
    (photos / "broken.jpg").write_text("not an image")
    painting = tmp_path / "vangogh.png"
    Image.open(SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg").resize((56, 44)).save(painting)
    out = tmp_path / "batch"
    train_options = [a for a in TINY_TRAIN if a not in ("--steps", "3")]

    result = run("batch", photos, "--style", painting, "--out", out, "--steps", "2", *train_options)
    assert result.exit_code == 1, result.output
    assert counts(result.output) == {"trained": 2, "skipped": 0, "failed": 1}
    assert re.search(r"failed\s+broken__vangogh: \S*broken\.jpg: not a readable image", result.output)
    for name, size in [("mont__vangogh", (64, 40)), ("flipped__vangogh", (48, 48))]:
        image = out / "images" / f"{name}.png"
        assert Image.open(image).size == size
        assert image.read_bytes() == (out / "runs" / name / "result.png").read_bytes()
        config = json.loads((out / "runs" / name / "config.json").read_text())
        assert config["steps"] == 2 and config["crop_size"] == 32 and config["ngf"] == 2  # options passed through
    assert sorted(p.name for p in (out / "images").iterdir()) == ["flipped__vangogh.png", "mont__vangogh.png"]

    # Contact sheet: sources (sorted: broken, flipped, mont) by rows, the target as the one column.
    sheet = np.asarray(Image.open(out / "contact_sheet.png").convert("RGB"))
    assert sheet.shape == (GAP + 4 * (THUMBNAIL + GAP), GAP + 2 * (THUMBNAIL + GAP), 3)
    assert is_empty(cell(sheet, 0, 0)) and not is_empty(cell(sheet, 0, 1))  # corner; the target
    assert is_empty(cell(sheet, 1, 0)) and is_empty(cell(sheet, 1, 1))  # the unreadable source, its failed pair
    for row in (2, 3):
        assert not is_empty(cell(sheet, row, 0)) and not is_empty(cell(sheet, row, 1))

    # Rerun: finished pairs are skipped untouched, the failed one is tried again.
    stamp = (out / "images" / "mont__vangogh.png").stat().st_mtime_ns
    result = run("batch", photos, "--style", painting, "--out", out, "--steps", "2", *train_options)
    assert result.exit_code == 1
    assert counts(result.output) == {"trained": 0, "skipped": 2, "failed": 1}
    assert (out / "images" / "mont__vangogh.png").stat().st_mtime_ns == stamp

    # A pair whose image is missing (killed after its run finished) only gets its image copied again.
    (photos / "broken.jpg").unlink()
    (out / "images" / "flipped__vangogh.png").unlink()
    result = run("batch", photos, "--style", painting, "--out", out, "--steps", "2", *train_options)
    assert result.exit_code == 0, result.output
    assert counts(result.output) == {"trained": 1, "skipped": 1, "failed": 0}
    assert "unfinished run" in result.output
    assert (out / "images" / "flipped__vangogh.png").is_file()
    assert (out / "images" / "mont__vangogh.png").stat().st_mtime_ns == stamp

    # A pair killed mid-run (no final checkpoint, no result) is resumed, not thrown away.
    run_dir = out / "runs" / "flipped__vangogh"
    for leftover in [*run_dir.glob("checkpoints/step_*.pt"), run_dir / "result.png", out / "images" / "flipped__vangogh.png"]:
        leftover.unlink()
    result = run("batch", photos, "--style", painting, "--out", out, "--steps", "2", *train_options)
    assert result.exit_code == 0, result.output
    assert "resuming it" in result.output and (out / "images" / "flipped__vangogh.png").is_file()
    assert [p.name for p in run_dir.glob("checkpoints/step_*.pt")] == ["step_0000002.pt"]


def test_style_takes_several_values(tmp_path: Path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / folder / "same.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    # Both values after one --style are read: their equal names are refused before any training.
    result = run("batch", tmp_path / "photo.png", "--style", tmp_path / "a" / "same.png", tmp_path / "b" / "same.png",
                 "--out", tmp_path / "o", "--steps", "1")
    assert result.exit_code == 2 and "two style images named 'same'" in result.output
    assert not (tmp_path / "o").exists()
    result = run("batch", tmp_path / "photo.png", "--style", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "--style needs at least one TARGET" in result.output


def test_batch_help_lists_the_train_options():
    text = run("batch", "--help").output
    assert "Usage: sincut batch" in text
    for flag in ("--style", "--steps", "--crop-size", "--lambda-nce", "--seed", "--device"):
        assert flag in text, flag
