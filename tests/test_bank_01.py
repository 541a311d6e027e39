"""The exercise references of notebook 01 against other routes (formulas, loops, running gradient descent), and the
starting code of its find-the-bug exercise against the check (buggy code that passed would be a check that cannot
fail)."""

import math
import re

import nbformat
import pytest
import torch
import torch.nn.functional as F
from nbcode import load_exports
from torch import nn
from torch.testing import assert_close

from course_utils.exercises import get_exercise, judge
from course_utils.paths import REPO_ROOT

NOTEBOOK = "01_regression_least_squares"


def reference(exercise_id):
    return get_exercise(exercise_id).reference


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(2024)


def line_data(gen, n=30):
    x = torch.rand(n, generator=gen, dtype=torch.float64) * 6 - 3
    return x, 1.5 - 0.7 * x + 0.4 * torch.randn(n, generator=gen, dtype=torch.float64)


def design(x, degree=1):
    return torch.stack([x**k for k in range(degree + 1)], dim=1)  # (N, degree + 1), columns 1, x, x^2, ...


def test_line_reference_is_the_covariance_formula(gen):
    x, y = line_data(gen)
    w = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    assert_close(reference("01.1")(x=x, y=y), torch.stack([y.mean() - w * x.mean(), w]), atol=1e-12, rtol=0)


def test_l1_gradient_reference_is_x_transpose_sign(gen):
    x, y = line_data(gen)
    X, theta = design(x), torch.tensor([0.3, -1.1], dtype=torch.float64)
    assert_close(reference("01.2")(X=X, theta=theta, y=y), X.T @ torch.sign(X @ theta - y) / len(y))
    assert theta.grad is None, "the reference must not touch the notebook's tensor"


def gd_loop(x, y, lr, steps):
    X, theta = design(x), torch.zeros(2, dtype=x.dtype)
    for _ in range(steps):
        theta = theta - lr * X.T @ (X @ theta - y) / len(y)
    return theta


def test_gradient_descent_reference_equals_the_loop():
    ex = get_exercise("01.3")
    for args, kwargs in ex.calls():
        assert_close(ex.reference(*args, **kwargs), gd_loop(*args, **kwargs), atol=1e-12, rtol=1e-10)


def starting_code(exercise_id, **extra):
    """Run the student's starting cell of an exercise (without its check) and return what it defines."""
    nb = nbformat.read(REPO_ROOT / "notebooks" / f"{NOTEBOOK}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and f'check("{exercise_id}"' in c.source)
    namespace = {"torch": torch, "math": math, "F": F, "nn": nn, **extra}
    exec(re.sub(r"\ncheck\(.*\)\s*$", "", cell.source), namespace)
    return namespace


def test_the_buggy_starting_code_fails_and_its_fix_passes():
    mse_half = load_exports(NOTEBOOK).mse_half
    buggy = starting_code("01.3", mse_half=mse_half)["fit_line_gd"]
    correct, why = judge("01.3", buggy)
    assert correct is False and "largest difference" in why, why

    def fixed(x, y, lr, steps):
        theta = torch.zeros(2, dtype=x.dtype, requires_grad=True)
        for _ in range(steps):
            mse_half(theta[0] + theta[1] * x, y).backward()
            with torch.no_grad():
                theta -= lr * theta.grad
            theta.grad = None
        return theta.detach()

    assert judge("01.3", fixed) == (True, "")


def test_critical_learning_rate_separates_convergence_from_divergence(gen):
    x = torch.rand(20, generator=gen, dtype=torch.float64) * 4 - 2
    lr_crit = reference("01.4")(x=x, degree=3)
    X = design(x, 3)
    H = X.T @ X / len(x)
    assert math.isclose(lr_crit, 2 / torch.linalg.eigvalsh(H).max().item(), rel_tol=1e-10)
    y = torch.randn(20, generator=gen, dtype=torch.float64)
    theta_star = torch.linalg.solve(H, X.T @ y / len(x))
    for factor, converges in ((0.98, True), (1.02, False)):
        theta = torch.zeros(4, dtype=torch.float64)
        for _ in range(3000):
            theta = theta - factor * lr_crit * X.T @ (X @ theta - y) / len(x)
        assert ((theta - theta_star).norm() < 1e-3) == converges, factor


def test_excess_loss_ratios_by_taking_the_steps(gen):
    x, y = line_data(gen)
    X = design(x)
    H = X.T @ X / len(x)
    eigenvalues, vectors = torch.linalg.eigh(H)
    theta_star = torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)

    def excess(theta):
        return 0.5 * ((X @ theta - y) ** 2).mean() - 0.5 * ((X @ theta_star - y) ** 2).mean()

    start = theta_star + 0.2 * vectors[:, -1]
    measured = [excess(start - c / eigenvalues[-1] * X.T @ (X @ start - y) / len(x)) / excess(start) for c in (2, 4)]
    assert_close(reference("01.5")(), torch.stack(measured), atol=1e-6, rtol=0)


def test_ridge_reference_solves_the_penalised_normal_equations(gen):
    x = torch.rand(20, generator=gen, dtype=torch.float64) * 2 - 1
    X, y = design(x, 15), torch.randn(20, generator=gen, dtype=torch.float64)
    for lam in (1e-3, 0.5):
        theta = reference("01.6")(X=X, y=y, lam=lam)
        assert_close(X.T @ (X @ theta - y) + lam * theta, torch.zeros(16, dtype=torch.float64), atol=1e-8, rtol=0)


def test_absolute_value_cases_reach_both_sides_and_float32():
    ex = get_exercise("01.7")
    cases = [args[0] for args, _ in ex.calls()]
    assert any((c < 0).any() and (c > 0).any() for c in cases)
    assert {c.dtype for c in cases} == {torch.float32, torch.float64} and any(c.dim() == 2 for c in cases)
    assert judge("01.7", lambda z: F.relu(z) + F.relu(-z)) == (True, "")
    assert judge("01.7", lambda z: F.relu(z) - F.relu(-z))[0] is False
