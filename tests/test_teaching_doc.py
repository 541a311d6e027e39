"""docs/teaching.md, the teachers' lesson plan, cannot drift from the course silently.

Every notebook in notebooks/ has a section whose heading is the notebook's own title; every exercise id the plan
mentions (``05.3``, ``01b.2``) is registered in course_utils/exercise_bank; and every registered exercise of a
notebook is placed in that notebook's section: in a row of its timed table (done in class) or on its
``Homework:`` line. Ids are checked only for notebooks
whose bank module exists: a notebook still being migrated to ``check("NN.K", ...)`` has none yet.
"""

import importlib.util
import re

import nbformat
import pytest

from course_utils.exercises import exercises_of
from course_utils.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "teaching.md"
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
HEADING = re.compile(r"^## (\d\d[a-z]?) · (.+)$", re.M)
EXERCISE_ID = re.compile(r"\b(\d\d[a-z]?)\.(\d+)\b")


def number(path) -> str:
    return path.name.split("_")[0]  # "05_self_attention.ipynb" -> "05"


def sections() -> dict[str, tuple[str, str]]:
    """{notebook number: (heading title, section text up to the next '## ' heading)}"""
    text = DOC.read_text(encoding="utf-8")
    found = {}
    heads = list(HEADING.finditer(text))
    for head, nxt in zip(heads, heads[1:] + [None]):
        assert head.group(1) not in found, f"docs/teaching.md has two sections for notebook {head.group(1)}"
        found[head.group(1)] = (head.group(2).strip(), text[head.end() : nxt.start() if nxt else len(text)])
    return found


def has_bank(notebook: str) -> bool:
    return importlib.util.find_spec(f"course_utils.exercise_bank.nb{notebook}") is not None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_has_a_section_titled_as_the_notebook(path):
    title = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0]  # "# 05 · Self-attention (自注意力)"
    assert title.startswith(f"# {number(path)} · "), f"{path.name}: first line {title!r}"
    found = sections()
    assert number(path) in found, (
        f"docs/teaching.md has no section '## {title[2:]}': add a lesson plan for "
        f"{path.name} (timed table, exercises, misconceptions, discussion questions)"
    )
    assert found[number(path)][0] == title.split(" · ", 1)[1], (
        f"docs/teaching.md: the heading of notebook {number(path)} differs from the notebook's title {title!r}"
    )


def test_every_mentioned_exercise_exists():
    notebooks = {number(p) for p in NOTEBOOKS}
    text = DOC.read_text(encoding="utf-8")
    mentioned = {m.group(0) for m in EXERCISE_ID.finditer(text) if m.group(1) in notebooks}
    assert mentioned, "the plan names no exercise ids"
    for nb in sorted({i.split(".")[0] for i in mentioned}):
        if not has_bank(nb):
            continue  # not migrated yet: nothing to check against
        registered = {ex.id for ex in exercises_of(nb)}
        unknown = sorted(i for i in mentioned if i.split(".")[0] == nb and i not in registered)
        assert not unknown, f"docs/teaching.md names {unknown}, not in exercise_bank/nb{nb}.py ({sorted(registered)})"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_registered_exercise_is_placed_in_its_section(path):
    nb = number(path)
    if not has_bank(nb):
        pytest.skip(f"no exercise_bank/nb{nb}.py yet")
    found = sections()
    if nb not in found:
        pytest.skip("no section (reported by the test above)")
    plan = "\n".join(line for line in found[nb][1].splitlines() if line.startswith(("|", "Homework:")))
    placed = {m.group(0) for m in EXERCISE_ID.finditer(plan)}
    missing = [ex.id for ex in exercises_of(nb) if ex.id not in placed]
    assert not missing, (
        f"docs/teaching.md: place {missing} in section {nb}, in a row of its timed table (in class) "
        "or on its 'Homework:' line"
    )
