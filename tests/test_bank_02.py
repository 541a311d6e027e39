"""The exercise references of notebooks 02 and 02b against closed forms and library functions, and the starting
code of their find-the-bug exercises against the check (buggy code that passed would make a check that cannot fail)."""

import math
import re

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from course_utils.exercises import get_exercise, judge
from course_utils.paths import REPO_ROOT
from nbcode import load_exports


def reference(exercise_id):
    return get_exercise(exercise_id).reference


def test_activation_references_against_closed_forms():
    x = torch.tensor([-100.0, -30.0, -5.0, -1.0, 0.0, 1e-4, 1.0, 5.0, 30.0, 100.0])
    assert_close(reference("02.1")(x=x), F.softplus(x))
    s = torch.sigmoid(x)
    assert_close(reference("02.2")(x=x), s * (1 + x * (1 - s)))
    assert_close(reference("02.3")(x=torch.tensor([-2.0, 0.0, 3.0]), negative_slope=0.2), torch.tensor([0.2, 0.2, 1.0]))


def test_initialisation_reference_is_within_its_tolerance_of_the_formulas():
    stds = reference("02.4")(layer=nn.Linear(512, 256))
    formulas = torch.tensor([math.sqrt(2 / 512), 5 / 3 * math.sqrt(2 / 768)])
    assert_close(stds, formulas, rtol=0.003, atol=0)  # the check allows 1 %: the draw's own error is ~0.3 %


def test_sigmoid_chain_best_case_is_w_over_4_to_the_10():
    assert_close(reference("02.5")(), torch.tensor([0.25**10, 0.5**10], dtype=torch.float64), rtol=1e-12, atol=0)


def test_batchnorm_references_against_the_update_rule_and_the_formula():
    kept = 0.9**3
    mean, var = (1 - kept) * 5.0, kept + (1 - kept) * 2.0
    assert_close(reference("02b.1")(), torch.tensor([mean, var, (5 - mean) / math.sqrt(var + 1e-5)]))
    bn = nn.BatchNorm1d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.5, 0.5, 2.0]))
        bn.running_mean.copy_(torch.tensor([1.0, -2.0, 0.5]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
    a = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    assert_close(reference("02b.2")(bn=bn), torch.stack([a, bn.bias.detach() - a * bn.running_mean]))
    assert bn.training, "the reference must not switch the notebook's layer to evaluation mode"
    assert math.isclose(reference("02b.3")(w=0.5, x=1.0), 1 + 0.5 * (1 - math.tanh(0.5) ** 2), rel_tol=1e-12)


def starting_code(notebook, exercise_id, **extra):
    """Run the student's starting cell of a debug exercise (without its check) and return what it defines."""
    nb = nbformat.read(REPO_ROOT / "notebooks" / f"{notebook}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and f'check("{exercise_id}"' in c.source)
    namespace = {"torch": torch, "math": math, "F": F, "nn": nn, **extra}
    exec(re.sub(r"\ncheck\(.*\)\s*$", "", cell.source), namespace)
    return namespace


@pytest.mark.parametrize("notebook, exercise_id, name", [
    ("02_activations_gradients", "02.6", "train_raw"),
    ("02b_normalisation_residuals", "02b.4", "batch_norm_images"),
    ("02b_normalisation_residuals", "02b.5", "evaluate_mse"),
])
def test_the_buggy_starting_code_fails_its_check(notebook, exercise_id, name):
    mlp_forward = load_exports("02_activations_gradients").mlp_forward
    function = starting_code(notebook, exercise_id, mlp_forward=mlp_forward)[name]
    correct, why = judge(exercise_id, function)
    assert correct is False and "largest difference" in why, why


def test_accumulated_gradients_even_end_lower_on_the_check_cases():
    """What the solution of 02.6 says: a falling loss does not reveal the bug."""
    ex = get_exercise("02.6")
    buggy = starting_code("02_activations_gradients", "02.6",
                          mlp_forward=load_exports("02_activations_gradients").mlp_forward)["train_raw"]
    for args, kwargs in ex.calls():
        losses, right = buggy(*args, **kwargs), ex.reference(*args, **kwargs)
        assert losses[:2] == pytest.approx(right[:2].tolist()) and losses[-1] < right[-1].item() < losses[0]
