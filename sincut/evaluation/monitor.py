"""A training run's quality over time: at each evaluation step, measure the translation of SOURCE
(downscaled to at most 896x896 pixels' worth, see training/loop.py), append it to `metrics.jsonl`, and keep
the best step as `checkpoints/best.pt` and `best.png` (full size). The loop hands over the translation
it already made for the preview (never a second one). SIFID joins the figures where the FID Inception
network is installed (at 256 px short side, so its cost does not grow with the image; TARGET's
Gaussian is fitted once). The texture distance (high-passed luminance at 512 px, texture.py) is
measured every time: about 0.2 s per evaluation on one CPU thread.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from torch import Tensor

from ..config import TrainConfig
from ..data.images import save_image
from ..errors import UserError
from ..progress import TrainingProgress
from ..run_folder import BEST_IMAGE, METRICS_FILE, append_jsonl, save_best_checkpoint, truncate_jsonl
from .inception import load_inception
from .inception_metrics import SifidReference
from .quality import Quality, StyleReference
from .report import write_report
from .selection import selection_key


def check_selection_possible(config: TrainConfig) -> None:
    """--select-by sifid without the network could never choose best.pt: say so before training."""
    if config.select_by == "sifid" and load_inception() is None:
        raise UserError('--select-by sifid needs the FID Inception network, which sincut never downloads: '
                        'pip install "sincut[metrics]", or choose --select-by style')


class RunMonitor:
    """Evaluates at `--eval-every` steps (0: at every preview) and at the last step."""

    def __init__(self, run: Path, config: TrainConfig, source: Tensor, target: Tensor,
                 progress: TrainingProgress, started: float,
                 full_translation: Callable[[int], np.ndarray] | None = None) -> None:
        """`source` and `target` are the (possibly downscaled) evaluation images; `full_translation(step)`,
        when given, makes the full-size best.png (uint8 HxWx3) when `source` was downscaled."""
        self.run, self.config, self.progress, self.started = run, config, progress, started
        self.full_translation = full_translation
        self.source = source.detach().cpu()
        self.reference = StyleReference(target, tuple(source.shape[-2:]))  # TARGET's patches, sampled once
        network = load_inception()
        self.sifid_reference = SifidReference(target, network) if network is not None else None
        self.best_key: float | None = None
        self.best_step: int | None = None

    def resume_from(self, step: int) -> None:
        """On resume: drop evaluations past the checkpoint (the dead process made them) and remember
        the best one so far, so best.pt is only replaced by a better evaluation."""
        for record in truncate_jsonl(self.run / METRICS_FILE, step):
            key = selection_key(record, self.config.select_by, self.config.select_min_ssim)
            if key is not None and (self.best_key is None or key < self.best_key):
                self.best_key, self.best_step = key, record["step"]

    def due(self, step: int) -> bool:
        interval = self.config.eval_every or self.config.preview_every
        return step % interval == 0 or step == self.config.steps

    def evaluate(self, step: int, translated: Tensor, state: Callable[[], dict], candidate: bool = True) -> Quality:
        """Measure `translated` (G's output for the whole source at this step); save it if best.
        `candidate=False` records the figures only (the untrained model's, as a starting point)."""
        t0 = time.perf_counter()
        quality = self.reference.evaluate(translated, self.source)
        if self.sifid_reference is not None:
            quality = dataclasses.replace(quality, sifid=self.sifid_reference.distance(translated))
        figures = {k: v for k, v in quality.to_dict().items() if k != "pairs"}
        key = selection_key(figures, self.config.select_by, self.config.select_min_ssim)
        best = candidate and key is not None and (self.best_key is None or key < self.best_key)
        if best:
            save_best_checkpoint(self.run, step, state(), figures)
            if self.full_translation is None:
                save_image(translated, self.run / BEST_IMAGE)
            else:
                save_image(Image.fromarray(self.full_translation(step), "RGB"), self.run / BEST_IMAGE)
            self.best_key, self.best_step = key, step
        now = time.perf_counter()
        record = {"step": step, **figures, "best": best, "eval_seconds": round(now - t0, 3),
                  "elapsed_seconds": round(now - self.started, 2)}
        append_jsonl(self.run / METRICS_FILE, record)
        shown = {"style": quality.style_distance, "texture": quality.texture_distance, "ssim": quality.ssim,
                 "edges": quality.edge_correlation}
        if quality.sifid is not None:
            shown["sifid"] = quality.sifid
        self.progress.metrics(step, shown)
        return quality

    def write_report(self) -> None:
        """The run's report.html and report.png, once its last files (result.png) are written."""
        write_report(self.run)
