"""Shared pytest setup: tests never download anything and run on the CPU unless told otherwise."""

import os

import matplotlib

matplotlib.use("Agg")  # no display in CI
os.environ.setdefault("COURSE_FAST", "1")
