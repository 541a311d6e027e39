"""Load the teaching code of a notebook so pytest can check it against PyTorch.

A notebook keeps its from-scratch implementations in its own cells (that is what students read).
Cells whose first line is ``# export`` hold self-contained definitions (functions, classes,
constants); ``load_exports`` runs just those cells, in order, in a fresh namespace that already has
``math``, ``torch``, ``nn`` and ``F`` imported, and returns it. Tests then exercise the student-facing
code on inputs the notebook does not try. Exported cells must not train models or plot.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from types import SimpleNamespace

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MARK = "# export"
PREAMBLE = "import math\nimport torch\nfrom torch import nn\nimport torch.nn.functional as F\n"


def exported_sources(notebook: str) -> list[str]:
    """The source of every ``# export`` cell of ``notebooks/<notebook>.ipynb``."""
    path = NOTEBOOKS / f"{notebook}.ipynb"
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    sources = []
    for cell in cells:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and source.lstrip().startswith(MARK):
            sources.append(source)
    if not sources:
        raise LookupError(f"{path.name} has no cell starting with {MARK!r}")
    return sources


@cache
def load_exports(notebook: str) -> SimpleNamespace:
    """Execute the exported cells of a notebook and return what they define."""
    namespace: dict = {"__name__": f"notebook_{notebook}"}
    exec(compile(PREAMBLE, "<preamble>", "exec"), namespace)
    for index, source in enumerate(exported_sources(notebook)):
        exec(compile(source, f"<{notebook} export {index}>", "exec"), namespace)
    return SimpleNamespace(**{k: v for k, v in namespace.items() if not k.startswith("__")})
