"""Faults of the user's machine: a full disk (or a folder it may not write) at each write of a run, a
translation, a batch and an export gives one line naming the path, what it needed and the way on, exit 1,
nothing half-written; following that line finishes the run bit for bit as if nothing happened, and a
translation or batch stops at the first fault every later file would meet too (tests/faults.py injects the
faults). A damaged newest checkpoint is set aside and resume goes on from the one before. Where the machine
lets the test mount a small tmpfs (root), a real full file system does the same."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from PIL import Image

from .conftest import SAMPLES, random_rgb
from .faults import FailingWrites, light_evaluations
from .test_resume import assert_same_training_state, cli, final_state, tiny

# Four steps: checkpoints at 2 and 4, a preview at 3, one evaluation (the last, made best).
RUN = tiny(4, checkpoint_every="2", preview_every="3", eval_every="1000", select_min_ssim="0")


@pytest.fixture(autouse=True)
def _light(monkeypatch):
    light_evaluations(monkeypatch)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(photo, painting, a run of RUN that nothing interrupted)."""
    root = tmp_path_factory.mktemp("straight")
    src, tgt = root / "photo.jpg", root / "painting.png"
    Image.open(SAMPLES / "photo_montStMichel.jpg").resize((96, 54)).save(src, quality=95)
    Image.open(SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg").resize((80, 63)).save(tgt)
    with pytest.MonkeyPatch.context() as m:
        light_evaluations(m)
        result = cli("train", src, tgt, "--out", root / "run", *RUN)
    assert result.exit_code == 0, result.output
    return src, tgt, root / "run"


def error_line(result, code: int = 1) -> str:
    """The one error line of a command that failed with `code`: the last line, and no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (OSError, RuntimeError))
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert [line for line in lines if line.startswith("Error:")] == lines[-1:], result.output
    return lines[-1]


def assert_whole_lines(path: Path) -> None:
    """A JSON-lines file with no torn line: every line parses and the file ends with a newline."""
    if path.exists() and path.stat().st_size:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n"), text[-80:]
        [json.loads(line) for line in text.splitlines()]


# Each write of a run, in the order they come (the file that fails, whether its line says to rerun the
# same command or to resume): start-up, the first log line, a checkpoint, a preview, then the run's end.
SITES = [("config.json", "again"), ("log.jsonl", "resume"), ("step_0000002.pt", "resume"),
         ("step_0000003.png", "resume"), ("best.pt", "resume"), ("metrics.jsonl", "resume"),
         ("result.png", "resume"), ("report.html", "resume")]
APPENDS = {"log.jsonl", "metrics.jsonl"}  # appended to line by line (a resume rewrites them whole first)


def test_a_full_disk_at_each_write_of_a_run_is_one_line_and_its_way_on_ends_bitwise_equal(straight, tmp_path,
                                                                                          monkeypatch):
    src, tgt, reference = straight
    run = tmp_path / "run"
    train = ["train", src, tgt, "--out", run, *RUN]
    command = train
    for name, way_on in SITES:
        with monkeypatch.context() as m:
            writes = FailingWrites(m, name, kind="append" if name in APPENDS else "file")
            result = cli(*command)
        assert writes.failed == [name], result.output
        line = error_line(result)
        assert f"{name}: No space left on device (" in line, line
        assert "needs about" in line or "needs up to" in line, line
        assert not list(run.rglob("*.tmp")), list(run.rglob("*.tmp"))
        assert_whole_lines(run / "log.jsonl")
        assert_whole_lines(run / "metrics.jsonl")
        for checkpoint in (run / "checkpoints").glob("step_*.pt"):
            torch.load(checkpoint, weights_only=True)
        if way_on == "again":
            assert "free space, then run the same command again" in line, line
            command = train
        else:
            assert line.endswith((f"`sincut resume {run}`", f"`sincut resume {run}` (it starts again from step 0)",
                                  f"`sincut resume {run}` writes the final images and report")), line
            command = ["resume", run, "--device", "cpu"]
        if name == "best.pt":
            assert "training finished and its last checkpoint" in line, line
    done = cli(*command)
    assert done.exit_code == 0, done.output
    assert_same_training_state(final_state(reference), final_state(run))
    assert [r["step"] for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())] == [1, 2, 3, 4]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["best"]) for r in metrics] == [(4, True)]
    for name in ("result.png", "best.png", "latest.png", "report.html", "report.png", "checkpoints/best.pt"):
        assert (run / name).is_file(), name
    assert cli("resume", run).exit_code == 2  # finished now: resume says so instead of redoing the end


def test_a_folder_that_cannot_be_written_is_one_line_exit_1(straight, tmp_path, monkeypatch):
    src, tgt, _ = straight
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        FailingWrites(m, "step_0000002.pt", errno.EACCES, room=0)
        line = error_line(cli("train", src, tgt, "--out", run, *RUN))
    assert f"step_0000002.pt: Permission denied (needs write permission on {run / 'checkpoints'})" in line, line
    assert line.endswith(f"make {run / 'checkpoints'} writable, then run `sincut resume {run}` "
                         "(it starts again from step 0)"), line


def test_resume_sets_a_damaged_newest_checkpoint_aside_and_goes_on_from_the_one_before(straight, tmp_path):
    src, tgt, reference = straight
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    newest = run / "checkpoints" / "step_0000004.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # what a crash of the disk leaves
    result = cli("resume", run, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (f"{newest}: not a readable sincut checkpoint (truncated or corrupt: " in result.output
            and "renamed to step_0000004.pt.damaged for inspection; resuming from step_0000002.pt" in result.output)
    assert (run / "checkpoints" / "step_0000004.pt.damaged").stat().st_size == reference.joinpath(
        "checkpoints", "step_0000004.pt").stat().st_size // 2  # kept as it was, for inspection
    assert_same_training_state(final_state(reference), final_state(run))


def test_resume_with_no_readable_checkpoint_says_so_in_one_line_and_renames_nothing(straight, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(straight[2], run)
    for checkpoint in (run / "checkpoints").glob("step_*.pt"):
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    line = error_line(cli("resume", run, "--device", "cpu"))
    assert line.startswith(f"Error: {run}: no checkpoint of this run is readable (") and "nothing was renamed" in line
    assert "step_0000002.pt" in line and "step_0000004.pt" in line and f"{run / 'checkpoints'}" in line
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "step_0000002.pt", "step_0000004.pt"]


def test_a_checkpoint_it_may_not_read_is_not_taken_for_damaged(straight, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(straight[2], run)
    newest = run / "checkpoints" / "step_0000004.pt"
    real_load = torch.load

    def refused(path, *args, **kwargs):
        if Path(path) == newest:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr("sincut.run_folder.torch.load", refused)
    line = error_line(cli("resume", run, "--device", "cpu"), code=2)
    assert line == f"Error: {newest}: cannot be read (Permission denied); make it readable", line
    assert newest.is_file() and not list(run.glob("checkpoints/*.damaged"))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, name in enumerate("abcd"):
        random_rgb(40, 56, seed=i).save(folder / f"{name}.png")
    return folder


@pytest.mark.parametrize("code,stops", [(errno.ENOSPC, True), (errno.EROFS, True), (errno.EACCES, False)],
                         ids=["disk-full", "read-only", "no-permission"])
def test_translate_stops_at_a_fault_every_later_file_meets_and_a_rerun_finishes(tiny_model, photos, tmp_path,
                                                                               monkeypatch, code, stops):
    out = tmp_path / "out"
    reads = []
    import sincut.inference.files as files

    real_read = files.read_image
    with monkeypatch.context() as m:
        m.setattr(files, "read_image", lambda path: reads.append(path.name) or real_read(path))
        FailingWrites(m, "b.png", code)
        result = cli("translate", tiny_model, photos, "--out", out, "--device", "cpu")
    line = error_line(result) if stops else result.output
    assert result.exit_code == 1 and f"b.png: {os.strerror(code)}" in line, result.output
    assert not list(out.rglob("*.tmp"))
    if stops:
        assert line.endswith("stopped: 1 translated, 0 already there, 3 not written; "
                             f"{'free space' if code == errno.ENOSPC else f'make {out} writable'}, then run the same "
                             "command again (finished images are skipped)"), line
        assert reads == ["a.png", "b.png"] and sorted(p.name for p in out.iterdir()) == ["a.png"]
        assert result.output.count(os.strerror(code)) == 1  # said once
    else:  # one folder it may not write fails its images; the others go on
        assert reads == ["a.png", "b.png", "c.png", "d.png"]
        assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png", "d.png"]
    rerun = cli("translate", tiny_model, photos, "--out", out, "--device", "cpu")
    assert rerun.exit_code == 0, rerun.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png", "d.png"]


def test_translate_into_an_output_folder_it_may_not_write_stops_at_once(tiny_model, photos, tmp_path, monkeypatch):
    monkeypatch.setattr("sincut.inference.files.can_write_below", lambda folder: False)
    FailingWrites(monkeypatch, "a.png", errno.EACCES, room=0)
    line = error_line(cli("translate", tiny_model, photos, "--out", tmp_path / "out", "--device", "cpu"))
    assert "a.png: Permission denied" in line and "stopped: 0 translated, 0 already there, 4 not written" in line


def test_batch_stops_at_a_full_disk_and_a_rerun_finishes(straight, tmp_path, monkeypatch):
    src, tgt, _ = straight
    second = tmp_path / "other.png"
    Image.open(tgt).transpose(Image.FLIP_LEFT_RIGHT).save(second)
    out = tmp_path / "batch"
    args = ["batch", src, "--style", tgt, second, "--out", out, *tiny(1)]
    with monkeypatch.context() as m:
        FailingWrites(m, "photo__other.png")
        line = error_line(cli(*args))
    assert "photo__other.png: No space left on device (" in line
    assert line.endswith("stopped at pair photo__other: 1 pairs done, 1 not; free space, then run the same "
                         "`sincut batch` command again (finished pairs are skipped, an unfinished one resumes "
                         "from its newest checkpoint)"), line
    assert not (out / "contact_sheet.png").exists() and not list(out.rglob("*.tmp"))
    rerun = cli(*args)
    assert rerun.exit_code == 0, rerun.output
    assert sorted(p.name for p in (out / "images").iterdir()) == ["photo__other.png", "photo__painting.png"]


def test_export_onto_a_full_disk_writes_nothing(tiny_model, tmp_path, monkeypatch):
    FailingWrites(monkeypatch, "generator.pt")
    line = error_line(cli("export", tiny_model, "--out", tmp_path / "generator.pt"))
    assert f"{tmp_path / 'generator.pt'}: No space left on device (" in line
    assert line.endswith("nothing was written there; free space, then run the same command again"), line
    assert not list(tmp_path.iterdir())


def test_import_onto_a_full_disk_leaves_no_half_made_run(tmp_path, monkeypatch):
    """A run folder with config.json but no checkpoint would refuse the rerun and resume from scratch."""
    from .test_official_checkpoints import make_official_folder

    folder, _, _ = make_official_folder("sincut", tmp_path)  # skips without the golden data
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        FailingWrites(m, "step_0000000.pt")
        line = error_line(cli("import", folder, "--out", run, "--device", "cpu"))
    assert line.endswith("nothing was imported; free space, then run the same `sincut import` again"), line
    assert not list(run.iterdir())
    result = cli("import", folder, "--out", run, "--device", "cpu")
    assert result.exit_code == 0 and (run / "checkpoints" / "step_0000000.pt").is_file(), result.output


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 3 MB tmpfs (too small for one checkpoint of RUN), which `grow()` enlarges; skipped where the
    machine does not let this process mount one (it needs root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root; the injected faults above cover the write sites")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.decode().strip()[:100]})")

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=200m", str(mount)], check=True)

    try:
        yield mount, grow
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> None:
    """Take all of `disk`'s free space but `leave` bytes (tmpfs counts whole 4 KiB pages)."""
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * (free - leave))


