"""Closed-form colour transfers from a painting to a photo, fitted once and applicable to any image.

Two baselines (and starting points for a residual G) that a learned translation has to beat on colour:

* Reinhard et al. 2001, "Color Transfer between Images": RGB -> LMS -> log10 -> l-alpha-beta, each
  channel's mean and std matched to the painting's, back to RGB.
* Pitie et al. 2005, "N-Dimensional Probability Density Function Transfer": repeated random rotations of
  RGB space, each rotated axis's 1-D distribution matched to the painting's by quantile mapping.

Images follow the project's convention: RGB in [-1, 1], shaped [B, 3, H, W] or [3, H, W]. A fit uses all
pixels of the photo (and of the painting) at once, so a batch is fitted as one pixel population.

`fit_colour_transfer` returns a `ColourTransfer` module whose buffers hold the fitted map; its forward
maps any image the same way (translate applies it to new photos), uses only matmul, log/pow, clamp,
floor and gather, and traces to TorchScript and ONNX opset 17.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# Reinhard 2001, eq. 4: RGB -> LMS (RGB -> XYZ -> LMS combined).
RGB_TO_LMS = ((0.3811, 0.5783, 0.0402),
              (0.1967, 0.7244, 0.0782),
              (0.0241, 0.1288, 0.8444))
# Reinhard 2001, eq. 6: log LMS -> l-alpha-beta (decorrelating axes, each scaled to unit length).
_S3, _S6, _S2 = 1 / math.sqrt(3), 1 / math.sqrt(6), 1 / math.sqrt(2)
LOG_LMS_TO_LAB = ((_S3, _S3, _S3),
                  (_S6, _S6, -2 * _S6),
                  (_S2, -_S2, 0.0))
# log10 of zero is -inf: LMS is offset by this (about one 8-bit level in [0, 1]) before the log and the
# offset removed after 10**, so the round trip is exact and black pixels do not dominate the stds.
LMS_OFFSET = 1 / 256
PITIE_KNOTS = 256
PITIE_ITERATIONS = 20
# The unfitted Pitie map is the identity on rotated coordinates in this range (RGB in [-1, 1]^3 projects
# within +-sqrt(3) on any unit axis).
_IDENTITY_RANGE = 2.0
KINDS = ("reinhard", "pitie")


def _as_batch(image: Tensor) -> tuple[Tensor, bool]:
    if image.dim() == 3:
        return image.unsqueeze(0), True
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected an RGB image [B, 3, H, W] or [3, H, W], got shape {tuple(image.shape)}")
    return image, False


def _apply_matrix(matrix: Tensor, image: Tensor) -> Tensor:
    """matrix @ pixel for every pixel of a [B, 3, H, W] image."""
    return torch.einsum("ij,bjhw->bihw", matrix.to(image.device, image.dtype), image)


# The exact inverses (not the paper's rounded ones), computed once so export sees plain matrices.
_FORWARD = (torch.tensor(RGB_TO_LMS, dtype=torch.float64), torch.tensor(LOG_LMS_TO_LAB, dtype=torch.float64))
_INVERSE = (torch.linalg.inv(_FORWARD[1]), torch.linalg.inv(_FORWARD[0]))


def rgb_to_lab(image: Tensor) -> Tensor:
    """Reinhard's l-alpha-beta of a [-1, 1] RGB image [B, 3, H, W] (values clamped to [-1, 1] first)."""
    rgb = (image.clamp(-1, 1) + 1) / 2
    lms = _apply_matrix(_FORWARD[0], rgb)
    return _apply_matrix(_FORWARD[1], torch.log10(lms + LMS_OFFSET))


def lab_to_rgb(lab: Tensor) -> Tensor:
    """Inverse of `rgb_to_lab`; not clamped."""
    log_lms = _apply_matrix(_INVERSE[0], lab)
    lms = torch.pow(10.0, log_lms) - LMS_OFFSET
    return _apply_matrix(_INVERSE[1], lms) * 2 - 1


