"""``qste report DIR [DIR ...]``: one table and a few plots from the runs under the given folders.

Runs are found by their files (``.hydra/config.yaml``, ``summary.json``,
``metrics.jsonl``), never by a scheduler's bookkeeping. Every run found is listed with
its status (finished, failed, unfinished), failed and unfinished ones included. Into the
first DIR go ``report.md``, ``results.csv`` and PNG plots.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from qste.runfiles import RunFiles

# [Y19] Table 1 (full MNIST / CIFAR-10): training loss / validation accuracy %, keyed by
# (dataset, model, bits, ste); started from a pre-trained float net.
PAPER_Y19 = {
    ("mnist", "lenet5", 2, "identity"): "2.6e-2 / 98.49",
    ("mnist", "lenet5", 2, "relu"): "5.1e-3 / 99.24",
    ("mnist", "lenet5", 2, "clipped_relu"): "5.4e-3 / 99.23",
    ("mnist", "lenet5", 4, "identity"): "6.0e-3 / 98.98",
    ("mnist", "lenet5", 4, "relu"): "9.0e-4 / 99.32",
    ("mnist", "lenet5", 4, "clipped_relu"): "8.8e-4 / 99.24",
    ("cifar10", "vgg11", 2, "identity"): "0.19 / 86.58",
    ("cifar10", "vgg11", 2, "relu"): "0.10 / 88.69",
    ("cifar10", "vgg11", 2, "clipped_relu"): "0.02 / 90.92",
    ("cifar10", "vgg11", 4, "identity"): "3.1e-2 / 90.19",
    ("cifar10", "vgg11", 4, "relu"): "1.5e-3 / 92.01",
    ("cifar10", "vgg11", 4, "clipped_relu"): "1.3e-3 / 92.08",
    ("cifar10", "resnet20", 2, "identity"): "1.56 / 46.52",
    ("cifar10", "resnet20", 2, "relu"): "1.50 / 48.05",
    ("cifar10", "resnet20", 2, "clipped_relu"): "0.24 / 88.39",
    ("cifar10", "resnet20", 4, "identity"): "1.38 / 54.16",
    ("cifar10", "resnet20", 4, "relu"): "0.25 / 86.59",
    ("cifar10", "resnet20", 4, "clipped_relu"): "0.04 / 91.24",
}


@dataclass
class Run:
    path: Path
    status: str  # finished | failed | unfinished | not started
    overrides: list[str]
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}

    @property
    def best_test_acc(self) -> float | None:
        return max((r["test_acc"] for r in self.history), default=None)

    @property
    def group(self) -> tuple[Any, ...]:
        """What the run measures, seeds aside: (dataset, model, ste, bits, other overrides)."""
        c = self.config
        other = tuple(o for o in self.overrides if o.split("=")[0].lstrip("+~") not in GROUP_KEYS)
        ste = c["ste"]["name"] if c["bits"] is not None else "float"  # the STE plays no part in a float run
        return (c["dataset"]["name"], c["model"]["name"], ste, c["bits"], other)


# Overrides that are columns of their own, or that do not change what is measured.
GROUP_KEYS = {"seed", "ste", "bits", "dataset", "model", "dataset.seed", "dataset.root", "dataset.download", "init_from"}


def find_runs(dirs: list[Path]) -> list[Run]:
    run_dirs = set()
    for d in dirs:
        for marker in ("summary.json", "metrics.jsonl", ".hydra/config.yaml"):
            run_dirs.update(p.parent.parent if marker.startswith(".hydra") else p.parent for p in d.rglob(marker))
    return [load_run(d) for d in sorted(run_dirs)]


def load_run(path: Path) -> Run:
    files = RunFiles(path)
    summary = files.read_summary() or {}
    hydra_dir = path / ".hydra"
    overrides = yaml.safe_load((hydra_dir / "overrides.yaml").read_text()) if (hydra_dir / "overrides.yaml").exists() else []
    config = summary.get("config") or (yaml.safe_load((hydra_dir / "config.yaml").read_text()) if hydra_dir.exists() else {})
    history = files.read_metrics()
    status = summary.get("status") or ("unfinished" if history else "not started")
    return Run(path, status, overrides or [], config or {}, history, summary.get("error", ""))


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def group_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per (dataset, model, ste, bits, other overrides), over seeds."""
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        if run.config:
            groups[run.group].append(run)
    rows = []
    for key, members in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        dataset, model, ste, bits, other = key
        finished = [r for r in members if r.status == "finished"]
        train_acc = [r.final["train_acc"] for r in finished]
        test_acc = [r.final["test_acc"] for r in finished]
        train_loss = [r.final["train_loss"] for r in finished]
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "ste": ste,
                "bits": "float" if bits is None else bits,
                "other": " ".join(other),
                "runs": len(members),
                "finished": len(finished),
                "perfect_train": sum(a == 1.0 for a in train_acc),
                "train_loss": mean_std(train_loss) if finished else None,
                "train_acc": mean_std(train_acc) if finished else None,
                "test_acc": mean_std(test_acc) if finished else None,
                "paper": PAPER_Y19.get((dataset, model, bits, ste), ""),
            }
        )
    return rows


