"""`sincut translate` over folders: tiling, tree mirroring, resume, atomic writes, failures, modes, shards."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sincut.cli import main
from sincut.data.images import rgb_to_tensor
from sincut.nets import Generator
from sincut.inference.tiles import CONTEXT, MIN_TILE, plan_spans
from sincut.inference.translator import Translator, translate_tensor
from sincut.inference.device import cpu_has_bf16_kernels
from sincut.inference.model import load_generator

from .conftest import SAMPLES


def run(*args) -> "click.testing.Result":  # noqa: F821
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="sincut")


@pytest.fixture
def model(tiny_model: Path) -> Path:
    return tiny_model


def smooth_photo(h: int, w: int) -> Image.Image:
    """The bundled photo at any size: real structure, unlike noise, so translations are typical."""
    return Image.open(SAMPLES / "photo_montStMichel.jpg").convert("RGB").resize((w, h), Image.BILINEAR)


def counts(output: str) -> dict[str, int]:
    """translated / skipped / failed from the summary table."""
    row = [line for line in output.splitlines() if re.match(r"^\W*\d+\W+\d+\W+\d+\W", line)][-1]
    return dict(zip(("translated", "skipped", "failed"), map(int, re.findall(r"\d+", row)[:3])))


def random_generator() -> Generator:
    """A tiny G with non-zero biases and a strong noise, so tiles that cropped noise wrongly would show."""
    torch.manual_seed(0)
    G = Generator(ngf=2, crop_size=32)
    with torch.no_grad():
        for p in G.parameters():
            if p.dim() == 1:
                p.normal_(0, 0.5)
        G.upsample[0].noise_strength.fill_(0.5)
    return G.to(memory_format=torch.channels_last).eval().requires_grad_(False)


# --- tiling ------------------------------------------------------------------------------------------


def test_receptive_field_fits_in_the_tile_context():
    """Move one input pixel: outputs change only within 30 px, inside the 32 px CONTEXT a G that does not
    state its radius is given."""
    assert impulse_radius(random_generator(), 112) == 30 <= CONTEXT


def impulse_radius(G: Generator, size: int) -> int:
    """The farthest output pixel that one changed input pixel moves, over every phase of G's stride."""
    x = torch.randn(1, 3, size, size)
    noise = G.draw_noise(1, size, size, torch.Generator().manual_seed(0))
    radius = 0
    for c in range(size // 2, size // 2 + G.stride):
        y = x.clone()
        y[0, :, c, c] += 5.0
        with torch.no_grad():
            changed = (G(x, noise=noise)[0] - G(y, noise=noise)[0]).abs().sum(1)[0] > 0
        rows, cols = changed.nonzero(as_tuple=True)
        radius = max(radius, *(abs(int(v) - c) for v in (rows.min(), rows.max(), cols.min(), cols.max())))
    return radius


@pytest.mark.parametrize("kwargs", [
    dict(),  # the paper's sincut G (ngf=10 at full width is the same reach; ngf=2 keeps this quick)
    dict(n_blocks=4, residual=True, guide_radius=4),  # the quick recipe's G
    dict(n_blocks=2, n_downsampling=2),
    dict(n_blocks=3, residual=True, guide_radius=7),
    dict(n_blocks=4, residual=True, guide_radius=2, detail_sigma=2.0),  # the detail path reaches 6 px, the filter 4
])
def test_each_generators_context_is_its_measured_reach_rounded_to_the_stride(kwargs):
    """Tiles read exactly what G reaches: its stated radius is the impulse's reach, and Translator's
    context is that rounded up to the stride, so no tile computes context it does not need."""
    torch.manual_seed(0)
    G = Generator(ngf=2, crop_size=32, **kwargs)
    with torch.no_grad():
        for p in G.parameters():
            p.normal_(0, 0.5)
    G = G.eval().requires_grad_(False)
    measured = impulse_radius(G, 4 * G.receptive_radius // G.stride * G.stride)
    assert measured == G.receptive_radius
    context = Translator(G, torch.device("cpu")).context
    assert context % G.stride == 0 and measured <= context < measured + G.stride


@pytest.mark.parametrize("length,tile", [(480, 160), (481, 160), (1000, 300), (6000, 896), (161, 160), (97, 160),
                                         (200, MIN_TILE), (6000, 1188)])
def test_tiles_keep_every_pixel_exactly_once(length: int, tile: int):
    spans = plan_spans(length, tile, stride=2)
    kept = np.zeros(length, dtype=int)
    for s in spans:
        assert s.read_start % 2 == 0 and s.read_end - s.read_start <= tile
        assert s.read_start == 0 or s.keep_start - s.read_start >= CONTEXT  # context on every inner side
        assert s.read_end == length or s.read_end - s.keep_end >= CONTEXT
        kept[s.keep_start:s.keep_end] += 1
    assert (kept == 1).all()
    assert [s.keep_end for s in spans[:-1]] == [s.keep_start for s in spans[1:]]  # in order, abutting


def test_tiled_equals_whole_image_on_an_rgb_image_3x_the_tile():
    """The strict form: mean |tiled - whole| < 1/255 in the network's [-1, 1] units (half an 8-bit level).
    At the smallest tile (66 px, 30 px context) an inner tile keeps 6 px, so the 216 x 204 padded pixels
    take (216 - 60) / 6 = 26 by (204 - 60) / 6 = 24 tiles, and every kept pixel is near a tile's edge."""
    G = random_generator()
    rgb = np.asarray(smooth_photo(3 * MIN_TILE + 17, 3 * MIN_TILE + 5))  # 215 x 203, odd on purpose
    whole = translate_tensor(G, rgb_to_tensor(rgb), seed=3)[0].permute(1, 2, 0)
    translator = Translator(G, torch.device("cpu"), tile=MIN_TILE, seed=3)
    assert not translator.fits_whole(*rgb.shape[:2]) and translator.plan(*rgb.shape[:2])[0] == 26 * 24
    tiled = translator.translate_tiled(rgb)
    difference = (tiled - whole).abs()
    assert difference.mean().item() < 1 / 255
    assert difference.max().item() < 1e-4  # in fact exact up to float rounding: the context covers G's reach
    assert whole.std() > 0.1  # a real image, not a constant


def test_cli_tiled_output_equals_whole_output(model: Path, tmp_path: Path):
    big = tmp_path / "big.png"  # one row of tiles keeps this quick; the test above tiles both axes
    smooth_photo(MIN_TILE - 10, 3 * MIN_TILE + 30).save(big)
    assert run("translate", model, big, "--out", tmp_path / "whole", "--device", "cpu").exit_code == 0
    result = run("translate", model, big, "--out", tmp_path / "tiled", "--tile", MIN_TILE, "--device", "cpu")
    assert result.exit_code == 0, result.output
    whole = np.asarray(Image.open(tmp_path / "whole" / "big.png"), dtype=np.int16)
    tiled = np.asarray(Image.open(tmp_path / "tiled" / "big.png"), dtype=np.int16)
    assert tiled.shape == whole.shape == (MIN_TILE - 10, 3 * MIN_TILE + 30, 3)
    assert np.abs(tiled - whole).mean() < 0.5  # 1/255 of [-1, 1] = half an 8-bit level
    assert np.abs(tiled - whole).max() <= 1


# --- files and folders ---------------------------------------------------------------------------------


def make_tree(root: Path) -> list[Path]:
    files = [root / "a.jpg", root / "sub" / "b.png", root / "sub" / "deep" / "c.webp"]
    for i, f in enumerate(files):
        f.parent.mkdir(parents=True, exist_ok=True)
        smooth_photo(20 + 2 * i, 24).save(f)
    (root / "notes.txt").write_text("not an image, not picked up")
    return files


def test_folders_are_mirrored_with_suffix_and_format(model: Path, tmp_path: Path):
    make_tree(tmp_path / "in")
    out = tmp_path / "out"
    result = run("translate", model, tmp_path / "in", "--out", out, "--suffix", "_x", "--format", "webp",
                 "--quality", "90", "--device", "cpu")
    assert result.exit_code == 0, result.output
    found = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert found == ["a_x.webp", "sub/b_x.webp", "sub/deep/c_x.webp"]
    assert Image.open(out / "sub" / "deep" / "c_x.webp").format == "WEBP"
    assert Image.open(out / "sub" / "b_x.webp").size == (24, 22)
    assert counts(result.output) == {"translated": 3, "skipped": 0, "failed": 0}
    assert "images/s" in result.output


def test_glob_patterns_mirror_below_the_wildcard(model: Path, tmp_path: Path, monkeypatch):
    make_tree(tmp_path / "in")
    monkeypatch.chdir(tmp_path)
    result = run("translate", model, "in/**/*.png", "in/*.jpg", "--out", "out", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to("out").as_posix() for p in Path("out").rglob("*.png")) == ["a.png", "sub/b.png"]
    result = run("translate", model, "in/*.gif", "--out", "out", "--device", "cpu")
    assert result.exit_code == 2 and "matches no images" in result.output


def test_existing_outputs_are_skipped_unless_overwrite(model: Path, tmp_path: Path):
    make_tree(tmp_path / "in")
    out = tmp_path / "out"
    assert run("translate", model, tmp_path / "in", "--out", out, "--device", "cpu").exit_code == 0
    (out / "a.png").write_bytes(b"marker")  # stands for a finished output from an interrupted run
    stamp = (out / "sub" / "b.png").stat().st_mtime_ns
    result = run("translate", model, tmp_path / "in", "--out", out, "--device", "cpu")
    assert counts(result.output) == {"translated": 0, "skipped": 3, "failed": 0}
    assert (out / "a.png").read_bytes() == b"marker" and (out / "sub" / "b.png").stat().st_mtime_ns == stamp
    result = run("translate", model, tmp_path / "in", "--out", out, "--overwrite", "--device", "cpu")
    assert counts(result.output) == {"translated": 3, "skipped": 0, "failed": 0}
    assert Image.open(out / "a.png").size == (24, 20)


def test_a_save_that_dies_midway_leaves_no_partial_file(model: Path, tmp_path: Path, monkeypatch):
    make_tree(tmp_path / "in")
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "b.png").write_bytes(b"previous result")
    real_save = Image.Image.save

    def dying_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG\r\n\x1a\n half an image")
        raise OSError("disk unplugged")

    monkeypatch.setattr(Image.Image, "save", dying_save)
    result = run("translate", model, tmp_path / "in", "--out", out, "--overwrite", "--device", "cpu")
    monkeypatch.setattr(Image.Image, "save", real_save)
    assert result.exit_code == 1
    assert counts(result.output) == {"translated": 0, "skipped": 0, "failed": 3}
    assert "disk unplugged" in result.output and "a.jpg" in result.output
    assert not (out / "a.png").exists() and not (out / "sub" / "deep" / "c.png").exists()
    assert (out / "sub" / "b.png").read_bytes() == b"previous result"  # the old file is untouched
    assert not [p for p in out.rglob("*") if p.is_file() and p.name != "b.png"]  # no temp files either


def test_one_bad_file_is_reported_and_the_rest_go_on(model: Path, tmp_path: Path):
    make_tree(tmp_path / "in")
    (tmp_path / "in" / "sub" / "broken.jpg").write_text("this is not a JPEG")
    (tmp_path / "in" / "empty.png").write_bytes(b"")
    result = run("translate", model, tmp_path / "in", "--out", tmp_path / "out", "--device", "cpu")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert counts(result.output) == {"translated": 3, "skipped": 0, "failed": 2}
    assert re.search(r"failed\s+\S*broken\.jpg: not a readable image", result.output)
    assert re.search(r"failed\s+\S*empty\.png: the file is empty", result.output)
    assert (tmp_path / "out" / "sub" / "deep" / "c.png").is_file()


def test_two_inputs_for_one_output_are_refused_before_any_work(model: Path, tmp_path: Path):
    smooth_photo(10, 10).save(tmp_path / "same.jpg")
    smooth_photo(10, 10).save(tmp_path / "same.png")
    result = run("translate", model, tmp_path / "same.jpg", tmp_path / "same.png", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "would both be written to" in result.output
    assert not (tmp_path / "o").exists()
    result = run("translate", model, tmp_path / "same.png", "--out", tmp_path)
    assert result.exit_code == 2 and "would replace this input" in result.output


# --- image modes ---------------------------------------------------------------------------------------


def test_alpha_is_carried_through_unchanged(model: Path, tmp_path: Path):
    rgba = np.dstack([np.asarray(smooth_photo(18, 26)), np.tile(np.arange(0, 260, 10, dtype=np.uint8), (18, 1))])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cutout.png")
    for fmt in ("png", "webp", "jpg"):
        result = run("translate", model, tmp_path / "cutout.png", "--out", tmp_path / fmt, "--format", fmt,
                     "--device", "cpu")
        assert result.exit_code == 0, result.output
        out = Image.open(tmp_path / fmt / f"cutout.{fmt}")
        if fmt == "jpg":
            assert out.mode == "RGB" and "alpha was dropped" in result.output
        else:
            assert out.mode == "RGBA"
            assert np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    rgb_only = np.asarray(Image.open(tmp_path / "png" / "cutout.png"))[..., :3]
    assert not np.array_equal(rgb_only, rgba[..., :3])  # the colours were translated


def test_exif_rotation_is_applied(model: Path, tmp_path: Path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 30 wide x 20 high, displayed rotated 90 degrees clockwise
    smooth_photo(20, 30).save(tmp_path / "phone.jpg", exif=exif.tobytes())
    assert run("translate", model, tmp_path / "phone.jpg", "--out", tmp_path / "o", "--device", "cpu").exit_code == 0
    assert Image.open(tmp_path / "o" / "phone.png").size == (20, 30)


def test_unusual_modes_are_converted_with_a_note(model: Path, tmp_path: Path):
    base = smooth_photo(16, 16)
    base.convert("L").save(tmp_path / "gray.png")
    base.convert("P").save(tmp_path / "palette.png")
    base.convert("CMYK").save(tmp_path / "print.tif")
    Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 257)).save(tmp_path / "deep.png")
    result = run("translate", model, tmp_path, "--out", tmp_path / "o", "--device", "cpu")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note")]
    assert len(notes) == 4
    for name, text in [("gray.png", "grayscale"), ("palette.png", "palette"), ("print.tif", "CMYK"),
                       ("deep.png", "16-bit grayscale")]:
        assert any(name in n and text in n for n in notes), (name, notes)
    assert {Image.open(p).mode for p in (tmp_path / "o").iterdir()} == {"RGB"}


# --- batching, sharding, half precision ---------------------------------------------------------------------


def test_batch_size_does_not_change_results(model: Path, tmp_path: Path):
    """Batches of equal sizes (a different size in the middle splits them) give the same images, up to the
    last bit of float rounding, which may flip a pixel by one 8-bit level."""
    (tmp_path / "in").mkdir()
    for i in range(5):
        smooth_photo(22, 30 if i != 2 else 32).save(tmp_path / "in" / f"img{i}.png")
    for bs in (1, 3):
        result = run("translate", model, tmp_path / "in", "--out", tmp_path / f"bs{bs}", "--batch-size", bs,
                     "--device", "cpu")
        assert result.exit_code == 0, result.output
    for i in range(5):
        a = np.asarray(Image.open(tmp_path / "bs1" / f"img{i}.png"), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / "bs3" / f"img{i}.png"), dtype=np.int16)
        assert np.abs(a - b).max() <= 1 and np.abs(a - b).mean() < 0.01


