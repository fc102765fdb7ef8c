"""The benchmark suite: ours and, with --official, the paper's code side by side in one run.

    python benchmarks/run.py [--quick] [--official DIR] [--profile DIR] [--device auto]
                             [--presets sincut,cut,fastcut] [--json PATH]

- seconds per training step for each preset at its defaults (sincut: batch 16 x 64 px patches;
  cut/fastcut: batch 1, 256 px crops), split into data, G forward, D step and G step, and the whole
  process's peak resident memory; each preset in a fresh interpreter;
- the FLOPs of one step (convolutions and matmuls, forward, backward and R1's double backward, counted
  with torch.utils.flop_counter), the machine's measured conv/matmul peak (fp32 and bf16), and from
  them the achieved GFLOP/s and the floor (step FLOPs / fp32 peak);
- translate time, peak memory and achieved GFLOP/s at 1024x768 and 4096x3072 through the real
  `sincut translate` path (tiling included), each size in a fresh process;
- patch-sampler throughput.

--official DIR (the home of ../shared/tools/official/setup.sh, e.g. ~/.cache/sincut-official) adds the
paper's unmodified train.py for each preset, timed by that folder's bench.sh (median optimizer step),
and puts both sides' step times, ratios and peak memory into one table. The whole script then runs in
DIR's venv, so both sides use the same torch (install ours there first: DIR/venv/bin/pip install -e .).
--profile DIR writes torch.profiler op tables of one step of each side (and counts the paper's FLOPs).
A ratio counts only from such a run: same machine, same torch, same time. --quick takes fewer steps.
Data: the paper's Etretat/Monet pair and ../shared/data/unpaired_small when present, else the bundled
samples (and folders cut from them).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SINCUT_SHARED", ROOT.parent / "shared"))  # ../shared, or elsewhere
BENCH_SH = SHARED / "tools" / "official" / "bench.sh"
PAPER_PROBE = HERE / "paper_probe.py"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))


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

from sincut.inference.device import pick_device  # noqa: E402

# (timed steps, warm-up steps) for each side
FULL_STEPS, QUICK_STEPS = (5, 2), (3, 1)


def image_pair() -> tuple[Path, Path]:
    pair = SHARED / "data" / "single_image_monet_etretat"
    if (pair / "monet.jpg").is_file():
        return pair / "etretat-normandy-france.jpg", pair / "monet.jpg"
    samples = ROOT / "samples"
    return samples / "photo_montStMichel.jpg", samples / "painting_vincent_van_gogh_village_street_in_auver.jpg"


def folder_pair(scratch: Path) -> tuple[Path, Path]:
    unpaired = SHARED / "data" / "unpaired_small"
    if (unpaired / "trainA").is_dir():
        return unpaired / "trainA", unpaired / "trainB"
    from PIL import Image
    for name, src in zip("AB", image_pair()):
        (scratch / name).mkdir(parents=True, exist_ok=True)
        img = Image.open(src).convert("RGB")
        for i in range(4):
            img.crop((i * 40, 0, i * 40 + 300, 300)).save(scratch / name / f"{i}.jpg")
    return scratch / "A", scratch / "B"


def inputs_for(preset: str, scratch: Path) -> tuple[Path, Path]:
    """Two images for the single-image presets (sincut, quick), two folders for cut and fastcut."""
    from sincut.config import DATASET_PRESETS

    return folder_pair(scratch) if preset in DATASET_PRESETS else image_pair()


def status_mib(field: str) -> float:
    """VmHWM/VmRSS of this process in MiB (Linux); VmHWM starts afresh at exec."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- the machine's peak -----------------------------------------------------------------------------------

