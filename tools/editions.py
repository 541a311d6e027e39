"""Build the teacher edition of the notebooks and measure their slides.

    python tools/editions.py teacher [NOTEBOOK ...]   # notebooks/ + solutions/ -> build/teacher/
    python tools/editions.py slides-check [NOTEBOOK ...]  # every slide within the size limit?
    python tools/editions.py slides-auto NOTEBOOK         # propose slide types where none are set yet

``notebooks/`` is the student edition: every exercise ends in a cell that calls
``check("NN.K", answer, ...)`` and shows no answer. ``solutions/NN_name.md`` holds, for each exercise
``NN.K``, a section ``## NN.K`` with one or two sentences of explanation, the worked solution as a
```` ```python ```` block, and at least one typical wrong answer as a block tagged
```` ```python tags=["wrong-answer"] ```` (with a sentence saying what the mistake is). jupytext reads
the file into cells. The teacher edition is the student notebook with, right under each exercise, the
explanation, the solution and the wrong answers.

The teacher edition doubles as the test of the solutions: ``make test`` runs it under nbval, and each
solution cell carries nbval's ``nbval-check-output`` tag with the output it must print
(``[NN.K title] correct.``); each wrong answer must print ``[NN.K title] not yet right`` (the reason
after the colon is sanitised away, see ``tools/nbval_sanitize.cfg``). A solution that stops working, or a
wrong answer that starts passing, fails the suite.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = ROOT / "solutions"
BUILD = ROOT / "build"
CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d\d[a-z]?\.\d+)["']""")
HEADING = re.compile(r"^## (\d\d[a-z]?\.\d+)\b.*$", re.M)
WRONG_TAG = "wrong-answer"
SOLUTION_TAG = "solution"
TEACHER_TAG = "teacher"  # every cell the teacher edition adds carries it
NBVAL_CHECK = "nbval-check-output"
HIDE_INPUT = "hide-input"  # make slides shows only the output of such a cell (plotting code, say)
SLIDE_LINE_WIDTH = 100  # characters: a longer prose line wraps on a projector
SLIDE_MAX_LINES = 18  # rendered lines of prose and code per slide (fragments included)


@dataclass
class Solution:
    """The worked solution of one exercise, read from ``solutions/<notebook>.md``."""

    exercise_id: str
    explanation: str
    code: str
    wrong: list[tuple[str, str]] = field(default_factory=list)  # (what the mistake is, code)


