"""Dataset mode (presets cut and fastcut) on tiny generated folders, and two-process DDP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sincut.cli import main
from sincut.nets import PatchGANDiscriminator, ProjectionHead, ResnetGenerator

from .conftest import ROOT, TINY_TRAIN, random_rgb

TINY_DATASET = ["--steps", "3", "--load-size", "40", "--crop-size", "32", "--ngf", "4", "--ndf", "4",
                "--n-blocks", "2", "--num-patches", "16", "--nce-layers", "0,4,8,12", "--log-every", "1",
                "--preview-every", "2", "--checkpoint-every", "2", "--device", "cpu"]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="sincut")


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "photos", tmp_path / "paintings"
    (a / "nested").mkdir(parents=True)
    b.mkdir()
    for i in range(3):
        random_rgb(36 + i, 50, seed=i).save(a / f"p{i}.jpg")
    random_rgb(44, 40, seed=9).convert("L").save(a / "nested" / "gray.png")
    for i in range(2):
        random_rgb(60, 48, seed=10 + i).convert("RGBA").save(b / f"q{i}.png")
    (b / "notes.txt").write_text("not an image, ignored by extension")
    return a, b


def test_parameter_counts_worked_by_hand():
    # G: 7x7 stem 3->64, two 3x3 downsampling convs (64->128->256), 9 res blocks of two 3x3 convs at 256,
    # two 3x3 upsampling convs (256->128->64), 7x7 conv 64->3; every conv has a bias (instance norm
    # has no affine parameters).
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    g_expected = (conv(3, 64, 7) + conv(64, 128, 3) + conv(128, 256, 3) + 9 * 2 * conv(256, 256, 3)
                  + conv(256, 128, 3) + conv(128, 64, 3) + conv(64, 3, 7))
    # D: 4x4 convs 3->64->128->256->512->1.
    d_expected = conv(3, 64, 4) + conv(64, 128, 4) + conv(128, 256, 4) + conv(256, 512, 4) + conv(512, 1, 4)
    G, D = ResnetGenerator(ngf=64, n_blocks=9), PatchGANDiscriminator(ndf=64)
    assert sum(p.numel() for p in G.parameters()) == g_expected == 11_378_179
    assert sum(p.numel() for p in D.parameters()) == d_expected == 2_764_737
    widths = G.feature_channels((0, 4, 8, 12, 16))
    assert widths == [3, 128, 256, 256, 256]
    mlp = lambda c: c * 256 + 256 + 256 * 256 + 256  # noqa: E731
    assert sum(p.numel() for p in ProjectionHead(widths).parameters()) == sum(mlp(c) for c in widths)


def test_resnet_generator_shapes_and_range():
    G = ResnetGenerator(ngf=4, n_blocks=2)
    out, feats = G(torch.randn(2, 3, 36, 44), (0, 4, 8, 12))
    assert out.shape == (2, 3, 36, 44) and out.abs().max() <= 1
    assert [f.shape[2:] for f in feats] == [(42, 50), (36, 44), (18, 22), (9, 11)]
    assert PatchGANDiscriminator(ndf=4)(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)


@pytest.mark.parametrize("preset", ["cut", "fastcut"])
def test_folders_train_checkpoint_and_translate(folders, tmp_path: Path, preset: str):
    a, b = folders
    run = tmp_path / f"run_{preset}"
    args = ["train", a, b, "--out", run, *TINY_DATASET] + (["--preset", preset] if preset != "cut" else [])
    result = cli(*args)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["preset"] == preset and config["generator"] == "resnet" and config["steps"] == 3
    assert config["flip_equivariance"] == (preset == "fastcut")
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert ("NCE_Y" in log[-1]) == (preset == "cut") and "D_R1" not in log[-1]
    state = torch.load(sorted((run / "checkpoints").glob("*.pt"))[-1], weights_only=True)
    assert state["step"] == 3
    out = tmp_path / f"out_{preset}"
    result = cli("translate", run, a, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert Image.open(out / "nested" / "gray.png").size == (40, 44)
    assert Image.open(out / "p2.png").size == (50, 38)


def test_epochs_set_the_step_count(folders, tmp_path: Path):
    a, b = folders
    args = [x for x in TINY_DATASET]
    i = args.index("--steps")
    del args[i:i + 2]
    result = cli("train", a, b, "--out", tmp_path / "run", *args, "--epochs", "2")
    assert result.exit_code == 0, result.output
    # one epoch = max(|A|, |B|) = 4 images at batch 1
    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == 8


def test_unreadable_file_is_reported_once_and_skipped(folders, tmp_path: Path):
    a, b = folders
    (a / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    result = cli("train", a, b, "--out", tmp_path / "run", *TINY_DATASET, "--steps", "10")
    assert result.exit_code == 0, result.output
    assert result.output.count("broken.jpg") == 1
    assert "1 unreadable file(s) were skipped" in result.output


def test_folder_and_file_mixed_or_empty(folders, tmp_path: Path):
    a, b = folders
    mixed = cli("train", a, next(b.glob("*.png")), "--out", tmp_path / "r")
    assert mixed.exit_code == 2 and "two folders" in mixed.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("train", a, empty, "--out", tmp_path / "r")
    assert result.exit_code == 2 and "holds no images" in result.output
    wrong = cli("train", a, b, "--out", tmp_path / "r", "--preset", "sincut")
    assert wrong.exit_code == 2 and "--preset sincut trains on two image files" in wrong.output


def test_cut_resume_is_bitwise_identical(folders, tmp_path: Path):
    a, b = folders
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    args = [*TINY_DATASET, "--steps", "5", "--checkpoint-every", "2", "--keep", "5"]
    assert cli("train", a, b, "--out", straight, *args).exit_code == 0
    assert cli("train", a, b, "--out", stopped, *args).exit_code == 0
    for later in ("step_0000004.pt", "step_0000005.pt"):
        (stopped / "checkpoints" / later).unlink()
    assert cli("resume", stopped, "--device", "cpu").exit_code == 0
    x = torch.load(straight / "checkpoints" / "step_0000005.pt", weights_only=True)
    y = torch.load(stopped / "checkpoints" / "step_0000005.pt", weights_only=True)
    for net in ("G", "D", "F"):
        for name, tensor in x[net].items():
            assert torch.equal(tensor, y[net][name]), f"{net}.{name}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("preset", ["cut", "sincut"])
def test_two_processes_with_gloo_end_with_identical_weights(folders, tiny_pair, tmp_path: Path, preset: str):
    """cut: instance norm, no R1; sincut: two single images, R1's double backward through DDP."""
    if preset == "cut":
        inputs, options = [str(p) for p in folders], TINY_DATASET
    else:
        inputs, options = [str(p) for p in tiny_pair], TINY_TRAIN
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    script = tmp_path / "dump.py"
    # Each rank dumps its G as training starts and ends, so the copies can be compared bit for bit.
    script.write_text(
        "import os, sys, torch\n"
        "import sincut.training.loop as t\n"
        "orig = t._fit\n"
        "def fit(trainer, run, start, progress, *rest):\n"
        "    rank = trainer.world.rank\n"
        "    torch.save(t.unwrap(trainer.G).state_dict(), os.path.join(sys.argv[1], f'G0_rank{rank}.pt'))\n"
        "    out = orig(trainer, run, start, progress, *rest)\n"
        "    torch.save(t.unwrap(trainer.G).state_dict(), os.path.join(sys.argv[1], f'G_rank{rank}.pt'))\n"
        "    return out\n"
        "t._fit = fit\n"
        "from sincut.cli import main\n"
        "main(sys.argv[2:], prog_name='sincut')\n")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(script), str(tmp_path), "train", *inputs, "--out", str(run),
           *options, "--checkpoint-every", "1000"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["preset"] == preset
    g0 = torch.load(tmp_path / "G_rank0.pt", weights_only=True)
    g1 = torch.load(tmp_path / "G_rank1.pt", weights_only=True)
    for name, tensor in g0.items():
        assert torch.equal(tensor, g1[name]), name
    initial = torch.load(tmp_path / "G0_rank0.pt", weights_only=True)
    for name, tensor in torch.load(tmp_path / "G0_rank1.pt", weights_only=True).items():
        assert torch.equal(tensor, initial[name]), name  # both ranks start from the same weights
    assert any(not torch.equal(g0[k], v) for k, v in initial.items())  # it trained: moved off its own start
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert ("D_R1" in log[-1]) == (preset == "sincut")
    assert len(list((run / "checkpoints").glob("step_*.pt"))) == 1  # only rank 0 wrote
