"""Benchmarks (not tests): the cost of quantization relative to a float ReLU, in one process.

    python -m qste.bench [--quick] [--out outputs/bench.json]

For each batch x width it times, interleaving the two sides so that machine noise hits
both alike, and reports the ratio of medians:

- activation_vs_relu: forward + backward of the 2-bit quantized ReLU (clipped-ReLU STE)
  / forward + backward of torch.nn.functional.relu;
- step_vs_relu: one SGD step (forward, loss, backward, update) of the two-layer net
  784-width-10 with the quantized activation / the same step with the float ReLU.

Other STEs' activation ratios are printed for information.

With Fashion-MNIST present (Debian's ``dataset-fashion-mnist``, or ``--fashion-root``),
it also times one training epoch of that two-layer net (width 1000, batch 100) on the
60,000 images (medians of three, the first two interleaved), and reports

- epoch_vs_compute: an epoch of qste's training loop (data resident, permutation slicing)
  / the same steps on batches sliced beforehand (compute alone);
- epoch_vs_dataloader: the qste epoch / an epoch through torchvision's dataset with
  ToTensor + Normalize and a torch DataLoader (batch 100, shuffled).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
import torchvision
from rich.console import Console
from rich.table import Table

from qste.errors import QsteError
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


def sgd_steps(net: torch.nn.Module, opt: torch.optim.Optimizer, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Plain training steps (forward, cross-entropy, backward, update) over the given batches."""
    net.train()
    for x, y in batches:
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def step_ratio(batch: int, width: int, repeats: int) -> tuple[float, float]:
    """(seconds of one quantized SGD step, ratio to the float-ReLU step)."""
    x = torch.randn(batch, IN_FEATURES)
    y = torch.randint(N_CLASSES, (batch,))

    def make_step(bits: int | None) -> Callable[[], None]:
        torch.manual_seed(0)
        net = TwoLayerNet(IN_FEATURES, N_CLASSES, QuantReLU(bits, STE, alpha=0.5), hidden=width)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

        return lambda: sgd_steps(net, opt, [(x, y)])

    t_quant, t_float = paired_medians(make_step(BITS), make_step(None), repeats)
    return t_quant, t_quant / t_float


FASHION_ROOT = "/usr/share/datasets/fashion-mnist"
EPOCH_WIDTH, EPOCH_BATCH = 1000, 100


def epoch_ratios(root: str) -> dict[str, float]:
    """Seconds of one Fashion-MNIST epoch three ways (best of a few, interleaved), and the ratios."""
    from hydra import compose, initialize_config_dir

    from qste.cli import CONF_DIR
    from qste.data import load_dataset
    from qste.optim import build_loss, build_optimizer
    from qste.quant import calibrate_alphas
    from qste.train import train_epoch
    from qste.vision import SPECS, locate

    overrides = ["dataset=fashion_mnist", f"dataset.root={root}", "dataset.download=false", "device=cpu"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    data = load_dataset(cfg.dataset)  # what `qste train dataset=fashion_mnist` trains on
    torch.manual_seed(0)
    net = TwoLayerNet(IN_FEATURES, N_CLASSES, QuantReLU(BITS, STE), hidden=EPOCH_WIDTH)
    calibrate_alphas(net, data.train_x[:EPOCH_BATCH], cfg.calibration_percentile)
    opt = build_optimizer(cfg.optimizer, net.parameters())
    loss_fn = build_loss("cross_entropy", N_CLASSES)
    shuffle = torch.Generator().manual_seed(0)

    def qste_epoch() -> None:  # the training loop's own epoch: resident tensors, permutation slicing
        train_epoch(net, opt, loss_fn, data, EPOCH_BATCH, shuffle)

    sliced = list(zip(data.train_x.split(EPOCH_BATCH), data.train_y.split(EPOCH_BATCH)))
    torchvision_root, _ = locate("fashion_mnist", root, download=False)
    spec = SPECS["fashion_mnist"]
    transform = torchvision.transforms.Compose(
        [torchvision.transforms.ToTensor(), torchvision.transforms.Normalize(spec.mean, spec.std)]
    )
    loader = torch.utils.data.DataLoader(
        spec.cls(str(torchvision_root), train=True, transform=transform), batch_size=EPOCH_BATCH, shuffle=True
    )

    def compute_epoch() -> None:  # the same steps on batches sliced beforehand
        sgd_steps(net, opt, sliced)

    def dataloader_epoch() -> None:  # per-sample ToTensor + Normalize, collated by the DataLoader
        sgd_steps(net, opt, loader)

    qste_s, compute_s = paired_medians(qste_epoch, compute_epoch, repeats=3, warmup=1)
    start = time.perf_counter()
    dataloader_epoch()
    dataloader_s = time.perf_counter() - start
    return {
        "qste_epoch_s": qste_s,
        "compute_epoch_s": compute_s,
        "dataloader_epoch_s": dataloader_s,
        "epoch_vs_compute": qste_s / compute_s,
        "epoch_vs_dataloader": qste_s / dataloader_s,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m qste.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier figures)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench.json"))
    parser.add_argument("--fashion-root", default=os.environ.get("QSTE_FASHION_MNIST", FASHION_ROOT),
                        help="Fashion-MNIST folder for the epoch benchmark (skipped when absent)")
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

    try:
        with console.status("benchmarking one Fashion-MNIST epoch three ways ..."):
            results["epoch"] = epoch_ratios(args.fashion_root)
    except QsteError as error:
        console.print(f"[yellow]epoch benchmark skipped[/]: {error}")
    else:
        e = results["epoch"]
        epoch_table = Table(title=f"one Fashion-MNIST epoch, two-layer 784-{EPOCH_WIDTH}-10, batch {EPOCH_BATCH}")
        for column in ("qste loop s", "compute alone s", "DataLoader s", "qste ÷ compute", "qste ÷ DataLoader"):
            epoch_table.add_column(column, justify="right")
        epoch_table.add_row(
            f"{e['qste_epoch_s']:.2f}", f"{e['compute_epoch_s']:.2f}", f"{e['dataloader_epoch_s']:.2f}",
            f"{e['epoch_vs_compute']:.3f}", f"{e['epoch_vs_dataloader']:.3f}",
        )  # fmt: skip
        console.print(epoch_table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
