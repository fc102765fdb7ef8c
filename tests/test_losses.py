"""The objective's pieces against computations worked out independently, in plain Python."""

from __future__ import annotations

import math

import pytest
import torch

from sincut.objective import gan_loss, patch_nce_loss, r1_penalty


def _normalise(rows: list[list[float]]) -> list[list[float]]:
    return [[v / math.sqrt(sum(x * x for x in r)) for v in r] for r in rows]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def _reference_nce(q: list[list[float]], k: list[list[float]], group: int, tau: float) -> list[float]:
    """Row i: -log softmax([q_i.k_i, q_i.k_j for j in i's group (own slot = -10)] / tau)[0]."""
    losses = []
    for i, qi in enumerate(q):
        g0 = (i // group) * group
        logits = [_dot(qi, k[i])]
        for j in range(g0, g0 + group):
            logits.append(-10.0 if j == i else _dot(qi, k[j]))
        logits = [x / tau for x in logits]
        m = max(logits)
        lse = m + math.log(sum(math.exp(x - m) for x in logits))
        losses.append(lse - logits[0])
    return losses


Q = _normalise([[1.0, 0.0, 0.5], [0.2, 1.0, 0.0], [0.0, -0.3, 1.0], [0.7, 0.7, 0.1]])
K = _normalise([[0.9, 0.1, 0.4], [0.0, 1.0, 0.2], [0.1, 0.0, 1.0], [-0.5, 0.4, 0.3]])


def test_two_row_case_by_hand():
    # Two images, one row each, negatives from the whole minibatch, tau = 1:
    # row 0 logits [q0.k0, -10, q0.k1]; loss = log(e^{q0.k0} + e^-10 + e^{q0.k1}) - q0.k0.
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    loss = patch_nce_loss(q, k, batch_size=2, temperature=1.0, negatives_from_minibatch=True)
    expected0 = math.log(math.exp(0.6) + math.exp(-10.0) + math.exp(1.0)) - 0.6
    expected1 = math.log(math.exp(0.0) + math.exp(0.8) + math.exp(-10.0)) - 0.0
    assert loss.tolist() == pytest.approx([expected0, expected1], abs=1e-6)


@pytest.mark.parametrize("minibatch", [False, True])
def test_patch_nce_matches_reference(minibatch: bool):
    batch = 2  # 2 images x 2 rows: rows 0-1 are image 0, rows 2-3 image 1
    got = patch_nce_loss(torch.tensor(Q), torch.tensor(K), batch, temperature=0.07,
                         negatives_from_minibatch=minibatch)
    expected = _reference_nce(Q, K, group=4 if minibatch else 2, tau=0.07)
    assert got.shape == (4,)
    assert got.tolist() == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_same_image_negatives_differ_from_minibatch_negatives():
    a = patch_nce_loss(torch.tensor(Q), torch.tensor(K), 2, 0.07, False)
    b = patch_nce_loss(torch.tensor(Q), torch.tensor(K), 2, 0.07, True)
    assert not torch.allclose(a, b)


def test_keys_receive_no_gradient():
    q = torch.tensor(Q, requires_grad=True)
    k = torch.tensor(K, requires_grad=True)
    patch_nce_loss(q, k, 2).sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert k.grad is None


def test_gan_loss_is_softplus_mean():
    pred = torch.tensor([[0.5], [-2.0], [1.5]])
    real = sum(math.log1p(math.exp(-p)) for p in (0.5, -2.0, 1.5)) / 3
    fake = sum(math.log1p(math.exp(p)) for p in (0.5, -2.0, 1.5)) / 3
    assert gan_loss(pred, True).item() == pytest.approx(real, rel=1e-6)
    assert gan_loss(pred, False).item() == pytest.approx(fake, rel=1e-6)


def test_r1_of_a_linear_critic():
    # D(x) = sum(w * x): grad_x D = w for every sample, so R1 = gamma / 2 * ||w||^2.
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    x = torch.randn(5, 2, 2, requires_grad=True)
    pred = (x * w).flatten(1).sum(1, keepdim=True)
    gamma = 10.0
    expected = gamma / 2 * (1 + 4 + 0.25 + 9)
    assert r1_penalty(pred, x, gamma).item() == pytest.approx(expected, rel=1e-6)


def test_lazy_r1_runs_every_k_steps_scaled_by_k():
    from sincut.objective import Forward, Objective
    from sincut.nets import Discriminator, Generator, ProjectionHead

    torch.manual_seed(0)
    G, D = Generator(ngf=2, crop_size=16), Discriminator(ndf=4, crop_size=16)
    F_head = ProjectionHead(G.feature_channels((0, 2, 4)))
    src, tgt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    fwd = Forward(src, tgt, src.clone(), tgt.clone(), [], [])
    kwargs = dict(nce_layers=(0, 2, 4), num_patches=1, nce_temperature=0.07, nce_negatives_from_minibatch=True,
                  lambda_gan=1.0, lambda_nce=4.0, nce_identity=True, lambda_identity=1.0, r1_gamma=1.0)
    _, plain = Objective(G, D, F_head, **kwargs).discriminator_loss(fwd, step=0)
    lazy = Objective(G, D, F_head, r1_every=4, **kwargs)
    _, at_0 = lazy.discriminator_loss(fwd, step=0)
    _, at_1 = lazy.discriminator_loss(fwd, step=1)
    assert at_0["D_R1"].item() == pytest.approx(4 * plain["D_R1"].item(), rel=1e-6)
    assert "D_R1" not in at_1
    assert at_1["D_real"].item() == pytest.approx(plain["D_real"].item(), rel=1e-6)


def test_display_smoothing_is_an_exponential_moving_average():
    from sincut.progress import smooth

    state = smooth({}, {"G_GAN": 2.0})
    state = smooth(state, {"G_GAN": 1.0, "NCE": 5.0})
    assert state == pytest.approx({"G_GAN": 0.7 * 2.0 + 0.3 * 1.0, "NCE": 5.0})
