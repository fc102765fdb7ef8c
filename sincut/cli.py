"""The `sincut` command line: parses and validates options, then calls the library.

No training or image logic lives here. Every `TrainConfig` field is a `sincut train` option,
generated from the dataclass so help texts and defaults cannot drift from the recipe.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__
from .config import DATASET_PRESETS, PRESETS, TrainConfig, make_config
from .errors import TrainingFailed, TrainingStopped, UserError
from .tiles import DEFAULT_TILE, MIN_TILE

DEMO_CPU_STEPS = 60  # about 5 minutes on a 2-core CPU at the recipe's batch and patch size
DEMO_GPU_STEPS = 5000
SAMPLE_SOURCE = "photo_montStMichel.jpg"
SAMPLE_TARGET = "painting_vincent_van_gogh_village_street_in_auver.jpg"


class SincutGroup(click.Group):
    """Turns the user's mistakes into one line on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as e:
            click.echo(f"Error: {e}", err=True)
            ctx.exit(2)
        except TrainingFailed as e:
            click.echo(f"Error: {e}", err=True)
            ctx.exit(1)
        except TrainingStopped as e:
            click.echo(str(e), err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted at once; the newest complete checkpoint (if any) is kept.", err=True)
            ctx.exit(130)


def _parse_layers(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated layer indices like 0,2,4, got {value!r}") from None


def config_options(func: Callable | None = None, *, resuming: bool = False) -> Callable:
    """One Click option per TrainConfig field; unset options leave the preset's (or run's) value alone."""
    if func is None:
        return functools.partial(config_options, resuming=resuming)
    for f in reversed(dataclasses.fields(TrainConfig)):
        if f.name == "preset":
            continue
        flag = "--" + f.name.replace("_", "-")
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        shown = f.default
        if f.name == "zoom_min":
            shown = "1/3"
        elif isinstance(shown, tuple):
            shown = ",".join(map(str, shown))
        if isinstance(shown, bool):
            shown = "on" if shown else "off"
        help_text = f"{f.metadata['help']}  [default: {shown}]"
        if f.name == "keep_checkpoints":
            func = click.option(flag, "--keep", f.name, type=click.IntRange(lo, hi), default=None,
                                help=help_text)(func)
        elif f.type in ("bool", bool):
            decl = [f"{flag}/--no-{f.name.replace('_', '-')}"]
            func = click.option(*decl, f.name, default=None, help=help_text)(func)
        elif f.metadata.get("choices"):
            func = click.option(flag, f.name, type=click.Choice(f.metadata["choices"]), default=None,
                                help=help_text)(func)
        elif f.name == "nce_layers":
            func = click.option(flag, f.name, default=None, callback=_parse_layers, metavar="I,J,...",
                                help=help_text)(func)
        else:
            kind = click.IntRange(lo, hi) if f.type in ("int", "int | None", int) else click.FloatRange(lo, hi)
            func = click.option(flag, f.name, type=kind, default=None, help=help_text)(func)
    if resuming:
        func = click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
                            help="Must match the run's preset if given.")(func)
    else:
        func = click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
                            help="Training recipe; every option below overrides it. [default: sincut for two "
                                 "image files, cut for two folders; defaults shown below are sincut's]")(func)
    return func


def device_option(func: Callable) -> Callable:
    return click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N|mps",
                        help="Where to run; auto picks a GPU when there is one.")(func)


def _build_config(preset: str, overrides: dict[str, Any]) -> TrainConfig:
    try:
        return make_config(preset, **{k: v for k, v in overrides.items() if v is not None})
    except ValueError as e:
        raise UserError(str(e)) from None


@click.group(cls=SincutGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="sincut")
def main() -> None:
    """Unpaired image-to-image translation by patchwise contrastive learning (CUT / SinCUT).

    \b
    Quick start:
      sincut demo                                      # train and translate the bundled samples
      sincut train PHOTO.jpg PAINTING.jpg --out runs/x # SOURCE keeps its content, TARGET gives the look
      sincut translate runs/x PHOTOS/ --out out/       # full-resolution results, any size, whole folders
      sincut batch PHOTOS/ --style A.jpg B.jpg --out b # one model per (photo, painting) pair
      sincut export runs/x --out generator.pt          # TorchScript generator, needs only torch
      sincut report runs/x                             # runs/x/report.html and report.png
    """


