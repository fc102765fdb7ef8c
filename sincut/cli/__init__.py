"""The `sincut` command line: parses and validates options, then calls the library.

No training or image logic lives here. Every `TrainConfig` field is a `sincut train` option,
generated from the dataclass (options.py) so help texts and defaults cannot drift from the recipe.
The module is longer than 400 lines because it holds all nine commands with their options and help
texts side by side (each command a thin function that hands over to the library), so the whole
command-line surface reads in one place; the option machinery they share is in options.py.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..config import PRESETS, TrainConfig
from ..errors import UserError
from ..inference.tiles import MIN_TILE
from .options import (ListedOption, SincutGroup, StyleListCommand, build_config, choose_preset, config_options,
                      device_option, large_images_option, parse_memory_option, parse_shard_option)

DEMO_CPU_MINUTES = 8.0  # the quick recipe; start-up and the final outputs fit in 10 minutes on 2 cores
DEMO_GPU_MINUTES = 5.0  # the paper's recipe, its schedule sized to the budget
SAMPLE_SOURCE = "photo_montStMichel.jpg"
SAMPLE_TARGET = "painting_vincent_van_gogh_village_street_in_auver.jpg"


@click.group(cls=SincutGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="sincut")
def main() -> None:
    """Unpaired image-to-image translation by patchwise contrastive learning (CUT / SinCUT).

    \b
    Quick start:
      sincut demo                                      # train and translate the bundled samples
      sincut train PHOTO.jpg PAINTING.jpg --out runs/x # SOURCE keeps its content, TARGET gives the look
                                                       # (CPU: the 8-minute quick recipe; GPU: the paper's)
      sincut translate runs/x PHOTOS/ --out out/       # full-resolution results, any size, whole folders
      sincut batch PHOTOS/ --style A.jpg B.jpg --out b # one model per (photo, painting) pair
      sincut export runs/x --out generator.pt          # TorchScript generator, needs only torch
      sincut report runs/x                             # runs/x/report.html and report.png
    """


def _run_training(config: TrainConfig | None, source: Path | None, target: Path | None, out: Path,
                  device_name: str, resume_overrides: dict[str, Any] | None = None,
                  announce: str | None = None) -> None:
    """Start (config given) or resume (config None) a run, with the rich display and a summary."""
    from rich.console import Console

    from ..progress import RichProgress, summary_table
    from ..run_folder import REPORT_HTML, best_checkpoint, write_faults_say_how_to_resume
    from ..training.loop import resume, train
    from ..inference.device import pick_device

    device = pick_device(device_name)
    console = Console(stderr=True)
    progress = RichProgress(console)
    with write_faults_say_how_to_resume(out):
        if config is not None:
            result = train(config, source, target, out, device, progress, announce)
        else:
            result = resume(out, device, progress, resume_overrides)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    minutes, seconds = divmod(result.seconds, 60)
    console.print(summary_table([
        ("translated source", str(result.result_image)),
        ("preview", str(result.preview_image)),
        ("report", str(out / REPORT_HTML)),
        ("checkpoint", str(result.checkpoint)),
        ("best checkpoint", str(best) if (best := best_checkpoint(out)) is not None
         else "none yet (no evaluation met --select-min-ssim); translate uses the latest"),
        ("steps this session", f"{result.steps:,}"),
        ("time", f"{int(minutes)} min {seconds:.0f} s"),
        ("translate more", f"sincut translate {out} IMAGE... --out DIR"),
    ], title="Done"))


@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="New run directory: config, log, previews, checkpoints and result.png go there.",
              cls=ListedOption, brief="New run directory; all its outputs go there.")
@device_option
@large_images_option
@config_options
def train(source: Path, target: Path, out: Path, device: str, preset: str | None, **overrides: Any) -> None:
    """Train a model that repaints SOURCE (content kept) in the look of TARGET (style learned).

    Two image files train the quick recipe on a CPU (8 minutes; --minutes N for longer) and the paper's
    single-image recipe on a GPU (100,000 steps; --preset sincut on a CPU takes days). Two folders of
    unpaired images train the dataset recipe (cut, or --preset fastcut), recursively, in sorted order.
    Images smaller than the patch size are upscaled, with a warning. Ctrl-C saves a checkpoint;
    `sincut resume RUN` continues. Several GPUs: torchrun --nproc_per_node N -m sincut train A/ B/ --out RUN.
    """
    from ..inference.device import pick_device

    chosen = choose_preset(source, target, preset, pick_device(device).type)
    if overrides.get("steps") is not None and overrides.get("epochs") is not None:
        raise UserError("--steps and --epochs both set the run's length; pass one of them")
    config = build_config(chosen, overrides)
    announce = None
    if preset is None and chosen == "quick":
        announce = ("Two images on a CPU: the quick recipe (the paper's 100,000-step recipe takes days here; "
                    "--preset sincut chooses it).")
    _run_training(config, source, target, out, device, announce=announce)


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@device_option
@large_images_option
@config_options(resuming=True)
@click.option("--restart-lr", is_flag=True,
              help="With a new --steps: follow the new schedule even where its lr is higher than the run's now "
                   "(default: the lr never rises; it holds until the new schedule falls below it).",
              cls=ListedOption, brief="Let a new --steps schedule raise the lr.")
def resume(run: Path, device: str, preset: str | None, restart_lr: bool, **overrides: Any) -> None:
    """Continue RUN from its newest checkpoint, with its saved recipe.

    --steps may extend the run (the lr schedule is recomputed for the new total, but the lr never jumps
    back up unless --restart-lr); the bookkeeping options and how the run executes (--precision,
    --compile: a CPU run may go on on a GPU) may change; the recipe's other options are refused. An option
    left out keeps the run's value. A run killed before its first checkpoint restarts from step 0; a
    damaged newest checkpoint is renamed *.damaged and the one before it is used. On the CPU a resumed
    run ends with the same weights, bit for bit, as one that never stopped.
    """
    _run_training(None, None, None, run, device, {**overrides, "preset": preset, "restart_lr": restart_lr})


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Output folder; folders given as INPUT keep their tree below it.")
@click.option("--suffix", default="", help="Appended to each output name, before the extension.")
@click.option("--format", "fmt", type=click.Choice(["png", "jpg", "webp"]), default="png", show_default=True,
              help="Output encoding. PNG and WebP keep an input's alpha channel; JPEG drops it.")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True,
              help="JPEG / WebP quality.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (default: skip them, so a rerun resumes).")
@click.option("--max-memory", default=None, callback=parse_memory_option, metavar="SIZE",
              help="Memory for the generator's forward passes, like 2GiB or 1500MiB (a plain number is MiB). "
                   "Images whose pass fits go whole; larger ones in the largest tiles that fit, several per pass "
                   "when they fit. Default: half the available memory, at most 1.5 GiB on a CPU (a 24 MP photo "
                   "then stays under 3 GiB in all); half the free GPU memory on CUDA.")
@click.option("--tile", type=click.IntRange(MIN_TILE), default=None, metavar="PX",
              help="Override the tile --max-memory chooses: images of up to PX x PX pixels go in one pass, larger "
                   "ones in tiles of at most PX x PX.")
@click.option("--batch-size", type=click.IntRange(1), default=1, show_default=True,
              help="Consecutive images of equal size (each small enough to go whole) per forward pass.")
@click.option("--shard", default=None, callback=parse_shard_option, metavar="K/N",
              help="Translate only the K-th of N shares of the sorted inputs (N machines split one folder).")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Seed of the generator's per-pixel noise; the same seed repeats a result exactly.")
@click.option("--noise/--no-noise", default=True, show_default=True,
              help="--no-noise leaves out the per-pixel noise, as `sincut export` models do.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="auto = float32 (bf16 measured no faster for translation: docs/performance.md); bf16 on "
                   "GPUs or CPUs with bf16 kernels (AMX or AVX512-BF16) stays within a few 8-bit levels of it; "
                   "fp16 on GPUs only.")
@click.option("--half", is_flag=True, hidden=True,
              help="Older spelling: bf16 on a CPU, fp16 on a GPU.")
@click.option("--checkpoint", type=click.Choice(["auto", "best", "latest"]), default="auto", show_default=True,
              help="Which checkpoint of a run directory: auto = best.pt when the run has one, else the latest.")
@click.option("--load-size", type=click.IntRange(8), default=None, metavar="N",
              help="Resize each input to N x N (bicubic) before translating, as the paper's test does for "
                   "cut/fastcut (N = 256, its crop size); outputs are then N x N. Default: native size.")
@click.option("--engine", type=click.Choice(["torch", "onnxruntime"]), default="torch", show_default=True,
              help="onnxruntime: run the exported noise-free generator with onnxruntime on the CPU (needs "
                   "`pip install onnx onnxruntime` and --no-noise; timings in docs/benchmarks.md).")
@click.option("--border", type=click.IntRange(0, 256), default=None, metavar="PX",
              help="Mirror PX pixels of each image's edge around it before translating, then crop them off, so "
                   "the generator's zero padding draws no line along the edges. Default: the model's own "
                   "(the quick recipe's 32; 0 for the paper's recipe and the paper's checkpoints).")
@device_option
@large_images_option
def translate(model: Path, inputs: tuple[str, ...], out: Path, suffix: str, fmt: str, quality: int,
              overwrite: bool, max_memory: int | None, tile: int | None, batch_size: int, shard: tuple[int, int],
              seed: int, noise: bool, precision: str, half: bool, checkpoint: str, load_size: int | None, engine: str,
              border: int | None, device: str) -> None:
    """Translate INPUT images with MODEL into --out.

    MODEL is a run directory, a checkpoint file, or a checkpoint of the paper's code: its
    checkpoints/NAME folder (latest_net_G.pth, train_opt.txt) or a bare *_net_G.pth.
    INPUT is image files, folders (walked recursively; the tree is mirrored) or quoted glob patterns
    like "photos/**/*.jpg". Each output has its input's name and size. Existing outputs are skipped, a
    bad file is reported and the rest go on; the exit code is 1 if any image failed. A full disk or a
    read-only --out stops at the first image it fails; run the same command again once it is fixed.
    """
    from rich.console import Console

    from ..progress import RichTranslateProgress, translate_summary_table
    from ..inference.files import TranslateOptions, translate_files
    from ..inference.device import pick_device

    dev = pick_device(device)
    if half:
        precision = "bf16" if dev.type == "cpu" else "fp16"
    options = TranslateOptions(suffix=suffix, format=fmt, quality=quality, overwrite=overwrite, tile=tile,
                               max_memory=max_memory,
                               batch_size=batch_size, seed=seed, noise=noise, precision=precision, shard=shard,
                               checkpoint=checkpoint, load_size=load_size, border=border, engine=engine)
    console = Console(stderr=True)
    summary = translate_files(model, list(inputs), out, dev, options, RichTranslateProgress(console))
    console.print(translate_summary_table(len(summary.translated), len(summary.skipped), len(summary.failed),
                                          summary.seconds, summary.images_per_second))
    if summary.failed:
        click.get_current_context().exit(1)


@main.command(cls=StyleListCommand)
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option("--style", "targets", multiple=True, required=True, metavar="TARGET...",
              help="Style images or folders (several may follow one --style); every SOURCE is trained against each.")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Output folder: runs/<source>__<target>/, images/<source>__<target>.png, contact_sheet.png.")
@device_option
@large_images_option
@config_options
def batch(sources: tuple[str, ...], targets: tuple[str, ...], out: Path, device: str, preset: str | None,
          **overrides: Any) -> None:
    """Train one model per (SOURCE, TARGET) pair and translate each SOURCE; folders allowed on both sides.

    \b
    Without --preset: quick on a CPU (8 minutes a pair), the paper's recipe on a GPU. Finished pairs
    (their image exists) are skipped when run again, so an interrupted batch resumes. A failed pair is
    reported and the rest go on; the exit code is 1 if any pair failed. A full disk or a read-only --out
    stops the batch at once. Every `sincut train` option applies to each pair, e.g.
      sincut batch photos/ --style monet.jpg vangogh.jpg --out batch/ --steps 2000
    """
    from rich.console import Console

    from ..batch import run_batch
    from ..progress import RichBatchProgress, batch_summary_table
    from ..inference.device import pick_device, resolve_precision

    dev = pick_device(device)
    config = build_config(preset or ("quick" if dev.type == "cpu" else "sincut"), overrides)
    console = Console(stderr=True)
    length = f"{config.minutes:g} minutes" if config.steps is None else f"{config.steps:,} steps"
    console.print(f"[bold]sincut batch[/]: preset {config.preset}, {length} per pair, batch {config.batch_size} x "
                  f"{config.crop_size}px, on {dev} in {resolve_precision(config.precision, dev, config.preset)}. Output: {out}",
                  highlight=False)
    summary = run_batch(config, list(sources), list(targets), out, dev, RichBatchProgress(console))
    console.print(batch_summary_table(len(summary.trained), len(summary.skipped), len(summary.failed),
                                      summary.seconds, str(summary.contact_sheet)))
    if summary.failed:
        click.get_current_context().exit(1)


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="File to write, e.g. generator.pt (TorchScript) or generator.onnx.")
@click.option("--format", "fmt", type=click.Choice(["torchscript", "onnx"]), default="torchscript",
              show_default=True, help="onnx needs the onnx package; both take any H and W.")
def export(model: Path, out: Path, fmt: str) -> None:
    """Write MODEL's generator as a standalone model that needs only torch to run.

    \b
    It maps a float32 [N, 3, H, W] tensor in [-1, 1] to the translation (same shape, unclamped),
    without the per-pixel noise, so it is deterministic (= sincut translate --no-noise):
      G = torch.jit.load("generator.pt"); y = G(x).clamp(-1, 1)
    """
    from ..inference.export import export_onnx, export_torchscript

    if out.is_dir():
        raise UserError(f"{out}: is a folder; pass a file name like {out / 'generator.pt'}")
    path = export_onnx(model, out) if fmt == "onnx" else export_torchscript(model, out)
    click.echo(f"Wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {fmt}).", err=True)


@main.command(name="import")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, help="Run directory to create.")
@click.option("--source", type=click.Path(path_type=Path), default=None,
              help="Source image (sincut) or folder (cut/fastcut). Default: trainA under the options' dataroot.")
@click.option("--target", type=click.Path(path_type=Path), default=None,
              help="Target image or folder. Default: trainB under the options' dataroot.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
              help="The recipe when FOLDER has no train_opt.txt (a ResNet G is cut unless fastcut is given).")
@click.option("--epoch", type=click.IntRange(0), default=None,
              help="Epochs the checkpoint has done (default: from <epoch>_net_G.pth; 0 for latest_net_G.pth).")
@device_option
def import_run(folder: Path, out: Path, source: Path | None, target: Path | None, preset: str | None,
               epoch: int | None, device: str) -> None:
    """Make a run directory from FOLDER, a checkpoint of the paper's code (G, D, F; train_opt.txt).

    `sincut resume RUN` then trains it on with this loop, from the step its epoch gives. The paper's
    checkpoints hold no optimiser state: Adam's moments start fresh.
    """
    from ..training.loop import import_official
    from ..inference.device import pick_device

    run = import_official(folder, out, pick_device(device), source, target, preset, epoch)
    click.echo(f"Wrote run directory {run}. Continue training with: sincut resume {run}", err=True)


@main.command(name="eval")
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--style", "target", type=click.Path(path_type=Path), required=True,
              help="TARGET: the image (or folder of images) whose look OUTPUT should have.")
@click.option("--content", "source", type=click.Path(path_type=Path), required=True,
              help="SOURCE: the image OUTPUT was translated from (a folder when OUTPUT is one; same names).")
@click.option("--inception", "inception_path", type=click.Path(path_type=Path), default=None,
              help="The FID Inception TorchScript file for SIFID/FID/KID [default: the one "
                   'pip install "sincut[metrics]" installs].')
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON instead of a table.")
def evaluate(output: Path, target: Path, source: Path, inception_path: Path | None, as_json: bool) -> None:
    """Measure a translation: style, texture and SIFID to TARGET, content kept from SOURCE.

    OUTPUT and --content are image files, or folders whose images share names (as `sincut translate`
    writes them); --style is a file or a folder. Folders: style and texture compare all outputs with
    all targets, content figures are averaged over the pairs. Texture distance: 7x7 patches of the
    high-passed luminance, every image at 512 px on its shorter side, so palette and contrast do not
    count. SIFID (one TARGET image) is given per output; FID and KID compare an OUTPUT folder with a
    --style folder. These three need the FID Inception network.
    """
    import json

    from ..evaluation.inception import INSTALL_HINT, load_inception
    from ..evaluation.files import evaluate_files, fid_kid_files, match_pairs, sifid_files
    from ..inference.files import expand_inputs

    pairs = match_pairs(output, source)
    if not target.exists():
        raise UserError(f"{target}: no such file or folder; check the --style path")
    targets = [f for f, _ in expand_inputs([target])]
    network = load_inception(inception_path)
    quality = evaluate_files(pairs, targets)
    folders = output.is_dir()
    outputs = [o for o, _ in pairs]
    per_image = sifid_files(outputs, targets[0], network) if network and not target.is_dir() else None
    fid = kid = None
    fid_note = None
    if folders and target.is_dir() and network:
        if min(len(outputs), len(targets)) >= 2:
            fid, kid = fid_kid_files(outputs, targets, network)
        else:
            fid_note = (f"FID/KID skipped: they need at least 2 images in OUTPUT and in --style, got "
                        f"{len(outputs)} and {len(targets)}.")
    sifid = sum(per_image) / len(per_image) if per_image else None
    if as_json:
        figures = quality.to_dict()
        figures["sifid"] = sifid
        if folders:
            figures["sifid_per_image"] = (None if per_image is None else
                                          {str(o.relative_to(output)): v for o, v in zip(outputs, per_image)})
            figures.update(fid=fid, kid=kid)
        click.echo(json.dumps(figures, indent=2))
    else:
        from rich.console import Console
        from rich.markup import escape

        from ..progress import quality_table

        rows = []
        if per_image is not None:
            label = "SIFID (Inception Conv2d_4a, 256 px)" + (", mean" if folders else "")
            rows.append((f"[bold]{label}", f"[bold]{sifid:.3f}", "lower (0 = same)"))
            if folders:
                rows += [(f"SIFID, {escape(str(o.relative_to(output)))}", f"{v:.3f}", "lower")
                         for o, v in zip(outputs, per_image)]
        if fid is not None:
            rows += [("[bold]FID (pool, 299 px)", f"[bold]{fid:.3f}", "lower"),
                     ("[bold]KID (pool, 299 px)", f"[bold]{kid:.5f}", "lower")]
        Console().print(quality_table(quality, f"{output}  (style: {target}, content: {source})", rows))
    if network is None:
        click.echo(INSTALL_HINT, err=True)
    elif fid_note:
        click.echo(fid_note, err=True)


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
def report(run: Path) -> None:
    """Write RUN/report.html and RUN/report.png: images, preview history, curves, config and timing.

    Training writes them at its end; this rebuilds them (also while a run is still training).
    """
    from ..evaluation.report import write_report

    html_path, png_path = write_report(run)
    click.echo(f"Wrote {html_path} and {png_path}.", err=True)


def _samples_dir() -> Path:
    """The bundled sample pair: from a source checkout, else the copy installed with the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "samples", here / "samples"):
        if (candidate / SAMPLE_SOURCE).is_file():
            return candidate
    raise UserError(f"the bundled samples ({SAMPLE_SOURCE}) are missing from this installation; "
                    "reinstall sincut with `pip install .` from its source folder")