def fmt(ms: tuple[float, float] | None, percent: bool = True) -> str:
    if ms is None:
        return "—"
    mean, std = ms
    return f"{100 * mean:.2f} ± {100 * std:.2f}" if percent else f"{mean:.3g} ± {std:.2g}"


def write_csv(runs: list[Run], path: Path) -> None:
    columns = ["run", "status", "overrides", "epochs", "final_train_loss", "final_train_acc", "final_test_loss",
               "final_test_acc", "best_test_acc", "alpha", "error"]  # fmt: skip
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for run in runs:
            final = run.final
            writer.writerow([
                str(run.path), run.status, " ".join(run.overrides), final.get("epoch", 0), final.get("train_loss", ""),
                final.get("train_acc", ""), final.get("test_loss", ""), final.get("test_acc", ""),
                run.best_test_acc if run.best_test_acc is not None else "", json.dumps(final.get("alpha")), run.error,
            ])  # fmt: skip


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def summary_cells(row: dict[str, Any]) -> list[str]:
    return [
        row["dataset"], row["model"], row["ste"], str(row["bits"]), row["other"] or "",
        f"{row['finished']}/{row['runs']}", f"{row['perfect_train']}/{row['finished']}",
        fmt(row["train_loss"], percent=False), fmt(row["train_acc"]), fmt(row["test_acc"]), row["paper"],
    ]  # fmt: skip


SUMMARY_HEADER = ["dataset", "model", "STE", "bits", "other overrides", "finished", "100% train",
                  "train loss", "train acc %", "test acc %", "[Y19] paper loss / acc %"]  # fmt: skip


def continuation_rows(runs: list[Run]) -> list[list[str]]:
    """Each finished run with init_from beside the final metrics of the run it started from."""
    rows = []
    for run in runs:
        source = run.config.get("init_from")
        if run.status != "finished" or not source or not Path(source).is_dir():
            continue
        start = load_run(Path(source)).final
        if not start:
            continue
        end = run.final
        rose = end["train_loss"] > start["train_loss"] or end["test_acc"] < start["test_acc"]
        rows.append([
            str(run.path), source, f"{start['train_loss']:.3g} → {end['train_loss']:.3g}",
            f"{100 * (1 - start['test_acc']):.2f} → {100 * (1 - end['test_acc']):.2f}", "yes" if rose else "no",
        ])  # fmt: skip
    return rows


