"""The training stage: schedule, Trainer (one step), the loop (train / resume / import), --minutes sizing
and torchrun. It writes the run folder through sincut/run_folder.py and evaluates through evaluation/'s monitor.
"""
