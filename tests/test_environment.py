"""environment.yml (conda-forge) must list the same packages and minimum versions as pyproject.toml."""

import re
import tomllib

import yaml

from course_utils.paths import REPO_ROOT

CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name
CONDA_ONLY = {"pip"}  # tooling that conda needs to install course_utils itself
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*$")


def split(requirement: str) -> tuple[str, str]:
    name, spec = REQUIREMENT.match(requirement).groups()
    return re.sub(r"[-_.]+", "-", name).lower(), spec.replace(" ", "")


def pyproject_packages() -> dict[str, str]:
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    reqs = list(data["project"]["dependencies"])
    for group in data.get("dependency-groups", {}).values():
        reqs += group
    return dict(split(r) for r in reqs)


def environment() -> dict:
    return yaml.safe_load((REPO_ROOT / "environment.yml").read_text())


def conda_packages() -> dict[str, str]:
    packages = {}
    for entry in environment()["dependencies"]:
        if isinstance(entry, str):
            name, spec = split(entry)
            if name != "python" and name not in CONDA_ONLY:
                packages[CONDA_NAMES.get(name, name)] = spec
    return packages


def test_same_packages_and_minimum_versions():
    assert conda_packages() == pyproject_packages()


def test_conda_forge_only():
    assert environment()["channels"] == ["conda-forge"]


def test_python_version_matches_requires_python():
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    pythons = [e for e in environment()["dependencies"] if isinstance(e, str) and split(e)[0] == "python"]
    assert pythons == [f"python{requires}"]


def test_course_utils_installed_editable_by_pip():
    pip_sections = [e["pip"] for e in environment()["dependencies"] if isinstance(e, dict) and "pip" in e]
    assert pip_sections == [["-e ."]]


def test_split_normalises_names():
    assert split("PyYAML >= 6.0") == ("pyyaml", ">=6.0")
    assert split("typing_extensions") == ("typing-extensions", "")