def test_batched_images_get_the_noise_they_get_alone():
    G = random_generator()
    images = [np.asarray(smooth_photo(20, 26)), np.asarray(smooth_photo(20, 26).rotate(180))]
    translator = Translator(G, torch.device("cpu"), seed=5)
    together = translator.translate_batch(images)
    for rgb, result in zip(images, together):
        alone = translator.translate(rgb)
        assert np.abs(alone.astype(int) - result.astype(int)).max() <= 1


def test_shards_cover_every_input_exactly_once(model: Path, tmp_path: Path):
    for i in range(7):
        (tmp_path / "in" / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        smooth_photo(8, 8).save(tmp_path / "in" / f"d{i % 2}" / f"p{i}.png")
    outputs = []
    for k in (1, 2, 3):
        out = tmp_path / f"shard{k}"
        result = run("translate", model, tmp_path / "in", "--out", out, "--shard", f"{k}/3", "--device", "cpu")
        assert result.exit_code == 0, result.output
        outputs.append({p.relative_to(out).as_posix() for p in out.rglob("*.png")})
    assert sorted(len(o) for o in outputs) == [2, 2, 3]
    union = set().union(*outputs)
    assert len(union) == 7 == sum(len(o) for o in outputs)
    assert union == {f"d{i % 2}/p{i}.png" for i in range(7)}
    for bad in ("0/3", "4/3", "x"):
        result = run("translate", model, tmp_path / "in", "--out", tmp_path / "o", "--shard", bad)
        assert result.exit_code == 2 and "--shard" in result.output


@pytest.mark.parametrize("flag", [["--precision", "bf16"], ["--half"], []], ids=["bf16", "half", "auto"])
def test_half_precision_runs_and_stays_close(model: Path, tmp_path: Path, flag: list[str]):
    """bf16 (asked for, or by the old --half) stays within a few 8-bit levels of fp32; on a CPU without
    bf16 kernels it is refused in one line. auto gives fp32's output exactly."""
    smooth_photo(24, 32).save(tmp_path / "p.png")
    assert run("translate", model, tmp_path / "p.png", "--out", tmp_path / "f", "--device", "cpu",
               "--precision", "fp32").exit_code == 0
    result = run("translate", model, tmp_path / "p.png", "--out", tmp_path / "h", *flag, "--device", "cpu")
    if flag and not cpu_has_bf16_kernels():  # bf16 convolutions would crawl on this CPU
        assert result.exit_code == 2 and "--precision bf16" in result.output
        assert not (tmp_path / "h" / "p.png").exists()
        return
    assert result.exit_code == 0, result.output
    full = np.asarray(Image.open(tmp_path / "f" / "p.png"), dtype=np.int16)
    half = np.asarray(Image.open(tmp_path / "h" / "p.png"), dtype=np.int16)
    if not flag:  # auto translates in fp32 (bf16 measured no faster)
        assert np.array_equal(full, half)
        return
    assert not np.array_equal(full, half)  # it did run in bf16
    assert np.abs(full - half).mean() < 4  # bfloat16 keeps 8 bits of mantissa


def test_translate_matches_the_library_on_the_same_image(model: Path, tmp_path: Path):
    smooth_photo(30, 40).save(tmp_path / "p.png")
    assert run("translate", model, tmp_path / "p.png", "--out", tmp_path / "o", "--seed", "7",
               "--device", "cpu", "--precision", "fp32").exit_code == 0
    G, _, _ = load_generator(model, torch.device("cpu"))
    expected = translate_tensor(G, rgb_to_tensor(np.asarray(Image.open(tmp_path / "p.png"))), seed=7)
    expected = ((expected[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "p.png")), expected)


def test_border_is_mirrored_around_the_image_then_cropped():
    """An independent computation: NumPy mirrors the edge, G runs on the whole padded image with zero
    noise, the border is sliced off; Translator(border=...) gives that, whole and in tiles."""
    G = random_generator()
    rgb = np.asarray(smooth_photo(2 * MIN_TILE + 9, 2 * MIN_TILE + 31))  # 141 x 163
    b = 12
    padded = np.pad(rgb, ((b, b), (b, b), (0, 0)), mode="reflect")
    x = rgb_to_tensor(padded)
    x = torch.nn.functional.pad(x, (0, (-x.shape[3]) % G.stride, 0, (-x.shape[2]) % G.stride), mode="reflect")
    with torch.inference_mode():
        zeros = [torch.zeros(1, 1, x.shape[2] // s, x.shape[3] // s) for s in G.noise_scales()]
        expected = G(x.contiguous(memory_format=torch.channels_last), noise=zeros)[0][0, :, b:b + rgb.shape[0],
                                                                                    b:b + rgb.shape[1]]
    expected = ((expected.clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy().astype(int)
    whole = Translator(G, torch.device("cpu"), noise=False, border=b).translate(rgb).astype(int)
    tiled = Translator(G, torch.device("cpu"), tile=MIN_TILE, noise=False, border=b).translate(rgb).astype(int)
    assert np.abs(whole - expected).max() <= 1 and np.abs(tiled - expected).max() <= 1
    plain = Translator(G, torch.device("cpu"), noise=False).translate(rgb).astype(int)
    edge = np.abs(plain - whole).mean(axis=2)
    assert edge[:4].mean() > 10 * max(edge[40:-40, 40:-40].mean(), 1e-3)  # the border changes the edge only
    assert np.array_equal(translate_tensor(G, rgb_to_tensor(rgb), border=b).shape, (1, 3, *rgb.shape[:2]))


def test_translate_uses_the_models_border_unless_told(bordered_model: Path, tiny_model: Path, tmp_path: Path):
    photo = tmp_path / "photo.png"
    smooth_photo(45, 61).save(photo)
    outs = {}
    for name, args in {"model_border": [bordered_model], "plain_model": [tiny_model],
                       "told_0": [bordered_model, "--border", "0"], "told_8": [tiny_model, "--border", "8"]}.items():
        result = run("translate", args[0], photo, "--out", tmp_path / name, "--no-noise", "--device", "cpu", *args[1:])
        assert result.exit_code == 0, result.output
        outs[name] = np.asarray(Image.open(tmp_path / name / "photo.png"), dtype=int)
    assert np.array_equal(outs["model_border"], outs["told_8"])  # same weights, border 8 either way
    assert np.array_equal(outs["plain_model"], outs["told_0"])
    assert not np.array_equal(outs["model_border"], outs["plain_model"])
    tiny = tmp_path / "tiny.png"  # smaller than the border: the edge is replicated instead of mirrored
    smooth_photo(5, 7).save(tiny)
    assert run("translate", bordered_model, tiny, "--out", tmp_path / "tiny", "--device", "cpu").exit_code == 0
    assert Image.open(tmp_path / "tiny" / "tiny.png").size == (7, 5)


def test_the_quick_recipe_mirrors_a_border():
    from sincut.config import make_config

    # the quick recipe mirrors a border (its value is measured in the README); the paper's networks have none
    assert make_config("quick").border > 0 and make_config("sincut").border == 0
