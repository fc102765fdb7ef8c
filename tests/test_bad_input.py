"""Every bad input of the 'one line, exit 2, nothing left behind' list, through the real CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sincut.cli import main

from .conftest import TINY_TRAIN, random_rgb


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="sincut")


def assert_one_line_error(result, *must_contain: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 or lines[-2].startswith(("Usage:", "Try ")), result.output
    for text in must_contain:
        assert text in lines[-1], (text, lines[-1])
    return lines[-1]


@pytest.fixture
def good(tiny_pair):
    return tiny_pair


def train_with(source, target, out, *extra):
    return cli("train", source, target, "--out", out, *TINY_TRAIN, *extra)


def test_missing_path(good, tmp_path: Path):
    out = tmp_path / "run"
    assert_one_line_error(train_with(tmp_path / "missing.jpg", good[1], out), "missing.jpg", "no such file")
    assert_one_line_error(cli("translate", tmp_path / "no-run", good[0], "--out", tmp_path / "o"), "no-run")
    assert_one_line_error(cli("resume", tmp_path / "no-run"), "no-run", "not a sincut run directory")
    assert not out.exists() and not (tmp_path / "o").exists()


def test_folder_where_a_file_is_expected_and_the_reverse(good, tmp_path: Path):
    assert_one_line_error(train_with(tmp_path, good[1], tmp_path / "run"), "is a folder")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert_one_line_error(train_with(*good, a_file), "file.txt", "exists and is a file")


@pytest.mark.parametrize("kind", ["empty", "truncated", "text"])
def test_unreadable_images(good, tmp_path: Path, kind: str):
    bad = tmp_path / f"{kind}.jpg"
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "text":
        bad.write_text("this is not a picture")
    else:
        random_rgb(300, 300).save(tmp_path / "whole.jpg", quality=95)
        data = (tmp_path / "whole.jpg").read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "run"
    assert_one_line_error(train_with(good[0], bad, out), f"{kind}.jpg")
    assert not out.exists()  # nothing left behind


def test_decompression_bomb_limit_and_the_flag_that_lifts_it(good, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the 96x54 photo is above 2 x 1000 pixels
    assert_one_line_error(train_with(*good, tmp_path / "run"), "photo.jpg", "--allow-large-images")
    assert not (tmp_path / "run").exists()
    result = train_with(*good, tmp_path / "run", "--allow-large-images")
    assert result.exit_code == 0, result.output


def test_image_smaller_than_the_crop_is_upscaled_with_a_warning(good, tmp_path: Path):
    small = tmp_path / "small.png"
    random_rgb(20, 24).save(small)
    result = train_with(small, good[1], tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "small.png is 24x20, smaller than the 32 px patches; it is upscaled" in result.output
    assert Image.open(tmp_path / "run" / "result.png").size == (24, 20)


def _save_mode(path: Path, mode: str) -> Path:
    base = random_rgb(40, 48, seed=len(mode))
    if mode == "I;16":
        Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 257)).save(path)
    else:
        base.convert(mode).save(path)
    return path


@pytest.mark.parametrize("source_mode,target_mode", [("CMYK", "P"), ("LA", "RGBA"), ("I;16", "L")])
def test_unusual_image_modes_train_and_translate(tmp_path: Path, source_mode: str, target_mode: str):
    ext = {"CMYK": "tif", "I;16": "png"}
    src = _save_mode(tmp_path / f"src.{ext.get(source_mode, 'png')}", source_mode)
    tgt = _save_mode(tmp_path / f"tgt.{ext.get(target_mode, 'png')}", target_mode)
    result = train_with(src, tgt, tmp_path / "run")
    assert result.exit_code == 0, result.output
    out = cli("translate", tmp_path / "run", tgt, "--out", tmp_path / "o", "--device", "cpu")
    assert out.exit_code == 0, out.output
    assert Image.open(tmp_path / "o" / "tgt.png").size == (48, 40)


def test_exif_rotated_image_is_rotated(tmp_path: Path, good):
    run = tmp_path / "run"
    assert train_with(*good, run).exit_code == 0
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise on display
    random_rgb(30, 50).save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    assert cli("translate", run, tmp_path / "rotated.jpg", "--out", tmp_path / "o").exit_code == 0
    assert Image.open(tmp_path / "o" / "rotated.png").size == (30, 50)


def test_non_ascii_and_space_paths(tmp_path: Path, good):
    folder = tmp_path / "mes images é 写真"
    folder.mkdir()
    src, tgt = folder / "photo d'été.jpg", folder / "peinture ü.png"
    Image.open(good[0]).save(src)
    Image.open(good[1]).save(tgt)
    run = folder / "run ø"
    assert train_with(src, tgt, run).exit_code == 0
    assert cli("translate", run, src, "--out", folder / "sortie ß").exit_code == 0
    assert (folder / "sortie ß" / "photo d'été.png").is_file()


def test_output_directory_that_cannot_be_written(good, tmp_path: Path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, so nothing can be created below it")
    assert_one_line_error(train_with(*good, blocker / "run"), "cannot write there")


@pytest.mark.parametrize("option,value,message", [
    ("--steps", "-5", "--steps"), ("--batch-size", "0", "--batch-size"), ("--lr", "-1", "--lr"),
    ("--crop-size", "48", "power of two"), ("--zoom-min", "0.9", "--zoom-min"),
])
def test_options_out_of_range(good, tmp_path: Path, option: str, value: str, message: str):
    extra = ["--zoom-max", "0.5"] if option == "--zoom-min" else []
    result = cli("train", *good, "--out", tmp_path / "run", option, value, *extra)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_crop_larger_than_the_image_upscales_with_a_warning(good, tmp_path: Path):
    args = list(TINY_TRAIN)
    args[args.index("--crop-size") + 1] = "64"  # the 96x54 photo is 54 px high
    result = cli("train", *good, "--out", tmp_path / "run", *args)
    assert result.exit_code == 0, result.output
    assert "smaller than the 64 px patches" in result.output


def test_checkpoint_from_a_newer_format(good, tmp_path: Path):
    run = tmp_path / "run"
    assert train_with(*good, run).exit_code == 0
    state = torch.load(sorted((run / "checkpoints").glob("*.pt"))[-1], weights_only=True)
    state["format"] = 99
    torch.save(state, tmp_path / "future.pt")
    assert_one_line_error(cli("translate", tmp_path / "future.pt", good[0], "--out", tmp_path / "o"),
                          "future.pt", "format 99 is newer")


@pytest.mark.parametrize("generator,n_blocks", [("stylegan2", 6), ("stylegan2", 2), ("stylegan2", 8),
                                                ("resnet", 9), ("resnet", 2)])
def test_deepest_nce_layer_is_the_built_encoders_last(generator: str, n_blocks: int):
    """The bound --nce-layers is checked against equals the real network's deepest encoder layer."""
    from sincut.config import make_config
    from sincut.nets import build_generator

    preset = "sincut" if generator == "stylegan2" else "cut"
    config = make_config(preset, n_blocks=n_blocks, ngf=2, nce_layers=(0,))
    assert config.deepest_encoder_layer() == len(build_generator(config).encoder) - 1


