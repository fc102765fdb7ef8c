"""`sincut export`: a TorchScript generator that a torch-only interpreter loads, and an ONNX graph that
onnxruntime runs at any size, both reproducing `sincut translate --no-noise`."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sincut.cli import main
from sincut.inference.tiles import MIN_TILE

from .conftest import SAMPLES, random_rgb

# Runs in a fresh interpreter: sincut is made unimportable, so the model must stand on its own.
TORCH_ONLY = """
import sys
sys.modules["sincut"] = None
import torch
image, model, out = sys.argv[1:4]
G = torch.jit.load(model)
x = torch.load(image, weights_only=True)
with torch.inference_mode():
    y = G(x)
torch.save(y, out)
print(sorted(m for m, mod in sys.modules.items() if m.startswith("sincut") and mod is not None))
"""


def run(*args) -> "click.testing.Result":  # noqa: F821
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="sincut")


def test_exported_model_reproduces_translate_in_a_torch_only_interpreter(exportable_model: Path, tmp_path: Path):
    photo = tmp_path / "photo.png"
    Image.open(SAMPLES / "photo_montStMichel.jpg").convert("RGB").resize((61, 45)).save(photo)  # odd sizes
    result = run("export", exportable_model, "--out", tmp_path / "generator.pt")
    assert result.exit_code == 0, result.output
    assert run("translate", exportable_model, photo, "--out", tmp_path / "t", "--no-noise",
               "--device", "cpu").exit_code == 0

    pixels = np.asarray(Image.open(photo), dtype=np.float32) / 255.0
    torch.save(torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0) * 2 - 1, tmp_path / "x.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", TORCH_ONLY, "x.pt", "generator.pt", "y.pt"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # nothing of sincut was imported

    y = torch.load(tmp_path / "y.pt", weights_only=True)
    assert y.shape == (1, 3, 45, 61)
    exported = ((y[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy().astype(int)
    translated = np.asarray(Image.open(tmp_path / "t" / "photo.png"), dtype=int)
    assert np.abs(exported - translated).max() <= 1 and np.abs(exported - translated).mean() < 0.01
    # --no-noise matters: this model's noise strength is not zero, so with noise the result differs
    assert run("translate", exportable_model, photo, "--out", tmp_path / "n", "--device", "cpu").exit_code == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "n" / "photo.png"), dtype=int), translated)


def _numpy_padding(a: np.ndarray, border: int, stride: int) -> np.ndarray:
    """translate's padding rules by NumPy: the border mirrored (edge repeated when a side is no longer than
    it), then bottom and right to the stride (mirrored; edge repeated when a side is no longer than that)."""
    a = np.pad(a, border, mode="reflect" if min(a.shape) > border else "edge")
    pad_h, pad_w = (-a.shape[0]) % stride, (-a.shape[1]) % stride
    return np.pad(a, ((0, pad_h), (0, pad_w)), mode="reflect" if min(a.shape) > max(pad_h, pad_w) else "edge")


@pytest.mark.parametrize("border, stride", [(0, 2), (3, 2), (8, 4)])
def test_the_padding_traced_at_one_size_pads_every_size_like_numpy(border: int, stride: int):
    """The exports trace border.py's padding once; the trace must follow each input's size (odd, even, and
    sides no longer than the border or the stride padding), not the example's."""
    from sincut.inference.border import pad_for_generator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(lambda x: pad_for_generator(x, border, stride), torch.zeros(1, 1, 32, 32))
    for h, w in [(32, 32), (7, 9), (1, 5), (2, 1), (1, 1), (3, 20), (173, 256)]:
        x = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)
        expected = _numpy_padding(x[0, 0].numpy(), border, stride)
        assert np.array_equal(traced(x)[0, 0].numpy(), expected), (h, w)
        assert np.array_equal(pad_for_generator(x, border, stride)[0, 0].numpy(), expected), (h, w)