def large_images_option(func: Callable) -> Callable:
    def allow(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        if value:
            from .data.images import allow_large_images
            allow_large_images()
        return value

    return click.option("--allow-large-images", is_flag=True, expose_value=False, callback=allow,
                        help="Read images above Pillow's decompression-bomb limit (only for files you trust).")(func)


def _run_training(config: TrainConfig | None, source: Path | None, target: Path | None, out: Path,
                  device_name: str, resume_overrides: dict[str, Any] | None = None) -> None:
    """Start (config given) or resume (config None) a run, with the rich display and a summary."""
    from rich.console import Console

    from .progress import RichProgress, summary_table
    from .train import resume, train
    from .translate import pick_device

    device = pick_device(device_name)
    console = Console(stderr=True)
    progress = RichProgress(console)
    if config is not None:
        result = train(config, source, target, out, device, progress)
    else:
        result = resume(out, device, progress, resume_overrides)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    minutes, seconds = divmod(result.seconds, 60)
    console.print(summary_table([
        ("translated source", str(result.result_image)),
        ("preview", str(result.preview_image)),
        ("report", str(out / "report.html")),
        ("checkpoint", str(result.checkpoint)),
        ("best checkpoint", str(best) if (best := out / "checkpoints" / "best.pt").is_file()
         else "none yet (no evaluation met --select-min-ssim); translate uses the latest"),
        ("steps this session", f"{result.steps:,}"),
        ("time", f"{int(minutes)} min {seconds:.0f} s"),
        ("translate more", f"sincut translate {out} IMAGE... --out DIR"),
    ], title="Done"))


def _choose_preset(source: Path, target: Path, preset: str | None) -> str:
    """Two image files mean the single-image recipe, two folders the dataset recipe (cut)."""
    for path in (source, target):
        if not path.exists():
            raise UserError(f"{path}: no such file or folder; check the path")
    if source.is_dir() != target.is_dir():
        folder, other = (source, target) if source.is_dir() else (target, source)
        raise UserError(f"{folder} is a folder but {other} is a file; pass two image files (single-image "
                        "mode) or two folders (dataset mode)")
    if preset is None:
        return "cut" if source.is_dir() else "sincut"
    if source.is_dir() and preset not in DATASET_PRESETS:
        raise UserError(f"--preset {preset} trains on two image files, but {source} is a folder; "
                        f"use --preset {' or '.join(DATASET_PRESETS)}")
    if not source.is_dir() and preset in DATASET_PRESETS:
        raise UserError(f"--preset {preset} trains on two folders of images, but {source} is a file; "
                        "use --preset sincut")
    return preset


@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="New run directory: config, log, previews, checkpoints and result.png go there.")
@device_option
@large_images_option
@config_options
def train(source: Path, target: Path, out: Path, device: str, preset: str | None, **overrides: Any) -> None:
    """Train a model that repaints SOURCE (content kept) in the look of TARGET (style learned).

    Two image files train the paper's single-image recipe (sincut: 100,000 steps, hours on a GPU,
    days on a CPU; try --steps 2000 for a first look). Two folders of unpaired images train the
    dataset recipe (cut, or --preset fastcut), recursively, in sorted order. Images smaller than the
    patch size are upscaled, with a warning. Ctrl-C saves a checkpoint; `sincut resume RUN` continues.
    Several GPUs: torchrun --nproc_per_node N -m sincut train A/ B/ --out RUN.
    """
    preset = _choose_preset(source, target, preset)
    if overrides.get("steps") is not None and overrides.get("epochs") is not None:
        raise UserError("--steps and --epochs both set the run's length; pass one of them")
    config = _build_config(preset, overrides)
    _run_training(config, source, target, out, device)


def _parse_shard(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int]:
    if value is None:
        return (1, 1)
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise click.BadParameter(f"expected K/N with 1 <= K <= N, like 2/4, got {value!r}")
    return int(match.group(1)), int(match.group(2))


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@device_option
@large_images_option
@config_options(resuming=True)
def resume(run: Path, device: str, preset: str | None, **overrides: Any) -> None:
    """Continue RUN from its newest checkpoint, with its saved recipe.

    --steps may extend the run (the lr decay is recomputed for the new total), and the bookkeeping
    options (--log-every, --preview-every, --checkpoint-every, --keep) may change; options that would
    change the objective are refused. A run killed before its first checkpoint restarts from step 0.
    On the CPU a resumed run ends with the same weights, bit for bit, as one that never stopped.
    """
    _run_training(None, None, None, run, device, {**overrides, "preset": preset})


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
@click.option("--tile", type=click.IntRange(MIN_TILE), default=DEFAULT_TILE, show_default=True,
              help="Images of up to TILE x TILE pixels go in one pass; larger ones in overlapping tiles of at "
                   "most that size, which bounds memory (896: about 0.9 GiB of activations on a CPU).")
