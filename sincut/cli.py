"""The `sincut` command line: parses and validates options, then calls the library.

No training or image logic lives here. Every `TrainConfig` field is a `sincut train` option,
generated from the dataclass so help texts and defaults cannot drift from the recipe.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__
from .config import PRESETS, TrainConfig, make_config
from .errors import UserError
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
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


def _parse_layers(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated layer indices like 0,2,4, got {value!r}") from None


def config_options(func: Callable) -> Callable:
    """One Click option per TrainConfig field; unset options leave the preset's value alone."""
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
        if f.type in ("bool", bool):
            decl = [f"{flag}/--no-{f.name.replace('_', '-')}"]
            func = click.option(*decl, f.name, default=None, help=help_text)(func)
        elif f.name == "nce_layers":
            func = click.option(flag, f.name, default=None, callback=_parse_layers, metavar="I,J,...",
                                help=help_text)(func)
        else:
            kind = click.IntRange(lo, hi) if f.type in ("int", int) else click.FloatRange(lo, hi)
            func = click.option(flag, f.name, type=kind, default=None, help=help_text)(func)
    func = click.option("--preset", type=click.Choice(list(PRESETS)), default="sincut", show_default=True,
                        help="Training recipe; every value below overrides it.")(func)
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
    """


def _run_training(config: TrainConfig, source: Path, target: Path, out: Path, device_name: str) -> None:
    from rich.console import Console

    from .progress import RichProgress, summary_table
    from .train import train
    from .translate import pick_device

    device = pick_device(device_name)
    console = Console(stderr=True)
    console.print(f"[bold]sincut[/] {config.preset}: {config.steps:,} steps, batch {config.batch_size} x "
                  f"{config.crop_size}px, on {device}. Run directory: {out}")
    result = train(config, source, target, out, device, RichProgress(console))
    minutes, seconds = divmod(result.seconds, 60)
    console.print(summary_table([
        ("translated source", str(result.result_image)),
        ("preview", str(result.preview_image)),
        ("checkpoint", str(result.checkpoint)),
        ("steps", f"{result.steps:,}"),
        ("time", f"{int(minutes)} min {seconds:.0f} s"),
        ("translate more", f"sincut translate {out} IMAGE... --out DIR"),
    ], title="Done"))


def _require_file(path: Path, role: str) -> None:
    if path.is_dir():
        raise UserError(f"{path}: is a folder; {role} must be one image file "
                        "(folder-to-folder training is not available yet)")


@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="New run directory: config, log, previews, checkpoints and result.png go there.")
@device_option
@config_options
def train(source: Path, target: Path, out: Path, device: str, preset: str, **overrides: Any) -> None:
    """Train a model that repaints SOURCE (content kept) in the look of TARGET (style learned).

    The defaults are the paper's single-image recipe (100,000 steps: hours on a GPU, days on a CPU;
    try --steps 2000 for a first look).
    """
    _require_file(source, "SOURCE")
    _require_file(target, "TARGET")
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
@device_option
def translate(model: Path, inputs: tuple[str, ...], out: Path, suffix: str, fmt: str, quality: int,
              overwrite: bool, tile: int, batch_size: int, shard: tuple[int, int], seed: int, noise: bool,
              half: bool, device: str) -> None:
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
                               batch_size=batch_size, seed=seed, noise=noise, half=half, shard=shard)
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
def batch(sources: tuple[str, ...], targets: tuple[str, ...], out: Path, device: str, preset: str,
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

    config = _build_config(preset, overrides)
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
