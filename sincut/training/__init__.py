"""The training stage: schedule, Trainer (one step), the loop (train / resume / import), run folders, checkpoints,
torchrun, and the paper's checkpoints.
"""
