"""The evaluation stage: quality figures of a translation (style, texture, content, Inception-based), the
best-checkpoint rule, the FID Inception network, the monitor that evaluates during training, and the run report.
"""