def _onnx_pixels(session, photo: Path) -> np.ndarray:
    """`photo` through an onnxruntime session of `sincut export --format onnx`'s file, as 8-bit pixels."""
    pixels = np.asarray(Image.open(photo), dtype=np.float32) / 255.0
    (y,) = session.run(["translated"], {"image": (pixels.transpose(2, 0, 1)[None] * 2 - 1).astype(np.float32)})
    assert y.shape == (1, 3, *pixels.shape[:2])
    return np.round((np.clip(y[0], -1, 1) + 1) * 127.5).astype(int).transpose(1, 2, 0)


def test_onnx_export_runs_in_onnxruntime_and_reproduces_translate(exportable_model: Path, tmp_path: Path):
    """The exported file, run by onnxruntime (not torch) on a real photo, gives `translate --no-noise`."""
    ort = pytest.importorskip("onnxruntime")  # in the test extra: pip install -e ".[test]"
    pytest.importorskip("onnx")
    photos = tmp_path / "photos"
    photos.mkdir()
    for w, h in ((95, 53), (64, 40)):  # odd sides, then another size through the same file
        Image.open(SAMPLES / "photo_montStMichel.jpg").convert("RGB").resize((w, h)).save(photos / f"{w}x{h}.png")
    result = run("export", exportable_model, "--out", tmp_path / "g.onnx", "--format", "onnx")
    assert result.exit_code == 0, result.output
    assert run("translate", exportable_model, photos, "--out", tmp_path / "t", "--no-noise",
               "--device", "cpu").exit_code == 0

    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    for photo in sorted(photos.iterdir()):
        difference = np.abs(_onnx_pixels(session, photo) - np.asarray(Image.open(tmp_path / "t" / photo.name), int))
        assert difference.max() <= 1 and difference.mean() < 0.01, photo.name


@pytest.fixture(scope="module")
def quick_style_model(coloured_model: Path, tmp_path_factory) -> Path:
    """coloured_model (residual G, guided filter of radius 4, a Pitie colour transfer inside G) with the
    quick recipe's 32 px border and a fine-detail sigma of 1 px: every part the ONNX graph pads around."""
    from sincut.run_folder import load_checkpoint, resolve_checkpoint, save_checkpoint

    state = load_checkpoint(resolve_checkpoint(coloured_model, "latest"))
    state["config"] = {**state["config"], "border": 32, "detail_sigma": 1.0}
    model = tmp_path_factory.mktemp("quick_style") / "run"
    save_checkpoint(model, int(state["step"]), state)
    return model


def test_onnx_takes_any_size_like_translate(quick_style_model: Path, tmp_path: Path):
    """256x173 and 255x255 (odd sides once failed inside onnxruntime with a broadcast error: the graph did
    not pad to G's stride) and an even size: the exported ONNX file and `translate --engine onnxruntime`
    both give `translate --no-noise`'s pixels within one 8-bit level."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    photos = tmp_path / "photos"
    photos.mkdir()
    for w, h in ((256, 173), (255, 255), (96, 64)):
        Image.open(SAMPLES / "photo_montStMichel.jpg").convert("RGB").resize((w, h)).save(photos / f"{w}x{h}.png")
    assert run("export", quick_style_model, "--out", tmp_path / "g.onnx", "--format", "onnx").exit_code == 0
    for engine in ("torch", "onnxruntime"):
        result = run("translate", quick_style_model, photos, "--out", tmp_path / engine, "--no-noise",
                     "--engine", engine, "--device", "cpu")
        assert result.exit_code == 0, result.output

    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    for photo in sorted(photos.iterdir()):
        translated = np.asarray(Image.open(tmp_path / "torch" / photo.name), dtype=int)
        for name, pixels in (("onnx file", _onnx_pixels(session, photo)),
                             ("engine", np.asarray(Image.open(tmp_path / "onnxruntime" / photo.name), dtype=int))):
            difference = np.abs(pixels - translated)
            assert difference.max() <= 1 and difference.mean() < 0.01, (photo.name, name)


def test_translate_with_the_onnxruntime_engine_matches_torch(exportable_model: Path, tmp_path: Path):
    """`translate --engine onnxruntime --no-noise` gives torch's `--no-noise` pixels, whole and in tiles."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.open(SAMPLES / "photo_montStMichel.jpg").convert("RGB").resize((61, 45)).save(photos / "odd.png")
    Image.open(SAMPLES / "photo_montStMichel.jpg").convert("RGB").resize((347, 195)).save(photos / "tiled.png")
    outs = {}
    for engine in ("torch", "onnxruntime"):
        # the guided models' tiles read 30 + 2 x 4 = 38 px of context on each side; 2 x MIN_TILE = 132 px
        # tiles keep 56 px, so every model tiles 347 x 195 along both axes
        result = run("translate", exportable_model, photos, "--out", tmp_path / engine, "--no-noise", "--tile",
                     2 * MIN_TILE, "--engine", engine, "--device", "cpu")
        assert result.exit_code == 0, result.output
        outs[engine] = {n: np.asarray(Image.open(tmp_path / engine / n), dtype=int) for n in ("odd.png", "tiled.png")}
    for name in ("odd.png", "tiled.png"):
        difference = np.abs(outs["torch"][name] - outs["onnxruntime"][name])
        assert difference.max() <= 1 and difference.mean() < 0.01, name


