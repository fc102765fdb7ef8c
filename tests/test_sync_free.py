"""The step a CUDA GPU runs (and --cuda-graphs captures), checked on the CPU: the fixed-shape patch sampler against
today's, the sync-free step and the captured step's body against the eager step (bitwise: the same kernels run on
the same patches, with the same random draws), and a guard that makes every host-device synchronisation a step
could make raise -- including those that only synchronise on a GPU and cost nothing here."""

from __future__ import annotations

import contextlib
import weakref
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.overrides import TorchFunctionMode

import sincut.data.patches as patches_module
from sincut.config import make_config
from sincut.data.fixed_patches import FixedPatches
from sincut.data.patches import PatchSampler
from sincut.errors import TrainingFailed, UserError
from sincut.nets.stylegan2 import LUMA, guided_change
from sincut.training.graphs import CapturedSteps, make_capturable, portable_optimizer_state
from sincut.training.loop import LossTally
from sincut.training.schedule import with_concrete_steps
from sincut.training.trainer import Trainer, make_data

from .conftest import SAMPLES

CPU = torch.device("cpu")


class HostSync(AssertionError):
    """A call that makes (on a GPU) the host wait for the device, made during a step."""


# Tensor methods and torch functions whose answer the host has to read back from the device.
_READ_BACK = {"item", "tolist", "numpy", "cpu", "cuda", "pin_memory", "__bool__", "__float__", "__int__", "__index__",
              "__complex__", "__repr__", "__str__", "__format__", "__array__", "nonzero", "argwhere", "masked_select",
              "unique", "unique_consecutive", "bincount", "equal", "allclose", "is_nonzero", "tensor", "new_tensor",
              "inverse", "cholesky"}


def _bool_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


def _explicit_device(args, kwargs) -> bool:
    return "device" in kwargs or any(isinstance(a, (str, torch.device)) for a in args[1:])


class ForbidSyncs(TorchFunctionMode):
    """Raise HostSync at any call that would make the host wait for a CUDA device: values read back (item,
    tolist, bool/float/int, printing, cpu, numpy), data-dependent shapes (nonzero, unique, boolean masks, one-
    argument where, repeat_interleave without output_size), host data sent to the device (torch.tensor,
    new_tensor, a blocking .to(device) of a tensor the step did not make: on a GPU, a host constant), linear
    algebra that checks its result on the host. `host_tensors`: tensors that live on the host on any device
    (uncaptured Adam's step counts), which may be read."""

    def __init__(self, host_tensors: set[int] = frozenset()) -> None:
        super().__init__()
        self.host_tensors = host_tensors
        self.made: dict[int, weakref.ref] = {}  # tensors this step made (on its device), by id

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = self._check(func, args, kwargs)
        for tensor in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(tensor, torch.Tensor):
                self.made[id(tensor)] = weakref.ref(tensor)
        return out

    def _made(self, tensor: torch.Tensor) -> bool:
        ref = self.made.get(id(tensor))
        return ref is not None and ref() is tensor

    def _check(self, func, args, kwargs):
        name = getattr(func, "__name__", "")
        reason = None
        if name in _READ_BACK and not (name == "item" and args and id(args[0]) in self.host_tensors):
            reason = name
        elif name.startswith("linalg_") and not name.endswith("_ex"):  # checks its result on the host
            reason = name
        elif name == "as_tensor" and not isinstance(args[0], torch.Tensor):
            reason = "as_tensor of host data"
        elif name == "to" and _explicit_device(args, kwargs) and not kwargs.get("non_blocking") \
                and not self._made(args[0]):
            reason = "a blocking .to(device)"
        elif name in ("__getitem__", "__setitem__", "index_put_", "index_put") and _bool_index(args[1]):
            reason = f"{name} with a boolean mask"
        elif name == "where" and len(args) + len(kwargs) == 1:
            reason = "where(condition)"
        elif name == "repeat_interleave" and isinstance(kwargs.get("repeats", args[1] if len(args) > 1 else None),
                                                        torch.Tensor) and "output_size" not in kwargs:
            reason = "repeat_interleave by a tensor without output_size"
        if reason:
            raise HostSync(f"host-device sync during a step: {reason}")
        return func(*args, **kwargs)


