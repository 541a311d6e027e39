"""Committed notebooks stay reviewable and follow the course pattern."""

import importlib.util
import itertools
import json
import re

import nbformat
import pytest

from course_utils.paths import REPO_ROOT

spec = importlib.util.spec_from_file_location("nbtool", REPO_ROOT / "tools" / "notebooks.py")
nbtool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nbtool)

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]


def source(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def test_notebooks_are_numbered():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        assert re.fullmatch(r"\d\d[a-z]?_[a-z0-9_]+\.ipynb", path.name), path.name  # 01b: a companion to 01


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_clean_except_checked_outputs(path):
    assert nbtool.problems(nbformat.read(path, as_version=4)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_machine_paths_or_huge_outputs(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"(/home/\w|/Users/\w|/root/|/work/|[A-Za-z]:\\\\Users)", text), (
        "machine-specific path in notebook"
    )
    assert len(text) < 500_000, "notebook file too large for review"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_follows_course_pattern(path):
    nb = nbformat.read(path, as_version=4)
    first = source(nb.cells[0])
    assert nb.cells[0].cell_type == "markdown" and first.startswith("# ")
    # the header: the opening markdown cells up to the first code cell (a deck shows it on several slides)
    lowered = "\n".join(source(c) for c in itertools.takewhile(lambda c: c.cell_type == "markdown", nb.cells)).lower()
    for needed in ("learning goals", "fast mode", "runtime"):
        assert needed in lowered, f"header lacks {needed!r}"
    code = [source(c) for c in nb.cells if c.cell_type == "code"]
    assert any("setup_notebook(" in c for c in code[:2]), "setup_notebook() must be called in the first code cells"
    markdown = "\n".join(source(c) for c in nb.cells if c.cell_type == "markdown")
    assert re.search(r"^#+ .*summary", markdown, re.I | re.M), "no Summary section"
    assert re.search(r"^#+ .*exercises", markdown, re.I | re.M), "no Exercises section"
    checks = sum(len(re.findall(r"\bcheck(_answer)?\(", c)) for c in code)
    assert checks >= 3, "fewer than three self-checking exercises"
    assert re.search(r"[\u4e00-\u9fff]", markdown), "no Chinese lecture terms"
    assert not any(".cuda()" in c for c in code), "use device= instead of .cuda()"


def make_nb(cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    return nb


def test_strip_keeps_only_checked_outputs_and_renumbers():
    out = nbformat.v4.new_output("stream", name="stdout", text="1.0000\n")
    checked = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)", execution_count=7, outputs=[out])
    plain = nbformat.v4.new_code_cell("x = 1", execution_count=3, outputs=[out])
    plain.metadata.update(scrolled=True, slideshow={"slide_type": "fragment"}, tags=["hide-input"])
    nb = make_nb([nbformat.v4.new_markdown_cell("# t"), plain, checked])
    nb.metadata["language_info"] = {"version": "3.11.7"}
    assert len(nbtool.problems(nb)) == 3
    cleaned = nbtool.strip(nb)
    assert nbtool.problems(cleaned) == []
    assert cleaned.cells[1].outputs == [] and cleaned.cells[1].execution_count is None
    assert cleaned.cells[1].metadata == {"slideshow": {"slide_type": "fragment"}, "tags": ["hide-input"]}
    assert cleaned.cells[2].execution_count == 1 and cleaned.cells[2].outputs[0]["text"] == "1.0000\n"
    assert set(cleaned.metadata) == {"kernelspec"}


@pytest.mark.parametrize(
    "metadata, complaint",
    [
        ({"slideshow": {"slide_type": "slides"}}, "slideshow metadata must be"),
        ({"slideshow": {"slide_type": "slide", "x": 1}}, "slideshow metadata must be"),
        ({"tags": "hide-input"}, "tags must be"),
        ({"tags": ["Hide Input"]}, "tags must be"),
        ({"collapsed": True}, "keep only ['slideshow', 'tags']"),
    ],
)
def test_only_slide_and_tag_metadata_is_kept(metadata, complaint):
    cell = nbformat.v4.new_markdown_cell("# t")
    cell.metadata.update(metadata)
    assert complaint in " ".join(nbtool.problems(make_nb([cell])))


def test_git_clean_filter_keeps_outputs_out_of_commits(tmp_path):
    """What `make hooks` (run by `make lab`) registers: the file on disk keeps its outputs, the commit does not."""
    import shutil
    import subprocess
    import sys

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    shutil.copy(REPO_ROOT / ".gitattributes", tmp_path / ".gitattributes")
    git("config", "filter.course-notebook.clean", f"{sys.executable} {REPO_ROOT / 'tools' / 'notebooks.py'} clean")
    (tmp_path / "notebooks").mkdir()
    out = nbformat.v4.new_output("stream", name="stdout", text="a saved output\n")
    nb = make_nb([nbformat.v4.new_code_cell("print(1)", execution_count=4, outputs=[out])])
    nbformat.write(nb, tmp_path / "notebooks" / "01_demo.ipynb")
    git("add", "notebooks/01_demo.ipynb")
    staged = nbformat.reads(git("show", ":notebooks/01_demo.ipynb"), as_version=4)
    assert staged.cells[0].outputs == [] and staged.cells[0].execution_count is None
    assert "a saved output" in (tmp_path / "notebooks" / "01_demo.ipynb").read_text()  # nothing lost on disk
    assert git("status", "--porcelain", "notebooks") == "A  notebooks/01_demo.ipynb\n"  # not modified


def test_unrun_checked_cell_is_a_problem():
    # nbval silently skips comparing a checked cell without an execution count
    nb = make_nb([nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)")])
    assert "would not compare it" in nbtool.problems(nb)[0]


def test_exported_cells_load(tmp_path, monkeypatch):
    import nbcode

    nb = make_nb(
        [
            nbformat.v4.new_code_cell("# export\ndef double(x):\n    return 2 * x"),
            nbformat.v4.new_code_cell("raise RuntimeError('not exported, never run')"),
        ]
    )
    (tmp_path / "99_demo.ipynb").write_text(json.dumps(nb))
    monkeypatch.setattr(nbcode, "NOTEBOOKS", tmp_path)
    ns = nbcode.load_exports("99_demo")
    assert ns.double(21) == 42 and hasattr(ns, "torch")
    nb.cells = nb.cells[1:]
    (tmp_path / "98_none.ipynb").write_text(json.dumps(nb))
    with pytest.raises(LookupError, match="no cell starting with '# export'"):
        nbcode.load_exports("98_none")
