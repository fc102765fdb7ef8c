"""Network shapes, the paper's parameter counts, and the fast layers against plain reference forms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sincut.nets import Discriminator, Generator, ProjectionHead
from sincut.nets.layers import Blur, ConvLayer, ResBlock, UpsampleConv


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_the_paper():
    G = Generator(ngf=10, crop_size=64)
    D = Discriminator(ndf=8, crop_size=64)
    F_head = ProjectionHead(G.feature_channels((0, 2, 4)), nc=256)
    assert count(G) == 3_068_404
    assert count(D) == 5_885_473
    assert count(F_head) == 280_832


def test_encoder_layer_widths():
    G = Generator(ngf=10, crop_size=64)
    assert G.feature_channels((0, 1, 2, 3, 4, 5)) == [3, 80, 160, 160, 160, 160]


@pytest.mark.parametrize("h,w", [(64, 64), (37, 53), (1, 1), (130, 66)])
def test_generator_is_fully_convolutional(h: int, w: int):
    G = Generator(ngf=2, crop_size=32)
    x = torch.randn(2, 3, h + (h % 2), w + (w % 2))  # G itself needs even sizes; translate pads
    out, feats = G(x, (0, 2, 4))
    assert out.shape == x.shape
    assert feats[0] is not None and torch.equal(feats[0], x)
    assert feats[1].shape[2:] == (x.shape[2] // 2, x.shape[3] // 2)


def test_encode_equals_forward_features():
    torch.manual_seed(0)
    G = Generator(ngf=2, crop_size=32)
    x = torch.randn(2, 3, 32, 32)
    _, feats = G(x, (0, 2, 4))
    for a, b in zip(feats, G.encode(x, (0, 2, 4))):
        assert torch.allclose(a, b)


def test_discriminator_output_shape():
    D = Discriminator(ndf=8, crop_size=64)
    assert D(torch.randn(3, 3, 64, 64)).shape == (3, 1)


def test_blur_keeps_constants_and_sums_to_gain():
    blur = Blur(4, pad=(2, 1))
    x = torch.full((1, 4, 10, 10), 3.0)
    out = blur(x)
    assert out.shape == (1, 4, 10, 10)
    assert torch.allclose(out[..., 3:-3, 3:-3], torch.full_like(out[..., 3:-3, 3:-3], 3.0))
    impulse = torch.zeros(1, 1, 7, 7)
    impulse[0, 0, 3, 3] = 1.0
    k = Blur(1, pad=(1, 2))(impulse)[0, 0]
    assert k.sum().item() == pytest.approx(1.0)
    expected = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64
    assert torch.allclose(k[1:5, 1:5], expected)  # output i reads inputs i-1..i+2


def _reference_modulated_upsample(layer: UpsampleConv, x: torch.Tensor) -> torch.Tensor:
    """The paper's form: a per-sample modulated weight (style = 1), demodulated per sample, run as a
    grouped transposed conv, then a 4x4 blur applied to each channel of each sample separately."""
    b, cin, h, w = x.shape
    cout, k = layer.weight.shape[0], layer.weight.shape[-1]
    style = torch.ones(b, 1, cin, 1, 1)
    weight = layer.scale * layer.weight.unsqueeze(0) * style
    demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
    weight = weight * demod.view(b, cout, 1, 1, 1)
    weight = weight.transpose(1, 2).reshape(b * cin, cout, k, k)
    out = F.conv_transpose2d(x.reshape(1, b * cin, h, w), weight, stride=2, groups=b).view(b, cout, 2 * h + 1, 2 * w + 1)
    taps = torch.tensor([1.0, 3, 3, 1])
    kernel = (torch.outer(taps, taps) / 64 * 4).view(1, 1, 4, 4)
    blurred = [F.conv2d(F.pad(out[i:i + 1, c:c + 1], (1, 1, 1, 1)), kernel) for i in range(b) for c in range(cout)]
    return torch.cat(blurred, 1).view(b, cout, 2 * h, 2 * w)


def test_upsample_conv_equals_the_papers_modulated_conv():
    torch.manual_seed(0)
    layer = UpsampleConv(6, 4)
    x = torch.randn(3, 6, 5, 7)
    reference = _reference_modulated_upsample(layer, x)
    # noise_strength starts at 0, so the noise does not change the output; compare before the bias + lrelu
    out = layer(x)
    expected = F.leaky_relu(reference + layer.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)
    assert torch.allclose(out, expected, atol=1e-5)


def test_projection_head_rows_are_unit_and_image_major():
    torch.manual_seed(0)
    head = ProjectionHead([3, 5], nc=8)
    feats = [torch.randn(2, 3, 4, 4), torch.randn(2, 5, 2, 2)]
    ids = head.sample_locations(feats, num_patches=3)
    assert [len(i) for i in ids] == [3, 3]
    out = head(feats, ids)
    assert out[0].shape == (6, 8)
    assert torch.allclose(out[0].norm(dim=1), torch.ones(6), atol=2e-3)  # eps 1e-7 as in the paper
    # Row b * P + p is location p of image b: recompute row 4 (image 1, location 1) by hand.
    loc = ids[0][1]
    vec = feats[0][1].flatten(1)[:, loc]
    manual = head.mlps[0](vec)
    assert torch.allclose(out[0][4], manual / (manual.norm() + 1e-7), atol=1e-6)


def _reference_conv_layer(layer: ConvLayer, x: torch.Tensor) -> torch.Tensor:
    """The paper's unfused order: [blur], conv with the equalised weight, + bias, leaky ReLU, x sqrt(2)."""
    if layer.blur is not None:
        p0, p1 = layer.blur.pad
        x = F.conv2d(F.pad(x, (p0, p1, p0, p1)), layer.blur.kernel, groups=x.shape[1])
    out = F.conv2d(x, layer.weight * layer.scale, stride=layer.stride, padding=layer.padding)
    if layer.bias is None:
        return out
    return F.leaky_relu(out + layer.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)