@contextlib.contextmanager
def forbid_syncs(monkeypatch, trainer: Trainer | None = None):
    """ForbidSyncs for the block; torch.cuda's explicit synchronisations raise too. Kornia's guided filter asks,
    on a CPU only, whether a tensor holds extreme values (`.item()`); on CUDA it skips the question, and so
    does the block. With `trainer`: its optimisers' host-side step counts may be read (warm it up first)."""
    import kornia.filters.blur

    def refuse(*args, **kwargs):
        raise HostSync("host-device sync during a step: torch.cuda synchronize")

    with monkeypatch.context() as m:
        m.setattr(torch.cuda, "synchronize", refuse)
        m.setattr(torch.cuda.Stream, "synchronize", refuse)
        m.setattr(torch.cuda.Event, "synchronize", refuse)
        m.setattr(kornia.filters.blur, "_needs_convolution_for_extreme_cpu_values", lambda *a, **k: False)
        counts = set()
        if trainer is not None:
            counts = {id(s["step"]) for opt in (trainer.opt_G, trainer.opt_D) for s in opt.state.values()}
        with ForbidSyncs(counts):
            yield


# ------------------------------------------------------------------ the guard itself

SYNCS = {
    "item": lambda x: x.sum().item(), "tolist": lambda x: x.tolist(), "bool": lambda x: bool(x[0] > 0),
    "float": lambda x: float(x[0]), "int": lambda x: int(x[0]), "cpu": lambda x: x.cpu(), "numpy": lambda x: x.numpy(),
    "unique": lambda x: torch.unique(x), "nonzero": lambda x: x.nonzero(), "mask": lambda x: x[x > 0],
    "where-1": lambda x: torch.where(x > 0), "tensor-to-device": lambda x: torch.tensor([1.0], device=x.device),
    "new_tensor": lambda x: x.new_tensor([1.0]), "to-device": lambda x: x.to("cpu"), "format": lambda x: f"{x}",
    "linalg": lambda x: torch.linalg.inv(torch.eye(2) + x[:4].view(2, 2).abs()),
    "synchronize": lambda x: torch.cuda.synchronize(), "equal": lambda x: torch.equal(x, x),
    "repeat_interleave": lambda x: x.repeat_interleave(torch.ones(x.numel(), dtype=torch.long)),
}


@pytest.mark.parametrize("call", SYNCS.values(), ids=SYNCS.keys())
def test_the_guard_catches_each_kind_of_sync_even_where_a_cpu_does_not_wait(call, monkeypatch):
    x = torch.randn(8)
    with forbid_syncs(monkeypatch), pytest.raises(HostSync):
        call(x)


def test_the_guard_lets_device_work_through(monkeypatch):
    x = torch.randn(8)
    with forbid_syncs(monkeypatch):
        y = (x + 1).clamp(min=0).to(torch.float64).to(x.device, non_blocking=True)
        z = torch.where(x > 0, x, -x) + torch.randn(8, device=x.device)[torch.arange(8)]
    assert y.shape == z.shape == (8,)


def test_guided_filter_reads_its_weights_from_a_buffer(monkeypatch):
    image, change = torch.rand(1, 3, 16, 16), torch.randn(1, 3, 16, 16)
    luma = torch.tensor(LUMA).view(1, 3, 1, 1)
    with forbid_syncs(monkeypatch):
        kept = guided_change(image, change, 2, luma=luma)
        with pytest.raises(HostSync, match="new_tensor"):  # a copy from the host, harmless on a CPU
            guided_change(image, change, 2)
    assert torch.equal(kept, guided_change(image, change, 2))


# ------------------------------------------------------------------ the fixed-shape sampler

@pytest.mark.parametrize("storage", ["float32", "uint8"])
@pytest.mark.parametrize("positions", ["paper", "stratified"])
@pytest.mark.parametrize("size,zoom,scale", [((90, 140), (1 / 3, 1.0), 1.0), ((90, 140), (1 / 3, 1.0), 0.5),
                                             ((40, 50), (0.5, 2.0), 1.0)])
