"""Terminal display for training: the loop reports through `Progress`; only this file imports rich."""

from __future__ import annotations

import time
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


class TrainingProgress(Protocol):
    """What the training loop tells the outside world. All methods are cheap and optional to act on."""

    def start(self, total_steps: int, first_step: int) -> None: ...
    def step(self, step: int, losses: dict[str, float] | None) -> None: ...
    def note(self, message: str) -> None: ...
    def finish(self) -> None: ...
    def metrics(self, step: int, values: dict[str, float]) -> None: ...  # the latest quality figures


class SilentProgress:
    """For library use and tests: records nothing, prints nothing."""

    def start(self, total_steps: int, first_step: int) -> None: ...
    def step(self, step: int, losses: dict[str, float] | None) -> None: ...
    def note(self, message: str) -> None: ...
    def finish(self) -> None: ...
    def metrics(self, step: int, values: dict[str, float]) -> None: ...


def format_losses(losses: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.3f}" for k, v in losses.items())


class RichProgress:
    """A bar with step, it/s, elapsed and ETA, and the latest logged losses beside it."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.bar = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"), TextColumn("{task.fields[quality]}"),
            console=self.console, transient=False,
        )
        self.task = None
        self._t0 = 0.0
        self._first = 0

    def start(self, total_steps: int, first_step: int) -> None:
        self._t0 = time.perf_counter()
        self._first = first_step
        self._total = total_steps
        # A live bar only on a terminal; logs and CI get one plain line per logged step instead.
        self.live = self.console.is_terminal
        if self.live:
            self.bar.start()
        self.task = self.bar.add_task("train", total=total_steps, completed=first_step, rate="", losses="",
                                      quality="")

    def step(self, step: int, losses: dict[str, float] | None) -> None:
        done = step + 1
        elapsed = time.perf_counter() - self._t0
        n = done - self._first
        rate = f"{n / elapsed:.2f} it/s" if elapsed > 0 and n / elapsed >= 1 else (
            f"{elapsed / n:.2f} s/it" if n else "")
        fields = {"rate": rate}
        if losses is not None:
            fields["losses"] = format_losses(losses)
            if not self.live:
                eta = (self._total - done) * elapsed / max(n, 1)
                self.console.print(f"step {done}/{self._total}  {rate}  eta {eta:.0f} s  {fields['losses']}",
                                   highlight=False, soft_wrap=True)
        self.bar.update(self.task, completed=done, **fields)

    def note(self, message: str) -> None:
        self.console.print(message, soft_wrap=True, highlight=False, markup=False)  # paths stay whole

    def metrics(self, step: int, values: dict[str, float]) -> None:
        text = f"@{step}: " + format_losses(values)
        if not self.live:
            self.console.print(f"eval step {step}  {format_losses(values)}", highlight=False, soft_wrap=True)
        self.bar.update(self.task, quality=text)

    def finish(self) -> None:
        if self.live:
            self.bar.stop()


def summary_table(rows: list[tuple[str, str]], title: str) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    return table


def quality_table(quality, title: str) -> Table:
    """`sincut eval`'s figures (a metrics.Quality): style distance per level and mean, then content."""
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("better")
    last = len(quality.style_levels) - 1
    for i, v in enumerate(quality.style_levels):
        scale = "low-pass" if i == last else (f"1/{2 ** i} size" if i else "full size")
        table.add_row(f"style distance, level {i} ({scale})", f"{v:.4f}", "lower")
    table.add_row("[bold]style distance (mean)", f"[bold]{quality.style_distance:.4f}", "lower")
    table.add_row("[bold]SSIM (luminance)", f"[bold]{quality.ssim:.4f}", "higher (1 = same)")
    table.add_row("[bold]edge correlation", f"[bold]{quality.edge_correlation:.4f}", "higher (1 = same)")
    if quality.pairs > 1:
        table.add_row("image pairs", str(quality.pairs), "")
    return table
