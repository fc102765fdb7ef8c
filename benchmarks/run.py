"""The benchmark suite: ours and, with --official, the paper's code side by side in one run.

    python benchmarks/run.py [--quick] [--official DIR] [--profile DIR] [--device auto]
                             [--presets sincut,cut,fastcut] [--precision auto] [--precisions fp32,bf16]
                             [--json PATH]

- seconds per training step for each preset at its defaults (sincut: batch 16 x 64 px patches; quick:
  batch 8 x 64 px; cut/fastcut: batch 1, 256 px crops), split into data, G forward, D step, G step and the
  weight average's update, and the process's peak resident memory; each preset and precision in a fresh
  interpreter. Lazy R1 (quick: every 16 steps) is timed over whole R1 periods (at least two), the step
  being ((K - 1) x the median step without R1 + the median with R1) / K (harness/steps.py: StepTimes);
- ours at --precision (default auto: bf16 where the device has fast bf16 kernels, else fp32, as training
  resolves it), and at each of --precisions too, for a table of fp32 against bf16;
- the FLOPs of one step averaged the same way over an R1 period (convolutions and matmuls, forward,
  backward and R1's double backward, by the precision each kernel ran in), the machine's conv/matmul peak
  in fp32 and bf16 (both harness/flops.py), and from them the achieved GFLOP/s and the floor: the
  FLOPs at the peak of the precision they ran in (a bf16 step's float32 R1 pass at the fp32 peak);
- translate time, peak memory and achieved GFLOP/s at 1024x768 and 4096x3072 through the real
  `sincut translate` path (tiling included, fp32), each size in a fresh process; patch-sampler throughput.

--official DIR (the home of ../shared/tools/official/setup.sh, e.g. ~/.cache/sincut-official) adds the
paper's unmodified train.py (fp32) for sincut, cut and fastcut, timed by that folder's bench.sh (median
optimizer step), side by side with ours at --precision: step times, ratios, peak memory. The script then
runs in DIR's venv, so both sides use the same torch (first: DIR/venv/bin/pip install -e .). --profile DIR
writes torch.profiler op tables of one step of each side (and counts the paper's FLOPs). A ratio counts
only from such a run: same machine, same torch, same time. --quick takes fewer steps. Data: the paper's
Etretat/Monet pair and ../shared/data/unpaired_small when present, else the bundled samples.

JSON: "ours"[preset] is the run at --precision (the keys earlier runs had, plus "precision", "floor_s",
"fraction_of_floor"); "by_precision"[preset][precision] holds every precision's run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

from benchmarks.harness.paths import SHARED  # noqa: E402  (no torch yet: --official may re-run this script)

BENCH_SH = SHARED / "tools" / "official" / "bench.sh"
PAPER_PROBE = ROOT / "benchmarks" / "paper_probe.py"


def use_official_python(home: Path) -> None:
    """Re-run this script with DIR's venv Python, so ours and the paper's code share one torch."""
    python = home / "venv" / "bin" / "python"
    if not python.is_file() or not BENCH_SH.is_file():
        raise SystemExit(f"--official {home}: no venv/bin/python there (or no {BENCH_SH}); "
                         "build it with ../shared/tools/official/setup.sh")
    if Path(sys.prefix).resolve() == (home / "venv").resolve():
        return
    check = subprocess.run([str(python), "-c", "import kornia, click, rich"], capture_output=True, text=True)
    if check.returncode != 0:
        raise SystemExit(f"--official {home}: sincut is not installed in its venv; run "
                         f"{python.parent / 'pip'} install -e {ROOT}")
    os.execv(str(python), [str(python), *sys.argv])


def official_home_from_argv(argv: list[str]) -> Path | None:
    """--official DIR (or --official=DIR) from the command line, read before torch is imported."""
    for i, arg in enumerate(argv):
        if arg == "--official" and i + 1 < len(argv):
            return Path(argv[i + 1]).expanduser().resolve()
        if arg.startswith("--official="):
            return Path(arg.split("=", 1)[1]).expanduser().resolve()
    return None


if __name__ == "__main__" and official_home_from_argv(sys.argv) is not None:
    use_official_python(official_home_from_argv(sys.argv))

import torch  # noqa: E402

from benchmarks.harness.args import add_json_option, comma_list, parse_sizes, parse_steps, parser  # noqa: E402
from benchmarks.harness.flops import add_floors, peak_gflops  # noqa: E402
from benchmarks.harness.machine import describe, record_end  # noqa: E402
from benchmarks.harness.pairs import image_pair, inputs_for  # noqa: E402
from benchmarks.harness.report import machine_line, markdown_table, save_result  # noqa: E402
from benchmarks.harness.steps import (  # noqa: E402
    build_trainer, step_gflop, time_steps, training_config, whole_r1_periods)
from benchmarks.harness.timing import json_from_child, memory_mib, sync, time_calls  # noqa: E402
from benchmarks.harness.translation import flops_per_megapixel, measure, repeats_for  # noqa: E402
from sincut.config import make_config  # noqa: E402
from sincut.errors import UserError  # noqa: E402
from sincut.inference.device import pick_device, resolve_precision  # noqa: E402
from sincut.training.trainer import check_device_support  # noqa: E402

# (timed steps, warm-up steps) for each side; ours with lazy R1 rounded up to whole R1 periods
FULL_STEPS, QUICK_STEPS = (5, 2), (3, 1)
PAPER_MODES = ("sincut", "cut", "fastcut")  # the recipes the paper's code has (quick is ours alone)


# --- our side: one preset in this (fresh) interpreter -----------------------------------------------------

def time_ours(preset: str, precision: str, device: torch.device, steps: int, warmup: int, scratch: Path,
              profile_dir: Path | None) -> dict:
    """Phase times per step (medians, R1 in proportion: harness.steps.StepTimes) of `steps` training steps
    after `warmup` at `precision`, one step's FLOPs (averaged over an R1 period), peak RSS."""
    config = training_config(preset, precision)
    trainer = build_trainer(config, *inputs_for(preset, scratch), device)
    times = time_steps(trainer, steps, warmup, device)
    per_step = times.per_step()
    result: dict = {"precision": precision, "data": per_step["sampler"], "G forward": per_step["G forward"],
                    "D step": per_step["D step"], "G step": per_step["G+F step"], "EMA": per_step["EMA"],
                    "total": per_step["total"], "R1": per_step["R1"],
                    "D step without R1": per_step["D step without R1"], "r1_every": times.r1_every,
                    "r1_covered": per_step["r1_covered"], "timed_steps": steps}
    result["steps_s"] = [round(t, 4) for t in times.phases["total"]]
    result["peak_rss_mib"] = memory_mib("VmHWM")
    if device.type == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    result.update(step_gflop(trainer))
    if profile_dir is not None:
        path = profile_dir / f"ours_{preset}_{precision}.txt"
        result["profile"] = str(profile_step(lambda: trainer.step(1), device, path))
    return result


