"""Old import path of the run folder's format, which now lives in sincut/run_folder.py (below training).
Kept only for benchmarks/ (harness/training_runs.py: read_jsonl; step_profile.py: write_preview), which
import these names from here; new code imports run_folder. Remove once those import sincut.run_folder."""

from ..run_folder import read_jsonl, write_preview  # noqa: F401
