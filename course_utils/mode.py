"""Fast mode and the other boolean environment flags: one strict rule for all of them.

Fast mode (``COURSE_FAST=1``, set by ``make test``) only shrinks data sizes, epochs and
steps so that every notebook runs in seconds in CI. It never skips a code path.

Every boolean environment variable of the course (``COURSE_FAST``, ``COURSE_CIFAR10_SYNTHETIC``) is read
by ``env_flag``: 1/true/yes/y/on means True, 0/false/no/n/off or empty or unset means False (any case,
spaces ignored), and anything else is an error that names the variable, instead of a silent guess.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

ENV_VAR = "COURSE_FAST"
TRUE_VALUES = ("1", "true", "yes", "y", "on")
FALSE_VALUES = ("0", "false", "no", "n", "off", "")


def env_flag(name: str) -> bool:
    """Read the boolean environment variable ``name``: True for 1/true/yes/y/on, False for 0/false/no/n/off,
    empty or unset (any case, surrounding spaces ignored).

    Raises:
        ValueError: any other value, e.g. ``2`` or ``maybe``; the message names the variable and the choices.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be an environment variable name (a non-empty str), got {name!r}")
    raw = os.environ.get(name)
    value = (raw or "").strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise ValueError(
        f"{name}={raw!r} is not understood: expected {'/'.join(TRUE_VALUES)} for on, or "
        f"{'/'.join(FALSE_VALUES[:-1])} (or unset) for off."
    )


def fast_mode() -> bool:
    """Return True when ``COURSE_FAST`` asks for the shrunken CI-sized run (read by ``env_flag``)."""
    return env_flag(ENV_VAR)


def by_mode(full: T, fast: T) -> T:
    """Return ``fast`` in fast mode and ``full`` otherwise, e.g. ``epochs = by_mode(full=50, fast=2)``."""
    return fast if fast_mode() else full


def describe_mode() -> str:
    """One line for notebook headers saying which mode is active."""
    if fast_mode():
        return "FAST mode (COURSE_FAST=1): smaller data, fewer epochs and steps; same code paths."
    return "FULL mode: the sizes and epochs the prose describes (set COURSE_FAST=1 for a quick run)."
