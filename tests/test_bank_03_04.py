"""The exercise references of notebooks 03 and 04 against library functions, and their debug exercises' starting
code against the check (a find-the-bug exercise whose buggy code passes would be a check that cannot fail)."""

import math
import re

import nbformat
import pytest
import torch
import torch.nn.functional as F

from course_utils.exercises import get_exercise, judge
from course_utils.paths import REPO_ROOT


def test_focal_loss_reference_against_the_paper_and_bce():
    """04.2's reference is written like torchvision.ops.sigmoid_focal_loss (importing torchvision takes seconds,
    so it is not imported here): compare it with Lin et al.'s formula and with BCE, which it reduces to."""
    g = torch.Generator().manual_seed(0)
    reference = get_exercise("04.2").reference
    for gamma, alpha in ((2.0, 0.25), (0.0, 0.5), (1.5, 0.9)):
        z = 4 * torch.randn(50, generator=g, dtype=torch.float64)
        y = (torch.rand(50, generator=g) < 0.4).double()
        p_t = torch.where(y == 1, torch.sigmoid(z), torch.sigmoid(-z))
        alpha_t = torch.where(y == 1, alpha, 1 - alpha)
        paper = (-alpha_t * (1 - p_t) ** gamma * torch.log(p_t)).mean()  # FL(p_t), eq. 5
        torch.testing.assert_close(reference(z, y, gamma, alpha), paper)
    torch.testing.assert_close(reference(z, y, 0.0, 0.5), 0.5 * F.binary_cross_entropy_with_logits(z, y))


def test_closed_form_answers():
    torch.testing.assert_close(
        get_exercise("03.4").reference(), torch.tensor([0.0, -0.3, -0.0375], dtype=torch.float64), atol=1e-12, rtol=0
    )
    assert math.isclose(get_exercise("03.5").reference(lr=0.1, batch_size=64), 6.4, rel_tol=1e-9)
    torch.testing.assert_close(
        get_exercise("04.5").reference(),
        torch.tensor([math.log(4), math.log(50_000), math.log(4)], dtype=torch.float64),
    )


def test_kl_and_gradient_references_agree_with_other_routes():
    g = torch.Generator().manual_seed(1)
    p = torch.softmax(torch.randn(5, 3, generator=g), dim=1)
    log_q = F.log_softmax(torch.randn(5, 3, generator=g), dim=1)
    torch.testing.assert_close(get_exercise("04.1").reference(p, log_q), F.kl_div(log_q, p, reduction="batchmean"))
    X, W, b, G = (torch.randn(*s, generator=g, dtype=torch.float64) for s in ((4, 3), (3, 2), (2,), (4, 2)))
    A = torch.sigmoid(X @ W + b)
    torch.testing.assert_close(get_exercise("03.1").reference(X, W, b, G), X.T @ (G * A * (1 - A)))


def starting_code(notebook: str, exercise_id: str) -> dict:
    """Run the student's starting cell of a debug exercise (without its check) and return what it defines."""
    nb = nbformat.read(REPO_ROOT / "notebooks" / f"{notebook}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and f'check("{exercise_id}"' in c.source)
    namespace = {"torch": torch, "math": math, "F": F}
    exec(re.sub(r"\ncheck\(.*\)\s*$", "", cell.source), namespace)
    return namespace


@pytest.mark.parametrize(
    "notebook, exercise_id, name",
    [
        ("03_backpropagation", "03.7", "tied_autoencoder_grad"),
        ("04_loss_functions", "04.6", "cross_entropy_v2"),
    ],
)
def test_debug_exercises_start_wrong(notebook, exercise_id, name):
    correct, why = judge(exercise_id, starting_code(notebook, exercise_id)[name])
    assert correct is False and why
