"""Keep committed notebooks reviewable: no outputs except the ones nbval is asked to compare.

    python tools/notebooks.py check  [NOTEBOOK ...]   # exit 1 if a notebook is not clean
    python tools/notebooks.py strip  [NOTEBOOK ...]   # clean in place (keeps checked outputs)
    python tools/notebooks.py refresh [NOTEBOOK ...]  # run in fast mode, store checked outputs, clean
    python tools/notebooks.py clean < in.ipynb > out.ipynb  # the git clean filter (see below)

A cell whose source contains ``# NBVAL_CHECK_OUTPUT`` is compared by ``pytest --nbval-lax``. nbval
silently skips the comparison for a cell without an execution count, so a clean notebook keeps
the outputs *and* an execution count on those cells (numbered 1, 2, ... for stable diffs) and
nothing on any other cell. With no paths, every notebook under ``notebooks/`` is processed.

Cell metadata is limited to what the course's tooling reads: ``slideshow`` (reveal.js / RISE slide type)
and ``tags`` (e.g. ``hide-input`` hides a cell's code in the slide decks). Anything else that Jupyter
writes (``scrolled``, ``collapsed``, execution timings, ...) is stripped.

``clean`` is the same strip as a filter from stdin to stdout. ``make lab`` registers it as git's clean
filter for ``notebooks/*.ipynb`` (see ``.gitattributes``), so outputs saved while teaching never reach a
commit, while the notebook on disk keeps them.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
KEPT_NOTEBOOK_METADATA = ("kernelspec",)
KEPT_CELL_METADATA = ("slideshow", "tags")
SLIDE_TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")
TAG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def is_checked(cell: nbformat.NotebookNode) -> bool:
    """True for a code cell whose output nbval compares."""
    return cell.cell_type == "code" and CHECK_MARK in cell.source


def problems(nb: nbformat.NotebookNode) -> list[str]:
    """What keeps ``nb`` from being clean, one message per problem (empty when clean)."""
    found = []
    extra = sorted(set(nb.metadata) - set(KEPT_NOTEBOOK_METADATA))
    if extra:
        found.append(f"notebook metadata has {extra}; keep only {list(KEPT_NOTEBOOK_METADATA)}")
    for index, cell in enumerate(nb.cells):
        where = f"cell {index} ({cell.cell_type})"
        extra_keys = sorted(set(cell.get("metadata", {})) - set(KEPT_CELL_METADATA))
        if extra_keys:
            found.append(f"{where} has metadata {extra_keys}; keep only {list(KEPT_CELL_METADATA)}")
        found += [f"{where}: {message}" for message in _metadata_problems(cell.get("metadata", {}))]
        if cell.cell_type == "markdown" and cell.get("attachments"):
            found.append(f"{where} has attachments")
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            if cell.execution_count is None or not cell.outputs:
                found.append(
                    f"{where} is marked {CHECK_MARK} but has no stored output/execution count, "
                    "so nbval would not compare it: run `make refresh`"
                )
            for out in cell.outputs:
                if out.output_type == "error":
                    found.append(f"{where} stores an error output")
                if "image/png" in out.get("data", {}):
                    found.append(f"{where} stores an image; checked cells should print numbers")
        elif cell.outputs or cell.execution_count is not None:
            found.append(f"{where} has outputs or an execution count but is not a checked cell")
    return found


def _metadata_problems(metadata: dict) -> list[str]:
    found = []
    if "slideshow" in metadata:
        slideshow = metadata["slideshow"]
        if (
            not isinstance(slideshow, dict)
            or set(slideshow) != {"slide_type"}
            or slideshow["slide_type"] not in SLIDE_TYPES
        ):
            found.append(f"slideshow metadata must be {{'slide_type': one of {SLIDE_TYPES}}}, got {slideshow!r}")
    if "tags" in metadata:
        tags = metadata["tags"]
        if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and TAG.match(t) for t in tags):
            found.append(f"tags must be a non-empty list of lower-case words with hyphens, got {tags!r}")
    return found


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return ``nb`` cleaned in place: checked cells keep outputs, renumbered 1, 2, ..."""
    nb.metadata = {"kernelspec": dict(nb.metadata.get("kernelspec") or KERNELSPEC)}
    counter = 0
    for cell in nb.cells:
        cell.metadata = {key: cell.metadata[key] for key in KEPT_CELL_METADATA if cell.metadata.get(key)}
        cell.pop("attachments", None) if cell.cell_type == "markdown" else None
        if cell.cell_type != "code":
            continue
        if is_checked(cell) and cell.outputs:
            counter += 1
            cell.execution_count = counter
            for out in cell.outputs:
                if "execution_count" in out:
                    out.execution_count = counter
                out.pop("metadata", None) if out.output_type == "stream" else None
        else:
            cell.outputs = []
            cell.execution_count = None
    return nb


def refresh(path: Path, timeout: int = 900) -> None:
    """Execute ``path`` top to bottom in fast mode in a fresh kernel, then strip it."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ["COURSE_FAST"] = "1"
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    nbformat.write(strip(nb), path)


def _paths(args: list[str]) -> list[Path]:
    if args:
        return [Path(a).resolve() for a in args]
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["check", "strip", "refresh", "clean"])
    parser.add_argument("notebooks", nargs="*")
    args = parser.parse_args(argv)
    if args.command == "clean":  # git clean filter: notebook on stdin, stripped notebook on stdout
        nbformat.write(strip(nbformat.read(sys.stdin, as_version=4)), sys.stdout)
        return 0
    status = 0
    for path in _paths(args.notebooks):
        if args.command == "refresh":
            print(f"running {path.name} in fast mode ...", flush=True)
            refresh(path)
        elif args.command == "strip":
            nbformat.write(strip(nbformat.read(path, as_version=4)), path)
        found = problems(nbformat.read(path, as_version=4))
        for message in found:
            print(f"{path.name}: {message}")
        status |= bool(found)
    return status


if __name__ == "__main__":
    sys.exit(main())
