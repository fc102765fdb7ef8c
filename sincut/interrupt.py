"""Graceful stops: the first Ctrl-C or SIGTERM asks the loop to finish its step and checkpoint;
a second Ctrl-C stops at once."""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType


class StopRequest:
    """Context manager that records the first SIGINT/SIGTERM instead of raising, so the training
    loop can finish the current step, save, and exit with 128 + signal number."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.signum = signum
        sys.stderr.write(f"\n{signal.Signals(signum).name}: finishing this step and saving a checkpoint "
                         "(press Ctrl-C again to stop at once)\n")
        sys.stderr.flush()

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


KILL_AT_ENV = "SINCUT_TEST_KILL_AT"
_passed: list[str] = []  # the kill points this process has passed while $SINCUT_TEST_KILL_AT was set


def kill_point(moment: str) -> None:
    """A hard-kill test hook: SIGKILL this process when $SINCUT_TEST_KILL_AT names `moment`, so
    tests/test_resume.py can kill mid-step, mid-checkpoint or mid-preview exactly, not by timing.

    Moments: `step:N:after-D` (step N has updated D but not yet G), `write:NAME` (a file NAME is fully
    written to its temp file but not yet renamed into place) and `append:NAME` (a line was appended to
    NAME). `nth:K` kills at the K-th of them this process passes, whichever it is: tests/test_kill.py
    draws K from a seeded generator, so its random moments are the same at every run of the test."""
    wanted = os.environ.get(KILL_AT_ENV)
    if not wanted:
        return
    _passed.append(moment)
    if wanted in (moment, f"nth:{len(_passed)}"):
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def kill_points_passed() -> list[str]:
    """The kill points this process has passed while $SINCUT_TEST_KILL_AT was set, in order."""
    return list(_passed)
