"""Exercise references for notebook 07 (the CIFAR-10 pipeline)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..exercises import exercise


@exercise(
    "07.1",
    title="Parameters of a convolution",
    kind="transcription",
    atol=0.0,
    rtol=0.0,
    hints=(
        "Each output channel has its own filter, and a filter spans every input channel over a k×k "
        "window. What else does each output channel learn?",
        "Count the numbers in one filter, multiply by the number of filters, then add one number per output channel.",
    ),
)
def conv_parameters(in_channels: int, out_channels: int, kernel_size: int) -> int:
    """Parameter count of PyTorch's own layer of these sizes (built, then counted)."""
    layer = nn.Conv2d(in_channels, out_channels, kernel_size, device="meta")  # shapes only, no memory
    return sum(p.numel() for p in layer.parameters())


@exercise(
    "07.2",
    title="Output size after convolution and pooling",
    kind="understanding",
    atol=0.0,
    rtol=0.0,
    hints=(
        "Apply ⌊(n + 2p − k) / s⌋ + 1 to the convolution first, then treat the pooling as a window of "
        "its own (kernel 2, stride 2, no padding).",
        "The stride divides the side roughly by 2, and so does the pooling: the answer is much smaller than 32.",
    ),
)
def output_size(size: int, kernel_size: int, stride: int, padding: int, pool: int) -> int:
    """Side length of a zero image pushed through the two PyTorch layers."""
    layers = nn.Sequential(nn.Conv2d(3, 1, kernel_size, stride=stride, padding=padding), nn.MaxPool2d(pool))
    with torch.no_grad():
        return layers(torch.zeros(1, 3, size, size)).shape[-1]


@exercise(
    "07.3",
    title="An untrained network's accuracy and loss",
    kind="predict",
    atol=0.05,
    rtol=0.0,
    hints=(
        "Random weights carry no knowledge of the classes. How often would a blind guess among the "
        "classes be right? And what probability does such a network give the true class?",
        "Cross-entropy is minus the log of the probability given to the true class; with no preference "
        "among K classes, each gets the same probability.",
    ),
)
def untrained_scores(num_classes: int) -> torch.Tensor:
    """[chance accuracy, cross-entropy of equal scores for every class] as PyTorch computes it."""
    equal_scores = torch.zeros(1, num_classes)
    loss = F.cross_entropy(equal_scores, torch.tensor([0]))
    return torch.tensor([1.0 / num_classes, loss.item()])


@exercise(
    "07.4",
    title="Points on the logged training curve",
    kind="understanding",
    atol=0.0,
    rtol=0.0,
    hints=(
        "First count the optimizer steps of one epoch: is the last batch dropped or kept when 50,000 "
        "is not a multiple of 64? The counter keeps growing across epochs.",
        "Count the steps of the whole run, then the multiples of 100 up to that number.",
    ),
)
def logged_points(images: int, batch_size: int, epochs: int, log_every: int) -> int:
    """Run the notes' counters: one step per batch (the last one may be smaller), never reset."""
    total_train_step, points = 0, 0
    for _ in range(epochs):
        for _start in range(0, images, batch_size):
            total_train_step += 1
            if total_train_step % log_every == 0:
                points += 1
    return points


class _TinyBatchNormNet(nn.Sequential):
    """Convolution, BatchNorm, ReLU, global average pooling, linear: the smallest network that needs eval()."""

    def __init__(self, classes: int) -> None:
        super().__init__(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, classes),
        )

    def __repr__(self) -> str:  # one line, so that a verdict naming the case stays on one line
        return "a small BatchNorm network"


def _batchnorm_cases():
    """Small networks with BatchNorm, still in training mode, and batches of unequal sizes (values far from
    mean 0 / std 1, so batch statistics differ from the running ones); the global random state is untouched."""
    g = torch.Generator().manual_seed(707)
    for seed, sizes, classes in ((7, (32, 32, 6), 3), (8, (5, 17), 4)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _TinyBatchNormNet(classes)
        model.train()
        batches = [
            (2.0 + 3.0 * torch.randn(n, 3, 6, 6, generator=g), torch.randint(0, classes, (n,), generator=g))
            for n in sizes
        ]
        yield (model, batches, nn.CrossEntropyLoss()), {}


@exercise(
    "07.5",
    title="Find the bug in the test loop",
    kind="debug",
    atol=1e-5,
    rtol=1e-5,
    calls=lambda: _batchnorm_cases(),
    hints=(
        "NotesNet has only convolutions, pooling and linear layers. Which layer of SmallResNet behaves "
        "differently while training, and what tells it that training is over?",
        "BatchNorm normalises with the statistics of the current batch unless the module is switched "
        "to evaluation mode.",
    ),
)
def evaluate_reference(model: nn.Module, batches: list, loss_fn: nn.Module) -> torch.Tensor:
    """[mean loss per image, accuracy]: eval mode, one cross-entropy over all the images' scores."""
    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(images) for images, _ in batches])
    labels = torch.cat([labels for _, labels in batches])
    return torch.tensor(
        [F.cross_entropy(logits, labels).item(), (logits.argmax(dim=1) == labels).double().mean().item()]
    )


@exercise(
    "07.6",
    title="Precision per class",
    kind="transcription",
    atol=1e-6,
    hints=(
        "Precision looks at the images *predicted* as class c. In cm, rows are true classes and "
        "columns predicted ones: which sum counts the predictions of class c?",
        "Divide each diagonal entry by the total of its column, and give 0 where a column is empty.",
    ),
)
def precision_per_class(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N,) predicted and (N,) true classes -> (10,) precision, by masking the predictions of each class."""
    values = []
    for c in range(10):
        predicted_c = preds == c
        values.append((targets[predicted_c] == c).float().mean() if predicted_c.any() else torch.tensor(0.0))
    return torch.stack(values)
