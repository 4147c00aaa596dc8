"""What a person sees while a run trains: a rich progress bar and the final summary table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


def training_progress(console: Console, epochs: int) -> Progress:
    return Progress(
        TextColumn("[bold]epoch"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.fields[metrics]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )


def summary_table(summary: dict[str, Any]) -> Table:
    cfg = summary["config"]
    title = f"qste · {cfg['model']['name']} · ste={cfg['ste']['name']} · bits={cfg['bits']} · seed={cfg['seed']}"
    table = Table(title=title)
    for column in ("", "epoch", "train loss", "train acc", "test loss", "test acc"):
        table.add_column(column, justify="right")
    for label in ("final", "best"):
        m = summary[label]
        table.add_row(
            label,
            str(m["epoch"]),
            f"{m['train_loss']:.4g}",
            f"{m['train_acc']:.2%}",
            f"{m['test_loss']:.4g}",
            f"{m['test_acc']:.2%}",
        )
    alpha = summary["alpha"]
    table.caption = (
        f"alpha {', '.join(f'{a:.4g}' for a in alpha) if alpha else '— (float ReLU)'} · "
        f"{summary['wall_time_s']:.1f} s on {summary['device']['type']} · {summary['run_dir']}"
    )
    return table
