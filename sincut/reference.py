"""The command reference (docs/reference.md), generated from the Click definitions.

`python -m sincut.reference > docs/reference.md` rewrites it; tests/test_docs.py regenerates it and
compares, so the page always lists every command and option exactly as `sincut --help` knows them.
"""

from __future__ import annotations

import inspect
import re
import sys

import click

UPDATE_COMMAND = "python -m sincut.reference > docs/reference.md"
_DEFAULT_IN_HELP = re.compile(r"\s*\[default: (.*)\]\s*$", re.S)


def _cell(text: str) -> str:
    """Make text safe inside one Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _type_text(param: click.Parameter) -> str:
    """A short, stable description of what a parameter accepts."""
    kind = param.type
    if isinstance(param, click.Option) and param.is_flag:
        return "switch" if param.secondary_opts else "flag"
    if isinstance(kind, click.Choice):
        return " | ".join(str(c) for c in kind.choices)
    if isinstance(kind, (click.IntRange, click.FloatRange)):
        name = "integer" if isinstance(kind, click.IntRange) else "number"
        if kind.min is not None and kind.max is not None:
            return f"{name}, {kind.min:g} to {kind.max:g}"
        if kind.min is not None:
            return f"{name} >= {kind.min:g}"
        if kind.max is not None:
            return f"{name} <= {kind.max:g}"
        return name
    if isinstance(kind, click.Path):
        return "path"
    if kind is click.INT:
        return "integer"
    if kind is click.FLOAT:
        return "number"
    if isinstance(param, click.Option) and param.metavar:
        return param.metavar
    return "text"


def _default_text(param: click.Option, help_text: str) -> tuple[str, str]:
    """The default to show and the help without it. Options whose default comes from the preset carry
    it in their help as "[default: X]" (Click's own default is None there), so it is taken from there."""
    match = _DEFAULT_IN_HELP.search(help_text)
    if match:
        shown = "none" if match.group(1) == "None" else match.group(1)
        return shown, help_text[: match.start()]
    if param.required:
        return "required", help_text
    default = param.default
    if param.is_flag and not param.secondary_opts:
        return "off", help_text
    if isinstance(default, bool):
        return ("on" if default else "off"), help_text
    if default is None or default == () or default == "":
        return "none", help_text
    return str(default), help_text


def _command_section(name: str, command: click.Command) -> list[str]:
    ctx = click.Context(command, info_name=f"sincut {name}")
    usage = " ".join([f"sincut {name}", *command.collect_usage_pieces(ctx)])
    lines = [f"## `sincut {name}`", "", "```", usage, "```", ""]
    lines += [_strip_lines(command.help or ""), ""]
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if arguments:
        lines += ["| argument | accepts |", "|---|---|"]
        for arg in arguments:
            many = " (one or more)" if arg.nargs == -1 else ""
            lines.append(f"| `{arg.metavar or arg.name.upper()}` | {_cell(_type_text(arg))}{many} |")
        lines.append("")
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden
               and getattr(p, "listed", True)]
    if options:
        lines += ["| option | accepts | default | what it does |", "|---|---|---|---|"]
        for opt in options:
            flags = " / ".join(f"`{o}`" for o in [*opt.opts, *opt.secondary_opts])
            default, help_text = _default_text(opt, opt.help or "")
            lines.append(f"| {flags} | {_cell(_type_text(opt))} | {_cell(default)} | {_cell(help_text)} |")
        lines.append("")
    return lines


def _strip_lines(text: str) -> str:
    """A docstring as Markdown: its prose as paragraphs, its indented example lines as a code block."""
    out: list[str] = []
    in_code = False
    for line in inspect.cleandoc(text).splitlines():
        if line.strip() == "\b":  # Click's mark for a paragraph it must not rewrap
            continue
        indented = line.startswith("  ")
        if indented != in_code:
            out.append("```" if indented else "```\n")
            in_code = indented
        out.append(line[2:] if indented else line)
    if in_code:
        out.append("```")
    return "\n".join(out).replace("```\n\n", "```\n")


def reference_markdown() -> str:
    """The whole reference page, one section per command in the order `sincut --help` defines them."""
    from .cli import main

    lines = ["# Command reference", "",
             f"Generated from the command definitions by `{UPDATE_COMMAND}`; do not edit by hand.",
             "`sincut COMMAND --help` prints the same. The guides in this folder explain what the options",
             "do together; this page lists them all.", ""]
    lines += [f"- [`sincut {name}`](#sincut-{name})" for name in main.commands]
    lines.append("")
    for name, command in main.commands.items():
        lines += _command_section(name, command)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference_markdown())
