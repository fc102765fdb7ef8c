"""The real CLI on real (shrunk) images: train, checkpoint, translate, help, and the error contract."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sincut.cli import main
from sincut.config import TrainConfig, changeable_on_resume, field_group

from .conftest import ROOT, TINY_TRAIN


def run(*args: str) -> "click.testing.Result":  # noqa: F821
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, prog_name="sincut")


@pytest.fixture
def trained_run(tiny_pair, tmp_path: Path) -> Path:
    src, tgt = tiny_pair
    out = tmp_path / "run"
    result = run("train", src, tgt, "--out", out, *TINY_TRAIN)
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_a_complete_run(trained_run: Path, tiny_pair):
    config = json.loads((trained_run / "config.json").read_text())
    assert config["steps"] == 3 and config["crop_size"] == 32 and config["preset"] == "sincut"
    assert config["precision"] == "fp32"  # --precision auto: the paper's recipe stays fp32 (BF16_PRESETS)
    log = [json.loads(line) for line in (trained_run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert {"D_fake", "D_real", "D_R1", "G_GAN", "NCE", "NCE_Y", "idt"} <= set(log[-1])
    assert log[-1]["lr"] < log[0]["lr"]  # linear decay in the second half
    checkpoints = sorted((trained_run / "checkpoints").glob("step_*.pt"))
    assert [p.name for p in checkpoints] == ["step_0000002.pt", "step_0000003.pt"]
    state = torch.load(checkpoints[-1], weights_only=True)  # loads without unpickling objects
    assert state["step"] == 3 and set(state) >= {"G", "D", "F", "opt_G", "opt_D", "config", "rng"}
    result = Image.open(trained_run / "result.png")
    assert result.size == Image.open(tiny_pair[0]).size
    assert (trained_run / "latest.png").read_bytes() == (trained_run / "previews" / "step_0000003.png").read_bytes()
    assert (trained_run / "previews" / "step_0000002.png").is_file()
    assert not list(trained_run.rglob("*.tmp"))


def test_translate_keeps_odd_sizes(trained_run: Path, tmp_path: Path):
    odd = tmp_path / "odd.jpg"
    Image.open(ROOT / "samples" / "photo_montStMichel.jpg").resize((75, 53)).save(odd)
    out = tmp_path / "out"
    result = run("translate", trained_run, odd, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    translated = Image.open(out / "odd.png")
    assert translated.size == (75, 53) and translated.mode == "RGB"


def test_translate_is_repeatable_and_matches_the_run_result(trained_run: Path, tiny_pair, tmp_path: Path):
    src, _ = tiny_pair
    for name in ("a", "b"):
        assert run("translate", trained_run, src, "--out", tmp_path / name, "--device", "cpu",
                   "--checkpoint", "latest").exit_code == 0
    a = Image.open(tmp_path / "a" / "photo.png").tobytes()
    assert a == Image.open(tmp_path / "b" / "photo.png").tobytes()
    assert a == Image.open(trained_run / "result.png").tobytes()


def test_same_seed_same_weights(tiny_pair, tmp_path: Path):
    src, tgt = tiny_pair
    states = []
    for name in ("one", "two"):
        args = [a for a in TINY_TRAIN]
        assert run("train", src, tgt, "--out", tmp_path / name, *args).exit_code == 0
        states.append(torch.load(tmp_path / name / "checkpoints" / "step_0000003.pt", weights_only=True))
    for key in ("G", "D", "F"):
        for name, tensor in states[0][key].items():
            assert torch.equal(tensor, states[1][key][name]), f"{key}.{name} differs"


def test_training_changes_the_generator(trained_run: Path):
    first = torch.load(trained_run / "checkpoints" / "step_0000002.pt", weights_only=True)["G"]
    last = torch.load(trained_run / "checkpoints" / "step_0000003.pt", weights_only=True)["G"]
    assert any(not torch.equal(first[k], last[k]) for k in first)


@pytest.mark.parametrize("command", [[], ["train"], ["resume"], ["translate"], ["batch"], ["export"], ["demo"],
                                     ["eval"], ["report"]])
def test_help(command: list[str]):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage: sincut" in result.output


def help_text(*args: str) -> str:
    """The help as a 100-column terminal shows it."""
    result = CliRunner().invoke(main, list(args), prog_name="sincut", terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


def listed_flags(text: str) -> set[str]:
    """The long flags that start an option's entry (not flags named inside help texts)."""
    return {m.group(1) for m in re.finditer(r"^  (?:-\w, )?(--[\w-]+)", text, re.M)}


def flag(f: dataclasses.Field) -> str:
    return "--" + f.name.replace("_", "-")


FIELDS = dataclasses.fields(TrainConfig)
COMMON = {"--help", "--help-all", "--device", "--allow-large-images"}
OWN = {"train": set(), "batch": {"--style"}}  # each command's options besides the recipe's
ONE_SCREEN = ("paper", "bookkeeping", "execution")  # the groups of options a one-screen --help lists


