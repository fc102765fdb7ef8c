"""How far one training step under bf16 autocast is from float32, per loss term, on the paper's golden step.

    python benchmarks/bf16_numerics.py [--trained-steps 40] [--modes sincut,cut,fastcut] [--json PATH]

For each mode of ../shared/data/official_golden (sincut, cut, fastcut: the paper's weights, inputs and
patch ids) it replays the step with our Objective three times: in float64 (the reference; it agrees
with the paper's float32 gradients to ~1e-5, tests/test_official.py), in float32 and under bf16
autocast, and prints for every loss term its relative error and the relative L2 error and cosine of
that term's gradient (each network's parameters as one vector) against float64. A term that drifts
in bf16 shows here, apart from the others. The golden weights are the paper's initialisation, where
cut's G is ill-conditioned (its outputs are almost constant images); so the same comparison is also
made after `--trained-steps` float32 Adam steps from them (inputs jittered per step), which is what
bf16 meets in a real run. tests/test_official_bf16.py pins the per-network figures of the golden step.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness, sincut and tests from this checkout

import torch  # noqa: E402

from benchmarks.harness.args import add_json_option, comma_list, fail, parser  # noqa: E402
from benchmarks.harness.machine import describe  # noqa: E402
from benchmarks.harness.report import markdown_table, save_result  # noqa: E402
from sincut.inference.device import cpu_has_bf16_kernels  # noqa: E402
from sincut.objective import Objective  # noqa: E402
from tests.test_official import MODES, build_nets, golden_config, load_golden, replaying_objective  # noqa: E402


def term_gradients(nets: tuple, config, arrays: dict, dtype: torch.dtype, bf16: bool,
                   seed: int = 0) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Each loss term's value and its gradient over the network it trains (D terms: D; G terms: G and F),
    at the golden inputs and patch ids, zero noise, in `dtype` or under bf16 autocast."""
    G, D, F_head = (copy.deepcopy(n).to(dtype) for n in nets)
    objective, _ = replaying_objective(config, (G, D, F_head), arrays, seed)
    objective.separate_passes = config.generator == "resnet"
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    real_A, real_B = (torch.from_numpy(arrays[f"input/real_{x}"]).to(dtype) for x in "AB")
    values, grads = {}, {}
    with autocast:
        fwd = objective.forward(real_A, real_B, flipped=False)
        _, parts_D = objective.discriminator_loss(fwd, 0)
    params = list(D.parameters())
    for term, value in parts_D.items():
        values[term] = float(value.detach())
        grads[term] = _flat(torch.autograd.grad(value, params, retain_graph=True, allow_unused=True), params)
    D.requires_grad_(False)
    with autocast:
        _, parts_G = objective.generator_loss(fwd)
    params = [*G.parameters(), *F_head.parameters()]
    for term, value in parts_G.items():
        values[term] = float(value.detach())
        grads[term] = _flat(torch.autograd.grad(value, params, retain_graph=True, allow_unused=True), params)
    return values, grads


def _flat(grads, params) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).detach().flatten().double()
                      for g, p in zip(grads, params)])


def train_float32(nets: tuple, config, arrays: dict, steps: int) -> tuple:
    """`steps` float32 Adam steps of the whole objective from the golden weights, the golden inputs
    jittered by Gaussian noise (std 0.05) each step, fresh patch ids: weights as a run meets them."""
    G, D, F_head = (copy.deepcopy(n) for n in nets)
    objective = Objective.from_config(config, G, D, F_head, generator=torch.Generator().manual_seed(1))
    objective.separate_passes = config.generator == "resnet"
    betas = (config.beta1, config.beta2)
    opt_G = torch.optim.Adam([*G.parameters(), *F_head.parameters()], lr=config.lr, betas=betas)
    opt_D = torch.optim.Adam(D.parameters(), lr=config.lr, betas=betas)
    jitter = torch.Generator().manual_seed(5)
    real_A, real_B = (torch.from_numpy(arrays[f"input/real_{x}"]) for x in "AB")
    for step in range(steps):
        a, b = (x + 0.05 * torch.randn(x.shape, generator=jitter) for x in (real_A, real_B))
        fwd = objective.forward(a, b, flipped=False)
        D.requires_grad_(True)
        opt_D.zero_grad()
        objective.discriminator_loss(fwd, step)[0].backward()
        opt_D.step()
        D.requires_grad_(False)
        opt_G.zero_grad()
        objective.generator_loss(fwd)[0].backward()
        opt_G.step()
    D.requires_grad_(True)
    return G, D, F_head


def compare(nets: tuple, config, arrays: dict) -> dict[str, dict]:
    """Per term: bf16's and float32's loss and gradient against float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ref_values, ref_grads = term_gradients(nets, config, arrays, torch.float64, False)
    finally:
        torch.set_default_dtype(previous)
    f32_values, f32_grads = term_gradients(nets, config, arrays, torch.float32, False)
    bf_values, bf_grads = term_gradients(nets, config, arrays, torch.float32, True)
    rows = {}
    for term, ref in ref_grads.items():
        scale = float(ref.norm()) or 1.0
        rows[term] = {
            "loss": ref_values[term],
            "loss_rel_error_bf16": abs(bf_values[term] - ref_values[term]) / max(abs(ref_values[term]), 1e-30),
            "grad_rel_error_fp32": float((f32_grads[term] - ref).norm()) / scale,
            "grad_rel_error_bf16": float((bf_grads[term] - ref).norm()) / scale,
            "grad_cosine_bf16": float(torch.nn.functional.cosine_similarity(bf_grads[term], ref, dim=0)),
        }
    return rows


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--trained-steps", type=int, default=40)
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from {', '.join(MODES)}")
    add_json_option(ap, "bf16_numerics")
    args = ap.parse_args()
    modes = comma_list(args.modes)
    if not modes or set(modes) - set(MODES):
        fail(f"--modes: {args.modes!r}; choose from {', '.join(MODES)}")
    torch.manual_seed(0)
    result = {"machine": describe(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
              "bf16_kernels": cpu_has_bf16_kernels(), "modes": {}}
    rows = []
    for mode in modes:
        meta, arrays = load_golden(mode)
        config = golden_config(meta)
        golden_nets = build_nets(config, arrays)
        trained = train_float32(golden_nets, config, arrays, args.trained_steps)
        result["modes"][mode] = {}
        for label, nets in (("golden", golden_nets), (f"after {args.trained_steps} steps", trained)):
            result["modes"][mode][label] = compare(nets, config, arrays)
            rows += [[mode, label, term, f"{r['loss_rel_error_bf16']:.1e}", f"{r['grad_rel_error_fp32']:.0e}",
                      f"{r['grad_rel_error_bf16']:.3f}", f"{r['grad_cosine_bf16']:.4f}"]
                     for term, r in result["modes"][mode][label].items()]
            print(f"{mode}, {label}: done", file=sys.stderr, flush=True)
    print(markdown_table(["mode", "weights", "term", "loss rel. error", "gradient rel. error fp32", "bf16",
                          "cosine bf16"], rows))
    save_result(args.json, result)


if __name__ == "__main__":
    main()
