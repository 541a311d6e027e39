#!/usr/bin/env python
"""Train a CIFAR-10 classifier: notebook 07's pipeline as a command-line program, on one process or many.

    python scripts/train_cifar10.py                                   # one process: CUDA, MPS or the CPU
    torchrun --nproc_per_node=4 scripts/train_cifar10.py              # 4 processes (one per GPU) with DDP
    COURSE_FAST=1 python scripts/train_cifar10.py                     # a quick run (small sizes, 2 epochs)
    python scripts/train_cifar10.py --model notesnet --epochs 5 --run-dir runs/notes
    python scripts/train_cifar10.py --resume                          # continue the run in --run-dir

Run it with ``--help`` for every flag. Under torchrun every process trains on its own shard of each
epoch with the model wrapped in DistributedDataParallel; ``--batch-size`` is per process, so the global
batch is ``nproc * batch_size`` (the learning rate is not changed for you: see ``--lr``). Rank 0 prints,
writes ``best.pt`` / ``last.pt`` / ``summary.json`` into the run folder and downloads CIFAR-10 if needed.

Data follows notebook 07's rules: full mode trains on the real CIFAR-10 (downloaded into the data folder
and checked against its MD5 sums) and stops with instructions if it cannot get it; fast mode
(``COURSE_FAST=1``) uses it when present and otherwise a generated stand-in, and ``--synthetic`` (or
``COURSE_CIFAR10_SYNTHETIC=1``) forces the stand-in. Results on the stand-in are marked [SYNTHETIC].
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path and (HERE.parent / "course_utils").is_dir():
    sys.path.insert(0, str(HERE.parent))  # run from a clone without installing the package

EPILOG = """\
environment:
  COURSE_FAST=1              fast mode: default sizes 1024/256/256 and 2 epochs; CIFAR-10 if present in the
                             data folder, else the SYNTHETIC stand-in (full mode never substitutes data)
  COURSE_CIFAR10_SYNTHETIC=1 force the SYNTHETIC stand-in (same as --synthetic)
  COURSE_DATA, COURSE_RUNS   default data and run folders (see course_utils.paths)
  COURSE_DEVICE              device of a single-process run (cpu, cuda, cuda:1, mps)
  RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
                             set by torchrun: each process joins the run (nccl on GPUs, gloo on CPUs)