@pytest.mark.parametrize("command", ["train", "batch"])
def test_help_fits_one_screen_and_lists_the_options_users_need(command: str):
    text = help_text(command, "--help")
    assert len(text.splitlines()) <= 47, text  # train: 42 lines; batch's usage and docstring are longer
    shown = {flag(f) for f in FIELDS if field_group(f) in ONE_SCREEN}
    assert listed_flags(text) == shown | OWN[command] | {"--preset", "--out", "--help", "--help-all", "--device"}
    # the research knobs are left to --help-all
    assert not listed_flags(text) & {"--nce-temperature", "--guide-radius", "--residual", "--init-gain"}


@pytest.mark.parametrize("command", ["train", "batch"])
def test_help_all_lists_every_option_with_its_full_text(command: str):
    text = help_text(command, "--help-all")
    assert listed_flags(text) == {flag(f) for f in FIELDS} | COMMON | OWN[command] | {"--preset", "--out"}
    flat = "".join(text.split())  # wrapping may break a line at any space or hyphen
    for f in FIELDS:
        if f.name != "preset":
            assert "".join(f.metadata["help"].split()) in flat, f.name


def test_train_help_all_gives_each_option_its_recipe_default():
    text = help_text("train", "--help-all")
    for f in FIELDS:
        if f.name == "preset":
            continue
        default = {"zoom_min": "1/3", "nce_layers": "0,2,4", "patch_swd_scales": "1,2",
                   "patch_match_scales": "1,2,4"}.get(f.name, f.default)
        if isinstance(default, bool):
            default = "on" if default else "off"
        start = re.search(rf"^\s+{flag(f)}[ ,/]", text, re.M)
        assert start, f.name
        entry = " ".join(text[start.start():].split())
        assert f"[default: {default}]" in entry[:600], f.name
    assert "[default: 100000]" in " ".join(text.split())  # the paper's 100,000 steps, as the user reads it


def test_resume_offers_only_what_it_may_change():
    """--help: what it may change of the groups train's --help shows, on one 80-column screen; --help-all:
    all it may change (--border too), each with its full text."""
    changeable = {flag(f) for f in FIELDS if changeable_on_resume(f)}
    assert {"--precision", "--compile", "--steps", "--keep-checkpoints", "--border"} <= changeable
    compact = {flag(f) for f in FIELDS if changeable_on_resume(f) and field_group(f) in ONE_SCREEN}
    assert "--border" not in compact and {"--precision", "--compile", "--steps", "--keep-checkpoints"} <= compact
    text = help_text("resume", "--help")
    assert listed_flags(text) == compact | COMMON - {"--allow-large-images"} | {"--restart-lr"}
    screen = CliRunner().invoke(main, ["resume", "--help"], prog_name="sincut", terminal_width=80).output
    assert len(screen.splitlines()) <= 40, screen
    assert listed_flags(help_text("resume", "--help-all")) == changeable | COMMON | {"--restart-lr"}


def test_unlisted_options_still_parse():
    """--help leaves options out of the listing only: train takes research knobs, resume still takes the
    recipe's options (to refuse a change in one line, test_resume.py), batch takes --allow-large-images."""
    ctx = main.commands["train"].make_context("train", ["a.jpg", "b.jpg", "--out", "r", "--nce-temperature",
                                                        "0.1", "--residual", "--guide-radius", "3"])
    assert (ctx.params["nce_temperature"], ctx.params["residual"], ctx.params["guide_radius"]) == (0.1, True, 3)
    ctx = main.commands["resume"].make_context("resume", ["r", "--lr", "0.1", "--compile"])
    assert ctx.params["lr"] == 0.1 and ctx.params["compile"] is True


