"""Old import path of the checkpoint format, which now lives in sincut/run_folder.py (below training).
Kept only for benchmarks/step_profile.py, which imports save_best_checkpoint from here; new code imports
run_folder. Remove once benchmarks/ import from sincut.run_folder (issue 32, section 1)."""

from ..run_folder import save_best_checkpoint  # noqa: F401
