"""The optimised training step computes the paper's objective: same losses, same gradients.

The reference below is written the plain way the paper's code does it: D scores fakes and reals in
two separate calls, PatchNCE keys come from their own encoder pass on the real images, each NCE term
runs its own encoder pass on its generated images, and every layer is the unfused sequence
(conv, + bias, leaky ReLU, x sqrt(2); sums divided by sqrt(2)). Same seed, same random draws.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sincut.config import make_config
from sincut.objective import Objective, patch_nce_loss
from sincut.nets import ProjectionHead, build_discriminator, build_generator
from sincut.nets.layers import ConvLayer, EqualLinear, ResBlock, UpsampleConv

from .test_nets import _reference_conv_layer as plain_conv  # the paper's unfused conv layer


def plain_block(block, x):
    if isinstance(block, torch.nn.Identity):
        return x
    if isinstance(block, ConvLayer):
        return plain_conv(block, x)
    assert isinstance(block, ResBlock)
    skip = x if block.skip is None else plain_conv(block.skip, x)
    return (plain_conv(block.conv2, plain_conv(block.conv1, x)) + skip) / math.sqrt(2)


def plain_upsample(layer: UpsampleConv, x, rng):
    out = F.conv_transpose2d(x, layer.demodulated_weight(), stride=2)
    p0, p1 = layer.blur.pad
    out = F.conv2d(F.pad(out, (p0, p1, p0, p1)), layer.blur.kernel, groups=out.shape[1])
    noise = torch.randn(out.shape[0], 1, *out.shape[2:], generator=rng, dtype=out.dtype)
    out = out + layer.noise_strength * noise
    return F.leaky_relu(out + layer.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)


def plain_encode(G, x, layers):
    feats = []
    for i, block in enumerate(G.encoder):
        x = plain_block(block, x)
        if i in layers:
            feats.append(x)
    return x, feats


def plain_G(G, x, rng):
    x, _ = plain_encode(G, x, ())
    for block in G.decoder_blocks:
        x = plain_block(block, x)
    for up in G.upsample:
        x = plain_upsample(up, x, rng)
    return plain_conv(G.to_rgb, x)


def plain_D(D, x):
    for block in D.blocks:
        x = plain_block(block, x)
    x = plain_conv(D.final_conv, x).flatten(1)
    lin1, lin2 = D.final_linear
    assert isinstance(lin1, EqualLinear)
    x = F.leaky_relu(F.linear(x, lin1.weight * lin1.scale, lin1.bias), 0.2) * math.sqrt(2)
    return F.linear(x, lin2.weight * lin2.scale, lin2.bias)


def reference_step(G, D, F_head, cfg, src, tgt, rng):
    """Losses and gradients the paper's way; returns (losses, D grads, G+F grads)."""
    real = torch.cat([src, tgt])
    out = plain_G(G, real, rng)
    n = src.shape[0]
    fake, idt = out[:n], out[n:]
    # D step
    real_t = tgt.detach().requires_grad_(True)
    pred_fake = plain_D(D, fake.detach())
    pred_real = plain_D(D, real_t)
    d_fake = F.softplus(pred_fake).mean()
    d_real = F.softplus(-pred_real).mean()
    (grad,) = torch.autograd.grad(pred_real.sum(), real_t, create_graph=True)
    r1 = grad.pow(2).flatten(1).sum(1).mean() * cfg.r1_gamma / 2
    d_total = (d_fake + d_real) * 0.5 + r1
    d_grads = torch.autograd.grad(d_total, list(D.parameters()))
    # G + F step
    g_gan = F.softplus(-plain_D(D, fake)).mean() * cfg.lambda_gan

    def nce(src_img, gen_img):
        _, feat_k = plain_encode(G, src_img, cfg.nce_layers)
        _, feat_q = plain_encode(G, gen_img, cfg.nce_layers)
        ids = F_head.sample_locations(feat_k, cfg.num_patches, rng)
        keys, queries = F_head(feat_k, ids), F_head(feat_q, ids)
        total = 0.0
        for q, k in zip(queries, keys):
            total = total + patch_nce_loss(q, k, n, cfg.nce_temperature, True).mean() * cfg.lambda_nce
        return total / len(cfg.nce_layers)

    nce_x = nce(src, fake)
    nce_y = nce(tgt, idt)
    idt_l1 = F.l1_loss(idt, tgt) * cfg.lambda_identity
    g_total = g_gan + (nce_x + nce_y) * 0.5 + idt_l1
    params = [*G.parameters(), *F_head.parameters()]
    g_grads = torch.autograd.grad(g_total, params, allow_unused=True)
    losses = {"D_fake": d_fake, "D_real": d_real, "D_R1": r1, "G_GAN": g_gan, "NCE": nce_x, "NCE_Y": nce_y,
              "idt": idt_l1}
    return losses, d_grads, g_grads


@pytest.mark.parametrize("separate_passes", [False, True], ids=["batched", "separate"])
def test_optimised_step_matches_the_plain_reference(separate_passes: bool):
    cfg = make_config("sincut", ngf=4, ndf=4, crop_size=32, batch_size=4)
    torch.manual_seed(0)
    # float64, so that the only differences left would be real ones, not rounding
    G, D = build_generator(cfg).double(), build_discriminator(cfg).double()
    F_head = ProjectionHead(G.feature_channels(cfg.nce_layers), init_gain=cfg.init_gain).double()
    with torch.no_grad():  # a trained-looking state: non-zero noise strengths and biases
        for name, p in [*G.named_parameters(), *D.named_parameters()]:
            if p.dim() == 1:
                p.normal_(0, 0.3)
    src = torch.rand(4, 3, 32, 32, dtype=torch.float64) * 2 - 1
    tgt = torch.rand(4, 3, 32, 32, dtype=torch.float64) * 2 - 1

    ref_losses, ref_d, ref_g = reference_step(G, D, F_head, cfg, src, tgt, torch.Generator().manual_seed(7))

    nhwc = torch.channels_last
    G_fast = G.to(memory_format=nhwc)
    D_fast = D.to(memory_format=nhwc)
    objective = Objective.from_config(cfg, G_fast, D_fast, F_head, generator=torch.Generator().manual_seed(7))
    objective.separate_passes = separate_passes
    fwd = objective.forward(src.contiguous(memory_format=nhwc), tgt.contiguous(memory_format=nhwc))
    d_loss, d_parts = objective.discriminator_loss(fwd)
    d_grads = torch.autograd.grad(d_loss, list(D_fast.parameters()))
    g_loss, g_parts = objective.generator_loss(fwd)
    params = [*G_fast.parameters(), *F_head.parameters()]
    g_grads = torch.autograd.grad(g_loss, params, allow_unused=True)

    for name, value in {**d_parts, **g_parts}.items():
        assert value.item() == pytest.approx(ref_losses[name].item(), rel=1e-10, abs=1e-12), name
    for a, b in zip(d_grads, ref_d):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-12)
    for a, b in zip(g_grads, ref_g):
        if b is None:
            assert a is None or not a.any()
        else:
            assert torch.allclose(a, b, rtol=1e-8, atol=1e-12)
