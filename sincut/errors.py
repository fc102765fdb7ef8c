"""Exceptions the CLI turns into one line on stderr and an exit code, never a traceback."""


class UserError(Exception):
    """A bad path, a bad image or a bad option (exit 2). The message names the file and the fix."""


class TrainingFailed(Exception):
    """Training cannot go on (a non-finite loss, a checkpoint that cannot be written): exit 1.
    The last good checkpoint is kept and the message says how to continue."""


class WriteFailed(Exception):
    """A file could not be written: the disk or quota is full, the file system is read-only, or the folder
    is not writable (exit 1: a fault of the machine, not of the input). Nothing was left half-written.

    `detail` is "PATH: what failed (what it needed)"; the message adds how to go on. `remedy` is what the
    user must do first ("free space" or "make ... writable"); `everywhere` is true when every later file
    would fail the same way (no space, read-only), so a batch stops at the first one."""

    def __init__(self, message: str, detail: str, remedy: str, everywhere: bool) -> None:
        super().__init__(message)
        self.detail, self.remedy, self.everywhere = detail, remedy, everywhere

    def retold(self, how_to_go_on: str) -> "WriteFailed":
        """The same fault with the caller's way on: "DETAIL; HOW_TO_GO_ON"."""
        return WriteFailed(f"{self.detail}; {how_to_go_on}", self.detail, self.remedy, self.everywhere)


class TrainingStopped(Exception):
    """Ctrl-C or SIGTERM: the step finished and a checkpoint was saved. Exit 130 or 143."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
