"""Training throughput of the notes' CIFAR-10 network: the notes' input loop against course_utils' device path.

    python benchmarks/cifar_throughput.py                 # CPU (or COURSE_DEVICE)
    python benchmarks/cifar_throughput.py --device cuda   # on an NVIDIA GPU
    python benchmarks/cifar_throughput.py --augment       # both paths add random crop + flip + normalise

Both paths train the same network (Conv2d(3,32,5)...Linear(64,10)) with SGD(lr=1e-2), batch 64:

* notes: a torchvision-style Dataset returning PIL images + ToTensor + DataLoader (shuffle, batch 64),
  float32, default memory layout, ``.to(device)`` per batch - the loop of the course notes;
* course_utils: ``DeviceLoader`` (the uint8 dataset on the device, batches gathered and normalised
  there) + ``train_epoch`` with channels_last and, on CUDA, bf16/fp16 autocast.

Steps are timed in interleaved rounds (notes, course, notes, course, ...) after a warm-up that is not
counted, so that a machine shared with other work slows both paths alike. Uses real CIFAR-10 when it
is in data/ and otherwise SYNTHETIC stand-in images served through the same PIL + ToTensor path.

The same rounds also time the parts on their own - each input path without training, and each training
step on one fixed batch - and print the ceiling they imply: the ratio an input path costing nothing
would reach, the notes loop's time over the course_utils training step alone.
Where the convolutions dominate (a small CPU), that ceiling, not the loader, limits the ratio.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms as T

from course_utils.data import CIFAR10_MEAN, CIFAR10_STD, DeviceLoader, cifar10_present, image_transforms, load_cifar10
from course_utils.device import describe_device, get_device, synchronize
from course_utils.train import autocast_dtype, train_epoch

TARGET_RATIO = 2.0


def notes_net() -> nn.Module:
    """The network of the notes: three 5x5 convolutions with 2x2 max-pooling, then two linear layers."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 5, padding=2),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1024, 64),
        nn.Linear(64, 10),
    )


def forever(loader) -> Iterator:
    """Cycle through a loader epoch after epoch (each pass reshuffles)."""
    while True:
        yield from loader


