"""Shared pytest setup: tests never download anything, draw no windows and use one CPU thread."""

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")  # no display in CI
os.environ.setdefault("COURSE_FAST", "1")


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The tests use tiny tensors: one thread is as fast, and does not stall when the CPU is shared
    (two torch threads per process on a busy 2-core machine can make small ops 10-100x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