def exercise_ids(nb: nbformat.NotebookNode) -> list[str]:
    """The exercise ids checked in ``nb``, in order (each ``check("NN.K", ...)`` call once)."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            found += [i for i in CHECK_CALL.findall(cell.source) if i not in found]
    return found


def read_solutions(path: Path) -> dict[str, Solution]:
    """Parse a solutions file (see the module docstring) into ``{exercise_id: Solution}``.

    Raises:
        ValueError: a section without a solution block, a solution block outside a section, or an id twice.
    """
    import jupytext

    solutions: dict[str, Solution] = {}
    current: Solution | None = None
    pending_text: list[str] = []
    for cell in jupytext.read(path, fmt="md").cells:
        if cell.cell_type == "markdown":
            # jupytext keeps a heading and the paragraphs after it in one cell: split at "## NN.K" headings
            parts = HEADING.split(cell.source)
            pending_text.append(parts[0].strip())
            for exercise_id, text in zip(parts[1::2], parts[2::2]):
                if exercise_id in solutions:
                    raise ValueError(f"{path.name}: exercise {exercise_id} has two sections")
                current = solutions[exercise_id] = Solution(exercise_id, "", "")
                pending_text = [text.strip()]
            continue
        text = "\n\n".join(t for t in pending_text if t)
        pending_text = []
        if current is None:
            raise ValueError(f"{path.name}: a code block before the first '## NN.K' heading")
        if WRONG_TAG in cell.metadata.get("tags", []):
            current.wrong.append((text, cell.source))
        elif current.code:
            raise ValueError(f"{path.name}: {current.exercise_id} has two solution blocks (tag the wrong one)")
        else:
            current.explanation, current.code = text, cell.source
    for solution in solutions.values():
        if not solution.code:
            raise ValueError(f"{path.name}: {solution.exercise_id} has no solution code block")
    return solutions


def _label(exercise_id: str) -> str:
    from course_utils.exercises import get_exercise  # imports torch: only when a teacher edition is built

    return get_exercise(exercise_id).label


def _cell(kind: str, source: str, tags: list[str], cell_id: str, output: str | None = None) -> nbformat.NotebookNode:
    if kind == "markdown":
        cell = nbformat.v4.new_markdown_cell(source)
    else:
        outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)] if output else []
        cell = nbformat.v4.new_code_cell(source, outputs=outputs)
    cell.id = cell_id  # deterministic, so a rebuilt edition is identical and the sync test can compare
    cell.metadata["tags"] = tags
    cell.metadata["slideshow"] = {"slide_type": "subslide" if kind == "markdown" else "-"}
    return cell


def teacher_cells(solution: Solution) -> list[nbformat.NotebookNode]:
    """The cells inserted under exercise ``solution.exercise_id`` in the teacher edition."""
    label, key = _label(solution.exercise_id), "teacher-" + solution.exercise_id.replace(".", "-")
    cells = [
        _cell(
            "markdown",
            f"**Teacher edition · solution {solution.exercise_id}.** {solution.explanation}",
            [TEACHER_TAG],
            f"{key}-explained",
        ),
        _cell(
            "code", solution.code, [TEACHER_TAG, SOLUTION_TAG, NBVAL_CHECK], f"{key}-solution", f"{label} correct.\n"
        ),
    ]
    for index, (why, code) in enumerate(solution.wrong, start=1):
        cells.append(_cell("markdown", f"**A typical wrong answer.** {why}", [TEACHER_TAG], f"{key}-why-wrong-{index}"))
        cells.append(
            _cell(
                "code", code, [TEACHER_TAG, WRONG_TAG, NBVAL_CHECK], f"{key}-wrong-{index}", f"{label} not yet right\n"
            )
        )
    return cells


def solutions_path(notebook: Path) -> Path:
    return SOLUTIONS / f"{notebook.stem}.md"


def teacher_edition(notebook: Path) -> nbformat.NotebookNode:
    """The student notebook with each exercise's explanation, solution and wrong answers inserted under it.

    Raises:
        ValueError: an exercise of the notebook has no solution or no wrong answer, or the solutions file
            has a section for an exercise the notebook does not check.
    """
    nb = nbformat.read(notebook, as_version=4)
    ids = exercise_ids(nb)
    solutions = read_solutions(solutions_path(notebook)) if ids else {}
    missing = [i for i in ids if i not in solutions or not solutions[i].wrong]
    extra = sorted(set(solutions) - set(ids))
    if missing or extra:
        raise ValueError(
            f"{solutions_path(notebook).name}: exercises without a solution and a wrong answer: "
            f"{missing}; sections for exercises the notebook does not check: {extra}"
        )
    out = copy.deepcopy(nb)
    out.cells = []
    for cell in nb.cells:
        out.cells.append(cell)
        if cell.cell_type == "code":
            for exercise_id in CHECK_CALL.findall(cell.source):
                out.cells.extend(teacher_cells(solutions.pop(exercise_id)) if exercise_id in solutions else [])
    counter = max([c.execution_count or 0 for c in out.cells if c.cell_type == "code"], default=0)
    for cell in out.cells:  # nbval compares a cell only when it has an execution count
        if cell.cell_type == "code" and NBVAL_CHECK in cell.metadata.get("tags", []):
            counter += 1
            cell.execution_count = counter
    return out


def student_edition(teacher: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The teacher edition without the cells it added: must equal the committed student notebook."""
    out = copy.deepcopy(teacher)
    out.cells = [c for c in out.cells if TEACHER_TAG not in c.get("metadata", {}).get("tags", [])]
    return out


