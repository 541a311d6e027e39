"""Notebook 07's two CIFAR-10 networks and two training recipes, for code outside the notebook.

Notebook 07 builds these networks in its own cells (that is where they are taught, layer by layer);
``scripts/train_cifar10.py`` and notebook 08 import them from here. ``tests/test_cifar_models.py`` checks
that the two copies stay the same network (same parameters, same outputs for the same weights).

- ``NotesNet``: the course notes' network, three 5x5 convolutions with 2x2 max-pooling, two linear layers.
- ``SmallResNet``: conv + BatchNorm + ReLU stages with two residual blocks and global average pooling.
- ``make_recipe("notes" | "better", ...)``: the notes' plain SGD(lr=0.01), or notebook 07's better recipe
  (Nesterov momentum, weight decay, one-cycle learning rate, label smoothing, crop + flip augmentation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .augment import CIFAR_AUGMENTATION, Augmentation
from .checks import expect_number, expect_positive_int, expect_shape


def _check_images(x: torch.Tensor, model: nn.Module, size: int | None = None, min_size: int = 1) -> None:
    """Refuse, before the first layer does deep inside torch, images that are not (B, 3, H, W) float tensors
    on the weights' device (``size``: the only H = W the network takes; ``min_size``: the smallest H, W)."""
    name = type(model).__name__
    expect_shape(x, (None, 3, size, size), f"{name}'s input x")
    if min(x.shape[2:]) < min_size:
        raise ValueError(
            f"{name}'s input x must be at least {min_size}x{min_size} pixels (it halves them 3 times), "
            f"got shape {tuple(x.shape)}"
        )
    weight = next(model.parameters())
    if x.dtype != weight.dtype:
        raise TypeError(
            f"{name}'s input x must be {str(weight.dtype).removeprefix('torch.')} like its weights, got "
            f"{x.dtype}: convert uint8 images with x.float() / 255 and normalise them as the loaders do"
        )
    if x.device != weight.device:
        raise ValueError(f"{name}'s input x is on {x.device} but its weights are on {weight.device}: move one of them")


class NotesNet(nn.Module):
    """The notes' CIFAR-10 network: three 5x5 convolutions, each followed by 2x2 max-pooling, then two linear layers."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        num_classes = expect_positive_int(num_classes, "num_classes")
        self.layers = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=5, padding=2),  # (B, 3, 32, 32) -> (B, 32, 32, 32)
            nn.MaxPool2d(2),  # -> (B, 32, 16, 16)
            nn.Conv2d(32, 32, kernel_size=5, padding=2),  # -> (B, 32, 16, 16)
            nn.MaxPool2d(2),  # -> (B, 32, 8, 8)
            nn.Conv2d(32, 64, kernel_size=5, padding=2),  # -> (B, 64, 8, 8)
            nn.MaxPool2d(2),  # -> (B, 64, 4, 4)
            nn.Flatten(),  # -> (B, 1024)
            nn.Linear(64 * 4 * 4, 64),  # -> (B, 64)
            nn.Linear(64, num_classes),  # -> (B, 10) class scores
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 32, 32) float images -> (B, num_classes) class scores (its linear layer fixes the size)."""
        _check_images(x, self, size=32)
        return self.layers(x)


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 convolution -> batch normalisation -> ReLU (no conv bias: BatchNorm adds its own shift)."""
    c_in, c_out = expect_positive_int(c_in, "c_in"), expect_positive_int(c_out, "c_out")
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Residual(nn.Module):
    """x + f(x) with f two conv_bn blocks: the block learns a correction to its input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = expect_positive_int(channels, "channels")
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x + body(x): (B, C, H, W) -> (B, C, H, W); ValueError for another shape or channel count."""
        expect_shape(x, (None, self.channels, None, None), "Residual's input x")  # (B, C, H, W)
        return x + self.body(x)


class SmallResNet(nn.Module):
    """A ResNet-9-style network at width 16: conv_bn stages, two residual blocks, global average pooling."""

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        num_classes = expect_positive_int(num_classes, "num_classes")
        w = expect_positive_int(width, "width")
        self.layers = nn.Sequential(
            conv_bn(3, w),  # (B, 16, 32, 32)
            conv_bn(w, 2 * w),
            nn.MaxPool2d(2),  # (B, 32, 16, 16)
            Residual(2 * w),  # (B, 32, 16, 16)
            conv_bn(2 * w, 4 * w),
            nn.MaxPool2d(2),  # (B, 64, 8, 8)
            conv_bn(4 * w, 8 * w),
            nn.MaxPool2d(2),  # (B, 128, 4, 4)
            Residual(8 * w),  # (B, 128, 4, 4)
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),  # (B, 128): one average per channel
            nn.Linear(8 * w, num_classes),  # (B, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float images, H and W >= 8 (global pooling takes any size) -> (B, num_classes) scores."""
        _check_images(x, self, min_size=8)
        return self.layers(x)


