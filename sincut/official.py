"""Checkpoints of the paper's code (taesungp/contrastive-unpaired-translation): layout, options, key mapping.

The paper's code saves each network's `state_dict()` as `checkpoints/NAME/<epoch>_net_<G|D|F>.pth`
(`latest_net_G.pth` is the newest) next to `train_opt.txt`, its printed options. This module turns
such a folder, or a bare `*_net_G.pth`, into our config and our networks' state dicts. The one key
mapping here (`our_key`) is also what the golden-step tests use to load the paper's weights and to
compare gradients, so the loader is tested against the paper's own numbers.

Our networks compute the same functions with other parameter names and shapes: biases of the
StyleGAN2 layers are [C] instead of [1, C, 1, 1], the decoder's modulated conv weight drops its
leading batch axis, and the fixed blur filters (`kernel`, `filt`) are buffers we rebuild, not load.
Loading is `weights_only`: a crafted pickle is refused, as for our own checkpoints.

It stands beside objective.py, below inference (translate and export load the paper's G) and training
(`sincut import` loads G, D and F), so neither imports the other to read the paper's files.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from .config import PRESETS, TrainConfig, make_config
from .errors import UserError
from .nets import build_generator
from .nets.stylegan2 import discriminator_widths, generator_widths
from .run_folder import checkpoint_dir, load_weights_file

G_SUFFIX = "_net_G.pth"
OPTIONS_FILE = "train_opt.txt"


# ---------------------------------------------------------------------------------------------
# Key mapping: the paper's state_dict key -> ours (None: a fixed filter we rebuild, not a weight)
# ---------------------------------------------------------------------------------------------

def _conv_layer(prefix: str, rest: str) -> str | None:
    """A StyleGAN2 ConvLayer is a Sequential [Blur?, EqualConv2d, FusedLeakyReLU?]; ours has flat
    `weight` and `bias`."""
    name = rest.rsplit(".", 1)[-1]
    return None if name == "kernel" else f"{prefix}.{name}"


def _stylegan2_block(prefix: str, rest: str) -> str | None:
    """A ConvLayer (`0.weight`, `1.bias`) or a ResBlock (`conv1.*`, `conv2.*`, `skip.*`)."""
    head, _, tail = rest.partition(".")
    if head in ("conv1", "conv2", "skip"):
        return _conv_layer(f"{prefix}.{head}", tail)
    return _conv_layer(prefix, rest)


def _stylegan2_generator_key(key: str, n_blocks: int, n_downsampling: int) -> str | None:
    m = re.fullmatch(r"(encoder|decoder)\.convs\.(\d+)\.(.+)", key)
    if not m:
        raise KeyError(key)
    part, i, rest = m.group(1), int(m.group(2)), m.group(3)
    if part == "encoder":
        return _stylegan2_block(f"encoder.{i}", rest)
    if i < n_blocks // 2:
        return _stylegan2_block(f"decoder_blocks.{i}", rest)
    if i < n_blocks // 2 + n_downsampling:  # StyledConv: conv.weight, conv.blur.kernel, noise.weight, activate.bias
        up = f"upsample.{i - n_blocks // 2}"
        return {"conv.weight": f"{up}.weight", "noise.weight": f"{up}.noise_strength",
                "activate.bias": f"{up}.bias", "conv.blur.kernel": None}[rest]
    return _conv_layer("to_rgb", rest)


def _stylegan2_discriminator_key(key: str) -> str | None:
    if m := re.fullmatch(r"convs\.(\d+)\.(.+)", key):
        return _stylegan2_block(f"blocks.{m.group(1)}", m.group(2))
    if key.startswith("final_conv."):
        return _conv_layer("final_conv", key[len("final_conv."):])
    if key.startswith("final_linear."):
        return key
    raise KeyError(key)


def _resnet_generator_key(key: str, n_blocks: int) -> str | None:
    """Our encoder and decoder split the paper's one Sequential at the same indices."""
    m = re.fullmatch(r"model\.(\d+)\.(.+)", key)
    if not m:
        raise KeyError(key)
    i, rest = int(m.group(1)), m.group(2)
    if rest == "filt":
        return None
    rest = rest.replace("conv_block.", "body.")
    encoder_length = 12 + n_blocks
    return f"encoder.{i}.{rest}" if i < encoder_length else f"decoder.{i - encoder_length}.{rest}"


def _patchgan_key(key: str) -> str | None:
    if not key.startswith("model."):
        raise KeyError(key)
    return None if key.endswith(".filt") else key