def bound_names(source: str) -> set[str]:
    """Names a cell's code binds at top level (assignments, defs, classes, imports, for targets)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def slide_sizes(nb: nbformat.NotebookNode) -> list[tuple[int, int]]:
    """``[(first cell index, rendered lines)]`` for each slide of the reveal.js deck ``nb`` makes.

    A slide starts at a cell whose ``slideshow.slide_type`` is ``slide`` or ``subslide`` and runs on over
    ``fragment`` and ``-`` cells; ``skip`` and ``notes`` cells are not shown. Prose lines longer than
    ``SLIDE_LINE_WIDTH`` characters count once per wrapped line; code lines count once each.
    """
    slides: list[list[int]] = []
    for index, cell in enumerate(nb.cells):
        kind = cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-")
        if kind in ("skip", "notes"):
            continue
        lines = rendered_lines(cell)
        if kind in ("slide", "subslide") or not slides:
            slides.append([index, lines])
        else:
            slides[-1][1] += lines
    return [(start, lines) for start, lines in slides]


def rendered_lines(cell: nbformat.NotebookNode) -> int:
    """Lines a cell's source takes on a slide: prose wraps at ``SLIDE_LINE_WIDTH``; code with the
    ``hide-input`` tag shows only its output (``make slides`` removes the input)."""
    if cell.cell_type == "code" and HIDE_INPUT in cell.get("metadata", {}).get("tags", []):
        return 0
    lines = cell.source.splitlines() or [""]
    if cell.cell_type == "code":
        return len(lines)
    return sum(max(1, -(-len(line) // SLIDE_LINE_WIDTH)) for line in lines)


def propose_slides(nb: nbformat.NotebookNode) -> list[str]:
    """Set a first-guess slide type on every cell that has none; return the cells that still need a person.

    Headings start a slide; other prose starts a sub-slide; code joins the slide above it while the slide
    stays within ``SLIDE_MAX_LINES``, else starts a sub-slide. A cell that alone exceeds the limit is listed:
    split it, tag plotting code ``hide-input``, or mark it ``notes`` / ``skip``.
    """
    todo, used = [], 0
    for index, cell in enumerate(nb.cells):
        slideshow = cell.metadata.setdefault("slideshow", {})
        lines = rendered_lines(cell)
        if "slide_type" not in slideshow:
            if cell.cell_type == "markdown" and re.match(r"#{1,2} ", cell.source):
                slideshow["slide_type"] = "slide"
            elif index and used + lines <= SLIDE_MAX_LINES:
                slideshow["slide_type"] = "-" if cell.cell_type == "code" else "fragment"
            else:
                slideshow["slide_type"] = "subslide"
        if slideshow["slide_type"] in ("slide", "subslide"):
            used = 0
        if slideshow["slide_type"] not in ("skip", "notes"):
            used += lines
        if lines > SLIDE_MAX_LINES and slideshow["slide_type"] not in ("skip", "notes"):
            todo.append(f"cell {index} ({cell.cell_type}, {lines} lines): {cell.source[:60]!r}")
    return todo


def _paths(args: list[str]) -> list[Path]:
    return [Path(a).resolve() for a in args] if args else sorted(NOTEBOOKS.glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["teacher", "slides-check", "slides-auto"])
    parser.add_argument("notebooks", nargs="*")
    parser.add_argument("--out", type=Path, default=BUILD / "teacher", help="folder for the teacher edition")
    args = parser.parse_args(argv)
    status = 0
    for path in _paths(args.notebooks):
        if args.command == "slides-auto":
            nb = nbformat.read(path, as_version=4)
            todo = propose_slides(nb)
            nbformat.write(nb, path)
            print(f"{path.name}: {len(slide_sizes(nb))} slides; cells over {SLIDE_MAX_LINES} lines to fix by hand:")
            print("\n".join(f"  {line}" for line in todo) or "  none")
            status |= bool(todo)
        elif args.command == "teacher":
            args.out.mkdir(parents=True, exist_ok=True)
            nbformat.write(teacher_edition(path), args.out / path.name)
            print(f"{args.out / path.name}")
        else:
            too_big = [(i, n) for i, n in slide_sizes(nbformat.read(path, as_version=4)) if n > SLIDE_MAX_LINES]
            for start, lines in too_big:
                print(f"{path.name}: the slide starting at cell {start} has {lines} lines (limit {SLIDE_MAX_LINES})")
            status |= bool(too_big)
    return status


if __name__ == "__main__":
    sys.exit(main())
