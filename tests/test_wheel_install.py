"""The built wheel works outside a clone: installed into a fresh virtual environment, offline, it trains and
checkpoints into ./runs of the working directory and keeps datasets in the user cache (course_utils.paths)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import torch

from course_utils.paths import REPO_ROOT

TRAIN_OUTSIDE = r"""
import json
import numpy as np
import torch
from torch import nn
import course_utils
import course_utils.data as cd
from course_utils.checkpoint import LAST, load_checkpoint
from course_utils.paths import REPO_ROOT, data_dir, runs_dir
from course_utils.train import accuracy, fit

rng = np.random.default_rng(0)
labels = rng.integers(0, 2, 48)
images = (rng.random((48, 12, 12)) * 128 + 127 * labels[:, None, None]).astype(np.uint8)  # bright = class 1
data = cd.ImageSplits.from_arrays(images, labels, ["dark", "bright"], val_size=8, test_size=8)
train, val, _ = cd.make_device_loaders(data, 8, device="cpu", augment=cd.Augmentation(crop_padding=1))
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(144, 2))
folder = runs_dir() / "wheel_check"
fit(model, train, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1), 2, device="cpu",
    val_loader=val, metrics={"acc": accuracy}, checkpoint_dir=folder, show_progress=False)
state = load_checkpoint(folder / LAST, nn.Sequential(nn.Flatten(), nn.Linear(144, 2)))
print(json.dumps({"package": course_utils.__file__, "repo": str(REPO_ROOT), "data": str(data_dir()),
                  "runs": str(runs_dir()), "epoch": state["epoch"], "files": sorted(p.name for p in folder.iterdir())}))
"""


def installer() -> list[str] | None:
    """uv when it can be found (``make test`` runs under ``uv run``, which sets $UV), else None."""
    for candidate in (os.environ.get("UV"), shutil.which("uv"), REPO_ROOT and REPO_ROOT / ".tools" / "bin" / "uv"):
        if candidate and Path(candidate).is_file():
            return [str(candidate)]
    return None


def build_wheel(tmp_path: Path) -> Path:
    """PEP 517 build through setuptools' backend, in a copy of the sources (no network, no build isolation)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "course_utils", source / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_wheel({str(dist)!r})"],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = dist.glob("course_utils-*.whl")
    return wheel


def install(wheel: Path, env_dir: Path) -> Path:
    """A fresh venv that sees this environment's torch (a .pth line), with the wheel installed offline."""
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "reuse_installed_torch.pth").write_text(str(Path(torch.__file__).parents[1]) + "\n")
    uv = installer()
    if uv:
        command = [*uv, "pip", "install", "--python", str(python), "--offline", "--no-deps", str(wheel)]
    else:  # pip, run straight from the wheel that ships with Python (ensurepip), no index
        import ensurepip

        bundled = Path(ensurepip.__file__).parent / "_bundled"
        (pip_wheel,) = bundled.glob("pip-*.whl")
        command = [
            python,
            str(pip_wheel / "pip"),
            "install",
            "--no-index",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            str(wheel),
        ]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    return python


@pytest.mark.skipif(REPO_ROOT is None, reason="builds the wheel from a clone's sources")
def test_wheel_trains_and_checkpoints_outside_a_clone(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    package = {
        p.relative_to(REPO_ROOT).as_posix()
        for p in (REPO_ROOT / "course_utils").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert package <= names, f"missing from the wheel: {sorted(package - names)}"  # sub-packages included
    assert not any(n.startswith(("tests/", "notebooks/", "tools/", "benchmarks/")) for n in names)
    python = install(wheel, tmp_path / "venv")
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_DATA", "COURSE_RUNS", "PYTHONPATH")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    done = subprocess.run([python, "-c", TRAIN_OUTSIDE], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(report["package"]).is_relative_to(tmp_path / "venv")  # the installed copy, not this clone
    assert report["repo"] == "None" and report["epoch"] == 2 and "last.pt" in report["files"]
    assert Path(report["runs"]) == work / "runs" and (work / "runs" / "wheel_check" / "last.pt").is_file()
    if sys.platform not in ("win32", "darwin"):
        assert Path(report["data"]) == tmp_path / "cache" / "course-utils" / "data"