@click.option("--batch-size", type=click.IntRange(1), default=1, show_default=True,
              help="Consecutive images of equal size (each within TILE x TILE pixels) per forward pass.")
@click.option("--shard", default=None, callback=_parse_shard, metavar="K/N",
              help="Translate only the K-th of N shares of the sorted inputs (N machines split one folder).")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Seed of the generator's per-pixel noise; the same seed repeats a result exactly.")
@click.option("--noise/--no-noise", default=True, show_default=True,
              help="--no-noise leaves out the per-pixel noise, as `sincut export` models do.")
@click.option("--half", is_flag=True,
              help="Autocast to float16 (CUDA, MPS) or bfloat16 (CPU): for GPUs; on CPUs usually slower.")
@click.option("--checkpoint", type=click.Choice(["auto", "best", "latest"]), default="auto", show_default=True,
              help="Which checkpoint of a run directory: auto = best.pt when the run has one, else the latest.")
@device_option
@large_images_option
def translate(model: Path, inputs: tuple[str, ...], out: Path, suffix: str, fmt: str, quality: int,
              overwrite: bool, tile: int, batch_size: int, shard: tuple[int, int], seed: int, noise: bool,
              half: bool, checkpoint: str, device: str) -> None:
    """Translate INPUT images with MODEL (a run directory or checkpoint file) into --out.

    INPUT is image files, folders (walked recursively; the tree is mirrored) or quoted glob patterns
    like "photos/**/*.jpg". Each output has its input's name and size. Existing outputs are skipped, a
    bad file is reported and the rest go on; the exit code is 1 if any image failed.
    """
    from rich.console import Console

    from .progress import RichTranslateProgress, translate_summary_table
    from .translate import TranslateOptions, pick_device, translate_files

    dev = pick_device(device)
    options = TranslateOptions(suffix=suffix, format=fmt, quality=quality, overwrite=overwrite, tile=tile,
                               batch_size=batch_size, seed=seed, noise=noise, half=half, shard=shard,
                               checkpoint=checkpoint)
    console = Console(stderr=True)
    summary = translate_files(model, list(inputs), out, dev, options, RichTranslateProgress(console))
    console.print(translate_summary_table(len(summary.translated), len(summary.skipped), len(summary.failed),
                                          summary.seconds, summary.images_per_second))
    if summary.failed:
        click.get_current_context().exit(1)


