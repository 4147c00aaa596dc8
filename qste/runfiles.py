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
from torch import nn

from qste.errors import QsteError


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
        """The complete records; a torn last line (a crash mid-write) is skipped."""
        if not self.metrics.exists():
            return []
        records = []
        for line in self.metrics.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def keep_metrics(self, up_to_epoch: int) -> list[dict[str, Any]]:
        """Drop the records after ``up_to_epoch`` (to be redone on resume); return the rest."""
        records = self.read_metrics()
        kept = [r for r in records if r["epoch"] <= up_to_epoch]
        if self.metrics.exists():  # a fresh run has nothing to rewrite; a resumed one drops redone and torn lines
            write_atomically(self.metrics, lambda f: f.write("".join(json.dumps(r) + "\n" for r in kept).encode()))
        return kept

    def read_summary(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.summary.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None


def load_initial_weights(model: nn.Module, source: Path) -> None:
    """Load every parameter and buffer of ``model`` from a run directory or checkpoint file.

    Strict: any missing, unexpected or differently shaped tensor is an error listing
    them. Quantizer settings (extra state) are not taken: the run's own config rules.
    """
    path = source / "checkpoints" / "last.pt" if source.is_dir() else source
    if not path.is_file():
        raise QsteError(f"init_from={source}: no checkpoint there (expected a .pt file or a run directory with checkpoints/last.pt)")
    try:
        given = load_checkpoint(path)["model"]
    except Exception as error:
        raise QsteError(f"init_from={source}: cannot read {path} ({type(error).__name__}: {error})".splitlines()[0]) from None
    weights = {k: v for k, v in given.items() if not k.endswith("_extra_state")}
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("_extra_state")}
    missing, unexpected = sorted(own.keys() - weights.keys()), sorted(weights.keys() - own.keys())
    mismatched = [
        f"{k} {tuple(weights[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(own.keys() & weights.keys())
        if weights[k].shape != own[k].shape
    ]
    problems = [
        f"{label}: {', '.join(keys[:6])}{' …' if len(keys) > 6 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched))
        if keys
    ]
    if problems:
        raise QsteError(f"init_from={source}: weights do not match this model; " + "; ".join(problems))
    model.load_state_dict(weights, strict=False)
