"""Argument parsing the scripts share, so that a flag means the same in each: --json, WxH sizes, TIMED,WARMUP
step counts, seed lists, and bad input as one line naming the option and the fix (exit status 2)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from .paths import RESULTS


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose --help is the script's docstring, laid out as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_json_option(ap: argparse.ArgumentParser, name: str) -> None:
    """--json PATH, by default benchmarks/results/NAME.json (scratch; the docs' runs give docs/results/...)."""
    ap.add_argument("--json", type=Path, default=RESULTS / f"{name}.json",
                    help=f"where the JSON goes (default: benchmarks/results/{name}.json)")


def fail(message: str) -> NoReturn:
    """Bad input: one line naming the option and the fix, exit status 2 (as sincut's own commands)."""
    print(f"{Path(sys.argv[0]).name}: {message}", file=sys.stderr)
    raise SystemExit(2)


def comma_list(text: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']: the empty string gives none."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_size(text: str, option: str) -> tuple[int, int]:
    """'WxH' -> (W, H), both positive."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        fail(f"{option}: {text!r} is not WIDTHxHEIGHT, e.g. 1024x768")
    if width < 1 or height < 1:
        fail(f"{option}: {text!r} needs a positive width and height")
    return width, height


def parse_sizes(text: str, option: str) -> list[tuple[int, int]]:
    """'1024x768,4096x3072' -> [(1024, 768), (4096, 3072)]; '' -> []."""
    return [parse_size(item, option) for item in comma_list(text)]


def parse_steps(text: str | None, option: str = "--steps") -> tuple[int, int] | None:
    """'TIMED,WARMUP' -> (timed, warm-up), at least one timed step; None when not given."""
    if not text:
        return None
    try:
        timed, warmup = (int(v) for v in text.split(","))
    except ValueError:
        fail(f"{option}: {text!r} is not TIMED,WARMUP, e.g. 4,1")
    if timed < 1 or warmup < 0:
        fail(f"{option}: {text!r} needs at least one timed step and no negative warm-up")
    return timed, warmup


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """'0,1,2' -> [0, 1, 2]: distinct, non-negative whole numbers."""
    try:
        seeds = [int(s) for s in comma_list(text)]
    except ValueError:
        fail(f"{option}: {text!r} is not a comma-separated list of whole numbers, e.g. 0,1,2")
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        fail(f"{option}: {text!r} needs distinct non-negative seeds, e.g. 0,1,2")
    return seeds
