"""The training loop: one loop for every dataset and model, reading top to bottom."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import hydra
import omegaconf
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from torch import Tensor, nn

import qste
from qste.data import Splits, load_dataset
from qste.display import summary_table, training_progress
from qste.errors import QsteError
from qste.loggers import make_logger
from qste.models import build_model
from qste.optim import LossFn, build_loss, build_optimizer, build_scheduler
from qste.quant import QuantReLU, calibrate_alphas, quantizers
from qste.runfiles import RunFiles, load_checkpoint, load_initial_weights, save_checkpoint, write_json


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise QsteError(f"device={name}: CUDA is not available on this machine; use device=auto or device=cpu")
    return torch.device(name)


def train(cfg: DictConfig, run_dir: Path, console: Console | None = None) -> dict[str, Any]:
    """Train one run as configured, writing its files into ``run_dir``; return the summary.

    Re-running into the same directory resumes: a finished run is skipped, an unfinished
    one continues from checkpoints/last.pt (bitwise the same as uninterrupted on CPU). A
    run stopped by a QsteError leaves summary.json with status "failed" and the message.
    """
    console = console or Console()
    files = RunFiles(run_dir)
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    previous = files.read_summary()
    if previous and previous.get("status") == "finished":
        if previous["config"] != config:
            raise QsteError(f"{run_dir} holds a finished run of another config; choose another hydra.run.dir")
        console.print(f"{run_dir}: finished already, skipped")
        return previous
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        return train_run(cfg, config, files, console)
    except QsteError as error:
        write_json({"status": "failed", "error": str(error), "run_dir": str(run_dir)}, files.summary)
        raise


def train_run(cfg: DictConfig, config: dict[str, Any], files: RunFiles, console: Console) -> dict[str, Any]:
    """The loop itself: data, model, optimizer, epochs, files."""
    started = time.perf_counter()
    device = resolve_device(cfg.device)
    resume = load_checkpoint(files.last) if files.last.exists() else None
    if resume is not None and resume["config"] != config:
        raise QsteError(f"{files.dir} holds an unfinished run of another config; choose another hydra.run.dir")

    # Data on the run's device, model initialised from the seed (or the checkpoint).
    data = load_dataset(cfg.dataset).to(device)
    torch.manual_seed(cfg.seed)
    fixed_alpha = None if cfg.alpha == "calibrate" else float(cfg.alpha)
    model = build_model(
        cfg.model, data.input_shape, data.n_classes, lambda: QuantReLU(cfg.bits, cfg.ste.name, fixed_alpha)
    ).to(device)
    if resume is not None:
        model.load_state_dict(resume["model"])  # alpha included: calibration below is a no-op
    elif cfg.init_from:
        load_initial_weights(model, Path(cfg.init_from))
    batch_size = cfg.batch_size or len(data.train_y)  # null: full batch
    calibrate_alphas(model, data.train_x[:batch_size], cfg.calibration_percentile)

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(cfg.optimizer, trainable)
    scheduler = build_scheduler(cfg.optimizer, optimizer, cfg.epochs)
    loss_fn = build_loss(cfg.loss.name, data.n_classes)
    shuffle = torch.Generator(device=device).manual_seed(cfg.seed)

    done, step, elapsed = 0, 0, 0.0
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(resume["scheduler"])
        torch.set_rng_state(resume["rng"]["torch"])
        shuffle.set_state(resume["rng"]["shuffle"])  # a CPU byte tensor, whatever the device
        done, step, elapsed = resume["epoch"], resume["step"], resume["elapsed_s"]
    history = files.keep_metrics(up_to_epoch=done)  # epochs after the checkpoint are redone
    best = max(history, key=lambda r: r["test_acc"], default=None)  # first epoch of the best test accuracy
    best_model = load_checkpoint(files.best)["model"] if best is not None else None
    best_written = best["epoch"] if best is not None else 0
    last_checkpoint = time.perf_counter()
    logger = make_logger(cfg.logger.name, files.dir)

    with training_progress(console, cfg.epochs) as progress:
        task = progress.add_task("train", total=cfg.epochs, completed=done, metrics="")
        for epoch in range(done + 1, cfg.epochs + 1):
            epoch_start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            step += train_epoch(model, optimizer, loss_fn, data, batch_size, shuffle)
            if scheduler is not None:
                scheduler.step()
            # Norm of the last step's coarse gradient: one pass over the gradients per epoch, not per step.
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in trainable if p.grad is not None]).item()
            seconds = time.perf_counter() - epoch_start

            train_loss, train_acc = evaluate(model, data.train_x, data.train_y, loss_fn, cfg.eval_batch_size)
            test_loss, test_acc = evaluate(model, data.test_x, data.test_y, loss_fn, cfg.eval_batch_size)
            record = {
                "epoch": epoch,
                "step": step,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "test_loss": test_loss,
                "test_acc": test_acc,
                "lr": lr,
                "alpha": alphas(model),
                "grad_norm": grad_norm,
                "seconds": seconds,
                "samples_per_s": len(data.train_y) / seconds,
            }
            files.append_metrics(record)
            if logger is not None:
                logger.log(record)
            history.append(record)
            if best is None or test_acc > best["test_acc"]:
                best, best_model = record, clone_state(model)

            if epoch == cfg.epochs or time.perf_counter() - last_checkpoint >= cfg.checkpoint_every_s:
                if best_written != best["epoch"]:  # best.pt first: a resume reads it for epochs <= last.pt's
                    save_checkpoint({"epoch": best["epoch"], "model": best_model, "metrics": best}, files.best)
                    best_written = best["epoch"]
                save_checkpoint(
                    {
                        "epoch": epoch,
                        "step": step,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": None if scheduler is None else scheduler.state_dict(),
                        "rng": {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()},
                        "metrics": record,
                        "config": config,
                        "elapsed_s": elapsed + time.perf_counter() - started,
                    },
                    files.last,
                )
                last_checkpoint = time.perf_counter()
            progress.update(task, advance=1, metrics=f"loss {train_loss:.4g}  train {train_acc:.2%}  test {test_acc:.2%}")

    if logger is not None:
        logger.close()
    summary = {
        "status": "finished",
        "final": history[-1],
        "best": best,
        "alpha": alphas(model),
        "config": config,
        "versions": versions(),
        "device": describe_device(device),
        "wall_time_s": elapsed + time.perf_counter() - started,
        "resumed_from_epoch": done or None,
        "run_dir": str(files.dir),
    }
    write_json(summary, files.summary)
    console.print(summary_table(summary))
    return summary


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    data: Splits,
    batch_size: int,
    shuffle: torch.Generator,
) -> int:
    """One pass over the training split in random batches sliced from device tensors; returns the step count."""
    model.train()
    batches = torch.randperm(len(data.train_y), generator=shuffle, device=data.train_y.device).split(batch_size)
    for idx in batches:
        x = data.train_x[idx] if data.augment is None else data.augment(data.train_x[idx], shuffle)
        loss = loss_fn(model(x), data.train_y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(batches)


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn, batch_size: int) -> tuple[float, float]:
    """Mean loss and accuracy of the current model over the whole split."""
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        logits = model(xb)
        loss_sum += loss_fn(logits, yb) * len(yb)
        correct += (logits.argmax(1) == yb).sum()
    return loss_sum.item() / len(y), correct.item() / len(y)


def alphas(model: nn.Module) -> list[float] | None:
    """Resolution of each quantized activation in forward order; None for a float net."""
    return [q.alpha for q in quantizers(model)] or None


def clone_state(model: nn.Module) -> dict[str, Any]:
    return {k: v.detach().clone() if isinstance(v, Tensor) else v for k, v in model.state_dict().items()}


def versions() -> dict[str, str]:
    return {
        "qste": qste.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "hydra": hydra.__version__,
        "omegaconf": omegaconf.__version__,
    }


def describe_device(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(device)}
    return {"type": "cpu", "name": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
