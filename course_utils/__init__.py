"""Helpers shared by the course notebooks: device, seed, fast mode, plots, progress, training.

Import what you use explicitly, e.g. ``from course_utils.device import get_device``; the most
common names are also re-exported here.
"""

from .device import describe_device, get_device
from .exercises import check
from .mode import by_mode, describe_mode, fast_mode
from .notebook import setup_notebook
from .seed import seed_everything
from .train import History, accuracy, evaluate, fit

__all__ = [
    "History",
    "accuracy",
    "by_mode",
    "check",
    "describe_device",
    "describe_mode",
    "evaluate",
    "fast_mode",
    "fit",
    "get_device",
    "seed_everything",
    "setup_notebook",
]