def _channel_stats(image: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and (population) std over all pixels of all images."""
    flat = image.transpose(0, 1).reshape(3, -1).double()
    return flat.mean(1), flat.std(1, unbiased=False)


def _interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """np.interp for 1-D float tensors: xp nondecreasing (ties allowed), clamped outside [xp[0], xp[-1]]."""
    hi = torch.searchsorted(xp, x, right=True).clamp(1, len(xp) - 1)
    lo = hi - 1
    dx = xp[hi] - xp[lo]
    weight = torch.where(dx > 0, (x - xp[lo]) / torch.where(dx > 0, dx, torch.ones_like(dx)), torch.zeros_like(dx))
    weight = weight.clamp(0, 1)
    return fp[lo] + weight * (fp[hi] - fp[lo])


def _quantile_levels(n: int, like: Tensor) -> Tensor:
    return (torch.arange(n, dtype=like.dtype, device=like.device) + 0.5) / n


def _seeded_rotation(generator: torch.Generator) -> Tensor:
    """A random orthonormal 3x3 matrix: QR of a Gaussian matrix, signs fixed so it is unique for the draw."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(3, dtype=torch.float64))


def _exact_dtype(image: Tensor) -> torch.dtype:
    """The dtype PitieTransfer applies its map in: float64 wherever the device has it."""
    return torch.float32 if image.device.type == "mps" else torch.float64


class ColourTransfer(nn.Module):
    """A fitted colour map applied pixel by pixel; an unfitted one is the identity (up to rounding)."""

    kind = ""

    def forward(self, image: Tensor) -> Tensor:  # pragma: no cover - subclasses
        raise NotImplementedError


class ReinhardTransfer(ColourTransfer):
    """lab(out) = scale * lab(in) + shift per channel: the photo's lab means/stds made the painting's."""

    kind = "reinhard"

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(3))
        self.register_buffer("shift", torch.zeros(3))

    def fit(self, photo: Tensor, painting: Tensor) -> "ReinhardTransfer":
        photo_mean, photo_std = _channel_stats(rgb_to_lab(_as_batch(photo)[0].double()))
        paint_mean, paint_std = _channel_stats(rgb_to_lab(_as_batch(painting)[0].double()))
        # A flat photo channel has no spread to scale: it moves to the painting's mean.
        scale = torch.where(photo_std > 1e-8, paint_std / photo_std.clamp_min(1e-8), torch.ones_like(photo_std))
        self.scale.copy_(scale)
        self.shift.copy_(paint_mean - scale * photo_mean)
        return self

    def forward(self, image: Tensor) -> Tensor:
        x, squeezed = _as_batch(image)
        lab = rgb_to_lab(x)
        lab = lab * self.scale.to(x.dtype).view(1, 3, 1, 1) + self.shift.to(x.dtype).view(1, 3, 1, 1)
        out = lab_to_rgb(lab).clamp(-1, 1)
        return out[0] if squeezed else out


