"""The recipe options --colour-init, --lambda-patch-swd and --lambda-patch-match: G starting from a colour
transfer, the patch-distribution (sliced Wasserstein) term and the mark-matching (relaxed EMD) term toward
TARGET."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from sincut.cli import main
from sincut.nets.colour import fit_colour_transfer
from sincut.config import make_config
from sincut.data.images import load_image
from sincut.objective import (Forward, Objective, image_patches, patch_match_loss, patch_swd_loss,
                              sliced_wasserstein)
from sincut.nets import Discriminator, Generator, ProjectionHead


def _numpy_patches(images: np.ndarray, size: int) -> np.ndarray:
    """All size x size patches of [B, C, H, W], flattened channel-major like F.unfold, by explicit loops."""
    b, c, h, w = images.shape
    rows = [images[i, :, y:y + size, x:x + size].reshape(-1)
            for i in range(b) for y in range(h - size + 1) for x in range(w - size + 1)]
    return np.stack(rows)


def _numpy_swd(a: np.ndarray, b: np.ndarray, projections: np.ndarray) -> float:
    pa, pb = np.sort(a @ projections, axis=0), np.sort(b @ projections, axis=0)
    return float(np.mean((pa - pb) ** 2))


def test_sliced_wasserstein_is_zero_for_the_same_set_and_positive_for_another() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(50, 6, generator=g, dtype=torch.float64)
    p = torch.nn.functional.normalize(torch.randn(6, 8, generator=g, dtype=torch.float64), dim=0)
    assert sliced_wasserstein(a, a[torch.randperm(50, generator=g)], p).item() == 0.0  # order is irrelevant
    assert sliced_wasserstein(a, a + 0.5, p).item() > 0
    # A shift by t along every axis moves each projection by t * (sum of its direction): W2^2 is its square.
    shift = 0.5 * p.sum(0)
    assert sliced_wasserstein(a, a + 0.5, p).item() == pytest.approx(float((shift ** 2).mean()), rel=1e-9)


def test_patch_swd_equals_an_independent_numpy_computation() -> None:
    g = torch.Generator().manual_seed(1)
    fake = torch.rand(2, 3, 12, 14, generator=g, dtype=torch.float64) * 2 - 1
    real = torch.rand(2, 3, 12, 14, generator=g, dtype=torch.float64) * 1.5 - 0.7
    got = patch_swd_loss(fake, real, (1, 2), torch.Generator().manual_seed(7), patch_size=3, projections=16)
    # The same projections: equal patch counts draw nothing else, one [27, 16] matrix per scale, in order.
    draws = torch.Generator().manual_seed(7)
    expected = []
    for scale in (1, 2):
        p = torch.randn(27, 16, generator=draws).double()
        p = (p / p.norm(dim=0, keepdim=True)).numpy()
        f, r = fake.numpy(), real.numpy()
        if scale == 2:  # 2x2 averages
            f = f.reshape(2, 3, 6, 2, 7, 2).mean((3, 5))
            r = r.reshape(2, 3, 6, 2, 7, 2).mean((3, 5))
        expected.append(_numpy_swd(_numpy_patches(f, 3), _numpy_patches(r, 3), p))
    assert got.item() == pytest.approx(float(np.mean(expected)), rel=1e-5)
    assert torch.equal(image_patches(fake, 3), torch.from_numpy(_numpy_patches(fake.numpy(), 3)))
    assert patch_swd_loss(fake, fake.clone(), (1, 2), None, patch_size=3).item() == 0.0


def test_patch_swd_subsamples_the_larger_set() -> None:
    g = torch.Generator().manual_seed(2)
    fake, real = torch.rand(1, 3, 10, 10, generator=g), torch.rand(3, 3, 10, 10, generator=g)
    value = patch_swd_loss(fake, real, (1,), torch.Generator().manual_seed(0), patch_size=7)
    assert value.item() > 0  # 16 fake patches against 16 of the 48 real ones


def _numpy_relaxed_emd_of_marks(fake: np.ndarray, real: np.ndarray, size: int) -> float:
    """STROTSS's relaxed EMD by loops: patches minus each channel's mean, cost = mean squared difference."""
    def marks(images: np.ndarray) -> np.ndarray:
        rows = _numpy_patches(images, size).reshape(-1, images.shape[1], size * size)
        return (rows - rows.mean(axis=2, keepdims=True)).reshape(len(rows), -1)
    a, b = marks(fake), marks(real)
    cost = np.array([[np.mean((x - y) ** 2) for y in b] for x in a])
    return max(cost.min(axis=1).mean(), cost.min(axis=0).mean())


def test_patch_match_equals_an_independent_numpy_computation() -> None:
    g = torch.Generator().manual_seed(11)
    fake = torch.rand(2, 3, 8, 10, generator=g, dtype=torch.float64) * 2 - 1
    real = torch.rand(1, 3, 8, 12, generator=g, dtype=torch.float64) * 1.2 - 0.5
    # fewer patches than the 1,024 samples: the random pick is a permutation, which the distance ignores
    got = patch_match_loss(fake, real, (1, 2), torch.Generator().manual_seed(0), patch_size=3)
    f, r = fake.numpy(), real.numpy()
    halves = f.reshape(2, 3, 4, 2, 5, 2).mean((3, 5)), r.reshape(1, 3, 4, 2, 6, 2).mean((3, 5))
    expected = (_numpy_relaxed_emd_of_marks(f, r, 3) + _numpy_relaxed_emd_of_marks(*halves, 3)) / 2
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_patch_match_ignores_colour_and_proportions_but_not_marks() -> None:
    g = torch.Generator().manual_seed(12)
    fake = torch.rand(2, 3, 10, 10, generator=g, dtype=torch.float64) * 2 - 1
    rng = torch.Generator().manual_seed(0)
    # float32 inside: zero up to its rounding (a patch's squared norm is about 1, one ulp 1e-7)
    assert patch_match_loss(fake, fake.clone(), (1, 2), rng, patch_size=3).item() == pytest.approx(0.0, abs=1e-6)
    # A constant colour shift changes no mark: the same value as the unshifted images.
    shifted = fake + torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64).view(1, 3, 1, 1)
    assert patch_match_loss(shifted, fake, (1,), rng, patch_size=3).item() == pytest.approx(0.0, abs=1e-6)
    # The same patches in other proportions (the first image three times): still zero, where a sliced
    # Wasserstein distance, which matches proportions, is not.
    lopsided = torch.cat([fake[:1], fake[:1], fake])
    assert patch_match_loss(fake, lopsided, (1,), rng, patch_size=3).item() == pytest.approx(0.0, abs=1e-6)
    assert patch_swd_loss(fake, lopsided, (1,), rng, patch_size=3).item() > 0
    # Marks the fake lacks: a flat fake is far from a textured painting.
    flat = torch.zeros_like(fake)
    assert patch_match_loss(flat, fake, (1,), rng, patch_size=3).item() > 0.1


def test_patch_match_is_its_own_logged_term_and_trains_only_g() -> None:
    objective, G, D, F_head = _objective(lambda_patch_match=3.0, patch_match_scales=(1, 2))
    g = torch.Generator().manual_seed(13)
    src, tgt = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1, torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    loss, parts = objective.generator_loss(objective.forward(src, tgt))
    assert set(parts) == {"match"} and parts["match"].item() > 0 and torch.equal(loss, parts["match"])
    loss.backward()
    assert G.to_rgb.weight.grad is not None and G.to_rgb.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in D.parameters()) and all(p.grad is None for p in F_head.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):  # computed in float32 even under autocast
        fwd = objective.forward(src, tgt)
        assert objective.generator_loss(fwd)[1]["match"].dtype == torch.float32


def test_patch_match_scales_are_checked_against_the_crop() -> None:
    with pytest.raises(ValueError, match="patch-match-scales 1,16"):
        make_config("quick", lambda_patch_match=1.0, patch_match_scales=(1, 16))
    with pytest.raises(ValueError, match="patch-match-scales must be"):
        make_config("quick", patch_match_scales=(0,))


def _objective(**overrides) -> tuple[Objective, Generator, Discriminator, ProjectionHead]:
    torch.manual_seed(0)
    G, D = Generator(ngf=2, crop_size=16, n_blocks=2, residual=True), Discriminator(ndf=4, crop_size=16)
    with torch.no_grad():  # a G that changes its input, so the term has something to pull on
        G.to_rgb.weight.normal_(0, 0.5)
    F_head = ProjectionHead(G.feature_channels((0, 2)))
    kwargs = dict(nce_layers=(0, 2), num_patches=1, nce_temperature=0.07, nce_negatives_from_minibatch=True,
                  lambda_gan=0.0, lambda_nce=0.0, nce_identity=False, lambda_identity=0.0, r1_gamma=0.0,
                  generator=torch.Generator().manual_seed(3), **overrides)
    return Objective(G, D, F_head, **kwargs), G, D, F_head


def test_patch_swd_is_its_own_logged_term_and_trains_only_g() -> None:
    objective, G, D, F_head = _objective(lambda_patch_swd=2.0, patch_swd_scales=(1, 2))
    g = torch.Generator().manual_seed(4)
    src, tgt = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1, torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    fwd = objective.forward(src, tgt)
    loss, parts = objective.generator_loss(fwd)
    assert set(parts) == {"SWD"} and parts["SWD"].item() > 0 and torch.equal(loss, parts["SWD"])
    loss.backward()
    assert G.to_rgb.weight.grad is not None and G.to_rgb.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in D.parameters())
    assert all(p.grad is None for p in F_head.parameters())
    off, *_ = _objective()
    assert "SWD" not in off.generator_loss(off.forward(src, tgt))[1]


def test_colour_g_starts_as_the_colour_transfer_and_leaves_identity_inputs_alone() -> None:
    g = torch.Generator().manual_seed(5)
    photo, painting = torch.rand(1, 3, 24, 24, generator=g) * 2 - 1, torch.rand(1, 3, 24, 24, generator=g) - 0.5
    G = Generator(ngf=2, crop_size=16, n_blocks=2, residual=True, guide_radius=2, colour_init="reinhard")
    fitted = fit_colour_transfer("reinhard", photo, painting)
    G.colour.load_state_dict(fitted.state_dict())
    x = torch.cat([photo, painting])
    # G's own change starts at zero, so G starts as the transfer's change passed through the photo-guided
    # filter (a fresh computation of the filter: He et al.'s box means, written out below)
    def guided(guide_rgb: torch.Tensor, change: torch.Tensor, r: int = 2, eps: float = 0.01) -> torch.Tensor:
        luma = (guide_rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        def box(t: torch.Tensor) -> torch.Tensor:
            padded = torch.nn.functional.pad(t, (r, r, r, r), mode="reflect")
            return torch.nn.functional.avg_pool2d(padded, 2 * r + 1, stride=1)
        mean_i, mean_p = box(luma), box(change)
        a = (box(luma * change) - mean_i * mean_p) / (box(luma * luma) - mean_i**2 + eps)
        b = mean_p - a * mean_i
        return box(a) * luma + box(b)
    out, _ = G(x, noise=G.draw_noise(2, 24, 24))
    torch.testing.assert_close(out, x + guided(x, fitted(x) - x), atol=1e-5, rtol=0)
    out, _ = G(x, noise=G.draw_noise(2, 24, 24), colour_rows=1)  # training's identity rows skip T
    torch.testing.assert_close(out, torch.cat([photo + guided(photo, fitted(photo) - photo), painting]),
                               atol=1e-5, rtol=0)
    assert {"colour.scale", "colour.shift"} <= set(G.state_dict())
    with pytest.raises(ValueError, match="residual"):
        Generator(ngf=2, crop_size=16, colour_init="pitie")


def run(*args) -> "click.testing.Result":  # noqa: F821
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="sincut")


def test_coloured_run_keeps_the_fitted_transfer_everywhere(coloured_run: Path) -> None:
    """The tiny run's G, G's average and the config carry the Pitie map fitted from the two images."""
    state = torch.load(sorted((coloured_run / "checkpoints").glob("step_*.pt"))[-1], weights_only=True)
    config = state["config"]
    assert config["colour_init"] == "pitie" and config["lambda_patch_swd"] == 1.0
    inputs = json.loads((coloured_run / "run.json").read_text())
    expected = fit_colour_transfer("pitie", load_image(inputs["source"]), load_image(inputs["target"]), seed=0)
    for net in ("G", "G_average"):
        for name, value in expected.state_dict().items():
            assert torch.equal(state[net][f"colour.{name}"], value), (net, name)
    log = [json.loads(line) for line in (coloured_run / "log.jsonl").read_text().splitlines()]
    assert all(line["SWD"] > 0 for line in log)


def test_coloured_run_translates_from_the_cli(coloured_run: Path, tmp_path: Path) -> None:
    photo = json.loads((coloured_run / "run.json").read_text())["source"]
    result = run("translate", coloured_run, photo, "--out", tmp_path, "--device", "cpu", "--no-noise")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args, message", [
    (["--preset", "sincut", "--colour-init", "pitie"], "--colour-init pitie starts a residual generator"),
    (["--preset", "quick", "--lambda-patch-swd", "1", "--patch-swd-scales", "1,8"], "--patch-swd-scales 1,8"),
    (["--preset", "quick", "--patch-swd-scales", "0"], "--patch-swd-scales must be"),
])
def test_bad_recipe_options_are_one_line(tiny_pair, tmp_path: Path, args: list[str], message: str) -> None:
    src, tgt = tiny_pair
    result = run("train", src, tgt, "--out", tmp_path / "run", "--steps", "1", "--crop-size", "32",
                 "--device", "cpu", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_the_options_default_off_in_every_preset() -> None:
    for preset in ("sincut", "quick", "cut", "fastcut"):
        config = make_config(preset, steps=1)
        assert config.colour_init == "none" and config.lambda_patch_swd == 0.0