def notes_steps(model: nn.Module, batches: Iterator, device: torch.device) -> Callable[[int], None]:
    """The notes' training loop, as a function running ``n`` steps."""
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)

    def run(n: int) -> None:
        model.train()
        for images, labels in itertools.islice(batches, n):
            images, labels = images.to(device), labels.to(device)
            loss = loss_fn(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return run


def course_steps(model: nn.Module, batches: Iterator, device: torch.device, amp: bool) -> Callable[[int], None]:
    """course_utils' training step (``train_epoch``) over a device-resident loader, ``n`` steps at a time."""
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
    dtype = autocast_dtype(device) if amp else None

    def run(n: int) -> None:
        train_epoch(
            model, itertools.islice(batches, n), loss_fn, optimizer, device, amp_dtype=dtype, channels_last=True
        )

    return run


def input_only(batches: Iterator, device: torch.device) -> Callable[[int], None]:
    """Draw ``n`` batches and train on nothing: what the input path alone costs."""

    def run(n: int) -> None:
        for images, labels in itertools.islice(batches, n):
            images.to(device), labels.to(device)

    return run


def timed(run: Callable[[int], None], steps: int, device: torch.device) -> float:
    """Seconds taken by ``steps`` training steps."""
    synchronize(device)
    start = time.perf_counter()
    run(steps)
    synchronize(device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> float:
    """Run the benchmark and return the course_utils / notes throughput ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: best available)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per path per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per path before timing")
    parser.add_argument(
        "--augment", action="store_true", help="both paths apply random crop (padding 4), flip and normalisation"
    )
    parser.add_argument("--no-amp", action="store_true", help="course_utils path in float32 on CUDA too")
    args = parser.parse_args(argv)

    device = get_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # both paths: let cuDNN pick its fastest kernels
    real = cifar10_present()
    n_images = min(45_000, args.batch_size * (args.warmup + args.steps * args.rounds + 1))
    data = load_cifar10(sizes=(n_images, 1, 1), synthetic=not real, download=False)
    print(f"hardware: {describe_device(device)}")
    print(
        "data:     "
        + (
            "real CIFAR-10 from data/"
            if real
            else "SYNTHETIC stand-in images (CIFAR-10 is not in data/), served through the same PIL + ToTensor path"
        )
        + f"; {n_images} training images"
    )
    print(
        f"setup:    notes' network, SGD(lr=1e-2), batch {args.batch_size}; {args.warmup} warm-up steps, then "
        f"{args.rounds} rounds x {args.steps} timed steps per path, interleaved; "
        + ("random crop + flip + normalise in both paths" if args.augment else "no augmentation (as in the notes)")
    )

    torch.manual_seed(0)
    notes_model = notes_net().to(device)
    course_model = notes_net().to(device).to(memory_format=torch.channels_last)
    transform = (
        image_transforms(CIFAR10_MEAN, CIFAR10_STD, augment=True, image_size=(32, 32)) if args.augment else T.ToTensor()
    )  # the notes: ToTensor only
    notes_loader = DataLoader(
        data.dataset("train", transform), batch_size=args.batch_size, shuffle=True, pin_memory=device.type == "cuda"
    )
    images, labels = data.tensors("train")
    course_loader = DeviceLoader(
        images,
        labels,
        batch_size=args.batch_size,
        device=device,
        shuffle=True,
        augment=args.augment,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        channels_last=True,
    )
    notes_name, course_name = "notes loop (PIL + ToTensor + DataLoader)", "course_utils (DeviceLoader + train_epoch)"
    fixed = next(iter(notes_loader))  # one batch, reused: the training step alone
    fixed_cl = (fixed[0].to(device).contiguous(memory_format=torch.channels_last), fixed[1].to(device))
    runners = {
        notes_name: notes_steps(notes_model, forever(notes_loader), device),
        course_name: course_steps(course_model, forever(course_loader), device, amp=not args.no_amp),
        "notes input alone": input_only(forever(notes_loader), device),
        "notes step alone (float32, NCHW)": notes_steps(notes_net().to(device), itertools.repeat(fixed), device),
        "course input alone": input_only(forever(course_loader), device),
        "course step alone": course_steps(
            notes_net().to(device).to(memory_format=torch.channels_last),
            itertools.repeat(fixed_cl),
            device,
            amp=not args.no_amp,
        ),
    }
    seconds = dict.fromkeys(runners, 0.0)
    for run in runners.values():
        timed(run, args.warmup, device)
    for _ in range(args.rounds):
        for name, run in runners.items():
            seconds[name] += timed(run, args.steps, device)
    n_steps = args.rounds * args.steps
    rates = {name: n_steps * args.batch_size / seconds[name] for name in (notes_name, course_name)}
    for name, rate in rates.items():
        print(f"{name:<44s} {rate:9.1f} images/s")
    ratio = rates[course_name] / rates[notes_name]
    verdict = "meets" if ratio >= TARGET_RATIO else "is below"
    print(f"ratio course_utils / notes: {ratio:.2f}x ({verdict} the {TARGET_RATIO:.0f}x target)")
    precision = autocast_dtype(device) if not args.no_amp else None
    print(f"course_utils path: channels_last, {precision or 'float32'}; the notes path: float32, NCHW")

    ms = {name: 1000 * s / n_steps for name, s in seconds.items()}
    print(f"\nwhere the time goes (ms per batch of {args.batch_size}, same rounds):")
    for name in runners:
        indent = "    " if "alone" in name else "  "
        print(f"{indent}{name:<46s} {ms[name]:7.2f}")
    ceiling = ms[notes_name] / ms["course step alone"]
    print(
        f"ceiling: the course_utils loop cannot be faster than its training step alone, so even a free input "
        f"path gives at most notes loop / course step = {ceiling:.2f}x here"
    )
    return ratio


if __name__ == "__main__":
    main()
