"""Slide decks: every notebook carries reveal.js slide metadata that makes a deck of projector-sized slides.

`make slides` builds the decks executed; here they are built from the committed sources (what the slide
layout depends on) in one process, which takes a second or two per notebook.
"""

import importlib.util
import sys

import nbformat
import pytest

from course_utils.paths import REPO_ROOT

spec = importlib.util.spec_from_file_location("editions", REPO_ROOT / "tools" / "editions.py")
editions = sys.modules["editions"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(editions)

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
# Every notebook carries slide metadata; a new notebook must too.
PENDING: set[str] = set()


def has_slides(nb) -> bool:
    return any("slideshow" in c.get("metadata", {}) for c in nb.cells)


def test_pending_list_is_current():
    for path in NOTEBOOKS:
        assert has_slides(nbformat.read(path, as_version=4)) == (path.stem not in PENDING), path.name


@pytest.fixture(scope="module")
def exporter():
    from nbconvert import SlidesExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    slides = SlidesExporter()
    slides.register_preprocessor(TagRemovePreprocessor(remove_input_tags={editions.HIDE_INPUT}), enabled=True)
    return slides


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem not in PENDING])
def test_deck_has_projector_sized_slides(path, exporter):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].metadata.get("slideshow", {}).get("slide_type") == "slide", "the title opens the deck"
    sizes = editions.slide_sizes(nb)
    assert 10 <= len(sizes) <= 150, f"{len(sizes)} slides"
    too_big = [(nb.cells[i].source[:50], n) for i, n in sizes if n > editions.SLIDE_MAX_LINES]
    assert not too_big, f"slides over {editions.SLIDE_MAX_LINES} lines: {too_big}"
    html, _ = exporter.from_notebook_node(nb)
    assert html.count("<section") >= len(sizes), "nbconvert made fewer slides than the metadata asks for"


def test_slide_sizes_and_proposals():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        md("# Title\n\nshort"),
        code("x = 1\ny = 2"),
        md("x" * 250),
        code("\n".join(["z = 3"] * 30)),
        code("plot()\n" * 40),
    ]
    nb.cells[4].metadata["tags"] = [editions.HIDE_INPUT]
    todo = editions.propose_slides(nb)
    assert [c.metadata["slideshow"]["slide_type"] for c in nb.cells] == [
        "slide",
        "-",
        "fragment",
        "subslide",
        "subslide",
    ]
    assert len(todo) == 1 and "cell 3 (code, 30 lines)" in todo[0]
    assert editions.slide_sizes(nb) == [(0, 3 + 2 + 3), (3, 30), (4, 0)]
