"""Fast mode: the one place that reads ``COURSE_FAST``.

Fast mode (``COURSE_FAST=1``, set by ``make test``) only shrinks data sizes, epochs and
steps so that every notebook runs in seconds in CI. It never skips a code path.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

ENV_VAR = "COURSE_FAST"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def fast_mode() -> bool:
    """Return True when ``COURSE_FAST`` asks for the shrunken CI-sized run."""
    raw = os.environ.get(ENV_VAR, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(
        f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not understood: expected 1/true/yes/on for fast "
        f"mode or 0/false/no/off (or unset) for full mode."
    )


def env_flag(name: str) -> bool:
    """True when the environment variable ``name`` is 1/true/yes/on (any case); unset or anything else is False."""
    return os.environ.get(name, "").strip().lower() in _TRUE


def by_mode(full: T, fast: T) -> T:
    """Return ``fast`` in fast mode and ``full`` otherwise, e.g. ``epochs = by_mode(full=50, fast=2)``."""
    return fast if fast_mode() else full


def describe_mode() -> str:
    """One line for notebook headers saying which mode is active."""
    if fast_mode():
        return "FAST mode (COURSE_FAST=1): smaller data, fewer epochs and steps; same code paths."
    return "FULL mode: the sizes and epochs the prose describes (set COURSE_FAST=1 for a quick run)."