@pytest.mark.parametrize("extra,must_contain", [
    (["--nce-layers", "0,2,6"], "--nce-layers must be encoder layer indices in 0..5"),  # default G: layers 0..5
    (["--nce-layers", "0,2,2"], "--nce-layers lists a layer twice"),
    (["--n-blocks", "5"], "--n-blocks must be even"),
    (["--beta2", "1"], "--beta2 must be < 1"),
])
def test_option_combinations_are_refused_in_one_line(good, tmp_path: Path, extra, must_contain):
    out = tmp_path / "run"
    assert_one_line_error(train_with(*good, out, *extra), must_contain)
    assert not out.exists()


def test_epochs_with_two_images_is_refused(good, tmp_path: Path):
    result = cli("train", *good, "--out", tmp_path / "run", "--epochs", "3")
    assert_one_line_error(result, "--epochs counts passes over two folders", "pass --steps")


def test_steps_and_epochs_together_are_refused(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        random_rgb(40, 40).save(folder / "x.png")
    result = cli("train", a, b, "--out", tmp_path / "run", "--steps", "2", "--epochs", "1")
    assert_one_line_error(result, "--steps and --epochs")


def test_a_feature_list_of_the_wrong_length_is_an_error_not_a_smaller_loss():
    """zip would drop the missing layer and scale PatchNCE by 2/3: the objective refuses instead."""
    from sincut.config import make_config
    from sincut.nets import ProjectionHead, build_generator

    config = make_config("sincut", ngf=2, crop_size=32)
    G = build_generator(config)
    F = ProjectionHead(G.feature_channels(config.nce_layers), nc=8)
    feats = G.encode(torch.zeros(1, 3, 32, 32), config.nce_layers)
    ids = F.sample_locations(feats, 4)
    with pytest.raises(ValueError, match="3 MLPs but got 2 feature maps"):
        F(feats[:2], ids[:2])
    with pytest.raises(ValueError, match="does not exist"):
        G.encode(torch.zeros(1, 3, 32, 32), (0, 2, len(G.encoder)))
