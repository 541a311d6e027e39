"""Exercise references for notebook 02b (batch normalisation and residual connections)."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..exercises import exercise


@exercise("02b.1", title="Running estimates after three batches", kind="predict", rtol=1e-3, atol=1e-3,
          hints=("Write the update rule out for three steps, starting from running_mean = 0 and running_var = 1. "
                 "Which variance of the batch [4, 6] goes into the running estimate: the 1/N one or the 1/(N-1) one?",
                 "After k identical batches the starting value still weighs 0.9^k. In evaluation mode the layer "
                 "normalises with the running estimates, whatever they are."))
def running_estimates() -> torch.Tensor:
    """[running_mean, running_var, eval-mode output for 5.0] of a fresh nn.BatchNorm1d(1) after three batches [4, 6]."""
    bn = nn.BatchNorm1d(1)
    with torch.no_grad():
        for _ in range(3):
            bn(torch.tensor([[4.0], [6.0]]))
        bn.eval()
        out = bn(torch.tensor([[5.0]])).item()
    return torch.tensor([bn.running_mean.item(), bn.running_var.item(), out])


@exercise("02b.2", title="BatchNorm folded into y = a x + b", kind="understanding", atol=1e-5,
          hints=("Write evaluation-mode BatchNorm for one feature, γ (x − μ) / √(σ² + ε) + β, with the running "
                 "estimates for μ and σ²; everything but x is a constant. Multiply out.",
                 "The factor of x is a; what is left when x = 0 is b. All four tensors and eps are attributes "
                 "of the layer (weight, bias, running_mean, running_var, eps)."))
def folded_batchnorm(bn: nn.BatchNorm1d) -> torch.Tensor:
    """(2, C): [a; b] read off the layer itself in evaluation mode: b = BN(0), a = BN(1) − BN(0)."""
    bn = copy.deepcopy(bn).eval()
    with torch.no_grad():
        zero, one = bn(torch.zeros(1, bn.num_features))[0], bn(torch.ones(1, bn.num_features))[0]
    return torch.stack([one - zero, zero])


@exercise("02b.3", title="The gradient through a skip", kind="understanding", atol=5e-4,
          hints=("h(x) is a sum of two terms: differentiate each. The first is x itself.",
                 "The chain rule for tanh(w x): tanh' = 1 − tanh², times the derivative of the inside."))
def skip_derivative(w: float, x: float) -> float:
    """dh/dx of h(x) = x + tanh(w x), by autograd in float64."""
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(t + torch.tanh(w * t), t)
    return slope.item()


def _image_cases():
    g = torch.Generator().manual_seed(224)
    for shape in ((4, 3, 5, 5), (2, 2, 3, 3), (8, 1, 2, 2)):
        x = torch.randn(shape, generator=g) * 2 + torch.randn(shape[0], 1, 1, 1, generator=g)  # per-image offsets
        weight, bias = torch.rand(shape[1], generator=g) + 0.5, torch.randn(shape[1], generator=g)
        yield (x, weight, bias), {}


@exercise("02b.4", title="Find the bug in BatchNorm for images", kind="debug", atol=1e-5,
          calls=lambda: _image_cases(),
          hints=("Count the means it computes for an input of shape (N, C, H, W). How many should BatchNorm compute, "
                 "and over which values?",
                 "Section 1: for images the statistics run over N, H and W, one pair per channel."))
def batch_norm_images(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W), (C,), (C,) -> (N, C, H, W): training-mode F.batch_norm without running estimates."""
    return F.batch_norm(x, None, None, weight, bias, training=True, eps=1e-5)


def _trained_models():
    g = torch.Generator().manual_seed(225)
    for seed in (0, 1):
        with torch.random.fork_rng(devices=[]):  # leave the notebook's global random state alone
            torch.manual_seed(seed)
            model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
        for _ in range(20):  # a little training, so the running estimates differ from any one batch's statistics
            x = torch.randn(16, 2, generator=g) * 2 + 1
            model.zero_grad()
            F.mse_loss(model(x), x.sum(dim=1, keepdim=True)).backward()
            with torch.no_grad():  # plain SGD written out: torch.optim's first use costs seconds of imports
                for p in model.parameters():
                    p -= 0.05 * p.grad
        x_test = torch.randn(10, 2, generator=g) * 2 + 1
        yield (model, x_test, x_test.sum(dim=1, keepdim=True)), {}


@exercise("02b.5", title="Find the bug in the evaluation function", kind="debug", atol=1e-6,
          calls=lambda: _trained_models(),
          hints=("Evaluate the same model on the test set twice, once as a whole and once in two halves, and "
                 "compare the outputs for the same example. Should they differ?",
                 "Section 1, 'Why two modes': which statistics should BatchNorm use once training is over, and which "
                 "call selects them?"))
def eval_mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """MSE of a copy of ``model`` in evaluation mode (running estimates), without recording a graph."""
    frozen = copy.deepcopy(model).eval()
    with torch.no_grad():
        return F.mse_loss(frozen(x), y).item()