examples:
  torchrun --nproc_per_node=8 scripts/train_cifar10.py --epochs 30 --lr 0.4
  torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29400 scripts/train_cifar10.py
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line (no torch import: ``--help`` answers at once)."""
    parser = argparse.ArgumentParser(
        prog="train_cifar10.py",
        description="Train notebook 07's CIFAR-10 networks with its recipes, on one "
        "process or under torchrun (data parallel, one process per GPU).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        choices=["notesnet", "smallresnet"],
        default="smallresnet",
        help="the notes' network or notebook 07's small ResNet (default: %(default)s)",
    )
    parser.add_argument(
        "--recipe",
        choices=["auto", "notes", "better"],
        default="auto",
        help="notes: SGD(lr=0.01), no augmentation; better: Nesterov SGD, one-cycle LR, label "
        "smoothing, crop + flip; auto: notes for notesnet, better for smallresnet (notebook 07)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="passes over the training set (default: 10, "
        "fast mode 2); with --resume, the total including the epochs already done",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="images per step and process; global batch = processes x this (default: %(default)s)",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="(peak) learning rate (default: the recipe's, "
        "0.01 or 0.05, tuned for a global batch of 64; it is not rescaled for you: with a larger "
        "global batch, the linear scaling rule suggests passing lr x global batch / 64)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="CIFAR-10 folder (default: course_utils.paths.data_dir(): $COURSE_DATA, else data/ of the clone)",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="where checkpoints, TensorBoard logs and summary.json go (default: <runs_dir()>/train_cifar10/<model>)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir from its last.pt "
        "(same number of processes); without it an existing run is never overwritten",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs=3,
        metavar=("TRAIN", "VAL", "TEST"),
        default=None,
        help="images per split (default: 45000 5000 10000, fast mode 1024 256 256)",
    )
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="train on the SYNTHETIC stand-in (a check that the code runs; its numbers are not CIFAR-10 results)",
    )
    parser.add_argument(
        "--loader",
        choices=["device", "classic"],
        default="device",
        help="device: the dataset on the device, batches made there; classic: Dataset + "
        "transforms + DataLoader (default: %(default)s)",
    )
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for --loader classic")
    parser.add_argument(
        "--device",
        default=None,
        help="single process: cpu, cuda, cuda:N or mps (default: the "
        "best available); under torchrun: cpu, or cuda (= cuda:LOCAL_RANK)",
    )
    parser.add_argument("--no-amp", dest="amp", action="store_false", help="train in float32 on CUDA too")
    parser.add_argument(
        "--no-channels-last", dest="channels_last", action="store_false", help="keep the default NCHW memory layout"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (pays off on long GPU runs)")
    parser.add_argument(
        "--sync-bn",
        action="store_true",
        help="under torchrun on GPUs: BatchNorm statistics "
        "over the global batch (nn.SyncBatchNorm); PyTorch supports it on GPUs only",
    )
    parser.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to <run-dir>/tb")
    parser.add_argument("--seed", type=int, default=0, help="seeds the weights and the data order")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds a process waits for the others "
        "in a collective before it stops with an error (default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, train, evaluate on the test set, write ``summary.json``; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    import torch
    from torch import nn

    import course_utils.data as cd
    from course_utils import distributed
    from course_utils.checkpoint import BEST, load_checkpoint
    from course_utils.cifar_models import DEFAULT_RECIPE, MODELS, make_recipe, recipe_augmentation
    from course_utils.mode import by_mode
    from course_utils.paths import runs_dir
    from course_utils.seed import seed_everything
    from course_utils.train import accuracy, describe_precision, evaluate, fit

    ctx = distributed.init_distributed(args.device, timeout=args.timeout)
    try:
        main_process = ctx.is_main
        say = print if main_process else (lambda *a, **k: None)
        if args.sync_bn and ctx.device.type != "cuda":
            raise ValueError(
                "--sync-bn needs CUDA: nn.SyncBatchNorm refuses CPU tensors in PyTorch (notebook 08 "
                "builds a CPU version from scratch); leave it out on the CPU"
            )
        epochs = args.epochs or by_mode(full=10, fast=2)
        sizes = tuple(args.sizes) if args.sizes else by_mode(full=(45_000, 5_000, 10_000), fast=(1_024, 256, 256))
        recipe_name = DEFAULT_RECIPE[args.model] if args.recipe == "auto" else args.recipe
        run_dir = args.run_dir or runs_dir() / "train_cifar10" / args.model

        def load():  # rank 0 first (it may download), then the others read what it left
            return cd.load_cifar10(args.data, sizes=sizes, synthetic=True if args.synthetic else None, seed=0)

        loaded = []  # rank 0's copy; an error there (no data, no internet) is raised on every rank
        distributed.run_on_main(lambda: loaded.append(load()), "loading CIFAR-10")
        data = loaded[0] if loaded else load()
        seed_everything(args.seed)  # the same initial weights everywhere (DDP copies rank 0's anyway)
        model = MODELS[args.model]().to(ctx.device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if args.sync_bn and ctx.world_size > 1:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if ctx.world_size > 1:
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None
            )
        factory = cd.make_device_loaders if args.loader == "device" else cd.make_dataloaders
        extra = {"channels_last": args.channels_last} if args.loader == "device" else {"num_workers": args.workers}
        train_loader, val_loader, test_loader = factory(
            data, args.batch_size, device=ctx.device, seed=args.seed, augment=recipe_augmentation(recipe_name), **extra
        )
        recipe = make_recipe(recipe_name, model, epochs=epochs, steps_per_epoch=len(train_loader), lr=args.lr)
        global_batch = ctx.world_size * args.batch_size
        say(f"data: {data.describe()}")
        say(
            f"processes: {ctx.world_size} ({ctx.backend or 'no process group'}) | device of rank 0: {ctx.device} | "
            f"precision: {describe_precision(ctx.device, args.amp)}"
        )
        say(
            f"model: {args.model} ({sum(p.numel() for p in model.parameters()):,} parameters) "
            f"| recipe {recipe.describe()}"
        )
        say(
            f"batch: {args.batch_size} per process, {global_batch} global | {len(train_loader)} steps per epoch | "
            f"{epochs} epochs | run folder: {run_dir}"
        )

        epochs_run = []

        def report(epoch, history):
            epochs_run.append(epoch)
            last = history.last()
            say(
                f"epoch {epoch:>3}/{epochs}: train loss {last['train_loss']:.4f} acc {last['train_acc']:.3f} | "
                f"val loss {last['val_loss']:.4f} acc {last['val_acc']:.3f}{data.tag}",
                flush=True,
            )

        start = time.perf_counter()
        history = fit(
            model,
            train_loader,
            recipe.loss_fn,
            recipe.optimizer,
            epochs,
            device=ctx.device,
            val_loader=val_loader,
            metrics={"acc": accuracy},
            scheduler=recipe.scheduler,
            scheduler_interval=recipe.scheduler_interval,
            amp=args.amp,
            channels_last=args.channels_last,
            compile_model=args.compile,
            checkpoint_dir=run_dir,
            resume=args.resume,
            tensorboard=run_dir / "tb" if args.tensorboard else None,
            on_epoch_end=report,
        )
        seconds = time.perf_counter() - start
        plain_ce = nn.CrossEntropyLoss()
        test_last = evaluate(
            model,
            test_loader,
            plain_ce,
            device=ctx.device,
            metrics={"acc": accuracy},
            amp=args.amp,
            channels_last=args.channels_last,
        )
        best = load_checkpoint(run_dir / BEST, getattr(model, "module", model))  # every process: same weights
        test_best = evaluate(
            model,
            test_loader,
            plain_ce,
            device=ctx.device,
            metrics={"acc": accuracy},
            amp=args.amp,
            channels_last=args.channels_last,
        )
        say(
            f"test accuracy{data.tag}: {test_last['acc']:.3f} after the last epoch, {test_best['acc']:.3f} with "
            f"best.pt (epoch {best['epoch']}, val acc {best['extra']['best']:.3f}) | {seconds:.1f} s of training"
        )
        if main_process:
            summary = {
                "model": args.model,
                "recipe": recipe_name,
                "world_size": ctx.world_size,
                "backend": ctx.backend,
                "device": str(ctx.device),
                "global_batch": global_batch,
                "epochs": epochs,
                "train_images": len(data.train_labels),
                "synthetic": data.synthetic,
                "seconds": seconds,
                "epochs_run": len(epochs_run),
                "images_per_second": len(epochs_run) * len(data.train_labels) / max(seconds, 1e-9),
                "val_acc": history["val_acc"][-1],
                "test_acc_last": test_last["acc"],
                "test_acc_best": test_best["acc"],
                "best_epoch": best["epoch"],
            }
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            say(f"wrote {run_dir / 'summary.json'}")
        return 0
    finally:
        distributed.destroy_distributed()


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message says what to do: reported in one line (imported only when one happens)."""
    from course_utils.cifar10 import CifarUnavailableError
    from course_utils.distributed import DistributedRunError

    return FileExistsError, FileNotFoundError, CifarUnavailableError, DistributedRunError, ValueError


def run(argv: list[str] | None = None) -> int:
    """``main`` with the mistakes a user can fix reported in one line (exit code 1) instead of a traceback."""
    try:
        return main(argv)
    except SystemExit:  # --help and argparse's own errors (before torch is imported)
        raise
    except _user_errors() as err:
        print(f"train_cifar10.py: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
