"""The paper's checkpoints work with every command: translate, export, import (then resume).

A folder in the paper's layout (`latest_net_{G,D,F}.pth` + `train_opt.txt`) is built from the golden
files' weights, whose G output on the golden inputs the paper's code recorded (`out/fake`), so the
loaded generator is checked against the paper's own numbers (float32 rounding: 1e-5).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sincut.cli import main
from sincut.inference.model import load_generator

from .conftest import random_rgb
from .test_official import load_golden

MODES = ("sincut", "cut", "fastcut")


def write_options(path: Path, options: dict) -> None:
    """train_opt.txt as the paper's option parser prints it."""
    lines = ["----------------- Options ---------------"]
    lines += ["{:>25}: {:<30}".format(k, str(v)) for k, v in sorted(options.items())]
    lines.append("----------------- End -------------------")
    path.write_text("\n".join(lines) + "\n")


def make_official_folder(mode: str, root: Path, with_options: bool = True) -> tuple[Path, dict, dict]:
    meta, arrays = load_golden(mode)
    folder = root / f"checkpoints_{mode}"
    folder.mkdir(parents=True)
    for net in ("G", "D", "F"):
        state = {k.split("/", 2)[2]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith(f"param/{net}/")}
        torch.save(state, folder / f"latest_net_{net}.pth")
    data = root / f"data_{mode}"
    for side, seed in (("trainA", 1), ("trainB", 2)):
        (data / side).mkdir(parents=True)
        random_rgb(72, 96, seed).save(data / side / "image.png")
    if with_options:
        write_options(folder / "train_opt.txt", {**meta["official_options"], "dataroot": data,
                                                 "batch_size": meta["batch"] if mode == "sincut" else 1,
                                                 "netF": "mlp_sample", "no_flip": False})
    return folder, meta, arrays


def paper_output(G: torch.nn.Module, meta: dict, arrays: dict) -> tuple[torch.Tensor, torch.Tensor]:
    real = torch.from_numpy(arrays["input/real_A"])
    if meta["mode"] != "fastcut":
        real = torch.cat([real, torch.from_numpy(arrays["input/real_B"])])
    if meta["flipped"]:
        real = real.flip(3)
    zeros = [real.new_zeros(1, 1, real.shape[2] // s, real.shape[3] // s) for s in G.noise_scales()]
    with torch.no_grad():
        out, _ = G(real.contiguous(memory_format=torch.channels_last), noise=zeros)
    return out, torch.from_numpy(arrays["out/fake"])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", ["folder", "bare file", "weights only"])
def test_official_checkpoint_gives_the_papers_output(mode, form, tmp_path: Path):
    folder, meta, arrays = make_official_folder(mode, tmp_path, with_options=form != "weights only")
    model = folder if form == "folder" else folder / "latest_net_G.pth"
    G, config, step = load_generator(model, torch.device("cpu"))
    assert step == 0 and config.preset == ("fastcut" if mode == "fastcut" and form != "weights only"
                                           else "cut" if mode != "sincut" else "sincut")
    ours, theirs = paper_output(G, meta, arrays)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["sincut", "cut"])
def test_official_checkpoint_translates_and_exports(mode, tmp_path: Path):
    folder, meta, arrays = make_official_folder(mode, tmp_path)
    image = tmp_path / "photo.png"
    random_rgb(50, 70, 5).save(image)
    runner = CliRunner()
    result = runner.invoke(main, ["translate", str(folder), str(image), "--out", str(tmp_path / "out"),
                                  "--no-noise", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "photo.png").size == (70, 50)
    result = runner.invoke(main, ["translate", str(folder / "latest_net_G.pth"), str(image), "--out",
                                  str(tmp_path / "out256"), "--load-size", "64", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out256" / "photo.png").size == (64, 64)  # the paper's test: N x N

    result = runner.invoke(main, ["export", str(folder), "--out", str(tmp_path / "g.pt")])
    assert result.exit_code == 0, result.output
    exported = torch.jit.load(str(tmp_path / "g.pt"))
    real = torch.from_numpy(arrays["input/real_A"])
    with torch.no_grad():
        torch.testing.assert_close(exported(real), torch.from_numpy(arrays["out/fake"])[: len(real)],
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["sincut", "cut"])
def test_official_checkpoint_imports_and_resumes(mode, tmp_path: Path):
    folder, meta, arrays = make_official_folder(mode, tmp_path)
    run = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(main, ["import", str(folder), "--out", str(run), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    state = torch.load(run / "checkpoints" / "step_0000000.pt", weights_only=True)
    G_official = {k.split("/", 2)[2]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("param/G/")}
    key = "encoder.convs.1.0.weight" if mode == "sincut" else "model.1.weight"  # ours: encoder.1.weight
    torch.testing.assert_close(state["G"]["encoder.1.weight"].reshape(G_official[key].shape), G_official[key])
    result = runner.invoke(main, ["resume", str(run), "--steps", "1", "--device", "cpu", "--log-every", "1",
                                  "--preview-every", "1000", "--checkpoint-every", "1000"])
    assert result.exit_code == 0, result.output
    assert (run / "checkpoints" / "step_0000001.pt").is_file()


def test_import_of_a_missing_folder_is_one_line(tmp_path: Path):
    result = CliRunner().invoke(main, ["import", str(tmp_path / "nope"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "no such folder" in result.output and "Traceback" not in result.output


def test_import_needs_D_and_F(tmp_path: Path):
    folder, _, _ = make_official_folder("cut", tmp_path)
    (folder / "latest_net_F.pth").unlink()
    result = CliRunner().invoke(main, ["import", str(folder), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "latest_net_F.pth" in result.output and "Traceback" not in result.output


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_crafted_official_pickle_is_refused(tmp_path: Path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save({"model.1.weight": torch.zeros(1), "payload": _RunsCode()}, folder / "latest_net_G.pth",
               pickle_protocol=2)
    image = tmp_path / "photo.png"
    random_rgb(20, 20, 1).save(image)
    result = CliRunner().invoke(main, ["translate", str(folder), str(image), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "refused to load" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "pwned.txt").exists() and not Path("pwned.txt").exists()


def test_unsupported_official_options_are_named(tmp_path: Path):
    folder, _, _ = make_official_folder("cut", tmp_path)
    text = (folder / "train_opt.txt").read_text().replace("resnet_9blocks", "unet_256      ")
    (folder / "train_opt.txt").write_text(text)
    image = tmp_path / "photo.png"
    random_rgb(20, 20, 1).save(image)
    result = CliRunner().invoke(main, ["translate", str(folder), str(image), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "netG" in result.output and "unet_256" in result.output
