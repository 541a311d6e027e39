"""The classroom kit: exercises out of sight, tested solutions, one source for two editions, slides.

`make test` runs nbval on build/teacher/ (the teacher edition), where every worked solution must print
"correct" and every typical wrong answer "not yet right". These tests check everything else about it.
"""

import ast
import importlib.util
import re
import sys

import nbformat
import pytest

from course_utils.exercises import exercises_of, get_exercise
from course_utils.paths import REPO_ROOT

spec = importlib.util.spec_from_file_location("editions", REPO_ROOT / "tools" / "editions.py")
editions = sys.modules["editions"] = importlib.util.module_from_spec(spec)  # dataclasses need it
spec.loader.exec_module(editions)

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]
# Every notebook uses check("NN.K", ...) against the exercise bank; the older check_answer form is gone.
PENDING: set[str] = set()
REFERENCE_NAME = re.compile(r"^\s*(expected|reference|ref|target|truth|solution|answer_key)\w*\s*=", re.M)


def read(path):
    return nbformat.read(path, as_version=4)


def number(path) -> str:
    return path.stem.split("_")[0]


def migrated():
    return [p for p in NOTEBOOKS if p.stem not in PENDING]


def exercise_blocks(nb):
    """{exercise id: [code cells from the previous markdown cell up to the check]}"""
    blocks, current = {}, []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            current = []
            continue
        current.append(cell)
        for exercise_id in editions.CHECK_CALL.findall(cell.source):
            blocks[exercise_id] = list(current)
    return blocks


def test_pending_list_is_current():
    for path in NOTEBOOKS:
        uses_old = "check_answer(" in path.read_text(encoding="utf-8")
        assert uses_old == (path.stem in PENDING), f"{path.name}: update PENDING in {__file__}"


@pytest.mark.parametrize("path", migrated(), ids=[p.stem for p in migrated()])
def test_every_exercise_is_registered_solved_and_has_a_wrong_answer(path):
    nb = read(path)
    ids = editions.exercise_ids(nb)
    registered = [e.id for e in exercises_of(number(path))]
    assert ids == registered, "the notebook's checks and the registry must list the same exercises, in order"
    kinds = {get_exercise(i).kind for i in ids}
    assert len(ids) >= 3 and {"predict", "debug"} <= kinds, f"{len(ids)} exercises, kinds {sorted(kinds)}"
    editions.teacher_edition(path)  # raises when a solution or a wrong answer is missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_editions_stay_in_sync(path):
    teacher = editions.teacher_edition(path)
    assert editions.student_edition(teacher).cells == read(path).cells
    built = REPO_ROOT / "build" / "teacher" / path.name
    if built.exists():  # make test builds it first; a stale copy would test old solutions
        assert read(built).cells == teacher.cells, "build/teacher is stale: run `make teacher`"


@pytest.mark.parametrize("path", migrated(), ids=[p.stem for p in migrated()])
def test_no_answer_in_sight(path):
    nb = read(path)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "exercise_bank" not in code, "a notebook must not import the references"
    solutions = editions.read_solutions(editions.solutions_path(path))
    for exercise_id, cells in exercise_blocks(nb).items():
        source = "\n".join(c.source for c in cells)
        assert not REFERENCE_NAME.search(source), f"{exercise_id}: a reference is computed in the exercise"
        call = next(
            n
            for n in ast.walk(ast.parse(cells[-1].source))
            if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "check"
        )
        assert len(call.args) == 2, f"{exercise_id}: check takes the id and the answer; inputs go by keyword"
        for hint in get_exercise(exercise_id).hints:  # a hint nudges; it must not be a line of the solution
            for line in solutions[exercise_id].code.splitlines():
                line = line.split("#")[0].strip()
                assert len(line) < 16 or line not in hint, f"{exercise_id}: a hint gives away {line!r}"


@pytest.mark.parametrize("path", migrated(), ids=[p.stem for p in migrated()])
def test_solutions_only_rebind_what_the_exercise_asks_for(path):
    """The teacher edition runs the student cells with solutions in between; a solution that bound new names
    could hide a student-edition NameError in a later cell."""
    nb = read(path)
    blocks = exercise_blocks(nb)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for exercise_id, solution in editions.read_solutions(editions.solutions_path(path)).items():
        allowed = set().union(*(editions.bound_names(c.source) for c in blocks[exercise_id]))
        later = code_cells[code_cells.index(blocks[exercise_id][-1]) + 1 :]
        for code in [solution.code] + [code for _, code in solution.wrong]:
            extra = editions.bound_names(code) - allowed
            for cell in later:  # a later student cell that reads such a name without binding it itself
                read_there = {n.id for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.Name)}
                leaked = (extra & read_there) - editions.bound_names(cell.source)
                assert not leaked, f"{exercise_id}: the solution binds {sorted(leaked)}, read by a later cell"


def test_read_solutions_rejects_malformed_files(tmp_path):
    bad = tmp_path / "99_demo.md"
    bad.write_text("## 99.1\n\nno code\n\n## 99.2\n\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="99.1 has no solution code block"):
        editions.read_solutions(bad)
    bad.write_text("```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="before the first"):
        editions.read_solutions(bad)
