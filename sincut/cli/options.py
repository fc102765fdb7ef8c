"""The command line's option machinery: one Click option per TrainConfig field with the one-screen and
--help-all listings, the shared --device and --allow-large-images options, the value parsers, the error
contract of the group (one line, exit 2) and the choice of a recipe from the inputs and the device.
sincut/cli/__init__.py holds the commands themselves.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from typing import Any, Callable

import click

from ..config import (DATASET_PRESETS, PRESETS, TrainConfig, changeable_on_resume, field_group, is_index_list,
                      make_config)
from ..errors import TrainingFailed, TrainingStopped, UserError, WriteFailed


class SincutGroup(click.Group):
    """Turns the user's mistakes into one line on stderr and exit code 2, and the machine's faults (training
    cannot go on, a file cannot be written) into one line and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as e:
            click.echo(f"Error: {e}", err=True)
            ctx.exit(2)
        except (TrainingFailed, WriteFailed) as e:
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
        raise click.BadParameter(f"expected comma-separated integers like 0,2,4, got {value!r}") from None


HELP_ALL = "sincut.help_all"  # ctx.meta key: --help-all asked for every option with its full text


COMPACT_GROUPS = ("paper", "bookkeeping", "execution")  # the train/batch options one screen of --help lists


class ListedOption(click.Option):
    """An option of train/batch/resume (every TrainConfig field is one). The one-screen --help lists it
    with its brief line when `compact`; --help-all lists every option with its full text. `listed=False`
    hides it from both; it still works."""

    def __init__(self, *args: Any, compact: bool = True, listed: bool = True, brief: str = "",
                 shown_default: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.compact, self.listed, self.brief, self.shown_default = compact, listed, brief, shown_default

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if not self.listed:
            return None
        record = super().get_help_record(ctx)
        if record is None or ctx.meta.get(HELP_ALL):
            return record
        if not self.compact:
            return None
        extra = "  [required]" if self.required else f"  [default: {self.shown_default}]" if self.shown_default else ""
        return record[0], self.brief + extra


def help_all_option(func: Callable) -> Callable:
    """--help-all: the help with every option this command takes, each with its full text."""
    def show(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if not value or ctx.resilient_parsing:
            return
        ctx.meta[HELP_ALL] = True
        click.echo(ctx.get_help(), color=ctx.color)
        ctx.exit()

    return click.option("--help-all", is_flag=True, expose_value=False, is_eager=True, callback=show,
                        help="Show every option (research knobs too) with its full help.")(func)


def _first_sentence(text: str) -> str:
    return text.split(". ", 1)[0].rstrip(".") + "."


def config_options(func: Callable | None = None, *, resuming: bool = False) -> Callable:
    """One Click option per TrainConfig field; unset options leave the preset's (or run's) value alone.

    The one-screen --help lists the paper, bookkeeping and execution groups (brief lines); --help-all lists
    all. resume lists only what it may change (in --help those of the same groups); the rest stay accepted
    but unlisted, so passing one gets the one-line refusal of with_resume_overrides instead of Click's
    "no such option".
    """
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
        if resuming:  # an option left out keeps the resumed run's value, not the preset's
            shown = "the run's"
        help_text = f"{f.metadata['help']}  [default: {shown}]"
        # resume's one-screen --help says once, in its text, that a left-out option keeps the run's value
        listing = dict(cls=ListedOption, shown_default="" if resuming else str(shown),
                       brief=f.metadata.get("brief") or _first_sentence(f.metadata["help"]),
                       compact=field_group(f) in COMPACT_GROUPS,
                       listed=changeable_on_resume(f) or not resuming)
        if f.name == "keep_checkpoints":
            func = click.option(flag, "--keep", f.name, type=click.IntRange(lo, hi), default=None, metavar="N",
                                help=help_text, **listing)(func)
        elif f.type in ("bool", bool):
            decl = [f"{flag}/--no-{f.name.replace('_', '-')}"]
            func = click.option(*decl, f.name, default=None, help=help_text, **listing)(func)
        elif f.metadata.get("choices"):
            func = click.option(flag, f.name, type=click.Choice(f.metadata["choices"]), default=None,
                                help=help_text, **listing)(func)
        elif is_index_list(f):
            func = click.option(flag, f.name, default=None, callback=_parse_layers, metavar="I,J,...",
                                help=help_text, **listing)(func)
        else:
            is_int = f.type in ("int", "int | None", int)
            kind = click.IntRange(lo, hi) if is_int else click.FloatRange(lo, hi)
            func = click.option(flag, f.name, type=kind, default=None, metavar="N" if is_int else "X",
                                help=help_text, **listing)(func)
    if resuming:
        func = click.option("--preset", type=click.Choice(list(PRESETS)), default=None, hidden=True,
                            help="Must match the run's preset if given.")(func)
    else:
        func = click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
                            help="Recipe; the options below override it. [default: for two image files "
                                 "quick on a CPU, sincut on a GPU; cut for two folders; defaults shown are "
                                 "sincut's]",
                            cls=ListedOption, brief="Recipe the options below override.",
                            shown_default="quick (CPU), sincut (GPU); folders: cut")(func)
    return help_all_option(func)


def device_option(func: Callable) -> Callable:
    return click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N|mps",
                        help="Where to run; auto picks a GPU when there is one.")(func)


def build_config(preset: str, overrides: dict[str, Any]) -> TrainConfig:
    try:
        return make_config(preset, **{k: v for k, v in overrides.items() if v is not None})
    except ValueError as e:
        raise UserError(str(e)) from None


def large_images_option(func: Callable) -> Callable:
    def allow(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        if value:
            from ..data.images import allow_large_images
            allow_large_images()
        return value

    return click.option("--allow-large-images", is_flag=True, expose_value=False, callback=allow,
                        help="Read images above Pillow's decompression-bomb limit (only for files you trust).",
                        cls=ListedOption, compact=False)(func)


def choose_preset(source: Path, target: Path, preset: str | None, device_type: str = "cpu") -> str:
    """Two folders mean the dataset recipe (cut). Two image files mean the paper's single-image recipe on
    a GPU, and on a CPU (where the paper's 100,000 steps take days) the quick recipe, as `sincut demo`."""
    for path in (source, target):
        if not path.exists():
            raise UserError(f"{path}: no such file or folder; check the path")
    if source.is_dir() != target.is_dir():
        folder, other = (source, target) if source.is_dir() else (target, source)
        raise UserError(f"{folder} is a folder but {other} is a file; pass two image files (single-image "
                        "mode) or two folders (dataset mode)")
    if preset is None:
        return "cut" if source.is_dir() else "quick" if device_type == "cpu" else "sincut"
    if source.is_dir() and preset not in DATASET_PRESETS:
        raise UserError(f"--preset {preset} trains on two image files, but {source} is a folder; "
                        f"use --preset {' or '.join(DATASET_PRESETS)}")
    if not source.is_dir() and preset in DATASET_PRESETS:
        raise UserError(f"--preset {preset} trains on two folders of images, but {source} is a file; "
                        "use --preset sincut or quick")
    return preset


def parse_memory_option(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    from ..inference.budget import parse_memory

    try:
        size = parse_memory(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    if size <= 0:
        raise click.BadParameter(f"must be more than 0, got {value!r}")
    return size


def parse_shard_option(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int]:
    if value is None:
        return (1, 1)
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise click.BadParameter(f"expected K/N with 1 <= K <= N, like 2/4, got {value!r}")
    return int(match.group(1)), int(match.group(2))


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

