from pathlib import Path

import torch

from course_utils.notebook import setup_notebook
from course_utils.paths import REPO_ROOT, data_dir, runs_dir


def test_paths_default_to_repo_root(monkeypatch):
    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.delenv("COURSE_RUNS", raising=False)
    assert (REPO_ROOT / "pyproject.toml").exists()
    assert data_dir() == REPO_ROOT / "data"
    assert runs_dir() == REPO_ROOT / "runs"


def test_paths_follow_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("COURSE_RUNS", str(tmp_path / "r"))
    assert data_dir() == Path(tmp_path / "d")
    assert runs_dir() == Path(tmp_path / "r")


def test_setup_notebook_seeds_and_prints(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    monkeypatch.setenv("COURSE_FAST", "1")
    device = setup_notebook(seed=5)
    first = torch.rand(2)
    setup_notebook(seed=5)
    assert torch.equal(torch.rand(2), first)
    assert device == torch.device("cpu")
    out = capsys.readouterr().out
    assert "device: cpu" in out and "mode:   FAST" in out