def test_fixed_patches_are_todays_within_float32_rounding(storage, positions, size, zoom, scale, monkeypatch):
    """The same draws (the generators end in the same state), the same patches within float32 rounding of the
    sampling positions (Kornia's homography and window normalisation), in fixed shapes and without a sync."""
    if storage == "uint8":
        monkeypatch.setattr(patches_module, "PYRAMID_FLOAT_BUDGET", 0)
    image = torch.rand(1, 3, *size) * 2 - 1
    coarsest = zoom[0] * scale if scale < 1 else None
    sampler = PatchSampler(image, crop_size=32, zoom=zoom, positions=positions, coarsest=coarsest)
    fixed = FixedPatches(sampler, coarsest)
    assert sampler.storage == getattr(torch, storage)
    today, ours = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    out = torch.empty(12, 3, 32, 32)
    for _ in range(3):
        expected = sampler.sample(12, today, scale)
        with forbid_syncs(monkeypatch):
            got = fixed.sample(12, ours, scale, out=out)
        assert got is out and torch.equal(today.get_state(), ours.get_state())
        assert (got - expected).abs().max() < 1e-4


# ------------------------------------------------------------------ the step

@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sync_free")
    Image.open(SAMPLES / "photo_montStMichel.jpg").resize((96, 54)).save(root / "photo.jpg", quality=95)
    Image.open(SAMPLES / "painting_vincent_van_gogh_village_street_in_auver.jpg").resize((80, 63)).save(
        root / "painting.png")
    return root / "photo.jpg", root / "painting.png"


RECIPES = {  # each single-image preset at tiny sizes; the flip-equivariance draw; lazy R1, identity and coarse
    "sincut": ("sincut", {}),
    "quick": ("quick", {}),
    "sincut-flip-equivariance": ("sincut", {"flip_equivariance": True}),
    "quick-lazy-coarse": ("quick", {"r1_every": 2, "identity_every": 2, "coarse_fraction": 0.5}),
}


def build(pair, recipe: str, sync_free: bool) -> Trainer:
    preset, extra = RECIPES[recipe]
    config = make_config(preset, ngf=2, ndf=4, batch_size=2, crop_size=16, precision="fp32", steps=8, **extra)
    data = make_data(config, *pair, CPU)
    return Trainer.build(with_concrete_steps(config, data), data, CPU, sync_free=sync_free)


def states_equal(a: Trainer, b: Trainer) -> bool:
    nets = [(a.G, b.G), (a.D, b.D), (a.F, b.F)] + ([(a.G_average, b.G_average)] if a.G_average else [])
    same = all(torch.equal(p, q) for x, y in nets for p, q in zip(x.state_dict().values(), y.state_dict().values()))
    moments = all(torch.equal(s[k], t[k]) for o, p in ((a.opt_G, b.opt_G), (a.opt_D, b.opt_D))
                  for s, t in zip(o.state.values(), p.state.values()) for k in ("exp_avg", "exp_avg_sq"))
    return same and moments and torch.equal(a.rng.get_state(), b.rng.get_state())


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_sync_free_and_captured_steps_are_todays_step_bit_for_bit(pair, recipe):
    """Today's eager step is fed the sync-free sampler's patches (its own sampler still draws, and its patches
    agree within rounding), so the rest runs the same kernels: every loss, weight, Adam moment, the weight
    average and the generator's state agree bitwise after each step, for the sync-free step and for the body
    a CUDA graph records (run eagerly here)."""
    today, sync_free, body = build(pair, recipe, False), build(pair, recipe, True), build(pair, recipe, True)
    body.graphs = CapturedSteps(body, capture=False)
    drawn: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    fixed_sample, todays_sample = sync_free.fixed.sample, today.data.sample

    def recorded(step, rng, coarse=False, out=None):
        patches = fixed_sample(step, rng, coarse, out)
        drawn[step] = tuple(p.clone() for p in patches)
        return patches

    def fed(step, rng, coarse=False):
        own = todays_sample(step, rng, coarse)
        assert all((a - b).abs().max() < 1e-4 for a, b in zip(own, drawn[step]))
        return tuple(p.clone() for p in drawn[step])

    sync_free.fixed.sample, today.data.sample = recorded, fed
    for step in range(3):  # lazy R1 and identity steps (0, 2) and one without (1)
        ours, theirs, captured = sync_free.step(step), today.step(step), body.step(step)
        assert set(ours) == set(theirs) == set(captured)
        assert all(torch.equal(ours[k], theirs[k]) and torch.equal(ours[k], captured[k]) for k in theirs)
        assert states_equal(sync_free, today) and states_equal(sync_free, body)


