"""Where a training step's time goes, phase by phase, at fp32 and bf16 and at a few network widths.

    python benchmarks/step_profile.py [--preset quick] [--precisions fp32,bf16] [--widths 2x4,4x4,8x4,2x8,2x16]
                                      [--steps TIMED,WARMUP] [--evaluations 3] [--quick] [--device auto]
                                      [--json benchmarks/results/step_profile.json]

For each width (ngf x ndf; the preset's own first) and precision, one trainer in this process, built as
`sincut train` builds it (Trainer.build; the preset's recipe; single-image presets on the Etretat/Monet pair
when ../shared has it, else the bundled samples), times each phase of every step with perf_counter, in the
order Trainer.step runs them:

- sampler: the lr update and the patch sampler (trainer.sample);
- G forward: trainer.forward, G on source and target patches;
- D step: trainer.discriminator_step on the steps without R1;
- R1: the lazy penalty's share per step, (D step with R1 - D step without) / r1_every (shown as part of
  the D step where R1 runs on every step, as in the paper's recipe);
- G+F step: trainer.generator_step, the G and F losses, backward and Adam;
- EMA: the weight average's update (update_average, presets with --ema-halflife);
- evaluations: what the loop's evaluations cost per step at the preset's cadence. An evaluation is what
  the loop does at a preview: translate SOURCE at the evaluation size, write the preview, the monitor's
  figures (with SIFID where the FID Inception network is installed); plus a new best's best.pt and
  best.png (full size, through the tiled translator, when SOURCE is larger), counted at every
  evaluation: an upper bound (early evaluations are mostly new bests). A preset sized by --minutes
  (quick) evaluates once untrained, about once a minute, and at the end, over the steps the budget buys
  (schedule.steps_for_budget, as MinutesSizer sizes the run); others every --eval-every (else
  --preview-every) steps.

Each phase is the median over the timed steps, split by whether R1 ran; the whole step is ((K - 1) x the
median step without R1 + the median step with R1) / K for lazy R1 every K steps, so the timed steps cover
whole R1 periods (default 32 after 2 warm-up steps: two periods of the quick recipe's 16). GFLOP per step
counts convolutions and matmuls over one R1 period the same way (benchmarks/harness/flops.py). CPUs are
synchronous; on CUDA each phase ends with a synchronize. Everything runs in one process, one
configuration after the other, so figures drift together with the machine; compare within one run.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.harness.args import add_json_option, comma_list, parse_sizes, parse_steps, parser  # noqa: E402
from benchmarks.harness.machine import describe, record_end  # noqa: E402
from benchmarks.harness.pairs import inputs_for  # noqa: E402
from benchmarks.harness.report import machine_line, markdown_table, save_result  # noqa: E402
from benchmarks.harness.steps import (  # noqa: E402
    build_trainer, r1_period, step_gflop, time_steps, training_config, whole_r1_periods)
from sincut.config import TrainConfig, make_config  # noqa: E402
from sincut.data.images import fit_within, save_image, tensor_to_rgb  # noqa: E402
from sincut.errors import UserError  # noqa: E402
from sincut.evaluation.monitor import RunMonitor  # noqa: E402
from sincut.inference.device import pick_device, resolve_precision  # noqa: E402
from sincut.nets.wrappers import unwrap  # noqa: E402
from sincut.progress import SilentProgress  # noqa: E402
from sincut.run_folder import save_best_checkpoint, write_preview  # noqa: E402
from sincut.training.loop import EVAL_SOURCE_PIXELS, EVAL_TARGET_PIXELS  # noqa: E402
from sincut.training.schedule import steps_for_budget  # noqa: E402
from sincut.training.trainer import Trainer  # noqa: E402

FULL_STEPS, QUICK_STEPS = (32, 2), (16, 1)  # (timed, warm-up), before rounding to whole R1 periods


def time_evaluations(trainer: Trainer, repeats: int, run: Path) -> dict:
    """Seconds of one evaluation as the loop makes it (translate SOURCE at the evaluation size, the
    preview, the monitor's figures; median of `repeats`) and of a new best's files (best.pt, best.png)."""
    full_source, full_target = trainer.data.preview_images()
    device = next(unwrap(trainer.G).parameters()).device
    source = fit_within(full_source, EVAL_SOURCE_PIXELS).to(device)
    target = fit_within(full_target, EVAL_TARGET_PIXELS).to(device)
    full_rgb = tensor_to_rgb(full_source) if source.shape[-2:] != full_source.shape[-2:] else None
    monitor = RunMonitor(run, trainer.config, source, target, SilentProgress(), time.perf_counter())
    (run / "previews").mkdir(parents=True, exist_ok=True)
    each = []
    for step in range(1, repeats + 1):
        t0 = time.perf_counter()
        translated = trainer.translate(source)
        write_preview(run / "previews" / f"step_{step:07d}.png", source, translated, target)
        write_preview(run / "latest.png", source, translated, target)
        quality = monitor.evaluate(step, translated, trainer.state, candidate=False)
        each.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    figures = {k: v for k, v in quality.to_dict().items() if k != "pairs"}
    save_best_checkpoint(run, repeats, trainer.state(), figures)
    best = translated if full_rgb is None else Image.fromarray(trainer.translate_full(full_rgb), "RGB")
    save_image(best, run / "best.png")
    return {"evaluation_s": statistics.median(each), "evaluations_s": each, "new_best_s": time.perf_counter() - t0}


def evaluation_cadence(config: TrainConfig, budget_minutes: float | None, step_s: float, eval_s: float) -> dict:
    """How many evaluations a run makes over how many steps. --minutes M: the untrained one, one every
    total // round(M) steps, the final one, over the steps steps_for_budget fits (as MinutesSizer sizes
    the run); else one every --eval-every (or --preview-every) steps."""
    if budget_minutes:
        periodic = max(1, round(budget_minutes))
        total = steps_for_budget(0, budget_minutes * 60, step_s, eval_s, periodic)
        every = max(1, total // periodic)
        count = 1 + len(range(every, total, every)) + 1
        return {"evaluations": count, "steps": total, "per_step": count / total}
    every = config.eval_every or config.preview_every
    return {"evaluations": None, "steps": None, "per_step": 1 / every}


def profile(preset: str, precision: str, ngf: int, ndf: int, device: torch.device, steps: tuple[int, int] | None,
            quick: bool, evaluations: int, scratch: Path) -> dict:
    """One configuration's phases (seconds per step), evaluation cost and share, and GFLOP per step."""
    started = time.perf_counter()
    config = training_config(preset, precision, ngf=ngf, ndf=ndf)
    budget = make_config(preset).minutes
    timed, warmup = steps or (QUICK_STEPS if quick else FULL_STEPS)
    if steps is None:
        timed = whole_r1_periods(config, timed)
    trainer = build_trainer(config, *inputs_for(preset, scratch), device)
    phases = time_steps(trainer, timed, warmup, device).per_step()
    run = scratch / f"run_{preset}_{ngf}x{ndf}_{precision}"
    cost = time_evaluations(trainer, evaluations, run)
    cadence = evaluation_cadence(trainer.config, budget, phases["total"], cost["evaluation_s"])
    share = cadence["per_step"] * (cost["evaluation_s"] + cost["new_best_s"])
    return {"preset": preset, "precision": precision, "ngf": ngf, "ndf": ndf, "r1_every": r1_period(config),
            "timed_steps": timed, "warmup_steps": warmup, "seconds": phases, "evaluation_share_s": share,
            "step_with_evaluations_s": phases["total"] + share, **cost, "cadence": cadence,
            "budget_minutes": budget, **step_gflop(trainer), "wall_s": time.perf_counter() - started}


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def print_table(result: dict) -> None:
    """The markdown table docs/benchmarks.md shows, under the machine's line."""
    print(f"\n{machine_line(result['machine'])}")
    print(f"preset {result['preset']}; ms per step, medians over the timed steps. D step: without R1; R1: its "
          "share per step (in D where it runs every step); step: the whole step over an R1 period; evaluations: "
          "their share per step at the preset's cadence; eval each: one evaluation and a new best's files\n")
    head = ["ngf x ndf", "precision", "sampler", "G forward", "D step", "R1", "G+F step", "EMA", "step",
            "evaluations", "step + eval", "eval each (s)", "GFLOP", "steps in budget"]
    rows = []
    for r in result["rows"]:
        s = r["seconds"]
        d_step = s["D step without R1"] if s["D step without R1"] is not None else s["D step"]
        r1 = ms(s["R1"]) if s["R1"] is not None else ("in D" if r["r1_every"] == 1 else "not timed")
        steps = r["cadence"]["steps"]
        rows.append([f"{r['ngf']}x{r['ndf']}", r["precision"], ms(s["sampler"]), ms(s["G forward"]), ms(d_step), r1,
                     ms(s["G+F step"]), ms(s["EMA"]), ms(s["total"]), ms(r["evaluation_share_s"]),
                     ms(r["step_with_evaluations_s"]), f"{r['evaluation_s'] + r['new_best_s']:.2f}",
                     f"{r['gflop']:.1f}", f"{steps:,}" if steps else "-"])
    print(markdown_table(head, rows))
    for note in result["skipped"]:
        print(f"skipped: {note}")


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16, auto")
    ap.add_argument("--widths", default="2x4,4x4,8x4,2x8,2x16",
                    help="ngf x ndf pairs besides the preset's own (always first): by default the quick "
                         "recipe's neighbours; '' for the preset's own only")
    ap.add_argument("--steps", metavar="TIMED,WARMUP",
                    help="exact step counts, not rounded to whole R1 periods (e.g. 4,1 for a smoke test)")
    ap.add_argument("--quick", action="store_true",
                    help="16 timed steps after 1 warm-up; 1 evaluation, its first-call costs included")
    ap.add_argument("--evaluations", type=int, help="evaluations timed per configuration (default 3, --quick 1)")
    ap.add_argument("--device", default="auto")
    add_json_option(ap, "step_profile")
    args = ap.parse_args()

    device = pick_device(args.device)
    steps = parse_steps(args.steps)
    evaluations = max(1, args.evaluations or (1 if args.quick else 3))
    base = make_config(args.preset)
    widths = list(dict.fromkeys([(base.ngf, base.ndf), *parse_sizes(args.widths, "--widths")]))
    precisions = list(dict.fromkeys(resolve_precision(p, device) for p in comma_list(args.precisions)))
    started = time.perf_counter()
    result: dict = {"machine": describe(device), "preset": args.preset, "rows": [], "skipped": []}
    with tempfile.TemporaryDirectory() as scratch:
        for ngf, ndf in widths:
            for precision in precisions:
                try:
                    row = profile(args.preset, precision, ngf, ndf, device, steps, args.quick, evaluations,
                                  Path(scratch))
                except UserError as e:  # bf16 where train refuses it: say so, time the rest
                    result["skipped"].append(f"{ngf}x{ndf} {precision}: {e}")
                    continue
                result["rows"].append(row)
                print(f"{ngf}x{ndf} {precision}: {row['seconds']['total'] * 1000:.1f} ms/step", flush=True)
    record_end(result["machine"], started)
    print_table(result)
    save_result(args.json, result, note=f"{result['machine']['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