class StyleListCommand(click.Command):
    """Lets `--style` take several values, as in `--style a.jpg b.jpg --out DIR`.

    Click options take one value each, so before parsing every non-option word after `--style` gets its
    own `--style` in front; the list ends at the next option (or `--`).
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        expanded: list[str] = []
        in_styles = needs_value = False
        for i, arg in enumerate(args):
            if arg == "--":
                expanded += args[i:]
                break
            if arg == "--style":
                if needs_value:
                    break
                in_styles = needs_value = True
            elif arg.startswith("--style="):
                expanded += ["--style", arg.split("=", 1)[1]]
                in_styles, needs_value = True, False
            elif in_styles and not arg.startswith("-"):
                expanded += ["--style", arg]
                needs_value = False
            else:
                if needs_value:
                    break
                in_styles = False
                expanded.append(arg)
        if needs_value:
            raise click.BadOptionUsage("--style", "--style needs at least one TARGET image or folder", ctx=ctx)
        return super().parse_args(ctx, expanded)


@main.command(cls=StyleListCommand)
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option("--style", "targets", multiple=True, required=True, metavar="TARGET...",
              help="Style images or folders (several may follow one --style); every SOURCE is trained against each.")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Output folder: runs/<source>__<target>/, images/<source>__<target>.png, contact_sheet.png.")
@device_option
@config_options
def batch(sources: tuple[str, ...], targets: tuple[str, ...], out: Path, device: str, preset: str | None,
          **overrides: Any) -> None:
    """Train one model per (SOURCE, TARGET) pair and translate each SOURCE; folders allowed on both sides.

    \b
    Finished pairs (their image exists) are skipped when run again, so an interrupted batch resumes.
    A failed pair is reported and the rest go on; the exit code is 1 if any pair failed. Every
    `sincut train` option applies to each pair, e.g.
      sincut batch photos/ --style monet.jpg vangogh.jpg --out batch/ --steps 2000
    """
    from rich.console import Console

    from .batch import run_batch
    from .progress import RichBatchProgress, batch_summary_table
    from .translate import pick_device

    config = _build_config(preset or "sincut", overrides)
    dev = pick_device(device)
    console = Console(stderr=True)
    console.print(f"[bold]sincut batch[/]: {config.steps:,} steps per pair, batch {config.batch_size} x "
                  f"{config.crop_size}px, on {dev}. Output: {out}", highlight=False)
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
              show_default=True, help="onnx needs the onnx package; its H and W must be even.")
def export(model: Path, out: Path, fmt: str) -> None:
    """Write MODEL's generator as a standalone model that needs only torch to run.

    \b
    It maps a float32 [N, 3, H, W] tensor in [-1, 1] to the translation (same shape, unclamped),
    without the per-pixel noise, so it is deterministic (= sincut translate --no-noise):
      G = torch.jit.load("generator.pt"); y = G(x).clamp(-1, 1)
    """
    from .export import export_onnx, export_torchscript

    if out.is_dir():
        raise UserError(f"{out}: is a folder; pass a file name like {out / 'generator.pt'}")
    path = export_onnx(model, out) if fmt == "onnx" else export_torchscript(model, out)
    click.echo(f"Wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {fmt}).", err=True)


@main.command(name="eval")
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--style", "target", type=click.Path(path_type=Path), required=True,
              help="TARGET: the image (or folder of images) whose look OUTPUT should have.")
@click.option("--content", "source", type=click.Path(path_type=Path), required=True,
              help="SOURCE: the image OUTPUT was translated from (a folder when OUTPUT is one; same names).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON instead of a table.")
def evaluate(output: Path, target: Path, source: Path, as_json: bool) -> None:
    """Measure a translation: style distance to TARGET, content kept from SOURCE.

    OUTPUT and --content are image files, or folders whose images share names (as `sincut translate`
    writes them); --style is a file or a folder. Folders: style compares all outputs with all targets,
    content figures are averaged over the pairs.
    """
    import json

    from .metrics import FID_KID_NOTE, evaluate_files, match_pairs
    from .translate import expand_inputs

    pairs = match_pairs(output, source)
    if not target.exists():
        raise UserError(f"{target}: no such file or folder; check the --style path")
    targets = [f for f, _ in expand_inputs([target])]
    quality = evaluate_files(pairs, targets)
    folders = output.is_dir()
    if as_json:
        figures = quality.to_dict()
        if folders:
            figures.update(fid=None, kid=None)
        click.echo(json.dumps(figures, indent=2))
    else:
        from rich.console import Console

        from .progress import quality_table

        Console().print(quality_table(quality, f"{output}  (style: {target}, content: {source})"))
    if folders:
        click.echo(FID_KID_NOTE, err=True)


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
def report(run: Path) -> None:
    """Write RUN/report.html and RUN/report.png: images, preview history, curves, config and timing.

    Training writes them at its end; this rebuilds them (also while a run is still training).
    """
    from .report import write_report

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
@click.option("--steps", type=click.IntRange(1), default=None,
              help=f"Training steps [default: {DEMO_CPU_STEPS} on a CPU (about 5 minutes on 2 cores), "
                   f"{DEMO_GPU_STEPS:,} on a GPU].")
@click.option("--overwrite", is_flag=True, help="Replace an earlier demo run in --out.")
@device_option
def demo(out: Path, steps: int | None, overwrite: bool, device: str) -> None:
    """Train on the bundled photo and painting, then write the translated photo and a preview."""
    from .translate import pick_device

    samples = _samples_dir()
    dev = pick_device(device)
    if steps is None:
        steps = DEMO_CPU_STEPS if dev.type == "cpu" else DEMO_GPU_STEPS
        if dev.type == "cpu":
            click.echo(f"On the CPU the demo trains {steps} steps (about 5 minutes on 2 cores): enough to see "
                       "the colours and texture move. The full recipe is 100,000 steps: "
                       f"sincut train {samples / SAMPLE_SOURCE} {samples / SAMPLE_TARGET} --out runs/full",
                       err=True)
    if overwrite and out.is_dir() and (out / "config.json").exists():
        shutil.rmtree(out)
    config = make_config("sincut", steps=steps, preview_every=max(1, steps // 4), checkpoint_every=max(1, steps // 2))
    _run_training(config, samples / SAMPLE_SOURCE, samples / SAMPLE_TARGET, out, device)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
