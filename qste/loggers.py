"""Optional metric loggers beside metrics.jsonl (which is always written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from qste.errors import QsteError


class MetricLogger(Protocol):
    def log(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class TensorBoardLogger:
    """One scalar per metric per epoch; alpha as alpha/0, alpha/1, ... (one per quantizer)."""

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise QsteError("logger=tensorboard: the tensorboard package is missing; pip install 'qste[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir=str(run_dir))

    def log(self, record: dict[str, Any]) -> None:
        epoch = record["epoch"]
        for key, value in record.items():
            if key == "epoch" or value is None:
                continue
            for i, v in enumerate(value) if isinstance(value, list) else [(None, value)]:
                self.writer.add_scalar(key if i is None else f"{key}/{i}", v, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def make_logger(name: str, run_dir: Path) -> MetricLogger | None:
    if name == "tensorboard":
        return TensorBoardLogger(run_dir)
    return None
