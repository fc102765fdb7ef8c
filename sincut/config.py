"""One dataclass for a training run; its defaults are the paper's single-image (SinCUT) recipe.

Every field becomes a `sincut train` option (see cli/options.py), so the paper's numbers live here and only
here. The config is saved as JSON into every run directory and inside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


# Option groups, for the command line's help (cli/options.py) and for what `resume` may change:
# paper = the recipe values users tune; advanced = the rest of the recipe (research knobs);
# execution = how the same recipe runs on this machine (changeable on resume: a CPU run may go on
# on a GPU with --compile); bookkeeping = logs, previews, checkpoints, evaluation and the seed.
GROUPS = ("paper", "advanced", "execution", "bookkeeping")
DEFAULT_GROUP = "advanced"  # a field added without a group is a research knob until someone says otherwise


def _opt(default: Any, help: str, resumable: bool = False, group: str | None = None, brief: str | None = None,
         **limits: Any) -> Any:
    """A config field. `resumable` fields may change when a run is resumed; the rest define the objective.
    `group` sorts it in --help (see GROUPS); `brief` is its one-line help on the one-screen --help."""
    tags = {k: v for k, v in (("group", group), ("brief", brief)) if v is not None}
    return field(default=default, metadata={"help": help, "resumable": resumable, **tags, **limits})


def field_group(f: dataclasses.Field) -> str:
    """The field's group; untagged fields are 'advanced'."""
    return f.metadata.get("group", DEFAULT_GROUP)


def changeable_on_resume(f: dataclasses.Field) -> bool:
    """Bookkeeping marked resumable, and every execution field: neither changes what is learned."""
    return bool(f.metadata.get("resumable")) or field_group(f) == "execution"


PATCH_SWD_SIZE = 7  # side of the patches --lambda-patch-swd compares (GPDM's)