def profile_step(step, device: torch.device, path: Path) -> Path:
    """torch.profiler op table (self time, sorted) of one call of `step`, written to `path`."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        sync(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(prof.key_averages().table(sort_by=sort, row_limit=40, max_name_column_width=48))
    return path


def run_ours(preset: str, precision: str, device: str, steps: int, warmup: int, scratch: Path,
             profile_dir: Path | None) -> dict:
    """One preset at one precision in a fresh interpreter (its peak memory is its own), this Python."""
    cmd = [sys.executable, str(Path(__file__)), "--child", preset, "--precision", precision, "--device", device,
           "--child-steps", f"{steps},{warmup}", "--scratch", str(scratch)]
    cmd += ["--profile", str(profile_dir)] if profile_dir else []
    return json_from_child(cmd, f"ours, {preset} at {precision}")


def timed_steps(preset: str, steps: int, exact: bool) -> int:
    """`steps`, or for a preset with lazy R1 whole R1 periods (at least two) unless --steps asked exactly."""
    return steps if exact else whole_r1_periods(training_config(preset, "fp32"), steps)


def precisions_to_time(reference: str, extra: str, device: torch.device) -> list[str]:
    """--precision first (the side-by-side compares it), then --precisions; each must be one training
    accepts on this device (bf16 needs fast bf16 kernels on a CPU)."""
    wanted = list(dict.fromkeys([reference, *(resolve_precision(p, device) for p in extra.split(",") if p)]))
    for precision in wanted:
        try:
            check_device_support(make_config("sincut", precision=precision), device)
        except UserError as e:
            raise SystemExit(str(e)) from None
    return wanted


# --- the paper's side ------------------------------------------------------------------------------------

def run_official(home: Path, preset: str, steps: int, warmup: int, scratch: Path, profile_dir: Path | None) -> dict:
    """The paper's unmodified train.py, timed by bench.sh (median optimizer step), on the same inputs."""
    source, target = inputs_for(preset, scratch)
    out = scratch / f"official_{preset}"
    env = {**os.environ, "OFFICIAL_HOME": str(home)}
    cmd = ["bash", str(BENCH_SH), preset, str(steps), str(source), str(target), "--warmup", str(warmup),
           "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"paper's code, {preset}: bench.sh failed\n{done.stderr[-3000:]}")
    result: dict = {}
    for line in done.stdout.splitlines():
        match = re.match(r"BENCH (\w+)=(.*)$", line)
        if match and match.group(1) not in ("user_time_s",):
            try:
                result[match.group(1)] = json.loads(match.group(2))
            except ValueError:
                result[match.group(1)] = match.group(2)
    command = next(line for line in done.stdout.splitlines() if line.startswith("BENCH_CMD "))
    result["train_args"] = [a.replace("$OUT", str(out)) for a in shlex.split(command)[2:]]
    if profile_dir is not None:
        probe = subprocess.run([str(home / "venv" / "bin" / "python"), str(PAPER_PROBE), str(home / "cut"),
                                str(warmup), str(profile_dir / f"paper_{preset}.txt"), "--", *result["train_args"]],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            raise SystemExit(f"paper's code, {preset}: profiling failed\n{probe.stderr[-3000:]}")
        result.update(json.loads(probe.stdout.strip().splitlines()[-1]))
    return result


# --- translate --------------------------------------------------------------------------------------------

def translate_cost(device: str, h: int, w: int, repeats: int) -> dict[str, float]:
    """`sincut translate`'s Translator (tiles from the default memory budget; no decode or encode) in a
    fresh interpreter, and the default generator's FLOPs on the whole image (tiles' overlap not counted)."""
    r = measure(w, h, "torch", None, None, device, repeats_for(w, h, repeats))
    return {"seconds": r["seconds"], "times": r["times"], "extra_peak_mib": r["peak_rss_mib"] - r["rss_before_mib"],
            "peak_rss_mib": r["peak_rss_mib"], "gflop": flops_per_megapixel() * w * h / 1e6 / 1e9}


def sampler_throughput(device: torch.device, repeats: int) -> float:
    """Patches per second of the patch sampler at batch 16 x 64 px (median after two warm-up batches)."""
    from sincut.data.images import load_image
    from sincut.data.patches import PatchSampler

    sampler = PatchSampler(load_image(image_pair()[0]).to(device), crop_size=64)
    rng = torch.Generator(device=device).manual_seed(0)
    return 16 / time_calls(lambda _: sampler.sample(16, rng), repeats, warmup=2, device=device).median


# --- report -----------------------------------------------------------------------------------------------

def print_table(result: dict) -> None:
    """Phases and floors of every run, fp32 against bf16 as the docs' markdown, the side by side, translate."""
    m = result["machine"]
    peak = result["peak_gflops"]
    print(f"\n{machine_line(m)}{'  (quick)' if m['quick'] else ''}")
    print(f"measured peak GFLOP/s: fp32 matmul {peak['fp32']['matmul']:.0f}, conv3x3 {peak['fp32']['conv3x3']:.0f};"
          f"  bf16 matmul {peak['bf16']['matmul']:.0f}, conv3x3 {peak['bf16']['conv3x3']:.0f}")
    print(f"\n{'preset':<8}{'prec':>5}{'data':>7}{'G fwd':>7}{'D step':>7}{'G step':>7}{'EMA':>6}{'step':>8}"
          f"{'GFLOP':>8}{'GFLOP/s':>8}{'floor':>7}{'of floor':>9}{'peak MiB':>9}")
    for preset, runs in result["by_precision"].items():
        for precision, t in runs.items():
            print(f"{preset:<8}{precision:>5}{t['data']:>7.3f}{t['G forward']:>7.2f}{t['D step']:>7.2f}"
                  f"{t['G step']:>7.2f}{t['EMA']:>6.3f}{t['total']:>8.2f}{t['gflop']:>8.0f}"
                  f"{t['gflop'] / t['total']:>8.0f}{t['floor_s']:>7.2f}{t['fraction_of_floor']:>9.0%}"
                  f"{t['peak_rss_mib']:>9.0f}" + ("" if t["r1_covered"] else "  (no R1 step timed)"))
    precisions = result["precision"]["timed"]
    if len(precisions) > 1:
        first = precisions[0] if "fp32" not in precisions else "fp32"
        others = [p for p in precisions if p != first]
        head = ["preset", *(f"{p} s/step" for p in [first, *others]), *(f"speed-up {p}" for p in others),
                *(f"of floor {p}" for p in [first, *others])]
        rows = [[preset, *(f"{runs[p]['total']:.3f}" for p in [first, *others]),
                 *(f"{runs[first]['total'] / runs[p]['total']:.2f}x" for p in others),
                 *(f"{runs[p]['fraction_of_floor']:.0%}" for p in [first, *others])]
                for preset, runs in result["by_precision"].items()]
        print("\n" + markdown_table(head, rows))
    if result.get("official"):
        reference = result["precision"]["reference"]
        print(f"\nside by side (seconds per step: ours = median whole step incl. data at {reference}; "
              f"paper = median optimizer step, fp32)")
        print(f"{'preset':<8}{'paper':>8}{'ours':>8}{'ratio':>7}{'paper MiB':>10}{'ours MiB':>9}"
              f"{'paper GFLOP':>12}{'ours GFLOP':>11}")
        for preset, o in result["official"].items():
            ours = result["ours"][preset]
            ratio = o["sec_per_iter_median"] / ours["total"]
            paper_flop = f"{o['gflop']:>12.0f}" if "gflop" in o else f"{'-':>12}"
            print(f"{preset:<8}{o['sec_per_iter_median']:>8.2f}{ours['total']:>8.2f}{ratio:>6.2f}x"
                  f"{o['peak_rss_main_mb']:>10.0f}{ours['peak_rss_mib']:>9.0f}{paper_flop}{ours['gflop']:>11.0f}")
    for size, t in result["translate"].items():
        floor = t["gflop"] / peak["fp32"]["peak"]
        print(f"translate {size}: {t['seconds']:.2f} s per image, {t['gflop']:.0f} GFLOP, "
              f"{t['gflop'] / t['seconds']:.0f} GFLOP/s, floor {floor:.2f} s ({floor / t['seconds']:.0%}), "
              f"peak RSS {t['peak_rss_mib']:.0f} MiB")
    if "sampler_patches_per_second" in result:
        print(f"patch sampler: {result['sampler_patches_per_second']:.0f} patches/s (batch 16 x 64 px)")
    if result.get("profiles"):
        print(f"profiles: {result['profiles']}")


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="3 timed steps after 1 warm-up (else 5 after 2)")
    ap.add_argument("--official", type=Path, metavar="DIR", help="also time the paper's code set up in DIR")
    ap.add_argument("--profile", type=Path, metavar="DIR", help="write op-level profiles of one step per side")
    ap.add_argument("--steps", metavar="TIMED,WARMUP",
                    help="exact step counts, not rounded to whole R1 periods (e.g. 1,0 for a smoke test)")
    ap.add_argument("--presets", default="sincut,cut,fastcut", help="comma-separated: sincut, quick, cut, fastcut")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                    help="ours at this precision (auto: bf16 where the device has fast bf16 kernels, else "
                         "fp32); the side by side and 'ours' in the JSON use it")
    ap.add_argument("--precisions", default="", metavar="LIST",
                    help="also time each preset at these (e.g. fp32,bf16), for a table of one against the other")
    ap.add_argument("--translate-sizes", default="1024x768,4096x3072", help="comma-separated WxH; '' for none")
    add_json_option(ap, "latest")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-steps", help=argparse.SUPPRESS)
    ap.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    device = pick_device(args.device)
    if args.child:  # one preset of ours at one (resolved) precision, in its own interpreter
        steps, warmup = parse_steps(args.child_steps, "--child-steps")
        print(json.dumps(time_ours(args.child, args.precision, device, steps, warmup, args.scratch, args.profile)))
        return
    exact = parse_steps(args.steps)
    steps, warmup = exact or (QUICK_STEPS if args.quick else FULL_STEPS)
    presets = comma_list(args.presets)
    sizes = parse_sizes(args.translate_sizes, "--translate-sizes")
    reference = resolve_precision(args.precision, device)
    precisions = precisions_to_time(reference, args.precisions, device)
    machine = {**describe(device), "quick": args.quick}
    started = time.perf_counter()
    result: dict = {"machine": machine, "steps": {"timed": steps, "warmup": warmup},
                    "precision": {"requested": args.precision, "reference": reference, "timed": precisions},
                    "peak_gflops": peak_gflops(device, args.quick), "ours": {}, "by_precision": {}, "official": {},
                    "translate": {}}
    profile_dir = args.profile.resolve() if args.profile else None
    result["profiles"] = str(profile_dir) if profile_dir else None
    with tempfile.TemporaryDirectory() as scratch:
        for preset in presets:  # the two sides of one preset back to back: the same machine state
            if args.official is not None and preset in PAPER_MODES:
                result["official"][preset] = run_official(args.official.expanduser().resolve(), preset, steps, warmup,
                                                          Path(scratch), profile_dir)
            ours_steps = timed_steps(preset, steps, exact=exact is not None)
            runs = {p: run_ours(preset, p, args.device, ours_steps, warmup, Path(scratch), profile_dir)
                    for p in precisions}
            add_floors(runs, result["peak_gflops"])
            result["by_precision"][preset] = runs
            result["ours"][preset] = runs[reference]
            print(f"{preset}: ours " + ", ".join(f"{r['total']:.3f} s/step at {p}" for p, r in runs.items())
                  + (f"; paper's code {result['official'][preset]['sec_per_iter_median']:.2f} s/step"
                     if preset in result["official"] else ""), flush=True)
    result["sampler_patches_per_second"] = sampler_throughput(device, 5 if args.quick else 20)
    for w, h in sizes:
        result["translate"][f"{w}x{h}"] = translate_cost(args.device, h, w, 1 if args.quick else 3)
    record_end(machine, started)
    print_table(result)
    save_result(args.json, result, note=f"{machine['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