def _best_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def peak_gflops(device: torch.device, quick: bool) -> dict[str, dict[str, float]]:
    """Best-of-N GFLOP/s of a large matmul and of a 3x3 convolution shaped like the nets' (channels_last),
    in fp32 and bf16: the rate a step could reach at best on this machine."""
    repeats = 3 if quick else 6
    out: dict[str, dict[str, float]] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        # CPUs without oneDNN bf16 kernels run bf16 convs in a slow reference loop: smaller shapes there
        slow = dtype == torch.bfloat16 and device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported()
        n = 8192 if device.type == "cuda" else (256 if slow else 1024)
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        mm = _best_seconds(lambda: (a @ b, sync(device)), repeats)
        # 3x3, 128 -> 128 channels on B x 64 x 64: a mid-sized layer of both generators
        batch = 1 if slow else 16
        x = torch.randn(batch, 128, 64, 64, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(128, 128, 3, 3, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        conv = _best_seconds(lambda: (torch.nn.functional.conv2d(x, w, padding=1), sync(device)), repeats)
        conv_flops = 2 * batch * 64 * 64 * 128 * 128 * 9
        out[name] = {"matmul": 2 * n ** 3 / mm / 1e9, "conv3x3": conv_flops / conv / 1e9}
        if device.type == "cpu":
            out[name]["onednn_kernels"] = dtype == torch.float32 or not slow
        out[name]["peak"] = max(out[name]["matmul"], out[name]["conv3x3"])
    return out


# --- our side: one preset in this (fresh) interpreter -----------------------------------------------------

def time_ours(preset: str, device: torch.device, steps: int, warmup: int, scratch: Path,
              profile_dir: Path | None) -> dict:
    """Median phase times of `steps` training steps after `warmup`, one step's FLOPs, peak RSS."""
    from flop_count import CountFlops
    from sincut.config import make_config
    from sincut.training.trainer import Trainer, make_data
    from sincut.training.schedule import with_concrete_steps

    config = make_config(preset)
    source, target = inputs_for(preset, scratch)
    data = make_data(config, source, target, device)
    config = with_concrete_steps(config, data)
    trainer = Trainer.build(config, data, device)
    phases: dict[str, list[float]] = {"data": [], "G forward": [], "D step": [], "G step": [], "total": []}
    for i in range(warmup + steps):
        sync(device)
        t0 = time.perf_counter()
        trainer.set_lr(i)
        src, tgt = trainer.sample(i)
        sync(device)
        t1 = time.perf_counter()
        fwd = trainer.forward(src, tgt)
        sync(device)
        t2 = time.perf_counter()
        trainer.discriminator_step(fwd, i)
        sync(device)
        t3 = time.perf_counter()
        trainer.generator_step(fwd)
        sync(device)
        t4 = time.perf_counter()
        if i >= warmup:
            for key, value in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                phases[key].append(value)
    result: dict = {k: statistics.median(v) for k, v in phases.items()}
    result["steps_s"] = [round(t, 4) for t in phases["total"]]
    result["peak_rss_mib"] = status_mib("VmHWM")
    if device.type == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    counter = CountFlops()
    with counter:  # step 0 again: R1 runs on it whatever --r1-every says
        trainer.step(0)
    result["gflop"] = counter.total / 1e9
    result["gflop_by_op"] = {op: n / 1e9 for op, n in counter.by_op.items()}
    if profile_dir is not None:
        result["profile"] = str(profile_step(lambda: trainer.step(1), device, profile_dir / f"ours_{preset}.txt"))
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


def run_ours(preset: str, device: str, steps: int, warmup: int, scratch: Path, profile_dir: Path | None) -> dict:
    """One preset in a fresh interpreter (its peak memory is its own), the same Python as this one."""
    cmd = [sys.executable, str(Path(__file__)), "--child", preset, "--device", device, "--child-steps",
           f"{steps},{warmup}", "--scratch", str(scratch)] + (["--profile", str(profile_dir)] if profile_dir else [])
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ours, {preset}: failed\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


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
    fresh interpreter, and the default generator's FLOPs on the whole image (tiles' overlap not counted):
    translate.py's measure and flops_per_megapixel."""
    from translate import flops_per_megapixel, measure, repeats_for  # benchmarks/translate.py

    r = measure(w, h, "torch", None, None, device, repeats_for(w, h, repeats))
    return {"seconds": r["seconds"], "times": r["times"], "extra_peak_mib": r["peak_rss_mib"] - r["rss_before_mib"],
            "peak_rss_mib": r["peak_rss_mib"], "gflop": flops_per_megapixel() * w * h / 1e6 / 1e9}


def sampler_throughput(device: torch.device, repeats: int) -> float:
    from sincut.data.images import load_image
    from sincut.data.patches import PatchSampler

    sampler = PatchSampler(load_image(image_pair()[0]).to(device), crop_size=64)
    rng = torch.Generator(device=device).manual_seed(0)
    times = []
    for _ in range(repeats + 2):
        sync(device)
        t = time.perf_counter()
        sampler.sample(16, rng)
        sync(device)
        times.append(time.perf_counter() - t)
    return 16 / statistics.median(times[2:])


# --- report -----------------------------------------------------------------------------------------------

def print_table(result: dict) -> None:
    m = result["machine"]
    peak = result["peak_gflops"]
    print(f"\n{m['device']}  torch {m['torch']}  {m['threads']} threads  {m['date']}{'  (quick)' if m['quick'] else ''}")
    print(f"measured peak GFLOP/s: fp32 matmul {peak['fp32']['matmul']:.0f}, conv3x3 {peak['fp32']['conv3x3']:.0f};"
          f"  bf16 matmul {peak['bf16']['matmul']:.0f}, conv3x3 {peak['bf16']['conv3x3']:.0f}")
    print(f"\n{'preset':<8}{'data':>7}{'G fwd':>7}{'D step':>7}{'G step':>7}{'step':>8}{'GFLOP':>8}{'GFLOP/s':>8}"
          f"{'floor':>7}{'floor/step':>11}{'peak MiB':>9}")
    for preset, t in result["ours"].items():
        floor = t["gflop"] / peak["fp32"]["peak"]
        print(f"{preset:<8}{t['data']:>7.3f}{t['G forward']:>7.2f}{t['D step']:>7.2f}{t['G step']:>7.2f}"
              f"{t['total']:>8.2f}{t['gflop']:>8.0f}{t['gflop'] / t['total']:>8.0f}{floor:>7.2f}"
              f"{floor / t['total']:>10.0%}{t['peak_rss_mib']:>9.0f}")
    if result.get("official"):
        print(f"\nside by side (seconds per step: ours = median whole step incl. data; paper = median optimizer step)")
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="3 timed steps after 1 warm-up (else 5 after 2)")
    parser.add_argument("--official", type=Path, metavar="DIR", help="also time the paper's code set up in DIR")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="write op-level profiles of one step per side")
    parser.add_argument("--steps", metavar="TIMED,WARMUP", help="override the step counts (e.g. 1,0 for a smoke test)")
    parser.add_argument("--presets", default="sincut,cut,fastcut")
    parser.add_argument("--translate-sizes", default="1024x768,4096x3072", help="comma-separated WxH; '' for none")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "latest.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-steps", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # one preset of ours, in its own interpreter
        steps, warmup = map(int, args.child_steps.split(","))
        r = time_ours(args.child, pick_device(args.device), steps, warmup, args.scratch, args.profile)
        print(json.dumps(r))
        return
    device = pick_device(args.device)
    steps, warmup = QUICK_STEPS if args.quick else FULL_STEPS
    if args.steps:
        steps, warmup = map(int, args.steps.split(","))
    presets = [p for p in args.presets.split(",") if p]
    machine = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "quick": args.quick,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_at_start": os.getloadavg()[0],
    }
    t_start = time.perf_counter()
    result: dict = {"machine": machine, "steps": {"timed": steps, "warmup": warmup},
                    "peak_gflops": peak_gflops(device, args.quick), "ours": {}, "official": {}, "translate": {}}
    profile_dir = args.profile.resolve() if args.profile else None
    with tempfile.TemporaryDirectory() as scratch:
        for preset in presets:  # the two sides of one preset back to back: the same machine state
            if args.official is not None:
                result["official"][preset] = run_official(args.official.expanduser().resolve(), preset, steps, warmup,
                                                          Path(scratch), profile_dir)
            result["ours"][preset] = run_ours(preset, args.device, steps, warmup, Path(scratch), profile_dir)
            print(f"{preset}: ours {result['ours'][preset]['total']:.2f} s/step"
                  + (f", paper's code {result['official'][preset]['sec_per_iter_median']:.2f} s/step"
                     if preset in result["official"] else ""), flush=True)
    result["sampler_patches_per_second"] = sampler_throughput(device, 5 if args.quick else 20)
    for size in [s for s in args.translate_sizes.split(",") if s]:
        w, h = map(int, size.lower().split("x"))
        result["translate"][f"{w}x{h}"] = translate_cost(args.device, h, w, 1 if args.quick else 3)
    if profile_dir:
        result["profiles"] = str(profile_dir)
    machine["load_average_at_end"] = os.getloadavg()[0]
    machine["wall_s"] = time.perf_counter() - t_start
    print_table(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(args.json)
    print(f"wrote {args.json} ({machine['wall_s']:.0f} s)")


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
