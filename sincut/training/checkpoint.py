"""Old import path of the checkpoint format, which now lives in sincut/run_folder.py (below training).
Kept only for benchmarks/step_profile.py, which imports save_best_checkpoint from here; new code imports
run_folder. Remove once it imports sincut.run_folder."""

from ..run_folder import save_best_checkpoint  # noqa: F401
