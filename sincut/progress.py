"""Terminal display for training and batches: the loops report through small protocols; the display lives here."""

from __future__ import annotations

import time
from typing import Protocol, Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


class TrainingProgress(Protocol):
    """What the training loop tells the outside world. All methods are cheap and optional to act on."""

    def start(self, total_steps: int | None, first_step: int) -> None: ...  # None: not known yet (--minutes)
    def step(self, step: int, losses: dict[str, float] | None) -> None: ...
    def note(self, message: str) -> None: ...
    def finish(self) -> None: ...
    def metrics(self, step: int, values: dict[str, float]) -> None: ...  # the latest quality figures


class SilentProgress:
    """For library use and tests: records nothing, prints nothing."""

    def start(self, total_steps: int | None, first_step: int) -> None: ...
    def step(self, step: int, losses: dict[str, float] | None) -> None: ...
    def note(self, message: str) -> None: ...
    def finish(self) -> None: ...
    def metrics(self, step: int, values: dict[str, float]) -> None: ...


def format_losses(losses: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.3f}" for k, v in losses.items())


def smooth(previous: dict[str, float], latest: dict[str, float], weight: float = 0.3) -> dict[str, float]:
    """Exponential moving average of the logged losses (GAN losses jump from step to step; the trend
    is what a person reads). A loss seen for the first time starts at its value."""
    return {k: v if k not in previous else (1 - weight) * previous[k] + weight * v for k, v in latest.items()}