@dataclass
class TrainConfig:
    preset: str = _opt("sincut", "Recipe the other defaults come from.", group="advanced")
    steps: int | None = _opt(100_000, "Total training steps (sincut: 100,000; cut/fastcut: --epochs x the larger "
                             "folder's image count).", resumable=True, min=1,
                             group="paper", brief="Total training steps.")
    minutes: float | None = _opt(None, "Train for this wall-clock budget instead of a step count: the steps are "
                                       "sized from the recent step time and sized again every few seconds, so "
                                       "the lr decay ends in time (evaluations and the final outputs included) "
                                       "when the machine gets busier or quieter; the lr never rises; the run's "
                                       "config records the steps.", min=0.1,
                                 group="paper", brief="Wall-clock budget instead of --steps.")
    epochs: int | None = _opt(None, "Dataset mode: epochs (cut: 400, fastcut: 200); --steps replaces it. Fixed "
                                    "as steps when a run starts (resume takes --steps).", min=1,
                              group="paper", brief="Dataset mode: passes over the folders.")
    decay_start: float = _opt(0.5, "Fraction of the steps at constant lr; then linear decay.", min=0.0, max=1.0,
                              group="advanced")
    lr_schedule: str = _opt("epochs", "epochs: the paper's staircase, lr changes once per epoch and its last epoch "
                                      "runs at lr/(decay epochs + 1); linear: decays every step to 0.",
                            choices=("epochs", "linear"), group="advanced")
    epoch_steps: int | None = _opt(None, "Steps per epoch of the 'epochs' lr schedule (default: the folders' epoch "
                                         "in dataset mode; sincut: --steps / 16, the paper's 16 epochs of 6,250 "
                                         "steps).", min=1, group="advanced")
    batch_size: int = _opt(16, "Patches (sincut) or images (cut/fastcut) per step and process.", min=1,
                           group="paper", brief="Patches or images per step.")
    crop_size: int = _opt(64, "Patch or crop size in pixels (a power of two for sincut's D).", min=8,
                          group="paper", brief="Patch or crop size in pixels.")
    load_size: int = _opt(286, "Dataset mode: images are resized to this square size, then randomly cropped.", min=8,
                          group="paper", brief="Dataset mode: resize to this, then crop.")
    zoom_min: float = _opt(1 / 3, "Smallest random zoom of a patch, relative to the native size.", min=0.01, max=1.0,
                           group="advanced")
    zoom_max: float = _opt(1.0, "Largest random zoom of a patch.", min=0.01, max=4.0, group="advanced")
    coarse_fraction: float = _opt(0.0, "Coarse to fine (two images): the first this fraction of the steps sample "
                                       "every patch zoomed out 2x (each covers 4x the area: a low-resolution "
                                       "view, for the palette and layout), the rest at the full zoom range "
                                       "(the marks); 0 = off.", min=0.0, max=0.9, group="advanced")
    match_scale: bool = _opt(False, "Two images: TARGET's patches come from TARGET resized (antialiased) to "
                                     "SOURCE's pixel count, so a patch at one zoom covers the same share of "
                                     "either picture and G is asked for the painting's marks at the size they "
                                     "have in its whole picture; previews and figures use TARGET as it is.",
                             group="advanced")
    flip: bool = _opt(True, "Random horizontal flips, drawn separately for source and target.", group="advanced")
    patch_positions: str = _opt("paper", "sincut: paper = each patch one cell of a randomly offset crop-size grid "
                                         "over its zoomed image (the paper's code); stratified = a batch's patches "
                                         "spread over a jittered grid over the image.",
                                choices=("paper", "stratified"), group="advanced")
    generator: str = _opt("stylegan2", "Generator architecture.", choices=("stylegan2", "resnet"), group="advanced")
    discriminator: str = _opt("stylegan2", "Discriminator architecture.", choices=("stylegan2", "patchgan"),
                              group="advanced")
    ngf: int = _opt(10, "Generator width (sincut: channel table scale).", min=1, group="advanced")
    ndf: int = _opt(8, "Discriminator width (sincut: channel table scale).", min=1, group="advanced")
    residual: bool = _opt(False, "Generator outputs its input plus a learned change that starts at zero "
                                 "(the quick recipe); off in the paper's networks.", group="advanced")
    guide_radius: int = _opt(0, "Residual G only: its change goes through a guided filter (He et al. 2010) steered by "
                                "the photo's luminance, so in every (2R+1)-pixel window the change is a linear "
                                "function of the photo's brightness and cannot cross an edge the photo does not "
                                "have (no halo along a skyline); 0 = off, G's raw change.", min=0, max=64,
                                group="advanced")
    detail_sigma: float = _opt(0.0, "With --guide-radius: the part of G's own change finer than a Gaussian of this "
                                    "many pixels (the change minus its blur) bypasses the guided filter, so G can "
                                    "draw strokes the photo lacks while wide bands (halos) stay filtered; 0 = off.",
                               min=0.0, max=16.0, group="advanced")
    linear_change: bool = _opt(False, "Residual G only: G's last layer is linear (no bias, no leaky ReLU), so its "
                                      "change may darken as freely as it brightens; off = the paper's last layer, "
                                      "whose leaky ReLU gives a negative change a fifth of a positive one's gain "
                                      "(and gradient).", group="advanced")
    colour_init: str = _opt("none", "Residual G only: G starts from a closed-form colour transfer toward TARGET, "
                                    "fitted once from the two images and kept inside G: reinhard (Reinhard et al. "
                                    "2001, l-alpha-beta means and stds) or pitie (Pitie et al. 2005, 1-D distribution "
                                    "transfer along random colour axes). With --guide-radius the transfer's change "
                                    "joins G's in the photo-guided filter. none = start from the input.",
                            choices=("none", "reinhard", "pitie"), group="advanced")
    ema_halflife: float = _opt(0.0, "Translate with a running average of G's weights (previews, evaluations, "
                                    "results, checkpoints' inference weights): old steps' weight halves every "
                                    "this many steps (ramped up as a tenth of the steps done, so the untrained "
                                    "start fades quickly); 0 = off, the paper's raw G. Training is unchanged.",
                               min=0.0, group="advanced")
    border: int = _opt(0, "Pixels of the image's border mirrored around a whole image before G translates it "
                          "(previews, results, translate, export; training patches are unchanged), cropped "
                          "after: the zero padding of G's convolutions then never meets the image's edge, "
                          "where it draws a coloured line. Off in the paper's recipe.",
                        resumable=True, min=0, max=256, brief="Mirror this many px around images G translates.",
                        group="advanced")
    n_blocks: int = _opt(6, "Generator residual blocks (sincut: split between encoder and decoder).", min=2,
                         group="advanced")
    init_gain: float = _opt(0.02, "Xavier init gain of the ResNet/PatchGAN nets and of F.", min=0.0, group="advanced")
    gan_mode: str = _opt("nonsaturating", "Adversarial loss.", choices=("nonsaturating", "lsgan"), group="advanced")
    flip_equivariance: bool = _opt(False, "FastCUT: flip G's input batch at random and flip the fake's "
                                          "features back before PatchNCE.", group="advanced")
    lambda_patch_swd: float = _opt(0.0, "Weight of a patch-distribution loss toward TARGET (GPDM, Elnekave & Weiss "
                                        "2022): the sliced Wasserstein distance between the 7x7 RGB patches of G's "
                                        "outputs and of the batch's TARGET patches, 64 fresh random projections a "
                                        "step, averaged over --patch-swd-scales; G only, D unaffected; 0 = off.",
                                   min=0.0, group="advanced")
    patch_swd_scales: tuple[int, ...] = _opt((1, 2), "Downscale factors at which --lambda-patch-swd compares patches "
                                                     "(1 = the crop as sampled, 2 = half resolution).", group="advanced")
    lambda_patch_match: float = _opt(0.0, "Weight of a mark-matching loss toward TARGET: the relaxed earth mover's "
                                          "distance (STROTSS, Kolkin et al. 2019) between G's outputs' and the "
                                          "batch's TARGET 7x7 RGB patches with each patch's mean colour removed, "
                                          "1,024 of each at random a step, averaged over --patch-match-scales: "
                                          "every output patch near some painting patch and every painting patch "
                                          "near some output patch, so it asks for the painting's marks (not its "
                                          "colours or its proportions); G only; 0 = off.",
                                     min=0.0, group="advanced")
    patch_match_scales: tuple[int, ...] = _opt((1, 2, 4), "Downscale factors at which --lambda-patch-match "
                                                          "compares patches.", group="advanced")
    identity_every: int = _opt(1, "The identity terms (PatchNCE on TARGET and the L1 identity) on every N-th step "
                                  "only, scaled by N (lazy, as --r1-every): G skips its pass on TARGET patches "
                                  "on the other steps; 1 = every step, as in the paper.", min=1, group="advanced")
    lambda_local_gan: float = _opt(0.0, "Weight of a second, fine-scale discriminator's adversarial loss (sincut "
                                        "networks): beside the patch D, a small critic scores every window of "
                                        "about 24 px of a patch (one logit each), so G is asked for the "
                                        "painting's marks where it has marks and its smooth paint where it is "
                                        "smooth; trained with D (R1 covers both); 0 = off.",
                                   min=0.0, group="advanced")
    lambda_high_band: float = _opt(0.0, "Weight of a cost on fine texture above the painting's: every 8x8 window's "
                                        "RMS of the luminance's high band (minus a 2 px Gaussian blur), sorted, "
                                        "for G's outputs and the batch's TARGET patches; each output quantile "
                                        "pays what it exceeds the painting's same quantile by (smooth paint "
                                        "where the painting is smooth, marks allowed where it has them); G "
                                        "only; 0 = off.", min=0.0, group="advanced")
    lr: float = _opt(0.002, "Adam learning rate for G, D and F.", min=0.0,
                     group="paper", brief="Adam learning rate.")
    beta1: float = _opt(0.0, "Adam beta1.", min=0.0, max=1.0, group="advanced")
    beta2: float = _opt(0.99, "Adam beta2.", min=0.0, max=1.0, group="advanced")
    lambda_gan: float = _opt(1.0, "Weight of the adversarial loss.", min=0.0,
                             group="paper", brief="Weight of the adversarial loss.")
    lambda_nce: float = _opt(4.0, "Weight of each PatchNCE term.", min=0.0,
                             group="paper", brief="Weight of each PatchNCE term.")
    nce_identity: bool = _opt(True, "Add the identity PatchNCE term on (target, G(target)).", group="advanced")
    lambda_identity: float = _opt(1.0, "Weight of the L1 identity loss between G(target) and target.", min=0.0,
                                  group="paper", brief="Weight of the L1 identity loss.")
    nce_layers: tuple[int, ...] = _opt((0, 2, 4), "Encoder layers used by PatchNCE (0 = the input image).",
                                       group="advanced")
    num_patches: int = _opt(1, "Sampled feature locations per layer per image.", min=1, group="advanced")
    nce_temperature: float = _opt(0.07, "PatchNCE temperature.", min=1e-4, group="advanced")
    nce_negatives_from_minibatch: bool = _opt(True, "Take PatchNCE negatives from the whole minibatch, "
                                                     "not only the same image.", group="advanced")
    projection_dim: int = _opt(256, "Width of the PatchNCE projection head F.", min=1, group="advanced")
    r1_gamma: float = _opt(1.0, "R1 penalty weight gamma (0 turns it off).", min=0.0, group="advanced")
    r1_every: int = _opt(1, "Fast path: lazy R1 every K steps, scaled by K (StyleGAN2); 1 = every step "
                            "as in the paper.", min=1, group="advanced")
    precision: str = _opt("auto", "auto = bf16 autocast for the quick recipe on CPUs with bf16 kernels (AMX "
                                  "or AVX512-BF16: faster, and shown to train the same), else fp32 (the other "
                                  "recipes until their bf16 pictures are measured; GPUs, where bf16 measured no "
                                  "faster); config.json records which ran. "
                                  "fp32 for bit-exact work (a run that repeats or resumes exactly on another "
                                  "machine); bf16 or fp16 (fp16 with loss scaling, GPU only) to force autocast. "
                                  "R1 stays in float32.",
                          choices=("auto", "fp32", "bf16", "fp16"),
                          group="execution", brief="auto: bf16 where fast and shown safe, else fp32.")
    compile: bool = _opt(False, "Fast path: torch.compile G, D and F (slow first steps; best on GPUs).",
                         group="execution", brief="torch.compile the networks.")
    cuda_graphs: bool = _opt(False, "CUDA GPUs: capture each kind of training step (R1 or not, and so on) as a CUDA "
                                    "graph after a few eager steps and replay it, so the GPU is not left waiting "
                                    "on Python's kernel launches; the same math (Adam made capturable). Not yet "
                                    "measured on a GPU, so off by default. Refused on a CPU or MPS, under "
                                    "torchrun, with --precision fp16, --compile, --lambda-high-band, "
                                    "--detail-sigma or --colour-init.",
                             group="execution", brief="CUDA only: replay steps as captured CUDA graphs.")
    seed: int = _opt(0, "Random seed; a CPU run with the same seed repeats exactly.", min=0,
                     group="bookkeeping", brief="Random seed.")
    log_every: int = _opt(10, "Steps between loss log lines (and progress updates of the losses).",
                          resumable=True, min=1,
                          group="bookkeeping", brief="Steps between log lines.")
    preview_every: int = _opt(1000, "Steps between preview images (source | translation | target).",
                              resumable=True, min=1,
                              group="bookkeeping", brief="Steps between preview images.")
    checkpoint_every: int = _opt(1000, "Steps between checkpoints (one is also written at the end, and on Ctrl-C).",
                                 resumable=True, min=1,
                                 group="bookkeeping", brief="Steps between checkpoints.")
    keep_checkpoints: int = _opt(2, "How many recent checkpoints to keep (alias --keep).", resumable=True, min=1,
                                 group="bookkeeping", brief="Recent checkpoints kept.")
    # Quality measurement and the best checkpoint (sincut/evaluation/: its figures, monitor.py).
    eval_every: int = _opt(0, "Steps between quality measurements of the translation (SOURCE at up to 0.8 MP) "
                              "(metrics.jsonl, best.pt); 0 = at every preview.", resumable=True, min=0,
                           group="bookkeeping", brief="Steps between evaluations; 0 = at previews.")
    select_by: str = _opt("style", "What picks checkpoints/best.pt: style or sifid (lowest style distance or "
                                   "SIFID among evaluations with SSIM >= --select-min-ssim; sifid needs "
                                   "sincut[metrics]), ssim or edges (highest).",
                          choices=("style", "sifid", "ssim", "edges"), resumable=True,
                          group="bookkeeping", brief="What picks best.pt.")
    select_min_ssim: float = _opt(0.5, "Content SSIM an evaluation needs to be chosen by --select-by style "
                                       "or sifid.",
                                  resumable=True, min=0.0, max=1.0,
                                  group="bookkeeping", brief="SSIM best.pt needs (style/sifid).")

    def validate(self) -> None:
        """Raise ValueError naming the option when a value is out of range or inconsistent."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise ValueError(f"--{f.name.replace('_', '-')} must be one of {', '.join(choices)}, got {value!r}")
            if value is None:
                continue
            if lo is not None and value < lo:
                raise ValueError(f"--{f.name.replace('_', '-')} must be >= {lo}, got {value}")
            if hi is not None and value > hi:
                raise ValueError(f"--{f.name.replace('_', '-')} must be <= {hi}, got {value}")
        if self.discriminator == "stylegan2" and self.crop_size & (self.crop_size - 1):
            raise ValueError(f"--crop-size must be a power of two, got {self.crop_size}")
        if self.steps is None and self.epochs is None and self.minutes is None:
            raise ValueError("give --steps, --epochs or --minutes")
        if self.generator == "resnet" and self.crop_size > self.load_size:
            raise ValueError(f"--crop-size ({self.crop_size}) must not exceed --load-size ({self.load_size})")
        if self.zoom_min > self.zoom_max:
            raise ValueError(f"--zoom-min ({self.zoom_min}) must not exceed --zoom-max ({self.zoom_max})")
        deepest = self.deepest_encoder_layer()
        if not self.nce_layers or min(self.nce_layers) < 0 or max(self.nce_layers) > deepest:
            layers = ",".join(map(str, self.nce_layers))
            raise ValueError(f"--nce-layers must be encoder layer indices in 0..{deepest} for --generator "
                             f"{self.generator} with --n-blocks {self.n_blocks}, got {layers}")
        if len(set(self.nce_layers)) != len(self.nce_layers):
            raise ValueError(f"--nce-layers lists a layer twice: {','.join(map(str, self.nce_layers))}")
        if self.preset not in PRESETS:
            raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        for name, beta in (("beta1", self.beta1), ("beta2", self.beta2)):
            if beta >= 1.0:  # Adam divides by 1 - beta^t
                raise ValueError(f"--{name} must be < 1, got {beta}")
        if self.generator == "stylegan2" and self.n_blocks % 2:
            raise ValueError(f"--n-blocks must be even for --generator stylegan2 (half in the encoder, half in "
                             f"the decoder), got {self.n_blocks}")
        if self.guide_radius and not (self.residual and self.generator == "stylegan2"):
            raise ValueError(f"--guide-radius {self.guide_radius} filters the change of a residual generator: add "
                             "--residual (with --generator stylegan2), or give --guide-radius 0")
        if self.linear_change and not self.residual:
            raise ValueError("--linear-change makes a residual G's change linear: add --residual")
        if self.detail_sigma and not self.guide_radius:
            raise ValueError(f"--detail-sigma {self.detail_sigma} lets fine detail bypass the guided filter: "
                             "add --guide-radius R (with --residual), or give --detail-sigma 0")
        if self.colour_init != "none" and not (self.residual and self.generator == "stylegan2"):
            raise ValueError(f"--colour-init {self.colour_init} starts a residual generator from a colour transfer: "
                             "add --residual (with --generator stylegan2), or give --colour-init none")
        if self.lambda_local_gan > 0 and self.discriminator != "stylegan2":
            raise ValueError(f"--lambda-local-gan {self.lambda_local_gan} adds a fine-scale head to the sincut "
                             "discriminator: give --discriminator stylegan2, or --lambda-local-gan 0")
        self._check_patch_scales("patch-swd-scales", self.patch_swd_scales, self.lambda_patch_swd)
        self._check_patch_scales("patch-match-scales", self.patch_match_scales, self.lambda_patch_match)
        if self.epochs is not None and self.preset not in DATASET_PRESETS:
            raise ValueError(f"--epochs counts passes over two folders (--preset {' or '.join(DATASET_PRESETS)}); "
                             f"the {self.preset} preset trains on two images: pass --steps")

    def _check_patch_scales(self, option: str, scales: tuple[int, ...], weight: float) -> None:
        """A patch term's downscale factors: at least 1, and (when the term is on) leaving the crop at
        least one PATCH_SWD_SIZE patch wide."""
        text = ",".join(map(str, scales))
        if not scales or min(scales) < 1:
            raise ValueError(f"--{option} must be downscale factors >= 1 like 1,2, got {text or 'none'}")
        if weight > 0 and self.crop_size // max(scales) < PATCH_SWD_SIZE:
            raise ValueError(f"--{option} {text}: a {self.crop_size} px crop downscaled {max(scales)}x is smaller "
                             f"than the {PATCH_SWD_SIZE} px patches; give smaller factors or a larger --crop-size")

    def deepest_encoder_layer(self) -> int:
        """Index of G's deepest encoder layer (nets/: stylegan2 = identity, 1x1 stem, one downsampling
        block, n_blocks // 2 res blocks; resnet = 4 stem layers, 2 x 4 downsampling layers, n_blocks
        blocks). tests/test_bad_input.py checks it against the built networks."""
        if self.generator == "stylegan2":
            return 2 + self.n_blocks // 2
        return 11 + self.n_blocks

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    def with_resume_overrides(self, overrides: dict[str, Any]) -> "TrainConfig":
        """This run's config with the bookkeeping and execution values changed; refuses changes to the objective."""
        changed = {}
        for f in dataclasses.fields(self):
            if f.name not in overrides or overrides[f.name] is None:
                continue
            value = tuple(overrides[f.name]) if isinstance(overrides[f.name], list) else overrides[f.name]
            if value == getattr(self, f.name):
                continue
            if not changeable_on_resume(f):
                raise ValueError(f"--{f.name.replace('_', '-')} {value} differs from this run's "
                                 f"{getattr(self, f.name)}: resume continues the saved recipe; start a new run "
                                 "with `sincut train` to change it")
            changed[f.name] = value
        cfg = dataclasses.replace(self, **changed)
        cfg.validate()
        return cfg

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        # Runs saved before these options existed keep what they trained with.
        values = {"lr_schedule": "linear", "patch_positions": "stratified", **values}
        return _with_tuples(cls(**{k: v for k, v in values.items() if k in known}))


