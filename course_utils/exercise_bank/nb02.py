"""Exercise references for notebook 02 (activation functions and gradients)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..exercises import exercise


@exercise("02.1", title="Softplus without overflow", kind="transcription",
          hints=("Try the formula literally at x = 100 in float32: which intermediate value overflows? Find a way "
                 "to write log(1 + e^x) in which the exponential only ever sees a number <= 0.",
                 "For x > 0, factor e^x out of 1 + e^x before taking the log; torch.where picks a formula per "
                 "element, and torch.log1p(t) computes log(1 + t) accurately when t is small."))
def softplus(x: torch.Tensor) -> torch.Tensor:
    """(n,) -> (n,): log(e^0 + e^x) by torch.logaddexp, which shares no code with F.softplus."""
    return torch.logaddexp(x, torch.zeros_like(x))


@exercise("02.2", title="SiLU's derivative by hand", kind="transcription", atol=1e-5,
          hints=("x·σ(x) is a product of two functions of x: which rule differentiates a product?",
                 "You need σ'(x); section 3 writes it in terms of σ(x) itself."))
def silu_derivative(x: torch.Tensor) -> torch.Tensor:
    """(n,) -> (n,): autograd through PyTorch's own F.silu."""
    x = x.detach().clone().requires_grad_(True)
    F.silu(x).sum().backward()  # elementwise function: the gradient of the sum is f'(x_i) per element
    return x.grad


@exercise("02.3", title="Leaky ReLU's slope at the kink", kind="understanding",
          hints=("Away from 0 each piece of leaky ReLU is a straight line: what is the slope of each? At exactly 0, "
                 "the cell about `clamp` in section 3 shows which side PyTorch takes for ReLU.",
                 "PyTorch uses the strict test x > 0 for the 'positive' piece."))
def leaky_relu_slopes(x: torch.Tensor, negative_slope: float) -> torch.Tensor:
    """(n,) -> (n,): autograd through F.leaky_relu."""
    x = x.detach().clone().requires_grad_(True)
    F.leaky_relu(x, negative_slope).sum().backward()
    return x.grad


@exercise("02.4", title="Kaiming's and Xavier's standard deviations", kind="understanding", rtol=0.01, atol=0.0,
          hints=("Section 4 lists both variances; the question asks for standard deviations. Which of the weight's "
                 "two dimensions is fan_in, and which gain does Xavier use for tanh?",
                 "nn.Linear(in_features, out_features) stores its weight as (out_features, in_features); "
                 "nn.init.calculate_gain('tanh') gives the gain."))
def init_stds(layer: nn.Linear) -> torch.Tensor:
    """[std of kaiming_normal_(relu), std of xavier_normal_(gain for tanh)], measured on one large draw each."""
    g = torch.Generator().manual_seed(2)
    kaiming = nn.init.kaiming_normal_(torch.empty_like(layer.weight), nonlinearity="relu", generator=g)
    xavier = nn.init.xavier_normal_(torch.empty_like(layer.weight), gain=nn.init.calculate_gain("tanh"), generator=g)
    return torch.tensor([kaiming.std().item(), xavier.std().item()])  # ±0.3 % sampling error at 131 072 weights


@exercise("02.5", title="The best case through 10 sigmoid layers", kind="predict", rtol=0.02, atol=0.0,
          hints=("By the chain rule the derivative is a product of one factor per layer: w · σ'(z_l). How large can "
                 "σ'(z) be, and can the biases make every layer reach that?",
                 "The largest slope of σ is at z = 0; section 4's bound multiplies the slope by the weight."))
def sigmoid_chain_best() -> torch.Tensor:
    """[w = 1, w = 2]: autograd through 10 layers h <- σ(w h + b) whose biases put every pre-activation at 0."""
    best = []
    for w in (1.0, 2.0):
        x = torch.zeros((), dtype=torch.float64, requires_grad=True)
        h = x
        for _ in range(10):
            h = torch.sigmoid(w * h - w * h.detach())  # b_l = -w h_(l-1) (a constant): the pre-activation is 0
        h.backward()
        best.append(x.grad.item())
    return torch.tensor(best, dtype=torch.float64)


def _training_cases():
    g = torch.Generator().manual_seed(206)
    for n_in, n_hidden, n_out, lr in ((1, 8, 1, 0.1), (3, 5, 2, 0.05)):
        x = torch.rand(24, n_in, generator=g, dtype=torch.float64) * 4 - 2                   # (N, in)
        y = torch.sin(2 * x[:, :1]).expand(24, n_out) + 0.1 * torch.randn(24, n_out, generator=g, dtype=torch.float64)
        shapes = [(n_in, n_hidden), (n_hidden,), (n_hidden, n_out), (n_out,)]
        params = [((torch.rand(s, generator=g, dtype=torch.float64) * 2 - 1) / 2).requires_grad_() for s in shapes]
        yield (params, x, y, lr, 25), {}


@exercise("02.6", title="Find the bug in the raw training loop", kind="debug", rtol=1e-4, atol=1e-8,
          calls=lambda: _training_cases(),
          hints=("Compare its losses with a correct run step by step: the first two agree, then they drift apart. "
                 "What does the second update use that the first one did not?",
                 "Section 3, 'Gradients accumulate': what does loss.backward() do to a .grad that already holds a value?"))
def sgd_losses(init_params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, lr: float,
               steps: int) -> torch.Tensor:
    """The loss at every step of full-batch SGD on the same MLP built from nn.Linear layers and optim.SGD.

    init_params = [W1 (in, hidden), b1, W2 (hidden, out), b2] in the notebook's x @ W layout; nn.Linear stores
    the transpose. Returns a (steps,) float64 tensor; init_params are not changed.
    """
    W1, b1, W2, b2 = (p.detach() for p in init_params)
    model = nn.Sequential(nn.Linear(*W1.shape), nn.ReLU(), nn.Linear(*W2.shape)).to(W1.dtype)
    with torch.no_grad():
        for layer, W, b in ((model[0], W1, b1), (model[2], W2, b2)):
            layer.weight.copy_(W.T)
            layer.bias.copy_(b)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = nn.MSELoss()(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return torch.tensor(losses, dtype=torch.float64)
