"""Benchmarks (not tests): the cost of quantization relative to a float ReLU, in one process.

    python -m qste.bench [--quick] [--out outputs/bench.json]

For each batch x width it times, interleaving the two sides so that machine noise hits
both alike, and reports the ratio of medians:

- activation_vs_relu: forward + backward of the 2-bit quantized ReLU (clipped-ReLU STE)
  / forward + backward of torch.nn.functional.relu;
- step_vs_relu: one SGD step (forward, loss, backward, update) of the two-layer net
  784-width-10 with the quantized activation / the same step with the float ReLU.

Other STEs' activation ratios are printed for information.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from qste.models import TwoLayerNet
from qste.quant import QuantReLU
from qste.ste import STES

SIZES = [(100, 1000), (10000, 4000)]
IN_FEATURES, N_CLASSES, BITS, STE = 784, 10, 2, "clipped_relu"


def paired_medians(a: Callable[[], object], b: Callable[[], object], repeats: int, warmup: int = 3) -> tuple[float, float]:
    """Median seconds of a() and b(), timed alternately."""
    for _ in range(warmup):
        a(), b()
    times_a, times_b = [], []
    for _ in range(repeats):
        for fn, times in ((a, times_a), (b, times_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times_a), statistics.median(times_b)


def activation_ratio(batch: int, width: int, ste: str, repeats: int) -> tuple[float, float]:
    """(seconds of the quantized activation fwd+bwd, ratio to F.relu)."""
    x = torch.randn(batch, width, requires_grad=True)
    grad = torch.randn(batch, width)
    act = QuantReLU(BITS, ste, alpha=0.5)

    def quantized() -> None:
        torch.autograd.grad(act(x), x, grad)

    def relu() -> None:
        torch.autograd.grad(F.relu(x), x, grad)

    t_quant, t_relu = paired_medians(quantized, relu, repeats)
    return t_quant, t_quant / t_relu


def step_ratio(batch: int, width: int, repeats: int) -> tuple[float, float]:
    """(seconds of one quantized SGD step, ratio to the float-ReLU step)."""
    x = torch.randn(batch, IN_FEATURES)
    y = torch.randint(N_CLASSES, (batch,))

    def make_step(bits: int | None) -> Callable[[], None]:
        torch.manual_seed(0)
        net = TwoLayerNet(IN_FEATURES, N_CLASSES, QuantReLU(bits, STE, alpha=0.5), hidden=width)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

        def step() -> None:
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    t_quant, t_float = paired_medians(make_step(BITS), make_step(None), repeats)
    return t_quant, t_quant / t_float


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m qste.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier figures)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench.json"))
    args = parser.parse_args(argv)
    console = Console()
    torch.manual_seed(0)

    results: dict = {
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "bits": BITS,
        "ste": STE,
        "sizes": {},
    }
    for batch, width in SIZES:
        small = batch * width <= 1_000_000
        act_repeats = (200 if small else 15) // (5 if args.quick else 1)
        step_repeats = (50 if small else 5) // (5 if args.quick else 1) or 1
        with console.status(f"benchmarking {batch} x {width} ..."):
            by_ste = {ste: activation_ratio(batch, width, ste, act_repeats)[1] for ste in STES.names()}
            t_act, act_vs_relu = activation_ratio(batch, width, STE, act_repeats)
            t_step, step_vs_relu = step_ratio(batch, width, step_repeats)
        results["sizes"][f"{batch}x{width}"] = {
            "batch": batch,
            "width": width,
            "activation_vs_relu": act_vs_relu,
            "step_vs_relu": step_vs_relu,
            "activation_ms": 1e3 * t_act,
            "step_ms": 1e3 * t_step,
            "activation_vs_relu_by_ste": by_ste,
        }

    table = Table(title=f"qste bench · {BITS}-bit {STE} vs float ReLU · CPU, {results['threads']} threads")
    for column in ("batch x width", "activation ÷ relu", "step ÷ relu step", "activation ms", "step ms"):
        table.add_column(column, justify="right")
    for size, r in results["sizes"].items():
        table.add_row(
            size, f"{r['activation_vs_relu']:.2f}", f"{r['step_vs_relu']:.3f}", f"{r['activation_ms']:.3f}", f"{r['step_ms']:.1f}"
        )
    by_ste = Table(title="activation fwd+bwd ÷ relu, by STE")
    by_ste.add_column("STE")
    for size in results["sizes"]:
        by_ste.add_column(size, justify="right")
    for ste in STES.names():
        by_ste.add_row(ste, *(f"{r['activation_vs_relu_by_ste'][ste]:.2f}" for r in results["sizes"].values()))
    console.print(table, by_ste)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
