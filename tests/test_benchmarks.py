"""benchmarks/ keeps working and keeps its shape: every script answers --help and runs end to end on tiny inputs
(one at a time, sized for 2 cores), writing the keys of its committed JSON that the docs and tests read; the
harness's arithmetic against hand-worked figures; scripts on top of the harness, none importing another, no
import cycle, no module over 450 lines. No figure is checked against a timing."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from .conftest import ROOT, SAMPLES, SHARED
from .test_layout import find_cycle, import_graph

from benchmarks.harness import args as harness_args
from benchmarks.harness.flops import CountFlops, floor_seconds
from benchmarks.harness.report import command_line, markdown_table, median_range, write_json
from benchmarks.harness.steps import StepTimes
from benchmarks.harness.timing import time_calls

BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.name != "__init__.py")
DOCS_RESULTS = ROOT / "docs" / "results"
MAX_LINES = 450
# Keys of committed JSON that no script writes: notes added by hand, and "photo" from an earlier ablation.py
NOT_WRITTEN = {"note", "what", "commands", "cpu_cores", "driver", "photo"}
TINY_RUN = ["--ngf", "2", "--ndf", "4", "--batch-size", "2", "--crop-size", "32", "--precision", "fp32"]


# ------------------------------------------------------------------ layering

def test_scripts_stand_on_the_harness_and_nowhere_else():
    graph = import_graph(BENCHMARKS)
    scripts = {f"benchmarks.{p.stem}" for p in SCRIPTS}
    assert {"benchmarks.run", "benchmarks.step_profile", "benchmarks.harness.steps"} <= set(graph)
    assert "benchmarks.harness.steps" in graph["benchmarks.run"]  # the checker sees `from benchmarks.harness...`
    for module, imported in graph.items():
        assert not imported & scripts, f"{module} imports a script: {sorted(imported & scripts)}"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_benchmark_modules_are_short():
    long = [f"{p.relative_to(ROOT)} ({n} lines)" for p in sorted(BENCHMARKS.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, f"over {MAX_LINES} lines: {long}"


# ------------------------------------------------------------------ the harness, by hand

def test_flop_counter_counts_a_convolution_and_a_matmul_by_precision():
    x, w = torch.randn(2, 3, 8, 8), torch.randn(5, 3, 3, 3)
    a, b = torch.randn(4, 6, dtype=torch.bfloat16), torch.randn(6, 7, dtype=torch.bfloat16)
    counter = CountFlops()
    with counter:
        torch.nn.functional.conv2d(x, w, padding=1)
        a @ b
    conv, matmul = 2 * 2 * 5 * 8 * 8 * 3 * 3 * 3, 2 * 4 * 6 * 7  # 2 x N x Cout x H x W x Cin x k x k; 2 x m x k x n
    assert counter.by_precision == {"fp32": conv, "bf16": matmul}
    assert counter.total == conv + matmul


def test_floor_is_each_precisions_work_at_its_own_peak():
    peaks = {"fp32": {"peak": 100.0}, "bf16": {"peak": 400.0}}
    # 50 GFLOP fp32 at 100 GFLOP/s + 200 GFLOP bf16 at 400 + 40 fp16 (at the bf16 rate) = 0.5 + 0.5 + 0.1 s
    assert floor_seconds({"fp32": 50.0, "bf16": 200.0, "fp16": 40.0}, peaks) == pytest.approx(1.1)


def test_lazy_r1_counts_in_proportion_over_its_period():
    times = StepTimes(r1_every=4)
    for d_step, r1 in [(3.0, True), (1.0, False), (1.2, False), (0.8, False)]:
        for phase in times.phases:
            times.phases[phase].append(d_step if phase in ("D step", "total") else 0.1)
        times.with_r1.append(r1)
    per_step = times.per_step()
    # without R1: median 1.0; with R1: 3.0; over a period of 4: (3 x 1.0 + 3.0) / 4 = 1.5; R1's share (3 - 1) / 4
    assert per_step["D step"] == pytest.approx(1.5) and per_step["R1"] == pytest.approx(0.5)
    assert per_step["D step without R1"] == pytest.approx(1.0) and per_step["r1_covered"] is True
    assert StepTimes(r1_every=4, with_r1=[False], phases={"total": [1.0]}).per_step()["r1_covered"] is False


def test_time_calls_warms_up_then_hands_each_call_its_index():
    seen: list[int] = []
    timings = time_calls(seen.append, repeats=3, warmup=2)
    assert seen == [0, 1, 2, 3, 4] and len(timings.times) == 3 and timings.fastest <= timings.median


def test_json_is_written_whole_and_the_command_line_relative_to_the_repository(tmp_path: Path):
    path = tmp_path / "deep" / "result.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2, "b": [1, 2]})
    assert json.loads(path.read_text()) == {"a": 2, "b": [1, 2]} and os.listdir(path.parent) == ["result.json"]
    assert command_line([str(BENCHMARKS / "run.py"), "--presets", "quick,cut", "--translate-sizes", ""]) == \
        "python benchmarks/run.py --presets quick,cut --translate-sizes ''"


def test_tables_and_cells_as_the_docs_write_them():
    assert markdown_table(["a", "b"], [[1, "x"], ["2", None]]) == "| a | b |\n|---|---|\n| 1 | x |\n| 2 | None |"
    assert median_range([40.0, None, 60.0, 45.0], 1) == "45.0 (40.0-60.0)"
    assert median_range([7.0], 2) == "7.00" and median_range([None], 2) == "-"


@pytest.mark.parametrize("call", [lambda: harness_args.parse_size("64by48", "--size"),
                                  lambda: harness_args.parse_size("0x48", "--size"),
                                  lambda: harness_args.parse_steps("4", "--steps"),
                                  lambda: harness_args.parse_steps("0,1", "--steps"),
                                  lambda: harness_args.parse_seeds("0,0", "--seeds")])
def test_bad_arguments_exit_2(call):
    with pytest.raises(SystemExit) as e:
        call()
    assert e.value.code == 2


# ------------------------------------------------------------------ every script runs

@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_answers_help(script: Path, monkeypatch, capsys):
    """In this process (torch is loaded once): each script as __main__, its imports and parser included."""
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    monkeypatch.setattr(sys, "path", list(sys.path))  # scripts put the repository first; undone after
    with pytest.raises(SystemExit) as e:
        runpy.run_path(str(script), run_name="__main__")
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {script.name}")


def test_gpu_sh_answers_help():
    done = subprocess.run(["bash", str(BENCHMARKS / "gpu.sh"), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "GPU_QUICK_MINUTES" in done.stdout and "set -uo" not in done.stdout
    prepare = subprocess.run(["bash", str(BENCHMARKS / "gpu_prepare.sh"), "--help"], capture_output=True, text=True)
    assert prepare.returncode == 0 and 'carry=[".gpu_inputs", ".whl"]' in prepare.stdout


@pytest.fixture(scope="module")
def tiny_shared(tmp_path_factory) -> Path:
    """A ../shared whose Etretat/Monet pair is the bundled pair at 160x96 and 128x100: the single-image presets
    and the quality screens train and score on it in seconds."""
    shared = tmp_path_factory.mktemp("shared")
    pair = shared / "data" / "single_image_monet_etretat"
    pair.mkdir(parents=True)
    Image.open(SAMPLES / "photo_montStMichel.jpg").convert("RGB").resize((160, 96)).save(
        pair / "etretat-normandy-france.jpg", quality=95)
    Image.open(SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg").convert("RGB").resize(
        (128, 100)).save(pair / "monet.jpg", quality=95)
    return shared


def run_script(name: str, *args: str, shared: Path | None = None, env: dict | None = None) -> str:
    """Run benchmarks/NAME from the repository with 2 threads; its stdout (the failure's stderr otherwise)."""
    env = {**os.environ, "OMP_NUM_THREADS": "2", **(env or {}), **({"SINCUT_SHARED": str(shared)} if shared else {}),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # gpu.sh's python3: ours
    cmd = ["bash", str(BENCHMARKS / name)] if name.endswith(".sh") else [sys.executable, str(BENCHMARKS / name)]
    done = subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, f"{name} {' '.join(args)}:\n{done.stderr[-3000:]}"
    return done.stdout


def keys_at(data, path: str) -> set[str]:
    """The keys found at `path` ('a/*/b': '*' takes the first value of a mapping or the first item of a list);
    none where a mapping or list on the way is empty (the committed run had nothing there)."""
    for part in [p for p in path.split("/") if p]:
        if part == "*" and not data:
            return set()
        data = next(iter(data.values())) if part == "*" and isinstance(data, dict) else (
            data[0] if part == "*" else data[part])
    return set(data)


def assert_keys_of(committed: str, written: Path, paths: list[str]) -> dict:
    """Each key the committed docs/results JSON has at each path, the new JSON has too."""
    old = json.loads((ROOT / "docs" / committed).read_text(encoding="utf-8"))
    new = json.loads(written.read_text(encoding="utf-8"))
    for path in ["", *paths]:
        missing = keys_at(old, path) - keys_at(new, path) - NOT_WRITTEN
        assert not missing, f"{written.name} at {path or 'the top'} lacks {sorted(missing)} ({committed} has them)"
    assert new["command"].startswith("python benchmarks/")
    return new


def test_run_smoke(tiny_shared: Path, tmp_path: Path):
    out = tmp_path / "run.json"
    stdout = run_script("run.py", "--presets", "quick", "--steps", "1,0", "--precision", "fp32", "--quick",
                        "--translate-sizes", "48x32", "--json", str(out), shared=tiny_shared)
    result = assert_keys_of("results/precision_floor.json", out,
                            ["machine", "steps", "precision", "peak_gflops/*", "by_precision/*/*", "ours/*"])
    assert set(result["translate"]["48x32"]) == {"seconds", "times", "extra_peak_mib", "peak_rss_mib", "gflop"}
    quick = result["by_precision"]["quick"]["fp32"]
    assert quick["timed_steps"] == 1 and quick["gflop"] > 0 and quick["floor_s"] > 0 and quick["r1_every"] == 16
    fp32_peak = result["peak_gflops"]["fp32"]["peak"]
    assert quick["floor_s"] == pytest.approx(quick["gflop_by_precision"]["fp32"] / fp32_peak)
    assert "quick" in stdout and "translate 48x32" in stdout


def test_step_profile_smoke(tiny_shared: Path, tmp_path: Path):
    out = tmp_path / "step_profile.json"
    stdout = run_script("step_profile.py", "--steps", "1,0", "--widths", "", "--precisions", "fp32",
                        "--evaluations", "1", "--json", str(out), shared=tiny_shared)
    result = assert_keys_of("results/step_profile.json", out,
                            ["machine", "rows/*", "rows/*/seconds", "rows/*/cadence"])
    row = result["rows"][0]
    assert (row["ngf"], row["ndf"], row["precision"], row["timed_steps"]) == (2, 4, "fp32", 1)
    assert row["step_with_evaluations_s"] == pytest.approx(row["seconds"]["total"] + row["evaluation_share_s"])
    assert "| 2x4 | fp32 |" in stdout


def test_quality_smoke_trains_scores_draws_and_tables(tiny_shared: Path, tmp_path: Path):
    out = tmp_path / "quality"
    recipe = "tiny=--preset quick " + " ".join(TINY_RUN)
    run_script("quality.py", "--recipes", "tiny", "--recipe-args", recipe, "--minutes", "0.1", "--seeds", "0",
               "--pairs", "etretat-monet", "--out", str(out), shared=tiny_shared)
    result = assert_keys_of("quality.json", out / "quality.json",
                            ["machine", "baselines/*/*", "runs/*", "runs/*/evaluations/*"])
    assert [(r["recipe"], r["pair"], r["seed"]) for r in result["runs"]] == [("tiny", "etretat-monet", 0)]
    assert {p.name for p in out.iterdir()} >= {"quality.json", "quality.png", "contact_sheet.jpg", "baselines"}
    table = run_script("quality.py", "--table", "--out", str(out))
    assert "| etretat-monet | **tiny** | 1 |" in table and "| etretat-monet | pitie | - | - |" in table


def test_ablation_smoke(tiny_shared: Path, tmp_path: Path):
    out = tmp_path / "ablation"
    stdout = run_script("ablation.py", "--variant", "tiny=" + " ".join(TINY_RUN), "--steps", "2", "--pairs",
                        "etretat-monet", "--out", str(out), shared=tiny_shared)
    result = assert_keys_of("results/precision_quick.json", out / "ablation.json", ["machine", "runs/*"])
    run = result["runs"][0]
    assert run["steps"] == 2 and run["sifid_ratio"] == pytest.approx(
        run["sifid"] / result["baselines"]["etretat-monet"]["photo"]["sifid"])
    assert "| tiny | `--ngf 2" in stdout


def test_minutes_load_smoke(tiny_shared: Path, tmp_path: Path):
    pair = tiny_shared / "data" / "single_image_monet_etretat"
    out = tmp_path / "minutes_load.json"
    stdout = run_script("minutes_load.py", "--minutes", "0.1", "--conditions", "quiet", "--source",
                        str(pair / "etretat-normandy-france.jpg"), "--target", str(pair / "monet.jpg"),
                        "--out", str(tmp_path / "runs"), "--json", str(out))
    result = assert_keys_of("results/minutes_load.json", out, ["machine", "runs/*"])
    run = result["runs"][0]
    assert run["budget_seconds"] == 6.0 and run["steps"] >= 1 and run["hog_span"] == []
    assert run["deviation_percent"] == pytest.approx(100 * (run["wall_seconds"] - 6.0) / 6.0, abs=1)
    assert re.search(r"^\| quiet \| - \| ", stdout, re.M)


def test_train_memory_smoke(tmp_path: Path):
    out = tmp_path / "train_memory.json"
    stdout = run_script("train_memory.py", "--size", "64x48", "--runs", "--steps 1 " + " ".join(TINY_RUN),
                        "--json", str(out))
    result = json.loads(out.read_text())
    assert set(result) == {"size", "machine", "cpus", "python", "date", "torch", "runs", "command"}
    run = result["runs"][0]
    assert run["exit_code"] == 0 and run["result_full_size"] is True and 0.05 < run["peak_rss_gib"] < 3
    assert "| `--steps 1 --ngf 2" in stdout


def test_translate_smoke(tmp_path: Path):
    out = tmp_path / "translate.json"
    stdout = run_script("translate.py", "--sizes", "64x48", "--reference", "48x32", "--engines", "torch",
                        "--repeats", "1", "--json", str(out))
    result = assert_keys_of("results/translate.json", out, ["machine", "results/*"])
    reference, tiled = result["results"]
    assert reference["whole_reference"] and reference["vs_whole"] == 1.0 and tiled["size"] == "64x48"
    assert tiled["gflops_per_second"] == pytest.approx(
        result["machine"]["gflop_per_megapixel"] * tiled["megapixels"] / tiled["seconds"])
    assert "| torch | 48x32 (reference) | 0.0 | whole | 1 |" in stdout


def test_tile_profile_smoke(tmp_path: Path):
    out = tmp_path / "tile_profile.json"
    run_script("tile_profile.py", "--sizes", "48x32,64x48", "--json", str(out))
    result = assert_keys_of("results/tile_profile.json", out, ["machine", "rows/*"])
    assert [r["size"] for r in result["rows"]] == ["48x32", "64x48"] and result["rows"][0]["vs_first"] == 1.0
    assert all(r["computed_over_image"] == 1.0 for r in result["rows"])  # small images: one whole pass each


def test_rim_profile_smoke(tmp_path: Path):
    """A 2-step residual run on a drawn skyline (green, dark land under a blue sky): step 0 (the photo itself,
    no change) and both checkpoints, each with a profile and D's wish at every offset."""
    y, x = torch.meshgrid(torch.arange(120), torch.arange(160), indexing="ij")
    land = (y > 50 + 8 * torch.sin(x / 15))[..., None]
    photo = torch.where(land, torch.tensor([40, 100, 30]), torch.tensor([120, 160, 230])).to(torch.uint8)
    Image.fromarray(photo.numpy()).save(tmp_path / "photo.png")
    Image.open(SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg").resize((96, 80)).save(
        tmp_path / "painting.png")
    train = [sys.executable, "-m", "sincut", "train", str(tmp_path / "photo.png"), str(tmp_path / "painting.png"),
             "--out", str(tmp_path / "run"), "--preset", "quick", "--steps", "2", "--checkpoint-every", "1",
             *TINY_RUN, "--device", "cpu"]
    done = subprocess.run(train, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "rim_profile.json"
    stdout = run_script("rim_profile.py", str(tmp_path / "run"), "--json", str(out))
    result = assert_keys_of("results/rim_profile.json", out, ["machine", "runs/*", "runs/*/steps/*",
                                                              "runs/*/steps/*/rim"])
    steps = result["runs"][0]["steps"]
    assert [s["step"] for s in steps] == [0, 1, 2] and steps[0]["rim"]["red_0_4"] == 0.0
    assert all(len(s["change"]) == len(s["d_wish_x1e3"]) == 33 for s in steps)
    assert "| run | 2 |" in stdout


def test_precision_translate_smoke_or_its_refusal(tiny_model: Path, tiny_pair, tmp_path: Path):
    out = tmp_path / "precision_translate.json"
    args = [sys.executable, str(BENCHMARKS / "precision_translate.py"), str(tiny_model), str(tiny_pair[0]),
            "--repeats", "1", "--json", str(out)]
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    from sincut.inference.device import cpu_has_bf16_kernels

    if not cpu_has_bf16_kernels():
        assert done.returncode == 1 and "no bf16 convolution kernels" in done.stderr
        return
    assert done.returncode == 0, done.stderr
    result = assert_keys_of("results/precision_translate.json", out, ["machine", "levels", "seconds"])
    assert result["size"] == [96, 54] and 0 <= result["levels"]["mean"] <= result["levels"]["max"] <= 255


@pytest.mark.skipif(not (SHARED / "official_golden" / "sincut.npz").is_file(),
                    reason="needs ../shared/data/official_golden (the paper's golden step)")
def test_bf16_numerics_smoke(tmp_path: Path):
    out = tmp_path / "bf16_numerics.json"
    stdout = run_script("bf16_numerics.py", "--modes", "sincut", "--trained-steps", "1", "--json", str(out))
    result = assert_keys_of("results/bf16_numerics.json", out, ["modes/*/*/*"])
    assert list(result["modes"]) == ["sincut"] and list(result["modes"]["sincut"]) == ["golden", "after 1 steps"]
    for row in result["modes"]["sincut"]["golden"].values():  # float32 is close to float64; bf16 is not exact
        assert row["grad_rel_error_fp32"] < 1e-3 and row["grad_cosine_bf16"] > 0.5
    assert "| sincut | golden |" in stdout


def test_ab_smoke(tiny_shared: Path):
    stdout = run_script("ab.py", "contiguous", "--preset", "quick", "--pairs", "1", "--crop", "32",
                        shared=tiny_shared)
    assert re.search(r"^pair 1: A \d+\.\d{3} s  B \d+\.\d{3} s$", stdout, re.M)
    assert re.search(r"B \(contiguous\) \d+\.\d{3} s per step \(medians of 1\); B/A speed-up \d+\.\d\dx$", stdout)


def test_gpu_sh_dry_run_on_a_cpu(tiny_shared: Path, tmp_path: Path):
    """The whole prepared GPU call on a CPU: part 1 (quick, eager and the captured step's body), part 2 skipped
    without the paper's checkout, part 3 one 6-second quick run whose folder comes back in a tar."""
    pair = tiny_shared / "data" / "single_image_monet_etretat"
    env = {"OUT": str(tmp_path), "GPU_DEVICE": "cpu", "GPU_PRESETS": "quick", "GPU_PRECISIONS": "fp32",
           "GPU_WARMUP_STEPS": "0", "GPU_TIMED_STEPS": "1", "GPU_OFFICIAL": str(tmp_path / "none"),
           "GPU_QUICK_MINUTES": "0.1", "GPU_QUICK_SLACK": "600", "GPU_QUICK_ARGS": " ".join(TINY_RUN),
           "GPU_QUICK_PAIRS": f"tiny:{pair / 'etretat-normandy-france.jpg'}:{pair / 'monet.jpg'}"}
    stdout = run_script("gpu.sh", shared=tiny_shared, env=env)
    result = assert_keys_of("results/gpu_steps.json", tmp_path / "gpu_steps.json", ["machine", "rows/*"])
    assert [(r["mode"], r["graphs"], r["timed_steps"]) for r in result["rows"]] == [("eager", False, 1),
                                                                                     ("captured", False, 1)]
    assert result["rows"][0]["peak_gpu_mib"] is None and result["rows"][0]["gflop"] > 0
    assert "| quick | fp32 | captured |" in stdout and "part 2 skipped" in stdout
    assert "part 3: quick runs eager" in stdout and "tiny quick 0.1 min:" in stdout
    with tarfile.open(tmp_path / "quick_tiny.tar") as tar:
        names = set(tar.getnames())
    assert {"tiny/quick-0.1min/result.png", "tiny/quick-0.1min/metrics.jsonl", "tiny/quick-0.1min.log"} <= names
    assert (tmp_path / "gpu.log").read_text().count("ms/step") >= 2


def test_paper_gpu_times_the_papers_train_py_through_bench_sh(tmp_path: Path):
    """A stand-in for the paper's checkout behind tools/official's bench.sh and bench_driver.py (unchanged): its
    train.py calls CUTModel.optimize_parameters in a loop; the driver stops it after the warm-up and the timed
    iterations and prints its BENCH lines, which become a row."""
    tools = SHARED.parent / "tools" / "official"
    if not (tools / "bench.sh").is_file():
        pytest.skip("needs ../shared/tools/official (bench.sh, bench_driver.py)")
    official = tmp_path / "official"
    (official / "cut" / "models").mkdir(parents=True)
    for name in ("bench.sh", "bench_driver.py"):
        (official / name).write_text((tools / name).read_text())
    (official / "cut" / "models" / "__init__.py").write_text("")
    (official / "cut" / "models" / "cut_model.py").write_text(textwrap.dedent("""
        import types

        class CUTModel:
            opt = types.SimpleNamespace(batch_size=16, crop_size=64, load_size=1024, netG="stylegan2",
                                        netD="stylegan2", num_threads=0)

            def data_dependent_initialize(self, data):
                pass

            def optimize_parameters(self):
                pass

            def get_current_losses(self):
                return {"G": 1.5}
    """))
    (official / "cut" / "train.py").write_text(textwrap.dedent("""
        import sys
        from models.cut_model import CUTModel

        assert "--gpu_ids" in sys.argv and "--model" in sys.argv, sys.argv
        model = CUTModel()
        for _ in range(50):
            model.optimize_parameters()
        raise SystemExit("the driver should have stopped the loop")
    """))
    out = tmp_path / "paper_gpu.json"
    stdout = run_script("paper_gpu.py", "--official", str(official), "--modes", "sincut", "--iters", "4",
                        "--warmup", "1", "--device", "cpu", "--json", str(out))
    row = json.loads(out.read_text())["rows"][0]
    assert row["mode"] == "sincut" and "error" not in row, row
    assert row["iters_timed"] == 4 and row["batch_size"] == 16 and row["last_losses"] == {"G": 1.5}
    assert row["sec_per_iter_wall_median"] >= 0 and "| sincut |" in stdout


def test_paper_probe_counts_and_profiles_the_wrapped_step(tmp_path: Path):
    """A stand-in for the paper's code: train.py calls CUTModel.optimize_parameters, a 4x6 @ 6x7 matmul, five
    times; after one warm-up step the probe counts one (2 x 4 x 6 x 7 FLOPs), profiles the next and stops."""
    clone = tmp_path / "clone"
    (clone / "models").mkdir(parents=True)
    (clone / "models" / "__init__.py").write_text("")
    (clone / "models" / "cut_model.py").write_text(textwrap.dedent("""
        import torch

        class CUTModel:
            def optimize_parameters(self):
                return torch.ones(4, 6) @ torch.ones(6, 7)
    """))
    (clone / "train.py").write_text(textwrap.dedent("""
        import sys
        from models.cut_model import CUTModel

        assert sys.argv[1:] == ["--name", "x"], sys.argv
        for _ in range(5):
            CUTModel().optimize_parameters()
        raise SystemExit("the probe should have stopped the loop")
    """))
    profile = tmp_path / "profile.txt"
    stdout = run_script("paper_probe.py", str(clone), "1", str(profile), "--", "--name", "x")
    found = json.loads(stdout.strip().splitlines()[-1])
    assert found["gflop"] == pytest.approx(2 * 4 * 6 * 7 / 1e9) and found["profile"] == str(profile)
    assert "aten::mm" in profile.read_text()
