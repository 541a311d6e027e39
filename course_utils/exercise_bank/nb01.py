"""Exercise references for notebook 01 (regression and least squares).

Each reference takes a different route from the one the exercise asks for: a library solver instead of
the formula, autograd instead of a hand-derived gradient, singular values instead of eigenvalues, the
closed form of gradient descent on a quadratic instead of the loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..exercises import exercise


def _line_design(x: torch.Tensor) -> torch.Tensor:
    return torch.vander(x, N=2, increasing=True)  # (N, 2): columns [1, x], built by torch


@exercise(
    "01.1",
    title="Slope and intercept without matrices",
    kind="transcription",
    atol=1e-8,
    hints=(
        "Centre both variables first (subtract their means). The slope is a ratio of two sums built "
        "from the centred values.",
        "Compute w first; b then makes the line pass through the point of means (x̄, ȳ).",
    ),
)
def line_by_lstsq(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N,), (N,) -> [b, w]: least squares by torch.linalg.lstsq on the design matrix [1, x]."""
    return torch.linalg.lstsq(_line_design(x), y.unsqueeze(1)).solution.squeeze(1)


@exercise(
    "01.2",
    title="Gradient of the mean absolute error",
    kind="understanding",
    atol=1e-10,
    hints=(
        "Differentiate |r| with respect to r first: what is its slope left of 0 and right of 0? Then "
        "follow the chain rule through r = Xθ − y, as section 3.1 does for the square.",
        "Compare with the half-MSE gradient (1/n)·Xᵀr: only the derivative of the per-point loss "
        "changes. Look up torch.sign.",
    ),
)
def l1_gradient(X: torch.Tensor, theta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, D), (D,), (N,) -> (D,): autograd through PyTorch's own L1 loss."""
    leaf = theta.detach().clone().requires_grad_()
    F.l1_loss(X @ leaf, y).backward()
    return leaf.grad


def _line_cases():
    g = torch.Generator().manual_seed(101)
    for n, lr, steps in ((40, 0.1, 25), (15, 0.3, 8), (60, 0.05, 40)):
        x = torch.rand(n, generator=g, dtype=torch.float64) * 4 - 2
        y = 0.5 - 1.2 * x + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
        yield (x, y, lr, steps), {}


@exercise(
    "01.3",
    title="Find the bug in a gradient-descent loop",
    kind="debug",
    atol=1e-8,
    rtol=1e-6,
    calls=lambda: _line_cases(),
    hints=(
        "Print theta.grad during the first three steps of a tiny example and compare it with "
        "half_mse_grad at the current theta: is it the gradient at the current point?",
        "Read the second of section 3.3's three ways again: what does backward() do to a .grad that "
        "already holds a value?",
    ),
)
def gd_closed_form(x: torch.Tensor, y: torch.Tensor, lr: float, steps: int) -> torch.Tensor:
    """[b, w] after ``steps`` gradient steps on the half-MSE from 0, without running the loop.

    On a quadratic loss with Hessian H and minimiser θ*, every step maps θ − θ* to (I − ηH)(θ − θ*), so
    θ_t = θ* + (I − ηH)^t (θ_0 − θ*), here with θ_0 = 0.
    """
    X = _line_design(x)
    H = X.T @ X / x.shape[0]  # (2, 2)
    theta_star = torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)
    shrink = torch.linalg.matrix_power(torch.eye(2, dtype=x.dtype) - lr * H, steps)
    return theta_star - shrink @ theta_star


@exercise(
    "01.4",
    title="Critical learning rate of a cubic",
    kind="understanding",
    atol=0.0,
    rtol=1e-6,
    hints=(
        "Section 4: which matrix holds the curvature of the half-MSE, and which of its eigenvalues limits "
        "the learning rate? Build it from the cubic's features of x_tr.",
        "Mind the 1/n in that matrix; torch.linalg.eigvalsh gives the eigenvalues of a symmetric "
        "matrix in ascending order.",
    ),
)
def critical_lr(x: torch.Tensor, degree: int) -> float:
    """2 / λ_max of H = XᵀX / n for polynomial features of x, from the largest singular value: λ_max = s_max² / n."""
    X = torch.vander(x, N=degree + 1, increasing=True)  # (n, degree + 1)
    return 2 * x.shape[0] / torch.linalg.svdvals(X).max().item() ** 2


@exercise(
    "01.5",
    title="One step above the critical learning rate",
    kind="predict",
    atol=1e-9,
    rtol=0.0,
    hints=(
        "Along the steepest eigenvector, one step multiplies the distance to the minimum by "
        "(1 − η λ_max) (section 4). What is η λ_max at each of the two rates?",
        "Along that direction the excess loss L − L* is ½ λ_max times the squared distance.",
    ),
)
def excess_loss_ratios() -> torch.Tensor:
    """[ratio at η = 2/λ_max, ratio at η = 4/λ_max] of L − L* after one step over before: (1 − ηλ)²."""
    return torch.tensor([(1 - eta_lambda) ** 2 for eta_lambda in (2.0, 4.0)], dtype=torch.float64)


@exercise(
    "01.6",
    title="Ridge regression in closed form",
    kind="understanding",
    atol=1e-6,
    hints=(
        "Write the gradient of ½‖Xθ − y‖² + (λ/2)‖θ‖² (section 2's gradient without the 1/n, plus the "
        "penalty's) and set it to zero: you get a linear system in θ.",
        "Compared with the normal equations only the matrix of the system changes; solve it with "
        "torch.linalg.solve rather than an inverse.",
    ),
)
def ridge(X: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """(N, D), (N,), λ -> (D,): ridge = ordinary least squares on X stacked over √λ·I, with D zeros appended to y."""
    d = X.shape[1]
    X_aug = torch.cat([X, lam**0.5 * torch.eye(d, dtype=X.dtype)])  # (N + D, D)
    y_aug = torch.cat([y, torch.zeros(d, dtype=y.dtype)])  # (N + D,)
    return torch.linalg.lstsq(X_aug, y_aug.unsqueeze(1)).solution.squeeze(1)


def _abs_cases():
    g = torch.Generator().manual_seed(107)
    yield (torch.linspace(-3, 3, 61, dtype=torch.float64),), {}
    yield (5 * torch.randn(4, 6, generator=g),), {}  # float32, two dimensions
    yield (torch.tensor([0.0, -1e-8, 1e-8, -250.0]),), {}


@exercise(
    "01.7",
    title="|x| as a sum of ReLUs",
    kind="understanding",
    atol=1e-7,
    calls=lambda: _abs_cases(),
    hints=(
        "Draw |x| and ReLU(x) on the same axes: where do they agree, and what is missing on the other side?",
        "A ReLU of a scaled input is still a ReLU unit: which one is 0 for x > 0 and equals |x| for x < 0?",
    ),
)
def absolute_value(x: torch.Tensor) -> torch.Tensor:
    """torch.abs."""
    return torch.abs(x)
