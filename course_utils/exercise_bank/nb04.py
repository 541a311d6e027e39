"""Exercise references for notebook 04 (loss functions).

Each reference takes another route than the notebook's exercise asks for: ``torch.distributions`` for the
KL divergence, the ``binary_cross_entropy_with_logits`` form of the focal loss (the way
``torchvision.ops.sigmoid_focal_loss`` writes it; torchvision itself is not imported because its import takes
seconds, longer than the whole notebook's checks), ``nn.CrossEntropyLoss`` itself, and autograd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..exercises import exercise


@exercise(
    "04.1",
    title="KL divergence",
    kind="transcription",
    hints=(
        "Build the (N, C) tensor of per-class terms first, then reduce it: which axis is summed, and "
        "which is averaged?",
        "p comes as probabilities and q as log-probabilities: only p needs a log.",
    ),
)
def kl_batchmean(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """(N, C) target probabilities, (N, C) model log-probabilities -> mean over rows of KL(p_n || q_n)."""
    kl = torch.distributions.kl_divergence(
        torch.distributions.Categorical(probs=p), torch.distributions.Categorical(logits=log_q)
    )  # (N,)
    return kl.mean()


@exercise(
    "04.2",
    title="Focal loss",
    kind="transcription",
    hints=(
        "p_t is the probability the model gives the true label: pick it per element with torch.where, "
        "and pick α_t the same way.",
        "For a stable −log p_t: F.logsigmoid(z) is log σ(z), and log(1 − σ(z)) is log σ(−z).",
    ),
)
def sigmoid_focal_loss_mean(logits: torch.Tensor, targets: torch.Tensor, gamma: float, alpha: float) -> torch.Tensor:
    """Mean focal loss (Lin et al. 2017, eq. 5), written as torchvision.ops.sigmoid_focal_loss writes it."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # -log p_t
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * ce * (1 - p_t) ** gamma).mean()


@exercise(
    "04.3",
    title="Class-weighted cross-entropy",
    kind="understanding",
    hints=(
        "Per sample: the weight of its true class times −log p of its true class. What must a weighted "
        "mean divide by so that weights all equal to 3 give back the plain mean?",
        "Index the weights with the labels, the same way you pick the log-probabilities of the labels.",
    ),
)
def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """nn.CrossEntropyLoss(weight=weight) with the default mean reduction."""
    return nn.CrossEntropyLoss(weight=weight)(logits, labels)


@exercise(
    "04.4",
    title="The gradient of label-smoothed cross-entropy",
    kind="understanding",
    hints=(
        "Section 12's cross-entropy row holds for any target distribution q. Which q does label "
        "smoothing train against?",
        "The mean is over the N samples, not over the N·C logits.",
    ),
)
def label_smoothing_grad(logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """dL/dlogits of nn.CrossEntropyLoss(label_smoothing=smoothing), mean reduction, by autograd."""
    z = logits.detach().clone().requires_grad_()
    (grad,) = torch.autograd.grad(nn.CrossEntropyLoss(label_smoothing=smoothing)(z, labels), z)
    return grad


@exercise(
    "04.5",
    title="The loss before training",
    kind="predict",
    atol=0.0,
    rtol=0.01,
    hints=(
        "If a model gives every class the same probability, what is that probability, and what is "
        "−log of it (natural log)?",
        "A smoothed target still sums to 1: what is −Σ q_c log p_c when every log p_c is the same?",
    ),
)
def losses_at_uniform() -> torch.Tensor:
    """Cross-entropy of all-zero logits (a uniform softmax) for 4 classes, 50,000 classes, and 4 classes with
    label smoothing 0.1, measured with F.cross_entropy."""
    out = []
    for n_classes, smoothing in ((4, 0.0), (50_000, 0.0), (4, 0.1)):
        zeros = torch.zeros(1, n_classes, dtype=torch.float64)
        out.append(F.cross_entropy(zeros, torch.tensor([n_classes - 1]), label_smoothing=smoothing))
    return torch.stack(out)


def _cross_entropy_cases():
    g = torch.Generator().manual_seed(406)
    yield (torch.randn(4, 3, generator=g), torch.tensor([0, 2, 1, 1])), {}  # ordinary logits
    yield (torch.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]]), torch.tensor([0, 2])), {}
    yield (torch.tensor([[0.0, 200.0], [3.0, -1.0]]), torch.tensor([0, 0])), {}  # p of class 0 rounds to 0
    yield (10 * torch.randn(6, 5, generator=g), torch.randint(0, 5, (6,), generator=g)), {}


@exercise(
    "04.6",
    title="Find the bug: cross-entropy that breaks on confident models",
    kind="debug",
    atol=1e-4,
    calls=lambda: _cross_entropy_cases(),
    hints=(
        "Call it on logits like [[1000., 1001., 1002.]] and print each intermediate result: which is the "
        "first to go wrong?",
        "Section 7: shift the logits by their maximum and compute log-probabilities directly, never the log "
        "of a probability that may have rounded to 0.",
    ),
)
def cross_entropy_reference(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """F.cross_entropy: mean over the N samples of -log softmax(logits)[label]."""
    return F.cross_entropy(logits, labels)