class RichProgress:
    """A bar with step, it/s, elapsed and ETA, and the smoothed losses and latest quality beside it."""

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
        self.smoothed: dict[str, float] = {}

    def start(self, total_steps: int | None, first_step: int) -> None:
        if self.task is not None:  # --minutes: the total became known after the first timed steps
            self._total = total_steps
            self.bar.update(self.task, total=total_steps)
            return
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
            self.smoothed = smooth(self.smoothed, losses)
            fields["losses"] = "avg " + format_losses(self.smoothed)
            if not self.live:
                total = self._total if self._total is not None else "?"
                eta = f"{(self._total - done) * elapsed / max(n, 1):.0f} s" if self._total is not None else "?"
                self.console.print(f"step {done}/{total}  {rate}  eta {eta}  {fields['losses']}",
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


def quality_table(quality, title: str, extra_rows: Sequence[tuple[str, str, str]] = ()) -> Table:
    """`sincut eval`'s figures (a metrics.Quality): style distance per level and mean, texture, then content,
    then `extra_rows` (figure, value, better): the Inception figures when the network is there."""
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("better")
    last = len(quality.style_levels) - 1
    for i, v in enumerate(quality.style_levels):
        scale = "low-pass" if i == last else (f"1/{2 ** i} size" if i else "full size")
        table.add_row(f"style distance, level {i} ({scale})", f"{v:.4f}", "lower")
    table.add_row("[bold]style distance (mean)", f"[bold]{quality.style_distance:.4f}", "lower")
    if quality.texture_distance is not None:
        table.add_row("[bold]texture distance (high-pass Y, 512 px)", f"[bold]{quality.texture_distance:.4f}",
                      "lower (0 = same)")
    table.add_row("[bold]SSIM (luminance)", f"[bold]{quality.ssim:.4f}", "higher (1 = same)")
    table.add_row("[bold]edge correlation", f"[bold]{quality.edge_correlation:.4f}", "higher (1 = same)")
    for row in extra_rows:
        table.add_row(*row)
    if quality.pairs > 1:
        table.add_row("image pairs", str(quality.pairs), "")
    return table


class RichTranslateProgress:
    """The translate batch on stderr: a bar on a terminal, one plain line per image otherwise.

    Failures and conversion notes are always printed, one line each, naming the file.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.bar = Progress(TextColumn("[bold]translate"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("eta"), TimeRemainingColumn(), console=self.console, transient=True)
        self.live = False
        self.task = None

    def start(self, total: int) -> None:
        self.live = self.console.is_terminal
        if self.live:
            self.bar.start()
        self.task = self.bar.add_task("translate", total=total)

    def done(self, job, status: str, detail: str | None = None) -> None:
        self.bar.advance(self.task)
        if status == "failed":
            self.console.print(f"[red]failed[/]  {escape(detail or str(job.source))}", soft_wrap=True)
        elif not self.live:
            self.console.print(f"{status:<10} {escape(str(job.source))} -> {escape(str(job.output))}",
                               highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        self.console.print(f"[yellow]note[/]    {escape(message)}", soft_wrap=True)

    def finish(self) -> None:
        if self.live:
            self.bar.stop()


def translate_summary_table(translated: int, skipped: int, failed: int, seconds: float,
                            images_per_second: float) -> Table:
    table = Table(title="sincut translate", title_justify="left")
    for name in ("translated", "skipped", "failed", "time", "images/s"):
        table.add_column(name, justify="right")
    table.add_row(str(translated), str(skipped), f"[red]{failed}[/]" if failed else "0", f"{seconds:.1f} s",
                  f"{images_per_second:.2f}")
    return table


class RichBatchProgress:
    """`sincut batch` on stderr: one display with a bar over all pairs and one over the current pair's
    steps on a terminal; one line per pair otherwise. Failures are always printed, naming the pair."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                            TextColumn("{task.fields[losses]}"), console=self.console, transient=False)
        self.live = False
        self.pairs = self.steps = None

    def start(self, total_pairs: int, steps_per_pair: int | None) -> None:
        self.live = self.console.is_terminal
        if self.live:
            self.bar.start()
        self.pairs = self.bar.add_task("pairs", total=total_pairs, losses="")
        self.steps = self.bar.add_task("steps", total=steps_per_pair, visible=False, losses="")

    def pair_progress(self, pair) -> "TrainingProgress":
        self.bar.reset(self.steps, description=pair.name, visible=True, losses="")
        if not self.live:
            done = int(self.bar.tasks[self.pairs].completed)
            self.console.print(f"training  {escape(pair.name)}  (pair {done + 1} of {self.bar.tasks[self.pairs].total:.0f})",
                               highlight=False)
        return _PairSteps(self)

    def pair_done(self, pair, status: str, detail: str | None = None) -> None:
        self.bar.advance(self.pairs)
        self.bar.update(self.steps, visible=False)
        if status == "failed":
            self.console.print(f"[red]failed[/]    {escape(detail or pair.name)}", soft_wrap=True)
        elif not self.live:
            self.console.print(f"{status:<9} {escape(pair.name)}", highlight=False)

    def note(self, message: str) -> None:
        self.console.print(f"[yellow]note[/]      {escape(message)}", soft_wrap=True)

    def finish(self) -> None:
        if self.live:
            self.bar.stop()


class _PairSteps(SilentProgress):
    """The TrainingProgress that `train()` gets for one pair: it moves the batch display's step bar
    (whatever it does not show, such as the quality figures, falls back to SilentProgress)."""

    def __init__(self, owner: RichBatchProgress) -> None:
        self.owner = owner

    def start(self, total_steps: int | None, first_step: int) -> None:
        self.owner.bar.update(self.owner.steps, total=total_steps, completed=first_step)

    def step(self, step: int, losses: dict[str, float] | None) -> None:
        fields = {"losses": format_losses(losses)} if losses is not None else {}
        self.owner.bar.update(self.owner.steps, completed=step + 1, **fields)

    def note(self, message: str) -> None:
        self.owner.note(message)

    def finish(self) -> None: ...


def batch_summary_table(trained: int, skipped: int, failed: int, seconds: float, contact_sheet: str) -> Table:
    table = Table(title="sincut batch", title_justify="left")
    for name in ("trained", "skipped", "failed", "time"):
        table.add_column(name, justify="right")
    table.add_column("contact sheet")
    minutes, secs = divmod(seconds, 60)
    table.add_row(str(trained), str(skipped), f"[red]{failed}[/]" if failed else "0",
                  f"{int(minutes)} min {secs:.0f} s", escape(contact_sheet))
    return table