@pytest.mark.parametrize("downsample,cin,cout", [(False, 5, 5), (True, 4, 6)])
def test_res_block_equals_the_unfused_form(downsample: bool, cin: int, cout: int):
    torch.manual_seed(0)
    block = ResBlock(cin, cout, downsample)
    with torch.no_grad():
        for p in block.parameters():
            if p.dim() == 1:
                p.normal_()  # non-zero biases, so the bias folding is exercised
    x = torch.randn(2, cin, 9, 10)
    # The reference ignores the folded gains: it is the paper's plain sequence of passes.
    main = _reference_conv_layer(block.conv2, _reference_conv_layer(block.conv1, x))
    skip = x if block.skip is None else _reference_conv_layer(block.skip, x)
    expected = (main + skip) / math.sqrt(2)
    assert torch.allclose(block(x), expected, atol=1e-5)


def test_instance_norm_nets_run_nchw_on_cpus_only():
    """The cut/fastcut nets stay NCHW on a CPU (their instance norms would convert NHWC back and forth);
    the sincut nets, and every net on a GPU, run channels_last. The trainer follows the rule."""
    from sincut.config import make_config
    from sincut.nets import PatchGANDiscriminator, ResnetGenerator, memory_format
    from sincut.training.trainer import Trainer

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for net in (ResnetGenerator(ngf=4, n_blocks=2), PatchGANDiscriminator(ndf=4)):
        assert memory_format(net, cpu) == torch.contiguous_format
        assert memory_format(net, cuda) == torch.channels_last
    for net in (Generator(ngf=2, crop_size=16), Discriminator(ndf=2, crop_size=16)):
        assert memory_format(net, cpu) == torch.channels_last

    class Frames:  # the trainer only passes the sampled batch through
        def sample(self, step, rng):
            return torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)

    trainer = Trainer.build(make_config("cut", ngf=4, ndf=4, n_blocks=2, nce_layers=(0, 4, 8), crop_size=32,
                                        load_size=32, steps=1),
                            Frames(), cpu)
    stem = next(m for m in trainer.G.modules() if isinstance(m, torch.nn.Conv2d))
    assert stem.weight.is_contiguous()
    src, _ = trainer.sample(0)
    assert src.is_contiguous() and not src.is_contiguous(memory_format=torch.channels_last)
    sincut = Trainer.build(make_config("sincut", ngf=2, ndf=2, crop_size=16, steps=1), Frames(), cpu)
    assert sincut.sample(0)[0].is_contiguous(memory_format=torch.channels_last)
