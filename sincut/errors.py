"""Exceptions the CLI turns into one line on stderr and an exit code, never a traceback."""


class UserError(Exception):
    """A bad path, a bad image or a bad option (exit 2). The message names the file and the fix."""


class TrainingFailed(Exception):
    """Training cannot go on (a non-finite loss, a checkpoint that cannot be written): exit 1.
    The last good checkpoint is kept and the message says how to continue."""


class TrainingStopped(Exception):
    """Ctrl-C or SIGTERM: the step finished and a checkpoint was saved. Exit 130 or 143."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