def is_index_list(f: dataclasses.Field) -> bool:
    """A field holding a list of small integers (layers, scale factors): `I,J,...` on the command line."""
    return f.type in ("tuple[int, ...]", tuple[int, ...])


def _with_tuples(cfg: TrainConfig) -> TrainConfig:
    """The config with its index lists as tuples (JSON and keyword callers may give lists)."""
    for f in dataclasses.fields(cfg):
        if is_index_list(f):
            setattr(cfg, f.name, tuple(getattr(cfg, f.name)))
    return cfg


# Presets override the dataclass defaults (which already are the `sincut` recipe).
_DATASET = dict(
    steps=None, epochs=200, batch_size=1, crop_size=256, load_size=286, generator="resnet",
    discriminator="patchgan", ngf=64, ndf=64, n_blocks=9, gan_mode="lsgan", lr=0.0002, beta1=0.5, beta2=0.999,
    lambda_gan=1.0, lambda_identity=0.0, nce_layers=(0, 4, 8, 12, 16), num_patches=256,
    nce_negatives_from_minibatch=False, r1_gamma=0.0,
)
# The quick recipe: the same objective (multilayer PatchNCE through F, the adversarial loss, the identity
# terms, R1) on networks sized for minutes on a CPU, a generator that starts as the identity, and lazy R1.
# The whole recipe is measured with benchmarks/quality.py (docs/benchmarks.md; the recipe: docs/recipes.md); single changes
# against it at a fixed step count with benchmarks/ablation.py (so far: the weight average, lambda_nce, the
# guided change's radius, lazy R1).
QUICK = dict(steps=None, minutes=8.0, residual=True, border=32, ngf=2, ndf=4, n_blocks=4, batch_size=8, r1_every=16,
             lr_schedule="linear", patch_positions="stratified", ema_halflife=50.0, guide_radius=4)