@pytest.mark.parametrize("recipe", ["sincut", "quick-lazy-coarse", "sincut-flip-equivariance"])
def test_a_sync_free_step_makes_no_host_sync_and_todays_does(pair, recipe, monkeypatch):
    """After one warm-up step (Adam creates its state), steps 1-2 under the guard (a lazy R1 and identity step
    among them); today's step stops at its sampler's first read-back."""
    sync_free, captured = build(pair, recipe, True), build(pair, recipe, True)
    captured.graphs = CapturedSteps(captured, capture=False)
    for trainer in (sync_free, captured):
        trainer.step(0)
        with forbid_syncs(monkeypatch, trainer):
            for step in range(1, 3):
                trainer.step(step)
    today = build(pair, recipe, False)
    today.step(0)
    with forbid_syncs(monkeypatch, today), pytest.raises(HostSync):
        today.step(1)


def test_the_flip_equivariance_draw_alone_is_caught(pair, monkeypatch):
    trainer = build(pair, "sincut-flip-equivariance", True)
    trainer.step(0)
    trainer.objective.sync_free = False  # today's draw: bool(torch.rand(()) < 0.5)
    with forbid_syncs(monkeypatch, trainer), pytest.raises(HostSync, match="__bool__"):
        trainer.step(1)


# ------------------------------------------------------------------ around the step

def test_the_loss_tally_sees_a_non_finite_step_between_log_lines():
    tally = LossTally()
    for done, value in ((1, 1.0), (2, float("inf")), (3, 2.0)):
        parts = {"NCE": torch.tensor(value), "D_real": torch.tensor(0.5)}
        tally.add(parts, done)
    with pytest.raises(TrainingFailed, match="loss NCE became inf between steps 1 and 3"):
        tally.check(parts, 3)
    tally.add(parts, 4)
    assert tally.check(parts, 4) == {"NCE": 2.0, "D_real": 0.5}


def test_a_captured_optimisers_state_saves_as_an_uncaptured_ones():
    p = torch.nn.Parameter(torch.randn(3))
    opt = torch.optim.Adam([p], lr=0.1)
    p.grad = torch.ones(3)
    opt.step()
    make_capturable(opt, torch.tensor(0.05))
    assert opt.param_groups[0]["capturable"] and opt.state[p]["step"].dtype == torch.float32
    saved = portable_optimizer_state(opt, 0.05)
    assert saved["param_groups"][0]["lr"] == 0.05 and not saved["param_groups"][0]["capturable"]
    assert saved["state"][0]["step"].device.type == "cpu" and float(saved["state"][0]["step"]) == 1.0
    plain = torch.optim.Adam([torch.nn.Parameter(p.detach().clone())], lr=0.1)
    plain.load_state_dict(saved)
    assert plain.param_groups[0]["lr"] == 0.05 and not plain.param_groups[0]["capturable"]


# ------------------------------------------------------------------ --cuda-graphs refused where it cannot capture

def test_cuda_graphs_on_a_cpu_is_one_line_and_exit_2(pair, tmp_path: Path):
    from click.testing import CliRunner

    from sincut.cli import main

    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", str(pair[0]), str(pair[1]), "--out", str(run), "--cuda-graphs",
                                       "--device", "cpu", "--steps", "2"], prog_name="sincut")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "--cuda-graphs captures CUDA graphs, and this run is on cpu" in result.output and not run.exists()


@pytest.mark.parametrize("change,reason", [
    ({"precision": "fp16"}, "fp16's loss scaling"), ({"compile": True}, "--compile"),
    ({"lambda_high_band": 0.1}, "--lambda-high-band"), ({"colour_init": "reinhard", "residual": True}, "--colour-init"),
])
def test_cuda_graphs_refuse_what_they_cannot_capture(change, reason):
    from sincut.training.distributed import World
    from sincut.training.graphs import check_capturable

    cuda = torch.device("cuda")
    check_capturable(make_config("sincut", cuda_graphs=True), cuda)  # a plain recipe on CUDA: no objection
    with pytest.raises(UserError, match="under torchrun"):
        check_capturable(make_config("sincut", cuda_graphs=True), cuda, World(rank=0, size=2))
    with pytest.raises(UserError, match=reason):
        check_capturable(make_config("sincut", cuda_graphs=True, **change), cuda)
