"""--identity-every (the identity terms on every K-th step, scaled by K) and --lambda-local-gan (a fine-scale
critic beside the patch D): each checked against a computation done here by hand from the same networks."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from sincut.config import make_config
from sincut.nets import Discriminator, Generator, ProjectionHead
from sincut.nets.stylegan2 import LocalDiscriminator
from sincut.objective import Objective


def _objective(G: Generator, D: Discriminator, F_head: ProjectionHead, **overrides) -> Objective:
    kwargs = dict(nce_layers=(0, 2), num_patches=4, nce_temperature=0.07, nce_negatives_from_minibatch=True,
                  lambda_gan=1.0, lambda_nce=4.0, nce_identity=True, lambda_identity=1.0, r1_gamma=1.0,
                  generator=torch.Generator().manual_seed(3))
    return Objective(G, D, F_head, **{**kwargs, **overrides})


def _nets(local: bool = False) -> tuple[Generator, Discriminator, ProjectionHead]:
    torch.manual_seed(0)
    G = Generator(ngf=2, crop_size=16, n_blocks=2, residual=True)
    with torch.no_grad():  # a G that changes its input, so every term has something to pull on
        G.to_rgb.weight.normal_(0, 0.5)
    D = Discriminator(ndf=4, crop_size=16, local=local)
    return G, D, ProjectionHead(G.feature_channels((0, 2)))


def _batch(seed: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 16, 16, generator=g) * 2 - 1, torch.rand(2, 3, 16, 16, generator=g) * 2 - 1


def test_lazy_identity_scales_the_identity_terms_by_k_on_its_steps() -> None:
    G, D, F_head = _nets()
    src, tgt = _batch()
    every = _objective(G, D, F_head)
    lazy = _objective(G, D, F_head, identity_every=3)
    _, eager_parts = every.generator_loss(every.forward(src, tgt, step=6))
    loss, parts = lazy.generator_loss(lazy.forward(src, tgt, step=6))  # 6 % 3 == 0: an identity step
    # The same draws (same seed, same order), so NCE is identical and the identity terms are 3x.
    assert torch.equal(parts["NCE"], eager_parts["NCE"])
    assert parts["NCE_Y"].item() == pytest.approx(3 * eager_parts["NCE_Y"].item(), rel=1e-6)
    assert parts["idt"].item() == pytest.approx(3 * eager_parts["idt"].item(), rel=1e-6)
    expected = parts["G_GAN"] + (parts["NCE"] + parts["NCE_Y"]) * 0.5 + parts["idt"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_lazy_identity_skips_g_on_target_between_its_steps() -> None:
    G, D, F_head = _nets()
    src, tgt = _batch()
    lazy = _objective(G, D, F_head, identity_every=3)
    seen = []
    hook = G.encoder[1].register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape[0]))
    fwd = lazy.forward(src, tgt, step=4)
    hook.remove()
    assert not fwd.with_identity and seen == [2]  # G ran on the two SOURCE patches only
    loss, parts = lazy.generator_loss(fwd)
    assert set(parts) == {"G_GAN", "NCE"}
    # NCE keeps the weight it has beside NCE_Y: half of it, so over K steps each term averages as in the paper
    assert loss.item() == pytest.approx((parts["G_GAN"] + parts["NCE"] * 0.5).item(), rel=1e-6)
    d_loss, d_parts = lazy.discriminator_loss(fwd, step=4)  # D still sees TARGET as its reals
    assert d_parts["D_real"].item() > 0


def test_local_discriminator_scores_windows_of_24_pixels() -> None:
    head = LocalDiscriminator(8)
    x = torch.zeros(1, 3, 64, 64, requires_grad=True)
    out = head(x)
    assert out.shape == (1, 1, 16, 16)
    out[0, 0, 8, 8].backward()
    rows, cols = (x.grad.abs().sum(dim=(0, 1)) > 0).nonzero(as_tuple=True)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (24, 24)


def test_local_gan_adds_its_weighted_terms_to_both_losses() -> None:
    G, D, F_head = _nets(local=True)
    src, tgt = _batch(5)
    weight = 0.7
    objective = _objective(G, D, F_head, lambda_local_gan=weight, r1_gamma=0.0)
    fwd = objective.forward(src, tgt)
    d_loss, d_parts = objective.discriminator_loss(fwd, step=1)
    fake_map, real_map = D.local(fwd.fake.detach()), D.local(tgt)
    by_hand = (F.softplus(fake_map).mean() + F.softplus(-real_map).mean()) * 0.5 * weight
    assert d_parts["D_local"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert d_loss.item() == pytest.approx(((d_parts["D_fake"] + d_parts["D_real"]) * 0.5
                                           + d_parts["D_local"]).item(), rel=1e-6)
    d_loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D.local.parameters())
    g_loss, g_parts = objective.generator_loss(fwd)
    assert g_parts["G_local"].item() == pytest.approx(F.softplus(-D.local(fwd.fake)).mean().item() * weight,
                                                      rel=1e-5)


def test_r1_covers_the_local_head() -> None:
    G, D, F_head = _nets(local=True)
    src, tgt = _batch(6)
    objective = _objective(G, D, F_head, lambda_local_gan=1.0, r1_gamma=2.0)
    fwd = objective.forward(src, tgt)
    _, parts = objective.discriminator_loss(fwd, step=0)
    real = tgt.clone().requires_grad_(True)
    score = D(real).sum() + D.local(real).flatten(1).mean(dim=1).sum()
    (grad,) = torch.autograd.grad(score, real)
    by_hand = grad.pow(2).flatten(1).sum(dim=1).mean() * (2.0 * 0.5)
    assert parts["D_R1"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    # Without the head the penalty is the patch D's alone, and smaller here
    plain = copy.deepcopy(D)
    plain.local = None
    _, plain_parts = _objective(G, plain, F_head, r1_gamma=2.0).discriminator_loss(fwd, step=0)
    assert plain_parts["D_R1"].item() != pytest.approx(parts["D_R1"].item(), rel=1e-3)


def test_options_are_checked() -> None:
    assert make_config("quick", lambda_local_gan=1.0).lambda_local_gan == 1.0
    with pytest.raises(ValueError, match="identity-every must be >= 1"):
        make_config("quick", identity_every=0)
    with pytest.raises(ValueError, match="lambda-local-gan"):
        make_config("cut", lambda_local_gan=1.0)
    G, D, F_head = _nets(local=False)
    with pytest.raises(ValueError, match="local head"):
        _objective(G, D, F_head, lambda_local_gan=1.0)


def test_coarse_stage_zooms_patches_out_and_ends_at_its_fraction(tmp_path) -> None:
    from sincut.data.patches import PatchSampler
    from sincut.training.trainer import Trainer, make_data
    from PIL import Image
    import numpy as np
    # A vertical ramp: a patch's value range is the share of the image height it covers.
    ramp = np.repeat(np.linspace(0, 255, 256)[:, None], 256, axis=1).astype(np.uint8)
    image = torch.from_numpy(ramp).float().div(127.5).sub(1).expand(1, 3, 256, 256).contiguous()
    sampler = PatchSampler(image, 32, zoom=(0.5, 0.5), flip=False, positions="stratified", coarsest=0.25)
    fine = sampler.sample(4, torch.Generator().manual_seed(0))
    coarse = sampler.sample(4, torch.Generator().manual_seed(0), zoom_scale=0.5)
    span = lambda p: (p[:, 0, -1, :] - p[:, 0, 0, :]).mean().item()  # noqa: E731
    # 32 px at zoom 0.5 cover 64 of 256 rows (a quarter of the ramp's 2.0 range: ~0.49 after the pixel
    # centres); at 0.25 they cover 128 rows: twice that.
    assert span(fine) == pytest.approx(2.0 * 62 / 255, rel=0.03)
    assert span(coarse) == pytest.approx(2.0 * 124 / 255, rel=0.03)
    for name in ("a.png", "b.png"):
        Image.fromarray(np.stack([ramp] * 3, axis=2)).save(tmp_path / name)
    config = make_config("quick", steps=10, coarse_fraction=0.3)
    trainer = Trainer.build(config, make_data(config, tmp_path / "a.png", tmp_path / "b.png", torch.device("cpu")),
                            torch.device("cpu"))
    assert [trainer.in_coarse_stage(s) for s in (0, 2, 3, 9)] == [True, True, False, False]


def test_high_band_strength_is_the_rms_of_the_luminance_minus_its_blur() -> None:
    from sincut.objective import high_band_strength
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert high_band_strength(flat).abs().max().item() < 1e-3  # nothing finer than the blur (up to eps)
    # A checkerboard of +-a in luminance: its 2 px blur is ~0 inside, so the high band is ~ +-a, RMS ~ a.
    a = 0.4
    board = (torch.arange(16).view(-1, 1) + torch.arange(16).view(1, -1)) % 2 * 2 - 1
    image = (board.float() * a).expand(1, 3, 16, 16)
    strength = high_band_strength(image).view(2, 2)
    assert strength.min().item() == pytest.approx(a, rel=0.05)


def test_excess_high_band_charges_only_texture_beyond_the_paintings() -> None:
    from sincut.objective import excess_high_band
    g = torch.Generator().manual_seed(0)
    smooth = torch.zeros(2, 3, 16, 16)
    noisy = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    assert excess_high_band(smooth, noisy).item() == 0.0  # less texture than the painting: free
    assert excess_high_band(noisy, smooth).item() > 0.1
    # by hand: sorted window strengths, mean of the positive differences
    from sincut.objective import high_band_strength
    half = noisy * 0.5
    mine, theirs = high_band_strength(noisy).sort().values, high_band_strength(half).sort().values
    assert excess_high_band(noisy, half).item() == pytest.approx((mine - theirs).clamp(min=0).mean().item(), rel=1e-6)
    objective = _objective(*_nets(), lambda_high_band=2.0, lambda_gan=0.0, lambda_nce=0.0, nce_identity=False,
                           lambda_identity=0.0, r1_gamma=0.0)
    src, tgt = _batch(9)
    loss, parts = objective.generator_loss(objective.forward(src, tgt))
    assert set(parts) == {"high_band"} and torch.equal(loss, parts["high_band"])


def test_match_scale_samples_target_at_the_sources_pixel_count(tmp_path) -> None:
    from sincut.data.patches import SingleImagePair, scaled_to_area
    g = torch.Generator().manual_seed(0)
    source = torch.rand(1, 3, 200, 300, generator=g) * 2 - 1
    target = torch.rand(1, 3, 50, 80, generator=g) * 2 - 1
    resized = scaled_to_area(target, 200 * 300)
    assert resized.shape[-2:] == (194, 310)  # 50 x 80 scaled by sqrt(60000 / 4000) = 3.873, rounded
    # a constant image stays that constant (antialiased resampling keeps a flat colour)
    flat = torch.full((1, 3, 40, 60), 0.25)
    assert torch.allclose(scaled_to_area(flat, 100 * 150), torch.full((1, 3, 100, 150), 0.25), atol=1e-6)
    pair = SingleImagePair(source, target, crop_size=16, zoom=(0.5, 1.0), flip=False, batch_size=2,
                           match_scale=True)
    assert (pair.target_patches.height, pair.target_patches.width) == (194, 310)
    assert pair.preview_images()[1].shape[-2:] == (50, 80)  # previews and figures see TARGET as it is
    from sincut.errors import UserError
    from sincut.training.trainer import make_data
    with pytest.raises(UserError, match="match-scale"):  # folders: refused before anything is read
        make_data(make_config("quick", minutes=1, match_scale=True), tmp_path, tmp_path, torch.device("cpu"))
