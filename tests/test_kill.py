"""SIGKILL at random moments: a short run of the paper's recipe and of the quick recipe is killed again and
again (at start-up, mid-step, between a checkpoint's temp file and its rename, after a log line, ...),
continued each time as the user is told (`sincut resume RUN`, or the same `sincut train` when the run died
before its run files), and ends with exactly the state of a run never interrupted, with no temp file left.

The moments are the run's kill points (sincut/interrupt.py), the K-th of them drawn from a seeded generator,
so every run of the test kills at the same moments. Each run is a fresh process, forked from a server that
imported sincut once (multiprocessing's forkserver), so a kill costs no interpreter start-up.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from sincut.interrupt import KILL_AT_ENV
from sincut.run_folder import is_run_dir, list_checkpoints

from .faults import light_evaluations
from .test_resume import assert_same_training_state, final_state, tiny

RECIPES = {  # six steps, a checkpoint every two, a preview at 3; one evaluation, at the end
    "paper": tiny(6, checkpoint_every="2", preview_every="3", eval_every="1000"),
    "quick": tiny(6, checkpoint_every="2", preview_every="3", eval_every="1000", preset="quick"),
}
KILLS = {"paper": 5, "quick": 4}
SEED = 1  # its kills: start-up (run.json, so train is run again), mid-step, a checkpoint's write, log lines


def _context() -> multiprocessing.context.BaseContext:
    """Fork from a server that imported sincut (where the platform has one); spawn elsewhere."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["sincut.cli", "sincut.training.loop", "sincut.evaluation.monitor", __name__])
    return ctx


def _sincut(args: list[str], kill_at: str | None, log: str, passed: str) -> None:
    """`sincut ARGS` in this child process as the command line runs it (one thread, so it is bitwise
    comparable with the others), its output appended to `log`; writes the kill points it passed (JSON)
    to `passed` if it lives to the end. Light evaluations (fixed figures, small previews), to save time."""
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(out, 1)
    os.dup2(out, 2)
    import torch

    from sincut.cli import main
    from sincut.interrupt import kill_points_passed

    torch.set_num_threads(1)
    light_evaluations(pytest.MonkeyPatch())  # this process ends with the run
    os.environ.pop(KILL_AT_ENV, None)
    os.environ.update({KILL_AT_ENV: kill_at} if kill_at else {})
    try:
        main(args, prog_name="sincut")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    Path(passed).write_text(json.dumps(kill_points_passed()))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_sincut(ctx, args: list, kill_at: str | None, folder: Path) -> tuple[int, list[str] | None]:
    """(exit code, the kill points it passed or None when it was killed) of `sincut ARGS` in a fresh process."""
    passed = folder / "passed.json"
    passed.unlink(missing_ok=True)
    child = ctx.Process(target=_sincut, args=([str(a) for a in args], kill_at, str(folder / "output.txt"),
                                              str(passed)))
    child.start()
    child.join(timeout=300)
    assert child.exitcode is not None, "the child hung"
    return child.exitcode, json.loads(passed.read_text()) if passed.exists() else None


def moments_left(trace: list[str], run: Path) -> int:
    """About how many kill points a process continuing `run` passes: those the uninterrupted run (`trace`)
    passed after the newest checkpoint, and a start-up's (what it passed before its first step)."""
    start_up = trace.index("step:1:after-D")
    if not is_run_dir(run):
        return len(trace)
    found = list_checkpoints(run)
    return len(trace) - (trace.index(f"write:{found[-1].name}") + 1 if found else start_up) + start_up


@pytest.mark.parametrize("recipe", RECIPES)
def test_random_sigkills_then_resume_end_bitwise_equal_to_a_run_never_killed(tiny_pair, tmp_path: Path, recipe):
    ctx = _context()
    src, tgt = tiny_pair
    straight, run = tmp_path / "straight", tmp_path / "killed"
    train = lambda out: ["train", src, tgt, "--out", out, *RECIPES[recipe]]  # noqa: E731
    code, trace = run_sincut(ctx, train(straight), "nth:0", tmp_path)  # lists the kill points, kills at none
    assert code == 0, (tmp_path / "output.txt").read_text()

    rng = random.Random(f"{SEED}:{recipe}")
    # each process lives at most its start-up and a KILLS-th of the run, so the kills spread over all of it
    reach = trace.index("step:1:after-D") + -(-len(trace) // KILLS[recipe])
    killed_at: list[tuple[int, int]] = []  # (the kill point drawn, of about how many the process had left)
    code = None
    while code != 0:  # the user's way on after each kill; the last process, not killed, finishes the run
        left = moments_left(trace, run)
        k = rng.randint(1, min(left, reach)) if len(killed_at) < KILLS[recipe] else None
        command = ["resume", run, "--device", "cpu"] if is_run_dir(run) else train(run)
        code, _ = run_sincut(ctx, command, k and f"nth:{k}", tmp_path)
        output = (tmp_path / "output.txt").read_text()
        assert code in (0, -signal.SIGKILL) and "Traceback" not in output, output
        killed_at += [(k, left)] if code else []
    assert len(killed_at) >= KILLS[recipe] - 1, killed_at  # a kill drawn past a process's last moment: none

    assert not list(run.rglob("*.tmp")), list(run.rglob("*.tmp"))
    assert_same_training_state(final_state(straight), final_state(run))
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7)), (killed_at, steps)
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [6]
    assert (run / "result.png").read_bytes() == (straight / "result.png").read_bytes()
    assert (run / "report.html").is_file()
    assert (run / "checkpoints" / "best.pt").exists() == (straight / "checkpoints" / "best.pt").exists()


def test_train_run_again_after_a_kill_at_start_up_removes_the_temp_files_of_its_run_files(tmp_path: Path):
    """A train killed while it wrote run.json or config.json is run again (the folder is no run yet): its
    temp files go, and nothing else of the folder (a resume would remove them too, a train that finishes
    would not)."""
    from sincut.run_folder import prepare_run_dir

    run = tmp_path / "run"
    run.mkdir()
    for name in (".run.json.k3j4a9zq.tmp", ".config.json.0p1x2c3v.tmp", ".notes.txt.tmp", "photo.jpg"):
        (run / name).write_text("{")
    prepare_run_dir(run)
    assert sorted(p.name for p in run.iterdir()) == [".notes.txt.tmp", "photo.jpg"]
