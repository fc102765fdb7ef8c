"""Old import path of the run folder's format, which now lives in sincut/run_folder.py (below training).
Kept only for the benchmarks/ scripts that import these names from here; new code imports run_folder.
Remove once benchmarks/ import from sincut.run_folder (issue 32, section 1)."""

from ..run_folder import read_jsonl, write_preview  # noqa: F401