def test_the_onnxruntime_engine_refuses_noise_in_one_line(tiny_model: Path, tmp_path: Path):
    photo = tmp_path / "photo.png"
    Image.open(SAMPLES / "photo_montStMichel.jpg").convert("RGB").resize((61, 45)).save(photo)
    result = run("translate", tiny_model, photo, "--out", tmp_path / "o", "--engine", "onnxruntime")
    assert result.exit_code == 2 and "--no-noise" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o" / "photo.png").exists()


def test_onnx_export_without_onnx_is_one_line(tiny_model: Path, tmp_path: Path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real_find_spec(name, *a))
    result = run("export", tiny_model, "--out", tmp_path / "g.onnx", "--format", "onnx")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install onnx" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "g.onnx").exists()


def test_export_into_a_folder_is_refused(tiny_model: Path, tmp_path: Path):
    result = run("export", tiny_model, "--out", tmp_path)
    assert result.exit_code == 2 and "is a folder" in result.output


def _exported_pixels(model: Path, image: Path, tmp_path: Path) -> np.ndarray:
    """`image` through `sincut export`'s TorchScript model, as 8-bit pixels."""
    assert run("export", model, "--out", tmp_path / "g.pt").exit_code == 0
    x = torch.from_numpy(np.asarray(Image.open(image), dtype=np.float32) / 255.0).permute(2, 0, 1)[None] * 2 - 1
    with torch.inference_mode():
        y = torch.jit.load(str(tmp_path / "g.pt"))(x)
    return ((y[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy().astype(int)


@pytest.mark.parametrize("stride, border", [(2, 32), (4, 33)])
def test_export_pads_a_tiny_image_like_translate(tiny_model: Path, tmp_path: Path, stride: int, border: int):
    """A 20x14 image, smaller than the border: translate --no-noise and the exported model give the same
    pixels. The stride-4 resnet with an odd border is the case the export once padded by the unbordered
    size (14 + 66 = 80 rows needs no stride padding, 14 alone needed 2), so its input did not divide."""
    from sincut.nets import ResnetGenerator
    from sincut.run_folder import load_checkpoint, resolve_checkpoint, save_checkpoint

    state = load_checkpoint(resolve_checkpoint(tiny_model, "latest"))
    state["config"] = {**state["config"], "border": border}
    if stride == 4:
        torch.manual_seed(0)
        G = ResnetGenerator(ngf=2, n_blocks=state["config"]["n_blocks"])
        assert G.stride == 4
        state["config"]["generator"] = "resnet"
        state["G"] = G.state_dict()
        state.pop("G_average", None)
    model = tmp_path / "run"
    save_checkpoint(model, int(state["step"]), state)
    photo = tmp_path / "tiny.png"
    random_rgb(14, 20, seed=3).save(photo)
    assert run("translate", model, photo, "--out", tmp_path / "t", "--no-noise", "--device", "cpu").exit_code == 0
    translated = np.asarray(Image.open(tmp_path / "t" / "tiny.png"), dtype=int)
    exported = _exported_pixels(model, photo, tmp_path)
    assert exported.shape == translated.shape == (14, 20, 3)
    assert np.abs(exported - translated).max() <= 1
