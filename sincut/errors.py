"""The one exception type for problems the user can fix; the CLI prints it as one line and exits 2."""


class UserError(Exception):
    """A bad path, a bad image or a bad option. The message names the file and the fix."""