def test_batch_takes_allow_large_images(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    assert Image.MAX_IMAGE_PIXELS is not None
    main.commands["batch"].make_context("batch", ["a.jpg", "--style", "b.jpg", "--out", "o",
                                                  "--allow-large-images"])
    assert Image.MAX_IMAGE_PIXELS is None


def test_cli_py_and_module_are_the_same_group():
    a = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--help"], capture_output=True, text=True, cwd=ROOT)
    b = subprocess.run([sys.executable, "-m", "sincut", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout and "translate" in a.stdout


def _error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return lines[-1]


def test_missing_source_is_one_line_exit_2(tiny_pair, tmp_path: Path):
    result = CliRunner().invoke(main, ["train", str(tmp_path / "nope.jpg"), str(tiny_pair[1]),
                                       "--out", str(tmp_path / "r"), *TINY_TRAIN])
    assert "nope.jpg" in _error_line(result)
    assert not (tmp_path / "r").exists()  # nothing left behind


def test_text_file_named_jpg(tiny_pair, tmp_path: Path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("not an image")
    result = CliRunner().invoke(main, ["train", str(tiny_pair[0]), str(fake), "--out", str(tmp_path / "r")])
    assert "notes.jpg" in _error_line(result) and "not a readable image" in result.output


def test_folder_where_a_file_is_expected(tiny_pair, tmp_path: Path):
    result = CliRunner().invoke(main, ["train", str(tmp_path), str(tiny_pair[1]), "--out", str(tmp_path / "r")])
    assert "is a folder" in _error_line(result)


def test_out_of_range_option(tiny_pair, tmp_path: Path):
    result = CliRunner().invoke(main, ["train", *map(str, tiny_pair), "--out", str(tmp_path / "r"), "--steps", "-1"])
    assert result.exit_code == 2 and "--steps" in result.output
    result = CliRunner().invoke(main, ["train", *map(str, tiny_pair), "--out", str(tmp_path / "r"),
                                       "--crop-size", "48"])
    assert "power of two" in _error_line(result)


def test_existing_run_is_not_overwritten(trained_run: Path, tiny_pair):
    before = sorted(p.name for p in (trained_run / "checkpoints").iterdir())
    result = CliRunner().invoke(main, ["train", *map(str, tiny_pair), "--out", str(trained_run), *TINY_TRAIN])
    assert "already holds a training run" in _error_line(result)
    assert sorted(p.name for p in (trained_run / "checkpoints").iterdir()) == before


def test_translate_without_a_model(tmp_path: Path, tiny_pair):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["translate", str(tmp_path / "empty"), str(tiny_pair[0]), "--out", str(tmp_path / "o")])
    assert "holds no checkpoints" in _error_line(result)


def test_malicious_checkpoint_is_refused_and_not_run(tmp_path: Path, tiny_pair):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    bad = tmp_path / "bad.pt"
    torch.save({"format": 1, "G": Exploit()}, bad)
    result = CliRunner().invoke(main, ["translate", str(bad), str(tiny_pair[0]), "--out", str(tmp_path / "o")])
    assert "refused to load" in _error_line(result)
    assert not marker.exists()


def test_truncated_checkpoint(trained_run: Path, tmp_path: Path, tiny_pair):
    good = sorted((trained_run / "checkpoints").glob("*.pt"))[-1].read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good[: len(good) // 2])
    result = CliRunner().invoke(main, ["translate", str(cut), str(tiny_pair[0]), "--out", str(tmp_path / "o")])
    assert "cut.pt" in _error_line(result)


def test_bf16_fast_path_trains_on_the_cpu(tiny_pair, tmp_path: Path):
    """Where oneDNN has bf16 kernels it trains; elsewhere it is refused in one line (it would crawl)."""
    from sincut.inference.device import cpu_has_bf16_kernels

    out = tmp_path / "bf16"
    if not cpu_has_bf16_kernels():
        result = CliRunner().invoke(main, ["train", *map(str, tiny_pair), "--out", str(out), *TINY_TRAIN,
                                           "--precision", "bf16", "--device", "cpu"])
        assert result.exit_code == 2 and "--precision bf16" in _error_line(result) and "fp32" in result.output
        return
    result = run("train", *tiny_pair, "--out", out, *TINY_TRAIN, "--precision", "bf16", "--r1-every", "2")
    assert result.exit_code == 0, result.output
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(all(v == v for v in r.values()) for r in log)  # finite (no NaN)
    assert "D_R1" in log[0] and "D_R1" not in log[1]  # lazy R1 on steps 0, 2


def test_two_images_on_a_cpu_train_the_quick_recipe(tiny_pair, tmp_path: Path):
    """Without --preset two images on a CPU train the quick recipe (the paper's takes days there), say so,
    and config.json records it; --preset sincut still chooses the paper's recipe."""
    from sincut.inference.device import cpu_has_bf16_kernels

    args = [a for a in TINY_TRAIN if a not in ("--preset", "sincut")]
    assert len(args) == len(TINY_TRAIN) - 2
    result = CliRunner().invoke(main, ["train", *map(str, tiny_pair), "--out", str(tmp_path / "r"), *args],
                                prog_name="sincut")
    assert result.exit_code == 0, result.output
    assert "the quick recipe" in result.output and "--preset sincut" in result.output
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["preset"] == "quick" and config["residual"] and config["guide_radius"] == 4
    # --precision auto: config.json names what ran, bf16 where this CPU has bf16 convolution kernels
    assert config["precision"] == ("bf16" if cpu_has_bf16_kernels() else "fp32")


def test_fp16_needs_a_gpu(tiny_pair, tmp_path: Path):
    result = CliRunner().invoke(main, ["train", *map(str, tiny_pair), "--out", str(tmp_path / "r"), *TINY_TRAIN,
                                       "--precision", "fp16"], prog_name="sincut")
    assert result.exit_code == 2 and "needs a CUDA GPU" in result.output
    assert not (tmp_path / "r").exists()


def test_compile_fast_path_trains(tiny_pair, tmp_path: Path):
    """torch.compile has no double backward: R1 must then take its own pass of the plain D."""
    out = tmp_path / "compiled"
    args = list(TINY_TRAIN)
    args[args.index("--steps") + 1] = "2"
    result = run("train", *tiny_pair, "--out", out, *args, "--compile")
    assert result.exit_code == 0, result.output
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(r["D_R1"] > 0 for r in log)
    state = torch.load(sorted((out / "checkpoints").glob("*.pt"))[-1], weights_only=True)
    assert not any(k.startswith("_orig_mod") for k in state["G"])  # plain names, loadable anywhere
