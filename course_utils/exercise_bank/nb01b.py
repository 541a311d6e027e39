"""Exercise references for notebook 01b (optimisers and regularisation).

Each reference reaches the answer by a route the exercise does not ask for: PyTorch's own optimisers
(``torch.optim.SGD``, ``torch.optim.Adam``) stepped on the exercise's loss, an enumeration of the outcomes of
a random variable, or gradients written out by hand instead of autograd.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from ..exercises import exercise


def _sgd_steps(settings: list[dict]) -> Iterator[torch.Tensor]:
    """Step lengths of torch.optim.SGD on a constant gradient of 1, one parameter group per setting: yields a
    (len(settings),) tensor per step, for ever. The gradient is set directly, without autograd (it is constant)."""
    thetas = [torch.zeros((), dtype=torch.float64, requires_grad=True) for _ in settings]
    optimizer = torch.optim.SGD([dict(params=[t], **s) for t, s in zip(thetas, settings)], foreach=False)
    while True:
        before = torch.stack([t.detach().clone() for t in thetas])
        for t in thetas:
            t.grad = torch.ones((), dtype=torch.float64)
        optimizer.step()
        yield before - torch.stack([t.detach() for t in thetas])


@exercise("01b.1", title="Nesterov momentum by hand", kind="transcription", atol=1e-9, rtol=0.0,
          hints=("Each step needs three things in order: the gradient of L at the current θ, the new momentum "
                 "buffer, then the direction Nesterov steps along. Section 1.2 gives PyTorch's rule for each.",
                 "Nesterov does not step along the buffer itself: it adds μ times the updated buffer to the "
                 "current gradient. Check your first step: it should be longer than lr · g."))
def nesterov_by_hand(theta0: float, curvature: float, lr: float, momentum: float, steps: int) -> float:
    """θ after ``steps`` steps of torch.optim.SGD(nesterov=True) on L(θ) = curvature · θ² / 2, from θ = theta0."""
    theta = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([theta], lr=lr, momentum=momentum, nesterov=True)
    for _ in range(steps):
        optimizer.zero_grad()
        (curvature * theta**2 / 2).backward()
        optimizer.step()
    return theta.item()


@exercise("01b.2", title="Momentum's top speed", kind="predict", atol=0.0, rtol=1e-3,
          hints=("On a constant gradient the buffer stops changing once b = μ·b + (1 − τ)·g: solve that for b. "
                 "For Nesterov, add the look-ahead term to it.",
                 "Dampening τ scales the gradient that enters the buffer. What does b tend to when τ = μ?"))
def top_speed_factors(settings: list[dict]) -> torch.Tensor:
    """Steady-state step of torch.optim.SGD(**s) on a constant gradient, in units of plain SGD's step lr · g.

    Measured, not derived: the 200th step (momentum 0.95, the slowest setting of the exercise, is within
    0.95²⁰⁰ ≈ 4e-5 of its limit by then, inside the tolerance rtol = 1e-3).
    """
    for step, lengths in enumerate(_sgd_steps(settings), start=1):
        if step == 200:
            return lengths / torch.tensor([s["lr"] for s in settings], dtype=torch.float64)


@exercise("01b.3", title="How long momentum takes to get up to speed", kind="understanding", atol=0.0, rtol=0.0,
          hints=("Write the length of step t on a constant gradient as a geometric sum, and compare it with its "
                 "limit: which power of μ is left over?",
                 "You need the smallest whole t with μᵗ below some number: take logarithms, and mind which way "
                 "to round (and that log μ < 0)."))
def steps_to_top_speed(momentum: float, fraction: float) -> int:
    """The first step (counting from 1) at which torch.optim.SGD(momentum) on a constant gradient moves at
    least ``fraction`` of its top speed lr · g / (1 − momentum)."""
    top = 0.1 / (1 - momentum)
    return next(t for t, length in enumerate(_sgd_steps([dict(lr=0.1, momentum=momentum)]), start=1)
                if length.item() >= fraction * top)


@exercise("01b.4", title="The noise dropout adds", kind="understanding", atol=1e-9, rtol=0.0,
          hints=("The output takes only two values. Which ones, with which probabilities? (Mind the 1/(1 − p) "
                 "scaling of inverted dropout.)",
                 "Var = E[out²] − (E[out])², and you already know E[out] from section 2.4."))
def dropout_variance(x: float, p: float) -> float:
    """Variance of inverted dropout applied to the number x: the two outcomes weighted by their probabilities."""
    outcomes = torch.tensor([0.0, x / (1 - p)], dtype=torch.float64)  # dropped, kept and scaled
    probs = torch.tensor([p, 1 - p], dtype=torch.float64)
    mean = (probs * outcomes).sum()
    return (probs * (outcomes - mean) ** 2).sum().item()


@exercise("01b.5", title="Adam without bias correction", kind="understanding", atol=1e-9, rtol=0.0,
          hints=("After t steps of a constant gradient, how much of g does m hold, and how much of g² does v "
                 "hold? Section 1.3 says it. The uncorrected step is then η·m/√v.",
                 "Both fractions are below 1, but one of them sits under a square root, and with β₂ = 0.999 it "
                 "approaches 1 very slowly. Work out step 1 first: is it shorter or longer than η?"))
def uncorrected_steps(betas: tuple[float, float], steps: int) -> torch.Tensor:
    """Lengths of Adam's first ``steps`` steps on a constant gradient without bias correction (eps = 0), in
    units of lr: m_t / sqrt(v_t) with m and v written as explicit weighted sums over the gradient history
    (m_t = Σ_k (1 − β₁) β₁^(t−k) g), not by the recursion or its closed form. The gradient's value cancels."""
    beta1, beta2 = betas
    g = torch.tensor(-0.37, dtype=torch.float64)  # any nonzero gradient gives the same lengths
    lengths = []
    for t in range(1, steps + 1):
        k = torch.arange(1, t + 1, dtype=torch.float64)  # the steps whose gradients are in the averages
        m = ((1 - beta1) * beta1 ** (t - k) * g).sum()
        v = ((1 - beta2) * beta2 ** (t - k) * g * g).sum()
        lengths.append((m / v.sqrt()).abs())
    return torch.stack(lengths)


