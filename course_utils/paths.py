"""Where the course keeps datasets and training artefacts, whatever the working directory."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The dataset folder: ``$COURSE_DATA`` if set, else ``data/`` at the repository root."""
    return Path(os.environ.get("COURSE_DATA") or REPO_ROOT / "data")


def runs_dir() -> Path:
    """Checkpoints and TensorBoard logs: ``$COURSE_RUNS`` if set, else ``runs/`` at the repository root."""
    return Path(os.environ.get("COURSE_RUNS") or REPO_ROOT / "runs")
