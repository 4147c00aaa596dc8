"""The files of one run directory: metrics.jsonl, summary.json, checkpoints/.

Checkpoints and the summary are written atomically (temporary file in the same folder,
fsync, os.replace), so a crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, IO

import torch


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through ``write(file)`` into a temporary sibling, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def save_checkpoint(obj: dict[str, Any], path: Path) -> None:
    write_atomically(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=True)


def write_json(obj: Any, path: Path) -> None:
    write_atomically(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


class RunFiles:
    """Paths and writers for one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.metrics = run_dir / "metrics.jsonl"
        self.summary = run_dir / "summary.json"
        self.last = run_dir / "checkpoints" / "last.pt"
        self.best = run_dir / "checkpoints" / "best.pt"

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line.strip()]
