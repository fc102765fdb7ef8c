"""--cuda-graphs: each training step replayed from a captured CUDA graph, so the GPU runs a whole step from one
launch instead of waiting on a few thousand small kernel launches from Python.

What one graph holds: a whole step of the sync-free trainer (training/trainer.py) -- the patch sampler writing
into static input buffers (data/fixed_patches.py), G's forward, the D update, the G + F update and the weight
average. A step's kind, decided on the host from the step number, picks the graph: whether it runs R1 (the lazy
R1 step is its own graph), whether it has the identity terms (--identity-every) and whether it samples the coarse
stage (--coarse-fraction). The graphs share one memory pool (their replays never overlap). What changes from
step to step without changing the work lives in device tensors written before a replay with `fill_` (the host
sends the value and does not wait): the lr, which the optimisers read as a tensor once they are capturable
(`capturable=True`: their step counts on the device too), and the weight average's share. The trainer's random
generator is registered with every graph, so a replay draws what an eager step would. F, the projection head,
exists before capture: ProjectionHead builds its MLPs from the layer widths up front, not lazily.

Each kind first runs WARMUP_STEPS eager steps on a side stream (real training steps: cuDNN picks its kernels,
Adam creates its state), then the next step of that kind is captured and replayed. With folders (cut, fastcut)
the DataLoader's batch and its crop run eagerly and are copied into the static buffers; a batch that lost an
unreadable image (fewer images) runs as an eager step.

Hand capture, not `torch.compile(mode="reduce-overhead")`: that captures compiled graphs, and a compiled D has no
double backward (R1), while the optimisers' steps and the patch sampler would stay eager between its graphs; by
hand the whole step, R1 included, is one replay with the same eager kernels. Refused as one line (exit 2, see
check_capturable): devices other than CUDA, several processes (DDP), fp16 loss scaling (its inf check is read
back on the host each step), --compile, and options whose step still copies from the host.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import TrainConfig
from ..errors import UserError
from ..nets import memory_format
from ..nets.wrappers import unwrap
from .distributed import World
from .schedule import ema_beta, update_average

WARMUP_STEPS = 3  # eager steps of each kind before it is captured
Kind = tuple[bool, bool, bool]  # (R1, identity terms, coarse stage)


def check_capturable(config: TrainConfig, device: torch.device, world: World = World()) -> None:
    """--cuda-graphs: refuse, as one line, what cannot be captured."""
    if not config.cuda_graphs:
        return
    reasons = []
    if device.type != "cuda":
        reasons.append(f"captures CUDA graphs, and this run is on {device.type}")
    if world.active:
        reasons.append("captures one process's step; under torchrun (DDP) leave it off")
    if config.precision == "fp16":
        reasons.append("cannot capture fp16's loss scaling (it reads its inf check on the host); use bf16")
    if config.compile:
        reasons.append("and --compile are two ways to the same end; give one")
    host_copies = [name for name, on in (("--lambda-high-band", config.lambda_high_band > 0),
                                         ("--detail-sigma", config.detail_sigma > 0),
                                         ("--colour-init", config.colour_init != "none")) if on]
    if host_copies:
        reasons.append(f"cannot capture {', '.join(host_copies)} (their step copies values from the host)")
    if reasons:
        raise UserError(f"--cuda-graphs {reasons[0]}; train without --cuda-graphs")


def portable_optimizer_state(opt: torch.optim.Optimizer, lr: float) -> dict:
    """The optimiser's state_dict as an uncaptured run saves it (lr the float `lr` where a device tensor holds
    it, step counts on the host, not capturable), so a checkpoint of a captured run resumes anywhere."""
    state = opt.state_dict()
    for group in state["param_groups"]:
        if isinstance(group.get("lr"), Tensor):
            group["lr"] = lr
        if group.get("capturable"):
            group["capturable"] = False
            for index in group["params"]:
                if "step" in state["state"].get(index, {}):
                    state["state"][index] = {**state["state"][index],
                                             "step": state["state"][index]["step"].detach().to("cpu", torch.float32)}
    return state


def make_capturable(opt: torch.optim.Optimizer, lr: Tensor) -> None:
    """Adam as a graph can replay it: capturable, the lr read from `lr`, the step counts on the device."""
    for group in opt.param_groups:
        group["capturable"] = True
        group["lr"] = lr
        for p in group["params"]:
            state = opt.state.get(p, {})
            if "step" in state:
                state["step"] = state["step"].to(p.device, torch.float32)


class CapturedSteps:
    """The trainer's steps as graph replays. `capture=False` runs the same step body eagerly instead (on a CPU:
    the code a graph records, checked against the eager trainer)."""

    def __init__(self, trainer: "Trainer", capture: bool = True) -> None:  # noqa: F821 - trainer.py's, which imports us
        self.trainer = trainer
        self.capture = capture
        self.graphs: dict[Kind, torch.cuda.CUDAGraph] = {}
        self.outputs: dict[Kind, dict[str, Tensor]] = {}
        self.eager_runs: dict[Kind, int] = {}
        self.inputs: tuple[Tensor, Tensor] | None = None
        self.share: Tensor | None = None  # the weight average's share of G this step: 1 - beta
        self.batch: tuple[Tensor, Tensor] | None = None  # folders: a batch too short for the static buffers
        self.pool = None

    def _prepare(self) -> None:
        """Once, at the first step (after a resume has loaded its state): the static input buffers in G's
        layout, the average's share, and (capturing) the optimisers made capturable with a device lr."""
        t = self.trainer
        dev = t.rng.device
        c = t.config
        layout = memory_format(unwrap(t.G), dev)
        self.inputs = tuple(torch.zeros(c.batch_size, 3, c.crop_size, c.crop_size, device=dev)
                            .contiguous(memory_format=layout) for _ in range(2))
        self.share = torch.zeros((), device=dev)
        if self.capture:
            lr = torch.full((), t.lr_value, device=dev)
            for opt in (t.opt_G, t.opt_D):
                make_capturable(opt, lr)
            self.pool = torch.cuda.graph_pool_handle()

    def kind(self, step: int) -> Kind:
        t, c = self.trainer, self.trainer.config
        return (c.r1_gamma > 0 and step % c.r1_every == 0, t.objective.identity_step(step), t.in_coarse_stage(step))

    def step(self, step: int) -> dict[str, Tensor]:
        t = self.trainer
        if self.inputs is None:
            self._prepare()
        t.set_lr(step)
        if t.G_average is not None:
            self.share.fill_(1.0 - ema_beta(step + 1, t.config.ema_halflife))
        if t.fixed is None and not self._load_batch(step):
            return self._eager(step)  # a short batch (an unreadable image): not the captured shape
        kind = self.kind(step)
        if kind in self.graphs:
            self.graphs[kind].replay()
            return self.outputs[kind]
        if not self.capture or self.eager_runs.get(kind, 0) < WARMUP_STEPS:
            self.eager_runs[kind] = self.eager_runs.get(kind, 0) + 1
            return self._warm_up(step)
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(t.rng)
        torch.cuda.synchronize()
        with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
            self.outputs[kind] = self.body(step)
        self.graphs[kind] = graph
        graph.replay()  # the capture recorded the step; this runs it
        return self.outputs[kind]

    def body(self, step: int) -> dict[str, Tensor]:
        """What a graph records: the step's patches into the static buffers (two images), G forward, the D
        update, the G + F update, the weight average."""
        t = self.trainer
        if t.fixed is not None:
            t.sample(step, out=self.inputs)
        fwd = t.forward(*self.inputs, step)
        d_parts = t.discriminator_step(fwd, step)
        g_parts = t.generator_step(fwd)
        if t.G_average is not None:
            update_average(t.G_average, unwrap(t.G), share=self.share)
        return {name: loss.detach() for name, loss in {**d_parts, **g_parts}.items()}

    def _warm_up(self, step: int) -> dict[str, Tensor]:
        """An eager step of the body; on a side stream when capturing (what capture asks of the work before it)."""
        if not self.capture:
            return self.body(step)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            parts = self.body(step)
        torch.cuda.current_stream().wait_stream(side)
        return parts

    def _load_batch(self, step: int) -> bool:
        """Folders: the step's batch (DataLoader, Kornia's crop) into the static buffers; False when it is
        smaller than they are."""
        src, tgt = self.trainer.sample(step)
        if src.shape != self.inputs[0].shape or tgt.shape != self.inputs[1].shape:
            self.batch = (src, tgt)
            return False
        self.inputs[0].copy_(src)
        self.inputs[1].copy_(tgt)
        return True

    def _eager(self, step: int) -> dict[str, Tensor]:
        """The uncaptured step on the batch `_load_batch` could not fit."""
        t = self.trainer
        fwd = t.forward(*self.batch, step)
        parts = {**t.discriminator_step(fwd, step), **t.generator_step(fwd)}
        if t.G_average is not None:
            update_average(t.G_average, unwrap(t.G), share=self.share)
        return parts
