"""Exercise references for notebook 03 (backpropagation).

Every gradient here comes from torch's autograd (``torch.autograd.grad``), never from a hand-written
backward pass like the ones the notebook asks for.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..exercises import exercise


@exercise(
    "03.1",
    title="A sigmoid layer by hand",
    kind="transcription",
    atol=1e-5,
    hints=(
        "A gradient has the shape of what it is the gradient of, (3, 2) here. Go back one operation at "
        "a time: through the sigmoid first, then through the matrix product.",
        "Section 2's nonlinearity pattern multiplies G elementwise by σ'(Z), which you can write with "
        "A alone; section 4's rule for Y = AB puts a transpose on the factor you do not differentiate.",
    ),
)
def sigmoid_layer_dW(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """(N, D), (D, H), (H,), (N, H) -> dL/dW (D, H): autograd's vector-Jacobian product with G."""
    W = W.detach().clone().requires_grad_()
    (dW,) = torch.autograd.grad(torch.sigmoid(X @ W + b), W, grad_outputs=G)
    return dW


@exercise(
    "03.2",
    title="A chain-rule derivative",
    kind="transcription",
    atol=1e-8,
    hints=(
        "Write z as a chain x → u = sin x → v = u² → z = e^v and find each link's derivative, "
        "evaluated at the forward values.",
        "Case 1 of the chain rule multiplies the three local derivatives; one of them is e^v itself.",
    ),
)
def exp_sin_squared_slope(x: float) -> float:
    """dz/dx of z = exp(sin(x)^2) at x, by autograd in float64."""
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(torch.exp(torch.sin(t) ** 2), t)
    return slope.item()


@exercise(
    "03.3",
    title="Give Value a logarithm",
    kind="transcription",
    atol=1e-10,
    hints=(
        "A Value records ((input, local derivative),) in its parents. What is the derivative of log "
        "at the input's value?",
        "Once log records its local derivative, backward() does the rest: the chain rule carries it "
        "through + 1 and through a * b to a and b.",
    ),
)
def log_of_product(a: float, b: float) -> torch.Tensor:
    """[log(a b + 1), d/da, d/db] by autograd on float64 tensors (log1p: another route than log(... + 1))."""
    ta, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (a, b))
    out = torch.log1p(ta * tb)
    out.backward()
    return torch.stack([out.detach(), ta.grad, tb.grad])


@exercise(
    "03.4",
    title="What the cross-entropy gradient adds up to",
    kind="predict",
    atol=1e-4,
    hints=(
        "softmax(z) is a probability distribution and so is onehot(y): what does each add up to?",
        "The mean over a batch divides every example's gradient by the batch size.",
    ),
)
def cross_entropy_gradient_facts() -> torch.Tensor:
    """[sum of dC/dz, the correct class' entry at p = 0.7, the same in a batch of 8 under the mean loss],
    measured with autograd on logits whose softmax is (0.1, 0.7, 0.2)."""
    z = torch.tensor([[0.1, 0.7, 0.2]] * 8, dtype=torch.float64).log().requires_grad_()
    (alone,) = torch.autograd.grad(F.cross_entropy(z[:1], torch.tensor([1])), z)
    (batch,) = torch.autograd.grad(F.cross_entropy(z, torch.tensor([1] * 8)), z)
    return torch.stack([alone[0].sum(), alone[0, 1], batch[0, 1]])


@exercise(
    "03.5",
    title="Mean or sum: the learning rate that takes the same step",
    kind="understanding",
    rtol=1e-6,
    hints=(
        "Write one SGD step for each reduction. How does the gradient of the mean loss compare with the "
        "gradient of the summed loss over the same mini-batch?",
        "The mean loss has the smaller gradient, so it needs the larger learning rate to take the same step.",
    ),
)
def matching_learning_rate(lr: float, batch_size: int) -> float:
    """lr times the ratio |grad of the summed loss| / |grad of the mean loss|, measured on a random batch."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(batch_size, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (batch_size,), generator=g)
    W = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    (g_sum,) = torch.autograd.grad(F.cross_entropy(X @ W, y, reduction="sum"), W)
    (g_mean,) = torch.autograd.grad(F.cross_entropy(X @ W, y, reduction="mean"), W)
    return lr * (g_sum.norm() / g_mean.norm()).item()


def _same_units(answer: Any, expected: list[int]) -> tuple[bool, str]:
    try:
        got = sorted({int(i) for i in torch.as_tensor(answer).flatten().tolist()})
    except (TypeError, ValueError, RuntimeError):
        return False, f"expected a list of hidden-unit indices, got {type(answer).__name__}"
    return got == expected, "" if got == expected else f"got units {got}"


@exercise(
    "03.6",
    title="Hidden units that get no gradient",
    kind="understanding",
    compare=_same_units,
    hints=(
        "A ReLU passes gradient back only where its pre-activation is positive (section 2: a "
        "nonlinearity scales the gradient by its derivative). Compute z1 for the batch.",
        "A column of W1 gets nothing when its unit's ReLU derivative is 0 for every example of the "
        "batch, not just for some of them.",
    ),
)
def dead_units(X: torch.Tensor, params: dict[str, torch.Tensor]) -> list[int]:
    """Units whose column of dL/dW1 is exactly zero under autograd, whatever the labels (three random draws)."""
    W1 = params["W1"].detach().clone().requires_grad_()
    zero = torch.ones(W1.shape[1], dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        labels = torch.randint(0, params["W2"].shape[1], (X.shape[0],), generator=g)
        logits = F.relu(X @ W1 + params["b1"]) @ params["W2"] + params["b2"]
        (dW1,) = torch.autograd.grad(F.cross_entropy(logits, labels), W1)
        zero &= (dW1 == 0).all(dim=0)
    return zero.nonzero().flatten().tolist()


def _autoencoder_cases():
    g = torch.Generator().manual_seed(307)
    for n, d, h in ((5, 4, 3), (7, 2, 5), (3, 3, 3), (1, 6, 2)):
        yield (
            (
                torch.randn(n, d, generator=g, dtype=torch.float64),
                torch.randn(d, h, generator=g, dtype=torch.float64) / math.sqrt(d),
            ),
            {},
        )


@exercise(
    "03.7",
    title="Find the bug: a weight used twice",
    kind="debug",
    atol=1e-8,
    calls=lambda: _autoencoder_cases(),
    hints=(
        "Count how many times W is used in the forward pass. How many contributions should its gradient collect?",
        "Case 2 of the chain rule: when one value feeds two paths, the gradients of the paths add up.",
    ),
)
def tied_autoencoder_reference(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """dL/dW for L = mean over rows of |tanh(X W) W^T - X|^2, by autograd."""
    W = W.detach().clone().requires_grad_()
    (dW,) = torch.autograd.grad(((torch.tanh(X @ W) @ W.T - X) ** 2).sum(dim=1).mean(), W)
    return dW