def plot(runs: list[Run], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finished = [r for r in runs if r.history and r.config]
    if not finished:
        return []
    stes = sorted({r.config["ste"]["name"] if r.config["bits"] is not None else "float" for r in finished})
    colour = {ste: plt.cm.tab10(i % 10) for i, ste in enumerate(stes)}
    written = []

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    labelled = set()
    for run in finished:
        ste = run.config["ste"]["name"] if run.config["bits"] is not None else "float"
        epochs = [r["epoch"] for r in run.history]
        label = ste if ste not in labelled else None
        labelled.add(ste)
        ax_loss.plot(epochs, [r["train_loss"] for r in run.history], color=colour[ste], alpha=0.6, label=label)
        ax_acc.plot(epochs, [100 * r["test_acc"] for r in run.history], color=colour[ste], alpha=0.6)
    ax_loss.set(xlabel="epoch", ylabel="train loss", yscale="log", title="training loss per run")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy %", title="test accuracy per run")
    ax_loss.legend(title="STE")
    fig.tight_layout()
    written.append(out / "curves.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    by_ste_bits: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    float_acc = []
    for run in (r for r in finished if r.status == "finished"):
        if run.config["bits"] is None:
            float_acc.append(100 * run.final["test_acc"])
        else:
            by_ste_bits[run.config["ste"]["name"]][run.config["bits"]].append(100 * run.final["test_acc"])
    for ste, per_bits in sorted(by_ste_bits.items()):
        bits = sorted(per_bits)
        stats = [mean_std(per_bits[b]) for b in bits]
        ax.errorbar(bits, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o", capsize=3, label=ste, color=colour[ste])
    if float_acc:
        ax.axhline(statistics.fmean(float_acc), color="black", linestyle="--", label="float ReLU")
    ax.set_xticks(sorted({b for per_bits in by_ste_bits.values() for b in per_bits}))
    ax.set(xlabel="bits", ylabel="final test accuracy % (mean ± std over seeds)", title="accuracy vs bit-width")
    ax.legend()
    fig.tight_layout()
    written.append(out / "accuracy_vs_bits.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def report(dirs: list[Path], console: Console | None = None) -> Path:
    """Find the runs, print the table, write report.md, results.csv and plots into dirs[0]."""
    console = console or Console()
    runs = find_runs(dirs)
    out = dirs[0]
    rows = group_rows(runs)

    # The terminal table leaves out the columns that are the same in every row, naming them in the title.
    cells = [summary_cells(row) for row in rows]
    optional = {"dataset", "model", "other overrides", SUMMARY_HEADER[-1]}
    varying = [i for i, name in enumerate(SUMMARY_HEADER) if name not in optional or len({c[i] for c in cells}) > 1]
    same = [f"{SUMMARY_HEADER[i]} {cells[0][i]}" for i in range(len(SUMMARY_HEADER)) if i not in varying and cells and cells[0][i]]
    table = Table(title=f"qste report · {len(runs)} runs" + (f" · {' · '.join(same)}" if same else ""))
    for i in varying:
        table.add_column(SUMMARY_HEADER[i], justify="right")
    for row in cells:
        table.add_row(*(row[i] for i in varying))
    console.print(table)
    problems = [r for r in runs if r.status != "finished"]
    for run in problems:
        console.print(f"[yellow]{run.status}[/]: {run.path} {' '.join(run.overrides)} {run.error}")

    write_csv(runs, out / "results.csv")
    plots = plot(runs, out)
    lines = ["# qste report\n", f"{len(runs)} runs under {', '.join(map(str, dirs))}; "
             f"{len(runs) - len(problems)} finished.\n", "## Results (final epoch; mean ± std over seeds)\n",
             markdown_table(SUMMARY_HEADER, [summary_cells(r) for r in rows]), ""]  # fmt: skip
    if problems:
        lines += ["## Runs not finished\n", markdown_table(
            ["run", "status", "overrides", "epochs done", "error"],
            [[str(r.path), r.status, " ".join(r.overrides), str(r.final.get("epoch", 0)), r.error] for r in problems],
        ), ""]  # fmt: skip
    continued = continuation_rows(runs)
    if continued:
        lines += ["## Runs started from another run (init_from): did loss or error rise?\n", markdown_table(
            ["run", "started from", "train loss: start → end", "test error %: start → end", "rose"], continued
        ), ""]  # fmt: skip
    lines += ["## Plots\n"] + [f"![{p.stem}]({p.name})" for p in plots] + ["", "Per-run figures: `results.csv`."]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    console.print(f"wrote {out / 'report.md'}, {out / 'results.csv'}" + "".join(f", {p}" for p in plots))
    return out / "report.md"
