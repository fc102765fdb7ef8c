"""The paper's objective in one place: PatchNCE, the GAN losses, R1 and the identity terms (and the
optional patch-distribution term toward TARGET, --lambda-patch-swd).

`Objective` computes a training step's two losses in the order the paper's code does: one G forward
on [source; target] patches, then the D loss (on detached fakes), then the G + F loss. The training
loop only calls backward and steps the optimisers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import kornia.filters
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import PATCH_SWD_SIZE
from .nets import Discriminator, Generator, ProjectionHead
from .nets.stylegan2 import LUMA
from .nets.wrappers import unwrap, without_ddp

if TYPE_CHECKING:
    from .config import TrainConfig


def patch_nce_loss(feat_q: Tensor, feat_k: Tensor, batch_size: int, temperature: float = 0.07,
                   negatives_from_minibatch: bool = False) -> Tensor:
    """Per-row InfoNCE loss between queries and keys, shape [rows].

    feat_q, feat_k: [rows, dim] L2-normalised rows, image-major (rows of one image are contiguous).
    Row i's positive is key i; its negatives are the other keys of the same image, or of the whole
    minibatch when `negatives_from_minibatch`. A query's own key also sits in the negative matrix,
    masked to -10 before dividing by the temperature (as in the paper's code). Keys get no gradient.
    """
    rows, dim = feat_q.shape
    feat_k = feat_k.detach()
    positive = (feat_q * feat_k).sum(dim=1, keepdim=True)
    groups = 1 if negatives_from_minibatch else batch_size
    q = feat_q.reshape(groups, rows // groups, dim)
    k = feat_k.reshape(groups, rows // groups, dim)
    negatives = torch.bmm(q, k.transpose(1, 2))
    n = q.shape[1]
    eye = torch.eye(n, dtype=torch.bool, device=feat_q.device)
    negatives = negatives.masked_fill(eye, -10.0).reshape(rows, n)
    logits = torch.cat([positive, negatives], dim=1) / temperature
    target = torch.zeros(rows, dtype=torch.long, device=feat_q.device)
    return F.cross_entropy(logits, target, reduction="none")


def gan_loss(prediction: Tensor, target_is_real: bool, mode: str = "nonsaturating") -> Tensor:
    """Non-saturating: softplus(-D(x)) for reals, softplus(D(x)) for fakes. LSGAN: (D(x) - 1)^2 for
    reals, D(x)^2 for fakes. Averaged over patches and batch."""
    if mode == "lsgan":
        return (prediction - (1.0 if target_is_real else 0.0)).pow(2).mean()
    sign = -1.0 if target_is_real else 1.0
    return F.softplus(sign * prediction).flatten(1).mean(dim=1).mean()


def r1_penalty(real_prediction: Tensor, real_input: Tensor, gamma: float) -> Tensor:
    """gamma/2 * E ||grad_x D(x)||^2 on real inputs, kept differentiable for D's update."""
    (grad,) = torch.autograd.grad(real_prediction.sum(), real_input, create_graph=True)
    return grad.pow(2).flatten(1).sum(dim=1).mean() * (gamma * 0.5)


def image_patches(images: Tensor, size: int) -> Tensor:
    """Every size x size patch of a [B, C, H, W] batch, one row each: [B * (H-size+1) * (W-size+1), C*size*size]."""
    cols = F.unfold(images, size)  # [B, C*size*size, L]
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def sliced_wasserstein(a: Tensor, b: Tensor, projections: Tensor) -> Tensor:
    """Squared sliced 2-Wasserstein distance between two equally large point sets [N, D] along the unit
    columns of `projections` [D, K]: the mean over projections and ranks of (sorted a - sorted b)^2."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"sliced_wasserstein compares equally many points, got {a.shape[0]} and {b.shape[0]}")
    return ((a @ projections).sort(dim=0).values - (b @ projections).sort(dim=0).values).pow(2).mean()


def random_projections(dim: int, count: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """`count` random unit directions in R^dim as the columns of a [dim, count] matrix."""
    directions = torch.randn(dim, count, generator=generator, device=device)
    return directions / directions.norm(dim=0, keepdim=True)


def patch_swd_loss(fake: Tensor, real: Tensor, scales: tuple[int, ...], generator: torch.Generator | None,
                   patch_size: int = PATCH_SWD_SIZE, projections: int = 64) -> Tensor:
    """GPDM's patch-distribution distance (Elnekave & Weiss 2022), averaged over `scales`: the sliced
    Wasserstein distance between all patch_size^2 RGB patches of the fakes and of the reals (no gradient),
    each batch average-pooled by the scale first; fresh projections at every call. When the counts
    differ the larger set is subsampled at random to the smaller one's size."""
    total = fake.new_zeros((), dtype=torch.float32)
    for scale in scales:
        f_small, r_small = (F.avg_pool2d(x, scale) if scale > 1 else x for x in (fake.float(), real.detach().float()))
        fp, rp = image_patches(f_small, patch_size), image_patches(r_small, patch_size)
        n = min(fp.shape[0], rp.shape[0])
        if fp.shape[0] > n:
            fp = fp[torch.randperm(fp.shape[0], generator=generator, device=fp.device)[:n]]
        if rp.shape[0] > n:
            rp = rp[torch.randperm(rp.shape[0], generator=generator, device=rp.device)[:n]]
        total = total + sliced_wasserstein(fp, rp, random_projections(fp.shape[1], projections, generator,
                                                                      fp.device))
    return total / len(scales)


def without_patch_means(rows: Tensor, channels: int) -> Tensor:
    """Patch rows (as `image_patches` gives them) with each channel's patch mean subtracted: what a patch
    holds besides its colour (a stroke's edges and grain), not the colour itself."""
    per_channel = rows.reshape(rows.shape[0], channels, -1)
    return (per_channel - per_channel.mean(dim=2, keepdim=True)).reshape(rows.shape[0], -1)


def relaxed_emd(a: Tensor, b: Tensor) -> Tensor:
    """STROTSS's relaxed earth mover's distance (Kolkin et al. 2019) between point sets [N, D] and [M, D]
    under the mean squared difference per dimension: the larger of "each a is near some b" and "each b is
    near some a". Unlike a full transport plan (or sliced Wasserstein) it does not ask the two sets to
    have the same proportions: the output need not be as much sky as the painting is, only hold its marks."""
    cost = torch.cdist(a, b).pow(2) / a.shape[1]
    return torch.maximum(cost.min(dim=1).values.mean(), cost.min(dim=0).values.mean())


def patch_match_loss(fake: Tensor, real: Tensor, scales: tuple[int, ...], generator: torch.Generator | None,
                     patch_size: int = PATCH_SWD_SIZE, samples: int = 1024) -> Tensor:
    """The relaxed EMD between the mean-removed patch_size^2 RGB patches of the fakes and of the reals (no
    gradient), averaged over `scales` (each batch average-pooled by the scale first): asks G for the
    painting's marks at several sizes, wherever they fit, rather than its colours or proportions. Each set
    is subsampled at random to `samples` patches per scale; computed in float32 outside autocast."""
    total = fake.new_zeros((), dtype=torch.float32)
    with torch.autocast(fake.device.type, enabled=False):
        for scale in scales:
            f_small, r_small = (F.avg_pool2d(x, scale) if scale > 1 else x
                                for x in (fake.float(), real.detach().float()))
            # pick first: only the picked patches need their means removed
            picked = [p[torch.randperm(p.shape[0], generator=generator, device=p.device)[:samples]]
                      for p in (image_patches(f_small, patch_size), image_patches(r_small, patch_size))]
            total = total + relaxed_emd(*(without_patch_means(p, fake.shape[1]) for p in picked))
    return total / len(scales)


HIGH_BAND_SIGMA = 2.0  # px: the high band is the luminance minus its Gaussian blur of this sigma
HIGH_BAND_WINDOW = 8  # px: the windows whose texture strength is compared


def high_band_strength(images: Tensor, sigma: float = HIGH_BAND_SIGMA, window: int = HIGH_BAND_WINDOW) -> Tensor:
    """How much fine texture each window holds: the RMS of the luminance's high band (luminance minus its
    Gaussian blur) over every window x window block of a [B, 3, H, W] batch, as one flat tensor."""
    luma = (images * images.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    r = math.ceil(3 * sigma)
    high = luma - kornia.filters.gaussian_blur2d(luma, (2 * r + 1, 2 * r + 1), (sigma, sigma), border_type="reflect")
    return F.avg_pool2d(high.pow(2), window).add(1e-8).sqrt().flatten()


def excess_high_band(fake: Tensor, real: Tensor) -> Tensor:
    """A one-sided 1-D transport cost between the windows' texture strengths (high_band_strength): sorted,
    each of the fakes' quantiles pays what it exceeds the reals' same quantile by. A smooth painting then
    asks for smooth paint in as many windows as it is smooth, and a painting of strokes costs nothing
    where the output has as much texture or less. Equal batch shapes; float32 outside autocast."""
    with torch.autocast(fake.device.type, enabled=False):
        ours = high_band_strength(fake.float()).sort().values
        theirs = high_band_strength(real.detach().float()).sort().values
        return F.relu(ours - theirs).mean()


def flip_if(x: Tensor, flipped: bool | Tensor) -> Tensor:
    """x mirrored along W when `flipped`; a device bool selects with `where` (no read back, the same values)."""
    return torch.where(flipped, x.flip(3), x) if isinstance(flipped, Tensor) else (x.flip(3) if flipped else x)


@dataclass
class Forward:
    """What one G pass on [source; target] gives the two losses."""

    source: Tensor
    target: Tensor
    fake: Tensor          # G(source): the translation
    identity: Tensor      # G(target): should stay the target
    source_feats: list[Tensor]  # encoder features of the real inputs, from the same G pass
    target_feats: list[Tensor]
    flipped: bool | Tensor = False  # flip-equivariance: G saw the inputs mirrored (a device bool: sync_free)
    with_identity: bool = True  # G ran on TARGET too (False on the steps --identity-every skips)


class Objective:
    """CUT / SinCUT losses with the weights of one config.

    Identical to the paper's math, with the work it does twice done once: the keys of PatchNCE are
    the encoder features of the real images that G's forward already computed (they receive no
    gradient), the queries of both NCE terms come from one encoder pass over [fake; identity], and
    D sees fakes and reals in one batch (D has no layer that mixes samples). With flip-equivariance
    and a flipped batch, the keys need the unflipped images, so only then they get their own pass.

    G, D and F may be DistributedDataParallel wrappers: the passes that carry gradients to be
    synchronised go through the wrapper, the others (encoder-only passes, D while G trains, key
    projections) through the bare module, whose parameters' gradients the wrapper still reduces.
    """

    def __init__(self, G: nn.Module, D: nn.Module, F_head: nn.Module, *, nce_layers: tuple[int, ...],
                 num_patches: int, nce_temperature: float, nce_negatives_from_minibatch: bool,
                 lambda_gan: float, lambda_nce: float, nce_identity: bool, lambda_identity: float,
                 r1_gamma: float, r1_every: int = 1, gan_mode: str = "nonsaturating",
                 flip_equivariance: bool = False, generator: torch.Generator | None = None,
                 lambda_patch_swd: float = 0.0, patch_swd_scales: tuple[int, ...] = (1, 2),
                 lambda_patch_match: float = 0.0, patch_match_scales: tuple[int, ...] = (1, 2, 4),
                 identity_every: int = 1, lambda_local_gan: float = 0.0, lambda_high_band: float = 0.0) -> None:
        self.G, self.D, self.F = G, D, F_head
        self.G_net: Generator = without_ddp(G)
        self.D_net: Discriminator = without_ddp(D)
        self.D_plain: Discriminator = unwrap(D)  # no DDP, no torch.compile: for R1's double backward
        self.D_compiled = self.D_plain is not self.D_net
        self.F_net: ProjectionHead = without_ddp(F_head)
        self.gan_mode = gan_mode
        self.flip_equivariance = flip_equivariance
        self.nce_layers = tuple(nce_layers)
        self.num_patches = num_patches
        self.temperature = nce_temperature
        self.minibatch_negatives = nce_negatives_from_minibatch
        self.lambda_gan = lambda_gan
        self.lambda_nce = lambda_nce
        self.nce_identity = nce_identity
        self.lambda_identity = lambda_identity
        self.r1_gamma = r1_gamma
        self.r1_every = r1_every
        self.rng = generator
        self.lambda_patch_swd = lambda_patch_swd
        self.patch_swd_scales = tuple(patch_swd_scales)
        self.lambda_patch_match = lambda_patch_match
        self.patch_match_scales = tuple(patch_match_scales)
        self.identity_every = identity_every
        self.lambda_local_gan = lambda_local_gan
        self.lambda_high_band = lambda_high_band
        if lambda_local_gan > 0 and getattr(self.D_net, "local", None) is None:
            raise ValueError("lambda_local_gan needs a discriminator with a local head (local_ndf > 0)")
        # Run G on source and target, G's encoder on fake and identity, and D on fakes and reals as
        # separate passes instead of one batch each: the same numbers, and faster on CPUs, where oneDNN's
        # convolutions at batch 2 took longer than two at batch 1 (benchmarks/ab.py separate). The
        # trainer turns it on where it measured faster; never under DDP, which wants one pass per net.
        self.separate_passes = False
        # sync_free (trainer, CUDA): the flip draw stays on the device; the keys' own pass runs every step
        self.sync_free = False

    @classmethod
    def from_config(cls, config: "TrainConfig", G: nn.Module, D: nn.Module, F_head: nn.Module,
                    generator: torch.Generator | None = None) -> "Objective":
        """The objective a config trains: the one place that maps its fields to the losses, so the
        trainer and the golden-step tests cannot wire them differently."""
        return cls(
            G, D, F_head, nce_layers=config.nce_layers, num_patches=config.num_patches,
            nce_temperature=config.nce_temperature, nce_negatives_from_minibatch=config.nce_negatives_from_minibatch,
            lambda_gan=config.lambda_gan, lambda_nce=config.lambda_nce, nce_identity=config.nce_identity,
            lambda_identity=config.lambda_identity, r1_gamma=config.r1_gamma, r1_every=config.r1_every,
            gan_mode=config.gan_mode, flip_equivariance=config.flip_equivariance, generator=generator,
            lambda_patch_swd=config.lambda_patch_swd, patch_swd_scales=config.patch_swd_scales,
            lambda_patch_match=config.lambda_patch_match, patch_match_scales=config.patch_match_scales,
            identity_every=config.identity_every, lambda_local_gan=config.lambda_local_gan,
            lambda_high_band=config.lambda_high_band,
        )

    def identity_step(self, step: int) -> bool:
        """Whether step `step` has the identity terms: every step, or every identity_every-th (lazy)."""
        return (self.nce_identity or self.lambda_identity > 0) and step % self.identity_every == 0

    def forward(self, source: Tensor, target: Tensor, flipped: bool | None = None, step: int = 0) -> Forward:
        """`flipped` forces the flip-equivariance draw (the golden-step tests replay the paper's). On a
        step without the identity terms (--identity-every) G runs on SOURCE only."""
        needs_target = self.identity_step(step)
        if flipped is None:
            flipped = self.flip_equivariance and (torch.rand((), device=source.device, generator=self.rng) < 0.5)
            flipped = flipped if self.sync_free or flipped is False else bool(flipped)
        inputs = [flip_if(x, flipped) for x in ([source, target] if needs_target else [source])]
        # --colour-init: G's colour transfer T (fitted photo -> painting) applies to the sources only; the
        # identity pass's TARGET patches are in the painting's colours already, so G(target) = target + change.
        colour = getattr(self.G_net, "colour", None) is not None
        if self.separate_passes and needs_target:
            # one draw of the noise maps for both, as the batched pass draws them: the same numbers
            n, (h, w) = source.shape[0], source.shape[-2:]
            noise = self.G_net.draw_noise(n + target.shape[0], h, w, self.rng, source.device, source.dtype)
            (fake, source_feats), (identity, target_feats) = (
                self.G(x, self.nce_layers, noise=[m[:n] if i == 0 else m[n:] for m in noise],
                       **({"colour_rows": n if i == 0 else 0} if colour else {}))
                for i, x in enumerate(inputs))
            return Forward(source, target, fake, identity, source_feats, target_feats, flipped)
        rows = {"colour_rows": source.shape[0]} if colour else {}
        out, feats = self.G(torch.cat(inputs) if needs_target else inputs[0], self.nce_layers, generator=self.rng,
                            **rows)
        sizes = [source.shape[0], out.shape[0] - source.shape[0]]  # split, not slices: one backward copy
        (fake, identity), halves = out.split(sizes), [f.split(sizes) for f in feats]
        return Forward(source, target, fake, identity, [h[0] for h in halves], [h[1] for h in halves], flipped,
                       with_identity=needs_target)

    def discriminator_loss(self, fwd: Forward, step: int = 0) -> tuple[Tensor, dict[str, Tensor]]:
        """GAN loss on detached fakes and reals, halved, plus R1. With r1_every = K > 1 (lazy R1, as in
        StyleGAN2) the penalty is computed every K-th step only, scaled by K. With a local head
        (--lambda-local-gan) its per-window loss joins, weighted, and R1 covers both heads."""
        with_r1 = self.r1_gamma > 0 and step % self.r1_every == 0
        real = fwd.target.detach().requires_grad_(with_r1)
        fake = fwd.fake.detach()
        if self.separate_passes:
            pred_fake, pred_real = self.D(fake), self.D(real)
        else:
            pred_fake, pred_real = self.D(torch.cat([fake, real])).split([fake.shape[0], real.shape[0]])
        loss_fake = gan_loss(pred_fake, False, self.gan_mode)
        loss_real = gan_loss(pred_real, True, self.gan_mode)
        parts = {"D_fake": loss_fake, "D_real": loss_real}
        loss = (loss_fake + loss_real) * 0.5
        local_real = None
        if self.lambda_local_gan > 0:
            local_fake, local_real = self.D_net.local(torch.cat([fake, real])).split([fake.shape[0], real.shape[0]])
            parts["D_local"] = (gan_loss(local_fake, False, self.gan_mode)
                                + gan_loss(local_real, True, self.gan_mode)) * (0.5 * self.lambda_local_gan)
            loss = loss + parts["D_local"]
        if with_r1:
            if torch.is_autocast_enabled(real.device.type) or self.D_compiled:
                # Reduced precision would lose the penalty's small gradients, and compiled graphs have
                # no double backward: R1 then gets its own float32 pass of the plain D on the reals.
                with torch.autocast(real.device.type, enabled=False):
                    pred_real = self.D_plain(real.float())
                    if local_real is not None:
                        local_real = self.D_plain.local(real.float())
            scored = pred_real.float()
            if local_real is not None:  # the local head's score of a patch: its windows' mean logit
                scored = scored + local_real.float().flatten(1).mean(dim=1, keepdim=True)
            parts["D_R1"] = r1_penalty(scored, real, self.r1_gamma * self.r1_every)
            loss = loss + parts["D_R1"]
        return loss, parts

    def _nce(self, query_feats: list[Tensor], key_feats: list[Tensor]) -> Tensor:
        if not len(query_feats) == len(key_feats) == len(self.nce_layers):
            # zip would silently drop a layer and rescale PatchNCE: refuse instead
            raise ValueError(f"PatchNCE got {len(query_feats)} query and {len(key_feats)} key feature maps "
                             f"for {len(self.nce_layers)} layers {self.nce_layers}")
        ids = self.F_net.sample_locations(key_feats, self.num_patches, self.rng)
        with torch.no_grad():  # keys are detached in the loss, so their projection needs no graph
            keys = self.F_net([k.detach() for k in key_feats], ids)
        queries = self.F(query_feats, ids)
        batch = key_feats[0].shape[0]
        total = sum(
            patch_nce_loss(q, k, batch, self.temperature, self.minibatch_negatives).mean() * self.lambda_nce
            for q, k in zip(queries, keys)
        )
        return total / len(self.nce_layers)

    def _encode_each(self, images: list[Tensor]) -> list[list[Tensor]]:
        """G's encoder features of each image batch: one pass each, or one pass over all of them."""
        if self.separate_passes or len(images) == 1:
            return [self.G_net.encode(x, self.nce_layers) for x in images]
        feats = self.G_net.encode(torch.cat(images), self.nce_layers)
        sizes = [x.shape[0] for x in images]
        return [list(per_image) for per_image in zip(*(f.split(sizes) for f in feats))]

    def generator_loss(self, fwd: Forward) -> tuple[Tensor, dict[str, Tensor]]:
        parts: dict[str, Tensor] = {}
        loss = fwd.fake.new_zeros(())
        if self.lambda_gan > 0:
            parts["G_GAN"] = gan_loss(self.D_net(fwd.fake), True, self.gan_mode) * self.lambda_gan
            loss = loss + parts["G_GAN"]
        if self.lambda_local_gan > 0:
            parts["G_local"] = gan_loss(self.D_net.local(fwd.fake), True, self.gan_mode) * self.lambda_local_gan
            loss = loss + parts["G_local"]
        # --identity-every K: the identity terms on every K-th step, scaled by K (lazy, as R1)
        lazy = float(self.identity_every)
        nce_identity = self.nce_identity and fwd.with_identity
        if self.lambda_nce > 0:
            generated = [fwd.fake, fwd.identity] if nce_identity else [fwd.fake]
            reals = [fwd.source, fwd.target] if nce_identity else [fwd.source]
            queries = self._encode_each(generated)
            keys = [fwd.source_feats, fwd.target_feats][:len(generated)]
            if isinstance(fwd.flipped, Tensor) or fwd.flipped:  # flip the queries back; the keys come from
                queries = [[flip_if(q, fwd.flipped) for q in qs] for qs in queries]  # the unflipped reals
                with torch.no_grad():
                    unflipped = self._encode_each(reals)
                keys = unflipped if not isinstance(fwd.flipped, Tensor) else [
                    [torch.where(fwd.flipped, u, k) for u, k in zip(us, ks)] for us, ks in zip(unflipped, keys)]
            nce = [self._nce(q, k) for q, k in zip(queries, keys)]
            parts["NCE"] = nce[0]
            if nce_identity:
                parts["NCE_Y"] = nce[1] * lazy if lazy != 1 else nce[1]
                loss = loss + (parts["NCE"] + parts["NCE_Y"]) * 0.5
            elif self.nce_identity:  # a lazy step without the identity pass: the same weight on NCE
                loss = loss + parts["NCE"] * 0.5
            else:
                loss = loss + parts["NCE"]
        if self.lambda_identity > 0 and fwd.with_identity:
            parts["idt"] = F.l1_loss(fwd.identity, fwd.target) * (self.lambda_identity * lazy)
            loss = loss + parts["idt"]
        if self.lambda_patch_swd > 0:  # draws from the step's generator only when on: off leaves runs unchanged
            real = flip_if(fwd.target, fwd.flipped)  # the fakes' orientation
            parts["SWD"] = patch_swd_loss(fwd.fake, real, self.patch_swd_scales, self.rng) * self.lambda_patch_swd
            loss = loss + parts["SWD"]
        if self.lambda_high_band > 0:
            real = flip_if(fwd.target, fwd.flipped)
            parts["high_band"] = excess_high_band(fwd.fake, real) * self.lambda_high_band
            loss = loss + parts["high_band"]
        if self.lambda_patch_match > 0:  # as above: draws from the generator only when on
            real = flip_if(fwd.target, fwd.flipped)
            parts["match"] = (patch_match_loss(fwd.fake, real, self.patch_match_scales, self.rng)
                              * self.lambda_patch_match)
            loss = loss + parts["match"]
        return loss, parts