def _projection_key(key: str) -> str | None:
    m = re.fullmatch(r"mlp_(\d+)\.(\d+)\.(weight|bias)", key)
    if not m:
        raise KeyError(key)
    return f"mlps.{m.group(1)}.{m.group(2)}.{m.group(3)}"


def our_key(network: str, key: str, config: TrainConfig) -> str | None:
    """Our parameter name for the paper's `key` of network G, D or F (None: a fixed blur filter)."""
    if network == "G":
        if config.generator == "resnet":
            return _resnet_generator_key(key, config.n_blocks)
        return _stylegan2_generator_key(key, config.n_blocks, 1)
    if network == "D":
        return _patchgan_key(key) if config.discriminator == "patchgan" else _stylegan2_discriminator_key(key)
    return _projection_key(key)


def to_our_state(network: str, official: dict[str, Tensor], module: nn.Module, config: TrainConfig,
                 source: str = "") -> dict[str, Tensor]:
    """The paper's state dict of one network as a state dict `module` loads strictly."""
    ours = module.state_dict()
    out: dict[str, Tensor] = {}
    for key, value in official.items():
        key = key.removeprefix("module.")
        try:
            name = our_key(network, key, config)
        except KeyError:
            raise UserError(f"{source}: parameter {key!r} is not part of the paper's {config.generator} / "
                            f"{config.discriminator} networks that sincut reads") from None
        if name is None:
            continue
        if name not in ours or ours[name].numel() != value.numel():
            raise UserError(f"{source}: parameter {key!r} {tuple(value.shape)} does not fit the network "
                            f"described by its options ({config.preset}, ngf {config.ngf}, ndf {config.ndf})")
        out[name] = value.reshape(ours[name].shape).to(ours[name].dtype)
    missing = sorted(set(ours) - set(out))
    if missing:
        raise UserError(f"{source}: lacks {len(missing)} of the network's parameters (first: {missing[0]}); "
                        "is it a complete checkpoint of the paper's code?")
    return out


# ---------------------------------------------------------------------------------------------
# The paper's folders and options
# ---------------------------------------------------------------------------------------------

@dataclass
class OfficialCheckpoint:
    """One checkpoint of the paper's code: its network files, its options (when saved) and its epoch."""

    G: Path
    D: Path | None
    F: Path | None
    options: dict[str, str]
    epoch: int | None  # from `<epoch>_net_G.pth`; None for `latest`


def is_official(path: str | Path) -> bool:
    """A bare `*_net_G.pth`, or a folder holding one (the paper's `checkpoints/NAME`)."""
    p = Path(path)
    if p.is_file():
        return p.name.endswith(G_SUFFIX)
    return p.is_dir() and not checkpoint_dir(p).is_dir() and any(p.glob("*" + G_SUFFIX))  # not one of our runs


def _epoch_of(path: Path) -> int | None:
    prefix = path.name[: -len(G_SUFFIX)]
    return int(prefix) if prefix.isdigit() else None


def find_official(path: str | Path) -> OfficialCheckpoint:
    """The folder's `latest_net_G.pth` (else its highest epoch), or the given `*_net_G.pth`, with the
    D, F and `train_opt.txt` beside it."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such folder or file; pass the paper's checkpoints/NAME folder or a *{G_SUFFIX}")
    if p.is_dir():
        candidates = sorted(p.glob("*" + G_SUFFIX))
        latest = p / ("latest" + G_SUFFIX)
        numbered = sorted((e, c) for c in candidates if (e := _epoch_of(c)) is not None)
        if latest.is_file():
            g_file = latest
        elif numbered:
            g_file = numbered[-1][1]
        else:
            raise UserError(f"{p}: no latest{G_SUFFIX} or <epoch>{G_SUFFIX} in this folder")
    else:
        g_file = p
    prefix = g_file.name[: -len(G_SUFFIX)]
    sibling = {n: g_file.with_name(f"{prefix}_net_{n}.pth") for n in ("D", "F")}
    options_file = g_file.with_name(OPTIONS_FILE)
    options = read_options(options_file) if options_file.is_file() else {}
    return OfficialCheckpoint(g_file, *(f if f.is_file() else None for f in sibling.values()), options,
                              _epoch_of(g_file))


def read_options(path: Path) -> dict[str, str]:
    """`train_opt.txt` as written by the paper's option parser: `  name: value  [default: x]` lines."""
    options = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"^\s*([A-Za-z_][\w]*): (\S*)", line)
        if m:
            options[m.group(1)] = m.group(2)
    return options


