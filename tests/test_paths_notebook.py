from pathlib import Path

import pytest
import torch

import course_utils.paths as paths
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


def test_empty_variables_count_as_unset_and_relative_paths_become_absolute(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA", "")
    assert data_dir() == REPO_ROOT / "data"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSE_RUNS", "my_runs")
    assert runs_dir() == tmp_path / "my_runs"


def test_a_variable_naming_a_file_is_an_error(monkeypatch, tmp_path):
    (tmp_path / "f").write_text("not a folder")
    monkeypatch.setenv("COURSE_RUNS", str(tmp_path / "f"))
    with pytest.raises(NotADirectoryError, match="COURSE_RUNS=.* names a file"):
        runs_dir()


@pytest.fixture
def outside_a_clone(monkeypatch, tmp_path):
    """As after a plain pip install: the package is not in a clone, and the working directory is elsewhere."""
    monkeypatch.setattr(paths, "REPO_ROOT", None)
    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.delenv("COURSE_RUNS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


@pytest.mark.skipif(paths.sys.platform in ("win32", "darwin"), reason="XDG cache rule is for Linux and BSD")
def test_outside_a_clone_data_goes_to_the_user_cache_and_runs_to_the_working_directory(outside_a_clone):
    assert data_dir() == outside_a_clone / "cache" / "course-utils" / "data"
    assert runs_dir() == outside_a_clone / "work" / "runs"
    assert "user cache" in paths.describe_paths() and "working directory" in paths.describe_paths()


def test_a_clone_found_from_the_working_directory_is_used(outside_a_clone, monkeypatch):
    clone = outside_a_clone / "clone"
    (clone / "course_utils").mkdir(parents=True)
    (clone / "pyproject.toml").write_text('[project]\nname = "course-utils"\n')
    (clone / "notebooks").mkdir()
    monkeypatch.chdir(clone / "notebooks")
    assert paths.repo_root() == clone
    assert data_dir() == clone / "data" and runs_dir() == clone / "runs"
    (clone / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    assert paths.repo_root() is None


def test_inside_this_clone_the_rule_names_it():
    assert paths.is_course_clone(REPO_ROOT) and paths.repo_root() == REPO_ROOT


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