@main.command()
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True,
              help="Run directory for the demo.")
@click.option("--minutes", type=click.FloatRange(0.1), default=None,
              help=f"Training budget [default: {DEMO_CPU_MINUTES:g} with the quick recipe on a CPU, "
                   f"{DEMO_GPU_MINUTES:g} with the paper's recipe on a GPU].")
@click.option("--steps", type=click.IntRange(1), default=None, help="Train this many steps instead of --minutes.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier demo run in --out.")
@device_option
def demo(out: Path, minutes: float | None, steps: int | None, overwrite: bool, device: str) -> None:
    """Train on the bundled photo and painting, then write the translated photo and a preview.

    On a CPU: the quick recipe for 8 minutes (a finished picture within 10 minutes on 2 cores). On a
    GPU: the paper's recipe, its schedule sized to 5 minutes.
    """
    from ..inference.device import pick_device
    from ..run_folder import CONFIG_FILE

    samples = _samples_dir()
    dev = pick_device(device)
    preset = "quick" if dev.type == "cpu" else "sincut"
    if steps is not None and minutes is not None:
        raise UserError("give --minutes or --steps, not both")
    if steps is None and minutes is None:
        minutes = DEMO_CPU_MINUTES if dev.type == "cpu" else DEMO_GPU_MINUTES
    length = f"{minutes:g} minutes" if steps is None else f"{steps:,} steps"
    click.echo(f"The demo trains the {preset} recipe for {length} on the {dev.type}. A longer run of your own: "
               f"sincut train {samples / SAMPLE_SOURCE} {samples / SAMPLE_TARGET} --out runs/mine "
               f"--preset {preset} --minutes 30", err=True)
    if overwrite and out.is_dir() and (out / CONFIG_FILE).exists():
        shutil.rmtree(out)
    extra = {} if steps is None else {"preview_every": max(1, steps // 4), "checkpoint_every": max(1, steps // 2)}
    config = build_config(preset, {"steps": steps, "minutes": minutes, **extra})
    _run_training(config, samples / SAMPLE_SOURCE, samples / SAMPLE_TARGET, out, device)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