class PitieTransfer(ColourTransfer):
    """`iterations` rotations of RGB; after each, every rotated axis goes through a monotone
    piecewise-linear lookup with `knots` values on the uniform grid low + k * spacing (clamped outside).

    The grid is stored as low and spacing, not low and high, so the lookup does no arithmetic on buffers
    alone: the ONNX exporter folds such arithmetic into constants in the buffers' float32, not in the
    dtype the forward computes in (it folded high - low in float32 where torch subtracts in float64)."""

    kind = "pitie"

    def __init__(self, iterations: int = PITIE_ITERATIONS, knots: int = PITIE_KNOTS) -> None:
        super().__init__()
        if iterations < 1 or knots < 2:
            raise ValueError("PitieTransfer needs iterations >= 1 and knots >= 2")
        self.register_buffer("rotations", torch.eye(3).repeat(iterations, 1, 1))  # columns are the axes
        self.register_buffer("low", torch.full((iterations, 3), -_IDENTITY_RANGE))
        self.register_buffer("spacing", torch.full((iterations, 3), 2 * _IDENTITY_RANGE / (knots - 1)))
        grid = torch.linspace(-_IDENTITY_RANGE, _IDENTITY_RANGE, knots)
        self.register_buffer("tables", grid.repeat(iterations, 3, 1))  # [iterations, 3, knots]

    @property
    def iterations(self) -> int:
        return self.rotations.shape[0]

    @property
    def knots(self) -> int:
        return self.tables.shape[-1]

    def _lookup(self, values: Tensor, step: int, axis: int) -> Tensor:
        """The fitted lookup of rotation `step`, axis `axis`, by linear interpolation between knots."""
        low = self.low[step, axis].to(values.dtype)
        spacing = self.spacing[step, axis].to(values.dtype)
        table = self.tables[step, axis].to(values.dtype)
        position = ((values - low) / spacing).clamp(0, self.knots - 1)
        index = torch.floor(position).clamp(max=self.knots - 2)
        frac = position - index
        index = index.long()
        left = torch.gather(table, 0, index.reshape(-1)).reshape(values.shape)
        right = torch.gather(table, 0, (index + 1).reshape(-1)).reshape(values.shape)
        return left + frac * (right - left)

    def _step(self, pixels: Tensor, step: int) -> Tensor:
        """One rotation: project [N, 3] pixels onto the axes, look each axis up, rotate back."""
        rotation = self.rotations[step].to(pixels.dtype)
        projected = pixels @ rotation
        mapped = torch.stack([self._lookup(projected[:, axis], step, axis) for axis in range(3)], dim=1)
        return mapped @ rotation.t()

    def forward(self, image: Tensor) -> Tensor:
        x, squeezed = _as_batch(image)
        b, _, h, w = x.shape
        # Float64 (float32 on MPS, which has no float64): a fitted map can have a local gain in the tens of
        # thousands (a dense cluster of photo colours spread over the painting's range, compounded over the
        # rotations), so float32 rounding differences between engines (ATen, onnxruntime, GPUs: an ulp in a
        # matmul) grew to several 8-bit levels; float64's rounding stays far below one. Autocast leaves it.
        pixels = x.permute(0, 2, 3, 1).reshape(-1, 3).to(_exact_dtype(x))
        for step in range(self.iterations):
            pixels = self._step(pixels, step)
        out = pixels.reshape(b, h, w, 3).permute(0, 3, 1, 2).clamp(-1, 1).to(x.dtype)
        return out[0] if squeezed else out

    def fit(self, photo: Tensor, painting: Tensor, seed: int = 0) -> "PitieTransfer":
        """Fit rotation by rotation on the photo as the previous lookups left it, so applying the module
        to the photo reproduces the fit exactly. Deterministic for a seed."""
        generator = torch.Generator().manual_seed(seed)
        pixels = _as_batch(photo)[0].detach().double().permute(0, 2, 3, 1).reshape(-1, 3)
        target = _as_batch(painting)[0].detach().double().permute(0, 2, 3, 1).reshape(-1, 3).cpu()
        pixels = pixels.cpu()
        photo_levels = _quantile_levels(len(pixels), target)
        target_levels = _quantile_levels(len(target), target)
        for step in range(self.iterations):
            rotation = _seeded_rotation(generator)
            self.rotations[step] = rotation.float()
            projected = pixels @ rotation
            target_projected = target @ rotation
            for axis in range(3):
                source_sorted = projected[:, axis].sort().values
                target_sorted = target_projected[:, axis].sort().values
                low, high = float(source_sorted[0]), float(source_sorted[-1])
                if high - low < 1e-6:  # a flat axis: widen the grid so the lookup stays well defined
                    low, high = low - 5e-7, high + 5e-7
                # The knots exactly where the lookup puts them: from low and spacing as stored (float32).
                self.low[step, axis] = low
                self.spacing[step, axis] = (high - low) / (self.knots - 1)
                grid = (self.low[step, axis].double()
                        + self.spacing[step, axis].double() * torch.arange(self.knots, dtype=torch.float64))
                # The photo's CDF at each knot, then the painting's quantile at that level.
                level = _interp(grid, source_sorted, photo_levels)
                self.tables[step, axis] = _interp(level, target_levels, target_sorted).float()
            pixels = self._step(pixels, step)
        return self


def fit_colour_transfer(kind: str, photo: Tensor, painting: Tensor, iterations: int = PITIE_ITERATIONS,
                        seed: int = 0) -> ColourTransfer:
    """A `ColourTransfer` of `kind` ("reinhard" or "pitie") fitted to move the photo's colours to the painting's."""
    with torch.no_grad():
        if kind == "reinhard":
            return ReinhardTransfer().fit(photo, painting)
        if kind == "pitie":
            return PitieTransfer(iterations).fit(photo, painting, seed)
    raise ValueError(f"colour transfer kind must be one of {', '.join(KINDS)}, got {kind!r}")


def make_colour_transfer(kind: str) -> ColourTransfer:
    """An unfitted module of `kind` with the default sizes, to load a fitted state_dict into."""
    if kind == "reinhard":
        return ReinhardTransfer()
    if kind == "pitie":
        return PitieTransfer()
    raise ValueError(f"colour transfer kind must be one of {', '.join(KINDS)}, got {kind!r}")


def reinhard_transfer(photo: Tensor, painting: Tensor) -> Tensor:
    """Reinhard et al. 2001 colour transfer of the photo toward the painting (fit, then apply)."""
    with torch.no_grad():
        return fit_colour_transfer("reinhard", photo, painting).to(photo.device)(photo)


def pitie_transfer(photo: Tensor, painting: Tensor, iterations: int = PITIE_ITERATIONS, seed: int = 0) -> Tensor:
    """Pitie et al. 2005 iterative distribution transfer of the photo toward the painting (fit, then apply)."""
    with torch.no_grad():
        return fit_colour_transfer("pitie", photo, painting, iterations, seed).to(photo.device)(photo)