def _line_cases() -> Iterator[tuple[tuple, dict]]:
    gen = torch.Generator().manual_seed(16)
    for n, lr, steps in ((20, 0.1, 60), (7, 0.05, 30), (50, 0.2, 40)):
        x = torch.rand(n, generator=gen, dtype=torch.float64) * 4 - 2
        y = 1.5 * x - 0.7 + 0.3 * torch.randn(n, generator=gen, dtype=torch.float64)
        yield (x, y), dict(lr=lr, steps=steps)


@exercise("01b.6", title="Find the bug in a training loop", kind="debug", atol=1e-8, rtol=1e-6,
          calls=lambda: _line_cases(),
          hints=("Print w.grad for the first three steps and compare it with the gradient of that step's loss "
                 "alone. What does backward() do to a .grad that already holds a value?",
                 "Every step must start from a gradient that holds nothing from earlier steps."))
def fit_line_reference(x: torch.Tensor, y: torch.Tensor, lr: float = 0.1, steps: int = 50) -> torch.Tensor:
    """(n,), (n,) -> tensor([w, b]): full-batch SGD with momentum 0.9 on the half-MSE of w·x + b, from w = b = 0,
    with the gradients written out by hand (no autograd) and PyTorch's momentum rule b_t = μ b_{t−1} + g_t."""
    params, buffer = torch.zeros(2, dtype=torch.float64), None
    for _ in range(steps):
        residual = params[0] * x + params[1] - y  # (n,)
        grad = torch.stack([(residual * x).mean(), residual.mean()])  # d/dw and d/db of mean(residual²) / 2
        buffer = grad.clone() if buffer is None else 0.9 * buffer + grad
        params = params - lr * buffer
    return params


def _dropout_cases() -> Iterator[tuple[tuple, dict]]:
    gen = torch.Generator().manual_seed(17)
    for p, n in ((0.5, 40), (0.2, 15), (0.8, 60)):
        model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Dropout(p), nn.Linear(32, 1)).double()
        with torch.no_grad():
            for param in model.parameters():
                param.copy_(torch.randn(param.shape, generator=gen, dtype=torch.float64))
        model.train()  # as a model is during training, when validation runs
        x = torch.rand(n, 1, generator=gen, dtype=torch.float64) * 2 - 1
        yield (model, x, torch.sin(3 * x)), {}


@exercise("01b.7", title="Find the bug in a validation loss", kind="debug", atol=1e-10, rtol=1e-8,
          calls=lambda: _dropout_cases(),
          hints=("Call the function twice on the same model and data. Should a validation loss change between "
                 "two calls? Which layer of the model draws random numbers?",
                 "Section 2.4: a dropout layer behaves differently in training and in evaluation. Who tells it "
                 "which one it is in?"))
def validation_loss_reference(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> float:
    """Half-MSE of ``model`` on (x, y) as evaluation computes it: the same layers with every nn.Dropout removed."""
    without_dropout = nn.Sequential(*(layer for layer in model if not isinstance(layer, nn.Dropout)))
    with torch.no_grad():
        return ((without_dropout(x) - y) ** 2).mean().item() / 2
