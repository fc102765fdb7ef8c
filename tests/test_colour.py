"""Closed-form colour transfers (sincut/nets/colour.py) checked against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sincut.nets.colour import (LMS_OFFSET, RGB_TO_LMS, PitieTransfer, ReinhardTransfer, fit_colour_transfer,
                                lab_to_rgb, make_colour_transfer, pitie_transfer, reinhard_transfer, rgb_to_lab)
from sincut.data.images import load_image

from .conftest import SAMPLES


def _smooth_image(seed: int, centre: tuple[float, float, float], spread: float, size: int = 24) -> torch.Tensor:
    """A [1, 3, size, size] image of correlated colours around `centre` (never reaching +-1)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 1, size, size, generator=g, dtype=torch.float64)
    noise = torch.rand(1, 3, size, size, generator=g, dtype=torch.float64)
    return torch.tensor(centre, dtype=torch.float64).view(1, 3, 1, 1) + spread * (0.7 * base + 0.3 * noise - 0.5)


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled photo and painting at a small size (real colour distributions)."""
    from PIL import Image
    photo = Image.open(SAMPLES / "photo_montStMichel.jpg").convert("RGB").resize((64, 36))
    painting = Image.open(SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg").convert("RGB").resize(
        (60, 48))
    to_tensor = lambda im: torch.from_numpy(np.asarray(im).astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    return to_tensor(photo), to_tensor(painting)


def test_rgb_lab_round_trip() -> None:
    image = torch.rand(2, 3, 9, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    image[0, :, 0, 0] = -1.0  # black: the log's offset keeps it finite
    image[0, :, 0, 1] = 1.0
    assert torch.isfinite(rgb_to_lab(image)).all()
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(image)), image, atol=1e-10, rtol=0)


def test_lab_of_grey_has_no_colour_and_l_is_the_log_mean() -> None:
    # For grey g in [0, 1] the LMS values are g times the matrix rows' sums; l = (sum log10) / sqrt(3),
    # alpha and beta are differences of nearly equal logs (the row sums differ by < 0.003).
    g = 0.6
    image = torch.full((1, 3, 1, 1), 2 * g - 1, dtype=torch.float64)
    lab = rgb_to_lab(image).flatten()
    logs = [np.log10(g * sum(row) + LMS_OFFSET) for row in RGB_TO_LMS]
    assert lab[0].item() == pytest.approx(sum(logs) / np.sqrt(3), abs=1e-12)
    assert lab[1].item() == pytest.approx((logs[0] + logs[1] - 2 * logs[2]) / np.sqrt(6), abs=1e-12)
    assert lab[2].item() == pytest.approx((logs[0] - logs[1]) / np.sqrt(2), abs=1e-12)
    assert abs(lab[1].item()) < 1e-3 and abs(lab[2].item()) < 1e-3


def test_reinhard_matches_the_paintings_lab_means_and_stds() -> None:
    photo = _smooth_image(0, (0.1, -0.1, -0.3), 0.8)
    painting = _smooth_image(1, (0.2, 0.1, -0.2), 0.5)
    out = reinhard_transfer(photo, painting)
    assert out.abs().max() < 1  # nothing clamped, so lab(out) is exactly the affine map
    lab_out, lab_paint, lab_photo = rgb_to_lab(out), rgb_to_lab(painting), rgb_to_lab(photo)
    for dims in ((0, 2, 3),):
        torch.testing.assert_close(lab_out.mean(dims), lab_paint.mean(dims), atol=1e-4, rtol=0)
        torch.testing.assert_close(lab_out.std(dims, unbiased=False), lab_paint.std(dims, unbiased=False),
                                   atol=1e-4, rtol=0)
        assert (lab_photo.mean(dims) - lab_paint.mean(dims)).abs().max() > 1e-2  # the check can fail


def test_reinhard_constant_photo_becomes_the_paintings_log_mean_colour() -> None:
    # A flat photo moves to the painting's mean lab colour. lab is linear in log10(LMS + offset), so the
    # mean of two equally frequent colours is, per LMS channel, the geometric mean of (LMS + offset).
    c1, c2 = np.array([0.9, 0.5, 0.2]), np.array([0.1, 0.3, 0.7])  # RGB in [0, 1]
    painting = torch.tensor(np.stack([c1, c2]).T.reshape(1, 3, 1, 2) * 2 - 1)
    photo = torch.full((3, 5, 4), 0.25, dtype=torch.float64)
    out = reinhard_transfer(photo, painting)
    m = np.array(RGB_TO_LMS)
    lms = np.sqrt((m @ c1 + LMS_OFFSET) * (m @ c2 + LMS_OFFSET)) - LMS_OFFSET
    expected = np.linalg.solve(m, lms) * 2 - 1
    assert out.shape == (3, 5, 4)
    np.testing.assert_allclose(out.numpy().reshape(3, -1), np.repeat(expected[:, None], 20, 1), atol=1e-6)


def test_reinhard_constant_painting_paints_everything_its_colour() -> None:
    colour = torch.tensor([0.4, -0.2, 0.6], dtype=torch.float64)
    painting = colour.view(1, 3, 1, 1).expand(1, 3, 4, 4)
    out = reinhard_transfer(_smooth_image(3, (0.0, 0.0, 0.0), 1.0), painting)
    torch.testing.assert_close(out, colour.view(1, 3, 1, 1).expand_as(out), atol=1e-6, rtol=0)


def _wasserstein_1d(a: np.ndarray, b: np.ndarray, levels: int = 512) -> float:
    """W1 between two samples via their quantile functions (independent of the module's code)."""
    q = (np.arange(levels) + 0.5) / levels
    return float(np.mean(np.abs(np.quantile(a, q) - np.quantile(b, q))))


def test_pitie_moves_every_marginal_to_the_paintings(pair) -> None:
    photo, painting = pair
    out = pitie_transfer(photo, painting)
    rng = np.random.default_rng(123)
    directions = rng.normal(size=(8, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    pix = lambda t: t.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()
    before = [_wasserstein_1d(pix(photo) @ d, pix(painting) @ d) for d in directions]
    after = [_wasserstein_1d(pix(out) @ d, pix(painting) @ d) for d in directions]
    assert min(before) > 0.02
    assert max(a / b for a, b in zip(after, before)) < 0.2, (before, after)


def test_pitie_module_equals_the_one_shot_function_and_is_seeded(pair) -> None:
    photo, painting = pair
    module = fit_colour_transfer("pitie", photo, painting, seed=5)
    assert isinstance(module, PitieTransfer) and module.tables.shape == (20, 3, 256)
    assert torch.equal(module(photo), pitie_transfer(photo, painting, seed=5))
    assert torch.equal(module(photo[0]), module(photo)[0])
    assert not torch.equal(pitie_transfer(photo, painting, seed=6), module(photo))
    # Lookups are monotone (quantile maps), so every rotated axis keeps the photo's order.
    assert (module.tables.diff(dim=-1) >= 0).all()


def test_pitie_lookup_is_linear_between_knots_and_clamped_outside() -> None:
    module = PitieTransfer(iterations=1, knots=3)
    module.low.fill_(0.0)
    module.spacing.fill_(0.5)
    module.tables[0] = torch.tensor([0.0, 0.2, 1.0])  # knots at 0, 0.5, 1
    values = torch.tensor([-3.0, 0.0, 0.25, 0.5, 0.75, 1.0, 7.0])
    torch.testing.assert_close(module._lookup(values, 0, 1), torch.tensor([0.0, 0.0, 0.1, 0.2, 0.6, 1.0, 1.0]))


@pytest.mark.parametrize("kind", ["reinhard", "pitie"])
def test_unfitted_transfer_is_the_identity(kind: str) -> None:
    image = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(2)) * 2 - 1
    torch.testing.assert_close(make_colour_transfer(kind)(image), image, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["reinhard", "pitie"])
def test_fitted_transfer_survives_state_dict_and_traces(kind: str, pair) -> None:
    photo, painting = pair
    module = fit_colour_transfer(kind, photo, painting)
    fresh = make_colour_transfer(kind)
    fresh.load_state_dict(module.state_dict())
    other = torch.rand(2, 3, 10, 13, generator=torch.Generator().manual_seed(4)) * 2 - 1
    assert torch.equal(fresh(other), module(other))
    traced = torch.jit.trace(module, photo)
    torch.testing.assert_close(traced(other), module(other), atol=1e-6, rtol=0)


def test_bundled_images_load_in_the_projects_range() -> None:
    # The transfers assume [-1, 1] RGB, the convention of sincut/data/images.py.
    image = load_image(SAMPLES / "photo_montStMichel.jpg")
    assert image.min() >= -1 and image.max() <= 1 and image.min() < -0.5 and image.max() > 0.5


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="reinhard, pitie"):
        fit_colour_transfer("lut", torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2))
    assert isinstance(make_colour_transfer("reinhard"), ReinhardTransfer)


@pytest.mark.parametrize("kind", ["reinhard", "pitie"])
def test_fitted_transfer_exports_to_onnx(kind: str, pair) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import io
    photo, painting = pair
    module = fit_colour_transfer(kind, photo, painting)
    buffer = io.BytesIO()
    torch.onnx.export(module, (photo,), buffer, opset_version=17, input_names=["image"], dynamo=False,
                      dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}})
    other = torch.rand(2, 3, 11, 17, generator=torch.Generator().manual_seed(4)) * 2 - 1
    got = ort.InferenceSession(buffer.getvalue()).run(None, {"image": other.numpy()})[0]
    # float32 rounding of a knot position can move a value across a knot: the slope there is bounded.
    np.testing.assert_allclose(got, module(other).numpy(), atol=1e-3)