def test_a_real_full_disk_while_training_and_translating(straight, small_disk, tiny_model, photos, tmp_path):
    src, tgt, reference = straight
    disk, grow = small_disk
    run = disk / "run"
    line = error_line(cli("train", src, tgt, "--out", run, *RUN))
    assert f"{run / 'checkpoints' / 'step_0000002.pt'}: No space left on device (needs about " in line, line
    assert line.endswith(f"then run `sincut resume {run}` (it starts again from step 0)"), line
    assert not list(run.rglob("*.tmp")) and not list((run / "checkpoints").iterdir())

    assert cli("translate", tiny_model, photos, "--out", tmp_path / "sizes", "--device", "cpu").exit_code == 0
    pages = {p.name: -(-p.stat().st_size // 4096) for p in (tmp_path / "sizes").iterdir()}
    _fill(disk, 4096 * (pages["a.png"] + pages["b.png"] + pages["c.png"] // 2))  # room for a and b, not c
    out = disk / "out"
    line = error_line(cli("translate", tiny_model, photos, "--out", out, "--device", "cpu"))
    assert f"{out / 'c.png'}: No space left on device (" in line, line
    assert line.endswith("stopped: 2 translated, 0 already there, 2 not written; free space, then run the same "
                         "command again (finished images are skipped)"), line
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]

    (disk / "filler").unlink()
    grow()
    assert cli("resume", run, "--device", "cpu").exit_code == 0
    assert_same_training_state(final_state(reference), final_state(run))
    assert cli("translate", tiny_model, photos, "--out", out, "--device", "cpu").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png", "d.png"]
