"""Where the course keeps datasets (``data_dir``) and training artefacts (``runs_dir``).

The rule, the same wherever the code runs (a clone, a pip-installed wheel, any working directory):

1. the environment variable ``COURSE_DATA`` (datasets) or ``COURSE_RUNS`` (checkpoints, TensorBoard logs),
   when set and not empty (``~`` is expanded, a relative path is taken from the working directory);
2. else, inside a clone of the course repository, its ``data/`` or ``runs/`` folder. The clone is the
   folder holding the imported ``course_utils`` package (a clone or an editable install), or else the
   working directory or its nearest parent that is one (a clone holds ``pyproject.toml`` naming the
   ``course-utils`` project and the ``course_utils/`` package);
3. else datasets go to the user cache, ``$XDG_CACHE_HOME/course-utils/data`` (default
   ``~/.cache/course-utils/data``; ``~/Library/Caches/course-utils/data`` on macOS,
   ``%LOCALAPPDATA%/course-utils/cache/data`` on Windows): they can be downloaded again; and runs go to
   ``runs/`` in the working directory, next to the notebook or script, since they are your work.

``describe_paths()`` says which folders the rule picks here and why.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

PROJECT_NAME = "course-utils"
DATA_ENV = "COURSE_DATA"
RUNS_ENV = "COURSE_RUNS"


def is_course_clone(folder: Path) -> bool:
    """True when ``folder`` holds ``pyproject.toml`` of the course-utils project and its ``course_utils/``."""
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a folder path (str or os.PathLike), got {type(folder).__name__}")
    folder = Path(folder)
    try:
        project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    except (OSError, ValueError):  # no such file, unreadable, or not valid TOML
        return False
    return project.get("name") == PROJECT_NAME and (folder / "course_utils").is_dir()


def _package_clone() -> Path | None:
    parent = Path(__file__).resolve().parents[1]
    return parent if is_course_clone(parent) else None


REPO_ROOT: Path | None = _package_clone()  # the clone this package was imported from; None for an installed wheel


def repo_root() -> Path | None:
    """The course repository to use: the package's own clone, else the working directory's (or a parent's)."""
    if REPO_ROOT is not None:
        return REPO_ROOT
    here = Path.cwd().resolve()
    return next((folder for folder in (here, *here.parents) if is_course_clone(folder)), None)


def user_cache_dir() -> Path:
    """The per-user cache folder of the course (re-downloadable data only)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / PROJECT_NAME / "cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / PROJECT_NAME
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / PROJECT_NAME


def _from_env(name: str) -> Path | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"{name}={raw!r} names a file, not a folder: point it at a folder (it is created when needed) or unset it"
        )
    return path


def _resolve(kind: str) -> tuple[Path, str]:
    env = DATA_ENV if kind == "data" else RUNS_ENV
    path = _from_env(env)
    if path is not None:
        return path, f"from ${env}"
    root = repo_root()
    if root is not None:
        return root / kind, f"in the repository clone {root}"
    if kind == "data":
        return user_cache_dir() / "data", "user cache (not inside a clone of the course)"
    return Path.cwd().absolute() / "runs", "in the working directory (not inside a clone of the course)"


def data_dir() -> Path:
    """The dataset folder: ``$COURSE_DATA``, else ``data/`` of the clone, else the user cache (module docstring)."""
    return _resolve("data")[0]


def runs_dir() -> Path:
    """Checkpoints and logs: ``$COURSE_RUNS``, else ``runs/`` of the clone, else ``./runs`` (module docstring)."""
    return _resolve("runs")[0]


def describe_paths() -> str:
    """Two lines: the data and runs folders the rule picks here, and why."""
    return "\n".join(
        f"{kind}: {path}  ({why})" for kind, (path, why) in (("data", _resolve("data")), ("runs", _resolve("runs")))
    )


__all__ = [
    "DATA_ENV",
    "REPO_ROOT",
    "RUNS_ENV",
    "data_dir",
    "describe_paths",
    "is_course_clone",
    "repo_root",
    "runs_dir",
    "user_cache_dir",
]