PRESETS: dict[str, dict[str, Any]] = {
    "sincut": {},  # the paper's single-image recipe: the dataclass defaults
    "quick": QUICK,  # single-image, a painted result in minutes on a CPU
    "cut": {**_DATASET, "epochs": 400, "lambda_nce": 1.0, "nce_identity": True, "decay_start": 0.5},  # 200 + 200
    "fastcut": {**_DATASET, "lambda_nce": 10.0, "nce_identity": False, "flip_equivariance": True,
                "decay_start": 0.75},  # 150 + 50 epochs
}
DATASET_PRESETS = ("cut", "fastcut")
SINCUT_EPOCHS = 16  # the paper's single-image schedule: 8 + 8 epochs of 100,000 patches (6,250 steps of 16)


def make_config(preset: str = "sincut", **overrides: Any) -> TrainConfig:
    """The preset's values with the given overrides; validated."""
    if preset not in PRESETS:
        raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    length = {k: overrides[k] for k in ("steps", "epochs", "minutes") if overrides.get(k) is not None}
    if "minutes" in length and len(length) > 1:
        raise ValueError("--minutes sets the run's length itself; give it without --steps or --epochs")
    # One way to say how long: the given one replaces the preset's (a preset may size runs by minutes).
    if length:
        overrides = {"steps": None, "epochs": None, "minutes": None, **overrides}
    cfg = _with_tuples(TrainConfig(**{**PRESETS[preset], **overrides, "preset": preset}))
    cfg.validate()
    return cfg