MODELS = {"notesnet": NotesNet, "smallresnet": SmallResNet}
DEFAULT_RECIPE = {"notesnet": "notes", "smallresnet": "better"}  # what notebook 07 trains each network with


@dataclass
class Recipe:
    """Everything besides the network that ``fit`` needs for one training run."""

    name: str
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    augment: Augmentation
    scheduler: Any | None = None
    scheduler_interval: str = "epoch"
    lr: float = 0.0

    def describe(self) -> str:
        """One line: optimiser, learning rate, schedule, loss and augmentation."""
        schedule = f"{type(self.scheduler).__name__} per {self.scheduler_interval}" if self.scheduler else "constant lr"
        smoothing = getattr(self.loss_fn, "label_smoothing", 0.0)
        loss = f"cross-entropy{f' (label smoothing {smoothing:g})' if smoothing else ''}"
        return f"{self.name}: {type(self.optimizer).__name__}(lr={self.lr:g}), {schedule}, {loss}, {self.augment}"


RECIPE_LR = {"notes": 1e-2, "better": 0.05}


def _check_recipe_name(name: object) -> None:
    if not isinstance(name, str) or name not in RECIPE_LR:
        raise ValueError(f"unknown recipe {name!r}: choose one of {sorted(RECIPE_LR)}")


def recipe_augmentation(name: str) -> Augmentation:
    """The training augmentation of a recipe (what the training loader needs before the recipe is built)."""
    _check_recipe_name(name)
    return CIFAR_AUGMENTATION if name == "better" else Augmentation()


def make_recipe(name: str, model: nn.Module, *, epochs: int, steps_per_epoch: int, lr: float | None = None) -> Recipe:
    """Notebook 07's recipes over ``model.parameters()``.

    Args:
        name: "notes": SGD(lr=0.01), cross-entropy, no augmentation (the notes' script). "better":
            SGD with Nesterov momentum 0.9 and weight decay 5e-4, a one-cycle schedule peaking at lr
            (25% warm-up, stepped per batch), cross-entropy with label smoothing 0.1, random crop + flip.
        model: the (possibly DDP-wrapped) network.
        epochs, steps_per_epoch: the schedule's length (``len(train_loader)`` batches per epoch).
        lr: the (peak) learning rate; default 0.01 (notes) or 0.05 (better).

    Raises:
        ValueError: an unknown recipe name, a learning rate that is not positive and finite, epochs or
            steps_per_epoch below 1, or fewer than 8 steps in all for the one-cycle schedule.
        TypeError: a model that is not an nn.Module, or epochs, steps_per_epoch or lr of the wrong type.
    """
    _check_recipe_name(name)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    epochs, steps_per_epoch = (
        expect_positive_int(epochs, "epochs"),
        expect_positive_int(steps_per_epoch, "steps_per_epoch"),
    )
    lr = RECIPE_LR[name] if lr is None else expect_number(lr, "lr")
    if not lr > 0:
        raise ValueError(f"the learning rate must be positive, got {lr}")
    if name == "notes":
        return Recipe(
            name, torch.optim.SGD(model.parameters(), lr=lr), nn.CrossEntropyLoss(), recipe_augmentation(name), lr=lr
        )
    total_steps = epochs * steps_per_epoch
    if total_steps < 8:
        raise ValueError(
            f"the 'better' recipe's one-cycle schedule needs at least 8 steps (a quarter of them to warm "
            f"up), got {epochs} epoch(s) x {steps_per_epoch} step(s): train longer, on more images or "
            "with a smaller batch, or use the 'notes' recipe"
        )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps, pct_start=0.25)
    return Recipe(
        name, optimizer, nn.CrossEntropyLoss(label_smoothing=0.1), recipe_augmentation(name), scheduler, "step", lr
    )


__all__ = [
    "DEFAULT_RECIPE",
    "MODELS",
    "RECIPE_LR",
    "NotesNet",
    "Recipe",
    "Residual",
    "SmallResNet",
    "conv_bn",
    "make_recipe",
    "recipe_augmentation",
]
