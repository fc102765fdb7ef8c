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