def load_official_state(path: Path) -> dict[str, Tensor]:
    """One `*_net_X.pth` (a plain state dict) with weights_only=True; one-line errors naming the file."""
    state = load_weights_file(path, "the file is empty (an interrupted copy?)", "a network's weights",
                              "not a readable PyTorch weights file ({})")
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"{path}: not a network's state dict (expected parameter names and tensors)")
    return state


def _flag(options: dict[str, str], name: str) -> bool:
    return options.get(name, "False") == "True"


def _preset_from_options(options: dict[str, str]) -> str | None:
    model = options.get("model", "").lower()
    if model == "sincut":
        return "sincut"
    if model == "cut":
        return "fastcut" if options.get("CUT_mode", "CUT").lower() == "fastcut" else "cut"
    return None


def _refuse_unsupported(options: dict[str, str], source: Path) -> None:
    checks = [
        ("netG", options.get("netG", "resnet_9blocks") in ("stylegan2", "resnet_9blocks", "resnet_6blocks")),
        ("netD", options.get("netD", "basic") in ("stylegan2", "basic")
         or (options.get("netD") == "n_layers" and options.get("n_layers_D", "3") == "3")),
        ("netF", options.get("netF", "mlp_sample") == "mlp_sample"),
        ("no_antialias", not _flag(options, "no_antialias")),
        ("no_antialias_up", not _flag(options, "no_antialias_up")),
        ("stylegan2_G_num_downsampling", options.get("stylegan2_G_num_downsampling", "1") == "1"),
        ("normG", options.get("normG", "instance") == "instance"),
    ]
    for name, ok in checks:
        if not ok:
            raise UserError(f"{source}: its {name} {options.get(name)!r} is not one of the paper's recipes "
                            "that sincut implements (sincut, cut, fastcut)")


def config_from_options(options: dict[str, str], source: Path) -> TrainConfig:
    """Our config for the paper's printed options (the recipe and every number that shapes the nets)."""
    preset = _preset_from_options(options)
    if preset is None:
        raise UserError(f"{source}: model {options.get('model')!r} is not sincut or cut")
    _refuse_unsupported(options, source)
    o = options
    n_epochs, n_decay = int(o.get("n_epochs", "200")), int(o.get("n_epochs_decay", "200"))
    values: dict[str, Any] = dict(
        ngf=int(o["ngf"]), ndf=int(o["ndf"]), crop_size=int(o["crop_size"]), batch_size=int(o["batch_size"]),
        lr=float(o["lr"]), beta1=float(o["beta1"]), beta2=float(o["beta2"]), gan_mode=o["gan_mode"],
        lambda_gan=float(o["lambda_GAN"]), lambda_nce=float(o["lambda_NCE"]), nce_identity=_flag(o, "nce_idt"),
        nce_layers=tuple(int(x) for x in o["nce_layers"].split(",")), num_patches=int(o["num_patches"]),
        nce_temperature=float(o["nce_T"]), projection_dim=int(o.get("netF_nc", "256")),
        nce_negatives_from_minibatch=_flag(o, "nce_includes_all_negatives_from_minibatch"),
        flip_equivariance=_flag(o, "flip_equivariance"), init_gain=float(o.get("init_gain", "0.02")),
        decay_start=n_epochs / max(1, n_epochs + n_decay), flip=not _flag(o, "no_flip"),
    )
    if preset == "sincut":
        values.update(lambda_identity=float(o.get("lambda_identity", "1.0")), r1_gamma=float(o.get("lambda_R1", "1.0")),
                      zoom_min=1.0 / float(o.get("random_scale_max", "3.0")))
    else:
        netG = o.get("netG", "resnet_9blocks")
        values.update(load_size=int(o["load_size"]), epochs=n_epochs + n_decay,
                      n_blocks=int(netG.split("_")[1].removesuffix("blocks")))
    try:
        return make_config(preset, **values)
    except ValueError as e:
        raise UserError(f"{source}: its options give an invalid recipe: {e}") from None


def _stylegan2_config(state: dict[str, Tensor], source: Path) -> TrainConfig:
    """ngf, crop size and blocks of a StyleGAN2 G from its weights alone: any (ngf, crop) whose
    channel table gives these widths builds the same network."""
    first = state["encoder.convs.1.0.weight"].shape[0]
    encoder = {int(k.split(".")[2]) for k in state if k.startswith("encoder.convs.")}
    down = {int(k.split(".")[2]) for k in state if k.startswith("encoder.convs.") and ".skip." in k}
    if len(down) != 1:
        raise UserError(f"{source}: a StyleGAN2 generator with {len(down)} downsamplings; sincut reads the "
                        "paper's default of 1")
    inner = state[f"encoder.convs.{max(encoder)}.conv1.0.weight"].shape[0]
    n_blocks = 2 * (max(encoder) - 1 - len(down))
    for crop in (64, 128, 256, 32, 512, 16, 1024):
        for ngf in range(1, 1025):
            widths = generator_widths(ngf)
            if widths[crop] == first and widths[crop // 2] == inner:
                return make_config("sincut", ngf=ngf, crop_size=crop, n_blocks=n_blocks)
    raise UserError(f"{source}: no StyleGAN2 channel table gives widths {first} and {inner}")


def config_from_weights(state: dict[str, Tensor], source: Path, preset: str | None = None) -> TrainConfig:
    """Without `train_opt.txt`: the architecture from the generator's weights (stylegan2 -> sincut;
    resnet -> cut unless `preset` says fastcut; the generator is the same for both)."""
    keys = [k.removeprefix("module.") for k in state]
    state = dict(zip(keys, state.values()))
    if "encoder.convs.1.0.weight" in state:
        if preset not in (None, "sincut"):
            raise UserError(f"{source}: a StyleGAN2 (sincut) generator, not a {preset} one; drop --preset")
        return _stylegan2_config(state, source)
    if "model.1.weight" in state:
        if preset == "sincut":
            raise UserError(f"{source}: a ResNet (cut/fastcut) generator, not a sincut one; drop --preset")
        blocks = {int(k.split(".")[1]) for k in keys if ".conv_block." in k}
        return make_config(preset or "cut", ngf=state["model.1.weight"].shape[0], n_blocks=len(blocks))
    raise UserError(f"{source}: not a generator of the paper's code (neither its StyleGAN2 nor its ResNet G)")


def official_config(ckpt: OfficialCheckpoint, G_state: dict[str, Tensor], preset: str | None = None) -> TrainConfig:
    if ckpt.options:
        config = config_from_options(ckpt.options, ckpt.G.with_name(OPTIONS_FILE))
        if preset is not None and preset != config.preset:
            raise UserError(f"{ckpt.G.with_name(OPTIONS_FILE)}: says {config.preset}, not --preset {preset}")
        return config
    if preset is not None and preset not in PRESETS:
        raise UserError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    return config_from_weights(G_state, ckpt.G, preset)


def load_official_generator(path: str | Path, preset: str | None = None) -> tuple[nn.Module, TrainConfig, int]:
    """Our generator with the weights of the paper's checkpoint (folder or `*_net_G.pth`), on the CPU,
    with its config and the epoch it was saved at (0 for `latest`)."""
    ckpt = find_official(path)
    state = load_official_state(ckpt.G)
    config = official_config(ckpt, state, preset)
    G = build_generator(config)
    G.load_state_dict(to_our_state("G", state, G, config, str(ckpt.G)))
    return G, config, ckpt.epoch or 0


def with_widths_of(config: TrainConfig, D_state: dict[str, Tensor], F_state: dict[str, Tensor],
                   source: Path) -> TrainConfig:
    """Without `train_opt.txt`: D's width and F's width from their weights (G's came from G's)."""
    if config.discriminator == "patchgan":
        ndf = D_state["model.0.weight"].shape[0]
    else:
        first = D_state["convs.0.0.weight"].shape[0]
        matches = [n for n in range(1, 1025) if discriminator_widths(n)[config.crop_size] == first]
        if not matches:
            raise UserError(f"{source}: no StyleGAN2 discriminator width gives {first} channels")
        ndf = matches[0]
    return dataclasses.replace(config, ndf=ndf, projection_dim=F_state["mlp_0.0.weight"].shape[0])


def dataroot_inputs(ckpt: OfficialCheckpoint, preset: str) -> tuple[Path, Path] | None:
    """SOURCE and TARGET from the options' dataroot: its trainA and trainB folders (sincut: the one
    image in each); None when the options name no dataroot that exists here."""
    from .data.folders import list_images

    root = ckpt.options.get("dataroot")
    if not root or not (Path(root) / "trainA").is_dir() or not (Path(root) / "trainB").is_dir():
        return None
    a, b = Path(root) / "trainA", Path(root) / "trainB"
    if preset == "sincut":
        return list_images(a)[0], list_images(b)[0]
    return a, b
