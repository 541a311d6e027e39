"""Bad input to every public name of course_utils fails loudly, or gives the right answer (issue 10).

One table of cases, each a zero-argument call of one public function, class or method with a wrong
shape, dtype, device, type, range, an empty input, NaN/inf or None. A case either

- expects an error: the call must raise the given exception type *from course_utils' own code* (a
  ``raise`` statement in a course_utils module, not an error surfacing from deep inside torch, NumPy or
  matplotlib), with a message matching the regex, which names what was expected; or
- expects a result: the call must return, and the check on its result must hold (edge cases that are
  valid input, e.g. an empty batch, must give the right answer, not a silent wrong one).

``test_every_public_name_has_a_case`` fails when a public name of course_utils has no case, so a new
public function gets its cases when it is added (or an entry in ``EXEMPT`` saying why it needs none).

Running this file as a script prints the tally by verdict (clear / correct / obscure / silent):
``python tests/test_bad_inputs.py``; ``PYTHONPATH=<other checkout> python tests/test_bad_inputs.py``
measures another version of the package with the same cases.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import io
import linecache
import multiprocessing
import os
import pkgutil
import re
import shutil
import socket
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display when run as a script

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from ipywidgets import fixed  # noqa: E402
from torch import nn  # noqa: E402

import course_utils  # noqa: E402
from course_utils import attention as att  # noqa: E402
from course_utils import augment as aug  # noqa: E402
from course_utils import checkpoint as ckpt  # noqa: E402
from course_utils import checks as chk  # noqa: E402
from course_utils import cifar10 as cif  # noqa: E402
from course_utils import cifar_models as cm  # noqa: E402
from course_utils import decoding as dec  # noqa: E402
from course_utils import device as dev  # noqa: E402
from course_utils import distributed as dst  # noqa: E402
from course_utils import epoch as ep  # noqa: E402
from course_utils import exercises as ex  # noqa: E402
from course_utils import images as img  # noqa: E402
from course_utils import kv_cache as kvc  # noqa: E402
from course_utils import launch as lch  # noqa: E402
from course_utils import loaders as ld  # noqa: E402
from course_utils import memory as mem  # noqa: E402
from course_utils import mode as md  # noqa: E402
from course_utils import notebook as nbk  # noqa: E402
from course_utils import number_words as nw  # noqa: E402
from course_utils import paths as pth  # noqa: E402
from course_utils import plot as plo  # noqa: E402
from course_utils import progress as prg  # noqa: E402
from course_utils import seed as sd  # noqa: E402
from course_utils import train as tr  # noqa: E402
from course_utils import widgets as wdg  # noqa: E402

PACKAGE_DIR = Path(course_utils.__file__).resolve().parent

# Public names that need no case, and why. Values have no input to validate; type aliases are annotations.
EXEMPT = {
    "augment.CIFAR_AUGMENTATION": "a constant (an Augmentation value); Augmentation itself has cases",
    "checkpoint.BEST": "a constant file name",
    "checkpoint.LAST": "a constant file name",
    "checkpoint.FORMAT_VERSION": "a constant number (read_checkpoint's version check has a case)",
    "cifar10.CIFAR10_ARCHIVE": "a constant file name",
    "cifar10.CIFAR10_CLASSES": "a constant tuple of class names",
    "cifar10.CIFAR10_FOLDER": "a constant folder name",
    "cifar10.CIFAR10_MD5": "a constant checksum",
    "cifar10.CIFAR10_MEAN": "a constant tuple of floats",
    "cifar10.CIFAR10_STD": "a constant tuple of floats",
    "cifar10.CIFAR10_URL": "a constant URL",
    "cifar10.SYNTHETIC_ENV": "a constant variable name (the variable itself has cases under load_cifar10)",
    "cifar_models.DEFAULT_RECIPE": "a constant dict of names (make_recipe has cases for unknown names)",
    "cifar_models.MODELS": "a constant dict of the two classes (each has cases)",
    "cifar_models.RECIPE_LR": "a constant dict of learning rates",
    "distributed.DEFAULT_TIMEOUT_S": "a constant number (init_distributed's timeout has cases)",
    "distributed.ENV_VARS": "a constant tuple of variable names (the variables have cases under read_env)",
    "epoch.DEFERRED_CHECK_STEPS": "a constant number",
    "epoch.LossFn": "a type alias for annotations",
    "epoch.Metric": "a type alias for annotations",
    "epoch.Step": "a type alias for annotations",
    "exercises.KINDS": "a constant tuple of names",
    "exercises.REGISTRY": "the registry dict filled by @exercise (which has cases)",
    "paths.DATA_ENV": "a constant variable name (the variable itself has cases under data_dir)",
    "paths.RUNS_ENV": "a constant variable name (the variable itself has cases under runs_dir)",
    "paths.REPO_ROOT": "a constant path computed at import",
}
# Sub-packages whose public functions are not called by users directly.
EXEMPT_PACKAGES = {
    "exercise_bank": "exercise references: only check()/judge() call them, with the inputs a notebook passes; "
    "check and judge have cases, including wrong answers and missing inputs",
}


# ----------------------------------------------------------------------------- the case table
@dataclass
class Case:
    covers: str  # the public name, relative to course_utils: "attention.causal_mask", "train.History.log"
    what: str  # the bad input, in a few words
    call: Callable[[], Any]
    raises: type[BaseException] | tuple[type[BaseException], ...] | None = None
    match: str = ""  # regex the message must match (re.search)
    check: Callable[[Any], Any] | None = None  # for result cases: truthy (or not raising) when the result is right

    @property
    def id(self) -> str:
        return f"{self.covers}: {self.what}"


CASES: list[Case] = []


def bad(covers: str, what: str, call: Callable[[], Any], raises: Any, match: str) -> None:
    CASES.append(Case(covers, what, call, raises=raises, match=match))


def good(covers: str, what: str, call: Callable[[], Any], check: Callable[[Any], Any]) -> None:
    CASES.append(Case(covers, what, call, check=check))


# ----------------------------------------------------------------------------- small inputs, built lazily
_TMP: list[Path] = []


def fresh_dir() -> Path:
    """A new empty folder under one temporary root (removed at exit)."""
    if not _TMP:
        _TMP.append(Path(tempfile.mkdtemp(prefix="bad-inputs-")))
    return Path(tempfile.mkdtemp(dir=_TMP[0]))


def _remove_tmp() -> None:
    if _TMP:
        shutil.rmtree(_TMP[0], ignore_errors=True)


@contextlib.contextmanager
def env(**values: str | None) -> Iterator[None]:
    """Set (or, with None, unset) environment variables for the duration of a call."""
    before = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def with_env(call: Callable[[], Any], **values: str | None) -> Callable[[], Any]:
    def run() -> Any:
        with env(**values):
            return call()

    return run


def printed(call: Callable[[], Any]) -> Callable[[], str]:
    """A call that returns what ``call`` printed."""

    def run() -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            call()
        return out.getvalue()

    return run


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A tensor on the "meta" device: it stands in for data on another device than the rest."""
    return torch.zeros(*shape, dtype=dtype, device="meta")


def images_u8(n: int = 12, h: int = 8, w: int = 8, c: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def labels_of(n: int = 12, k: int = 3) -> np.ndarray:
    return np.arange(n, dtype=np.int64) % k


@functools.cache
def splits() -> img.ImageSplits:
    return img.ImageSplits.from_arrays(images_u8(), labels_of(), ("a", "b", "c"), val_size=2, test_size=2)


def linear() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(4, 3)


def batches(n: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(4, 4, generator=g), torch.tensor([0, 1, 2, 0])) for _ in range(n)]


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1)


def fit_args(**overrides: Any) -> Callable[[], Any]:
    """A call of fit on a tiny model and loader (1 epoch, no progress bar) with some arguments changed."""

    def run() -> Any:
        kwargs = dict(overrides)
        model = kwargs.pop("model", None) or linear()
        kwargs = {
            "loss_fn": F.cross_entropy,
            "optimizer": sgd(model if isinstance(model, nn.Module) else linear()),
            "epochs": 1,
            "show_progress": False,
            **kwargs,
        }
        train_loader = kwargs.pop("train_loader", batches())
        return tr.fit(model, train_loader, **kwargs)

    return run


@functools.cache
def seq_model() -> nn.Module:
    torch.manual_seed(0)
    return nw.Seq2SeqTransformer(d_model=8, num_heads=2, num_layers=1, dim_feedforward=16).eval()


def saved_checkpoint() -> Path:
    path = fresh_dir() / "c.pt"
    ckpt.save_checkpoint(path, linear(), epoch=1, history={"train_loss": [1.0]})
    return path


def uniform_step(vocab: int = 4) -> Callable[[torch.Tensor, Any], torch.Tensor]:
    """A next-token function preferring token 2 (the eos id used below) at every step."""

    def step_fn(tokens: torch.Tensor, state: Any) -> torch.Tensor:
        logits = torch.zeros(tokens.shape[0], vocab)
        logits[:, 2] = 2.0
        return logits.log_softmax(-1)

    return step_fn


def mha() -> att.MultiHeadAttention:
    torch.manual_seed(0)
    return att.MultiHeadAttention(8, 2)


def x3(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(dtype)


def close(a: Any, b: Any) -> bool:
    return torch.allclose(torch.as_tensor(a).float(), torch.as_tensor(b).float(), atol=1e-6)


# ============================================================================= attention
C = "attention."
bad(C + "causal_mask", "size 0", lambda: att.causal_mask(0), ValueError, r"size must be a positive integer")
bad(C + "causal_mask", "size -3", lambda: att.causal_mask(-3), ValueError, r"positive integer")
bad(C + "causal_mask", "size 2.5", lambda: att.causal_mask(2.5), TypeError, r"positive integer")
bad(C + "causal_mask", "size None", lambda: att.causal_mask(None), TypeError, r"positive integer")
bad(
    C + "causal_mask",
    "unknown device string",
    lambda: att.causal_mask(3, device="gpu"),
    ValueError,
    r"Unknown device 'gpu'",
)
good(
    C + "causal_mask",
    "numpy integer size",
    lambda: att.causal_mask(np.int64(3)),
    lambda m: m.dtype == torch.bool and torch.equal(m, torch.ones(3, 3, dtype=torch.bool).tril()),
)

S = C + "scaled_dot_product_attention"
bad(
    S,
    "q a list",
    lambda: att.scaled_dot_product_attention([[1.0]], x3(1, 1), x3(1, 1)),
    TypeError,
    r"q must be a torch.Tensor, got list",
)
bad(S, "q 1-D", lambda: att.scaled_dot_product_attention(x3(4), x3(3, 4), x3(3, 4)), ValueError, r"\(\.\.\., T, d\)")
bad(
    S,
    "q and k differ in d",
    lambda: att.scaled_dot_product_attention(x3(2, 4), x3(3, 5), x3(3, 5)),
    ValueError,
    r"share the last dimension d, got 4 and 5",
)
bad(
    S,
    "k and v differ in Tk",
    lambda: att.scaled_dot_product_attention(x3(2, 4), x3(3, 4), x3(2, 4)),
    ValueError,
    r"same length Tk, got 3 and 2",
)
bad(
    S,
    "batch sizes differ",
    lambda: att.scaled_dot_product_attention(x3(2, 2, 4), x3(3, 3, 4), x3(3, 3, 4)),
    ValueError,
    r"leading .*dimensions.*broadcast",
)
bad(
    S,
    "integer q",
    lambda: att.scaled_dot_product_attention(torch.ones(2, 4, dtype=torch.long), x3(3, 4), x3(3, 4)),
    TypeError,
    r"floating-point",
)
bad(
    S,
    "float64 q with float32 k",
    lambda: att.scaled_dot_product_attention(x3(2, 4, dtype=torch.float64), x3(3, 4), x3(3, 4)),
    TypeError,
    r"same dtype",
)
bad(
    S,
    "q on another device",
    lambda: att.scaled_dot_product_attention(meta(2, 4), x3(3, 4), x3(3, 4)),
    ValueError,
    r"same device",
)
bad(
    S,
    "float mask",
    lambda: att.scaled_dot_product_attention(x3(2, 4), x3(3, 4), x3(3, 4), torch.ones(2, 3)),
    TypeError,
    r"mask must be a boolean tensor",
)
bad(
    S,
    "mask of the wrong shape",
    lambda: att.scaled_dot_product_attention(x3(2, 4), x3(3, 4), x3(3, 4), torch.ones(2, 2, dtype=torch.bool)),
    ValueError,
    r"does not broadcast",
)
good(
    S,
    "no queries (Tq = 0)",
    lambda: att.scaled_dot_product_attention(x3(0, 4), x3(3, 4), x3(3, 5)),
    lambda r: r[0].shape == (0, 5) and r[1].shape == (0, 3),
)
good(
    S,
    "fully masked row gives zeros, not NaN",
    lambda: att.scaled_dot_product_attention(
        x3(2, 4), x3(3, 4), x3(3, 4), torch.tensor([[True, True, False], [False, False, False]])
    ),
    lambda r: torch.equal(r[0][1], torch.zeros(4)) and not r[0].isnan().any(),
)
good(
    S,
    "NaN in q stays visible",
    lambda: att.scaled_dot_product_attention(torch.full((1, 4), float("nan")), x3(3, 4), x3(3, 4)),
    lambda r: bool(r[0].isnan().all()),
)

M = C + "MultiHeadAttention"
bad(M, "embed_dim 0", lambda: att.MultiHeadAttention(0, 2), ValueError, r"embed_dim must be a positive integer")
bad(M, "num_heads -1", lambda: att.MultiHeadAttention(8, -1), ValueError, r"num_heads must be a positive integer")
bad(M, "embed_dim not divisible", lambda: att.MultiHeadAttention(7, 2), ValueError, r"divisible by num_heads")
bad(M, "embed_dim float", lambda: att.MultiHeadAttention(8.0, 2), TypeError, r"embed_dim must be a positive integer")
bad(M, "bias a string", lambda: att.MultiHeadAttention(8, 2, bias="no"), TypeError, r"bias must be True or False")
good(M, "single head", lambda: att.MultiHeadAttention(8, 1), lambda m: m.head_dim == 8)

MF = M + ".forward"
bad(MF, "query 2-D", lambda: mha()(x3(3, 8), x3(3, 8), x3(3, 8)), ValueError, r"query must have 3 dimensions")
bad(
    MF,
    "query feature size",
    lambda: mha()(x3(1, 3, 6), x3(1, 3, 6), x3(1, 3, 6)),
    ValueError,
    r"query must have size 8 in dimension 2",
)
bad(
    MF,
    "key batch differs",
    lambda: mha()(x3(2, 3, 8), x3(1, 3, 8), x3(1, 3, 8)),
    ValueError,
    r"key must have size 2 in dimension 0",
)
bad(
    MF,
    "value length differs",
    lambda: mha()(x3(1, 3, 8), x3(1, 4, 8), x3(1, 3, 8)),
    ValueError,
    r"value must have size 4 in dimension 1",
)
bad(
    MF,
    "ambiguous 2-D mask",
    lambda: mha()(x3(3, 3, 8), x3(3, 3, 8), x3(3, 3, 8), torch.ones(3, 3, dtype=torch.bool)),
    ValueError,
    r"mask must be 4-D",
)
bad(
    MF,
    "4-D mask of the wrong size",
    lambda: mha()(x3(1, 3, 8), x3(1, 3, 8), x3(1, 3, 8), torch.ones(1, 1, 3, 2, dtype=torch.bool)),
    ValueError,
    r"does not fit",
)
bad(
    MF,
    "float mask",
    lambda: mha()(x3(1, 3, 8), x3(1, 3, 8), x3(1, 3, 8), torch.ones(1, 1, 3, 3)),
    TypeError,
    r"mask must be a boolean tensor",
)
bad(
    MF,
    "float64 query",
    lambda: mha()(*(x3(1, 3, 8, dtype=torch.float64),) * 3),
    TypeError,
    r"query must be float32 like the module's weights",
)
bad(
    MF,
    "integer query",
    lambda: mha()(*(torch.ones(1, 3, 8, dtype=torch.long),) * 3),
    TypeError,
    r"query must be float32 like the module's weights",
)
bad(
    MF,
    "query on another device",
    lambda: mha()(meta(1, 3, 8), x3(1, 3, 8), x3(1, 3, 8)),
    ValueError,
    r"query is on meta but the module's weights are on cpu",
)
good(MF, "empty batch", lambda: mha()(x3(0, 3, 8), x3(0, 3, 8), x3(0, 3, 8)), lambda out: out.shape == (0, 3, 8))
good(
    MF,
    "matches nn.MultiheadAttention",
    lambda: (lambda m, t, q: (m.load_from_torch(t)(q, q, q), t(q, q, q, need_weights=False)[0]))(
        mha(), nn.MultiheadAttention(8, 2, batch_first=True), x3(2, 3, 8)
    ),
    lambda r: torch.allclose(*r, atol=1e-6),
)

ML = M + ".load_from_torch"
bad(
    ML,
    "not an nn.MultiheadAttention",
    lambda: mha().load_from_torch(nn.Linear(8, 8)),
    TypeError,
    r"must be an nn.MultiheadAttention, got Linear",
)
bad(ML, "other size", lambda: mha().load_from_torch(nn.MultiheadAttention(4, 2)), ValueError, r"size mismatch")
bad(
    ML,
    "other bias",
    lambda: mha().load_from_torch(nn.MultiheadAttention(8, 2, bias=False)),
    ValueError,
    r"bias mismatch",
)
bad(
    ML,
    "kdim differs",
    lambda: mha().load_from_torch(nn.MultiheadAttention(8, 2, kdim=4, vdim=4)),
    ValueError,
    r"kdim/vdim",
)

P = C + "sinusoidal_positional_encoding"
bad(P, "odd dim", lambda: att.sinusoidal_positional_encoding(4, 5), ValueError, r"even dim")
bad(P, "length 0", lambda: att.sinusoidal_positional_encoding(0, 4), ValueError, r"length must be a positive integer")
bad(P, "dim a float", lambda: att.sinusoidal_positional_encoding(4, 4.0), TypeError, r"dim must be a positive integer")
good(
    P,
    "values at position 0",
    lambda: att.sinusoidal_positional_encoding(3, 4),
    lambda pe: pe.shape == (3, 4) and torch.equal(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0])),
)

# ============================================================================= augment
A = "augment."
bad(
    A + "Augmentation",
    "negative padding",
    lambda: aug.Augmentation(-1),
    ValueError,
    r"crop_padding must be an integer >= 0",
)
bad(A + "Augmentation", "float padding", lambda: aug.Augmentation(1.5), TypeError, r"crop_padding must be an integer")
bad(A + "Augmentation", "flip a string", lambda: aug.Augmentation(flip="yes"), TypeError, r"flip must be True or False")
bad(A + "Augmentation", "flip 1", lambda: aug.Augmentation(flip=1), TypeError, r"flip must be True or False")
good(A + "Augmentation", "numpy padding", lambda: aug.Augmentation(np.int64(2)), lambda a: a.crop_padding == 2)
good(A + "Augmentation.active", "nothing on", lambda: aug.Augmentation().active, lambda r: r is False)
good(A + "Augmentation.active", "flip only", lambda: aug.Augmentation(flip=True).active, lambda r: r is True)
bad(
    A + "Augmentation.check",
    "padding as large as the image",
    lambda: aug.Augmentation(4).check(4, 8),
    ValueError,
    r"crop_padding=4 is too large for 4x8 images",
)
bad(
    A + "Augmentation.check",
    "height a string",
    lambda: aug.Augmentation(4).check("32", 32),
    TypeError,
    r"height must be a positive integer",
)
bad(
    A + "Augmentation.check",
    "zero width",
    lambda: aug.Augmentation(0).check(8, 0),
    ValueError,
    r"width must be a positive integer",
)
good(A + "Augmentation.check", "small padding passes", lambda: aug.Augmentation(2).check(8, 8), lambda r: r is None)
bad(
    A + "as_augmentation",
    "a string",
    lambda: aug.as_augmentation("crop"),
    TypeError,
    r"augment must be True, False or an Augmentation",
)
bad(A + "as_augmentation", "None", lambda: aug.as_augmentation(None), TypeError, r"augment must be True, False")
bad(A + "as_augmentation", "1", lambda: aug.as_augmentation(1), TypeError, r"augment must be True, False")
good(
    A + "as_augmentation",
    "True is CIFAR's recipe",
    lambda: aug.as_augmentation(True),
    lambda a: a == aug.Augmentation(4, True),
)
good(
    A + "EpochPlan",
    "a plain record",
    lambda: aug.EpochPlan(torch.arange(3), None, None),
    lambda p: p.offsets is None and p.order.tolist() == [0, 1, 2],
)
G = torch.Generator
bad(
    A + "draw_epoch",
    "n 0",
    lambda: aug.draw_epoch(0, G(), shuffle=True, augmentation=aug.Augmentation()),
    ValueError,
    r"n must be an integer >= 1",
)
bad(
    A + "draw_epoch",
    "no generator",
    lambda: aug.draw_epoch(4, None, shuffle=True, augmentation=aug.Augmentation()),
    TypeError,
    r"generator must be a torch.Generator, got NoneType",
)
bad(
    A + "draw_epoch",
    "shuffle a string",
    lambda: aug.draw_epoch(4, G(), shuffle="no", augmentation=aug.Augmentation()),
    TypeError,
    r"shuffle must be True or False",
)
bad(
    A + "draw_epoch",
    "augmentation a string",
    lambda: aug.draw_epoch(4, G(), shuffle=False, augmentation="crop"),
    TypeError,
    r"augment must be True, False or an Augmentation",
)
good(
    A + "draw_epoch",
    "offsets in range",
    lambda: aug.draw_epoch(50, G().manual_seed(0), shuffle=True, augmentation=aug.Augmentation(2, True)),
    lambda p: sorted(p.order.tolist()) == list(range(50)) and 0 <= int(p.offsets.min()) and int(p.offsets.max()) <= 4,
)
bad(
    A + "draw_worker_seed",
    "no generator",
    lambda: aug.draw_worker_seed(None),
    TypeError,
    r"generator must be a torch.Generator, got NoneType",
)
good(
    A + "draw_worker_seed",
    "a seeded draw",
    lambda: (aug.draw_worker_seed(G().manual_seed(1)), aug.draw_worker_seed(G().manual_seed(1))),
    lambda r: r[0] == r[1] and isinstance(r[0], int),
)
RC = A + "random_crop"
bad(
    RC,
    "images 3-D",
    lambda: aug.random_crop(torch.zeros(3, 4, 4), torch.zeros(3, 2, dtype=torch.long)),
    ValueError,
    r"images must have 4 dimensions",
)
bad(
    RC,
    "images a numpy array",
    lambda: aug.random_crop(np.zeros((1, 1, 4, 4)), torch.zeros(1, 2, dtype=torch.long)),
    TypeError,
    r"images must be a torch.Tensor",
)
bad(
    RC,
    "offsets (B, 3)",
    lambda: aug.random_crop(torch.zeros(2, 1, 4, 4), torch.zeros(2, 3, dtype=torch.long)),
    ValueError,
    r"offsets must have size 2 in dimension 1",
)
bad(
    RC,
    "float offsets",
    lambda: aug.random_crop(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2)),
    TypeError,
    r"offsets must be integers",
)
bad(
    RC,
    "offset beyond 2 * padding",
    lambda: aug.random_crop(torch.zeros(1, 1, 4, 4), torch.tensor([[0, 3]]), padding=1),
    ValueError,
    r"offsets must lie in \[0, 2 \* padding\] = \[0, 2\]",
)
bad(
    RC,
    "negative offset",
    lambda: aug.random_crop(torch.zeros(1, 1, 4, 4), torch.tensor([[-1, 0]]), padding=1),
    ValueError,
    r"offsets must lie in",
)
bad(
    RC,
    "negative padding",
    lambda: aug.random_crop(torch.zeros(1, 1, 4, 4), torch.tensor([[0, 0]]), padding=-1),
    ValueError,
    r"padding must be an integer >= 0",
)
good(
    RC,
    "empty batch",
    lambda: aug.random_crop(torch.zeros(0, 3, 4, 4), torch.zeros(0, 2, dtype=torch.long)),
    lambda r: r.shape == (0, 3, 4, 4),
)
good(
    RC,
    "int32 offsets",
    lambda: aug.random_crop(torch.arange(16.0).view(1, 1, 4, 4), torch.tensor([[0, 0]], dtype=torch.int32), 1),
    lambda r: r[0, 0, 0].tolist() == [0.0, 0.0, 0.0, 0.0] and r[0, 0, 1].tolist() == [0.0, 0.0, 1.0, 2.0],
)
good(
    RC,
    "offset (p, p) is the identity",
    lambda: aug.random_crop(torch.arange(16.0).view(1, 1, 4, 4), torch.tensor([[2, 2]]), padding=2),
    lambda r: torch.equal(r, torch.arange(16.0).view(1, 1, 4, 4)),
)
FH = A + "flip_horizontal"
bad(
    FH,
    "integer mask",
    lambda: aug.flip_horizontal(torch.zeros(2, 1, 2, 2), torch.tensor([1, 0])),
    TypeError,
    r"mask must be a bool tensor",
)
bad(
    FH,
    "mask too short",
    lambda: aug.flip_horizontal(torch.zeros(2, 1, 2, 2), torch.tensor([True])),
    ValueError,
    r"mask must have size 2 in dimension 0",
)
bad(
    FH,
    "images 2-D",
    lambda: aug.flip_horizontal(torch.zeros(2, 2), torch.tensor([True, False])),
    ValueError,
    r"images must have 4 dimensions",
)
bad(
    FH,
    "mask on another device",
    lambda: aug.flip_horizontal(torch.zeros(1, 1, 2, 2), meta(1, dtype=torch.bool)),
    ValueError,
    r"mask .*device",
)
good(
    FH,
    "flips the marked image only",
    lambda: aug.flip_horizontal(torch.tensor([[[[1.0, 2.0]]], [[[3.0, 4.0]]]]), torch.tensor([True, False])),
    lambda r: r.flatten().tolist() == [2.0, 1.0, 3.0, 4.0],
)

# ============================================================================= checkpoint
K = "checkpoint."
bad(
    K + "atomic_save",
    "a NumPy float inside",
    lambda: ckpt.atomic_save({"best": np.float64(0.9)}, fresh_dir() / "x.pt"),
    TypeError,
    r"would not load back with torch.load\(weights_only=True\)",
)
bad(
    K + "atomic_save",
    "a Path inside",
    lambda: ckpt.atomic_save([Path("a")], fresh_dir() / "x.pt"),
    TypeError,
    r"str\(p\) for a path",
)
bad(
    K + "atomic_save",
    "path None",
    lambda: ckpt.atomic_save({}, None),
    TypeError,
    r"path must be a file path \(str or os.PathLike\), got None",
)
bad(
    K + "atomic_save",
    "path is a folder",
    lambda: ckpt.atomic_save({}, fresh_dir()),
    IsADirectoryError,
    r"is a folder.*file name",
)
good(
    K + "atomic_save",
    "round trip",
    lambda: torch.load(
        ckpt.atomic_save({"a": torch.ones(2), "b": [1, "x"]}, fresh_dir() / "sub" / "x.pt"), weights_only=True
    ),
    lambda r: torch.equal(r["a"], torch.ones(2)) and r["b"] == [1, "x"],
)
RT = K + "remove_temporary_files"
bad(
    RT,
    "names a single string",
    lambda: ckpt.remove_temporary_files(fresh_dir(), "last.pt"),
    TypeError,
    r"names must be a list of checkpoint file names",
)
bad(RT, "folder None", lambda: ckpt.remove_temporary_files(None), TypeError, r"folder must be a folder path")
good(
    RT,
    "missing folder: nothing to remove",
    lambda: ckpt.remove_temporary_files(fresh_dir() / "nope"),
    lambda r: r == [],
)
good(
    RT,
    "removes only stray temp files",
    lambda: (
        lambda d: (
            (d / ".last.pt.ab12.tmp").write_bytes(b"x"),
            (d / "last.pt").write_bytes(b"y"),
            ckpt.remove_temporary_files(d),
            sorted(os.listdir(d)),
        )
    )(fresh_dir()),
    lambda r: len(r[2]) == 1 and r[3] == ["last.pt"],
)
bad(
    K + "check_writable",
    "a file, not a folder",
    lambda: (lambda p: (p.write_text("x"), ckpt.check_writable(p)))(fresh_dir() / "f"),
    OSError,
    r"cannot write checkpoints to .*nothing was trained yet",
)
bad(K + "check_writable", "folder None", lambda: ckpt.check_writable(None), TypeError, r"folder must be a folder path")
good(
    K + "check_writable",
    "creates the folder",
    lambda: ckpt.check_writable(fresh_dir() / "a" / "b"),
    lambda p: p.is_dir() and os.listdir(p) == [],
)
bad(
    K + "capture_rng_state",
    "generator a string",
    lambda: ckpt.capture_rng_state("g"),
    TypeError,
    r"data_generator must be a torch.Generator or None, got str",
)
good(
    K + "capture_rng_state",
    "with a generator",
    lambda: ckpt.capture_rng_state(torch.Generator()),
    lambda s: {"torch", "numpy", "python", "cuda", "data"} <= set(s),
)
bad(
    K + "restore_rng_state",
    "an empty dict",
    lambda: ckpt.restore_rng_state({}),
    ValueError,
    r"state must be what capture_rng_state returned.*missing",
)
bad(
    K + "restore_rng_state",
    "not a dict",
    lambda: ckpt.restore_rng_state([1, 2]),
    TypeError,
    r"state must be what capture_rng_state returned",
)
bad(
    K + "restore_rng_state",
    "generator a string",
    lambda: ckpt.restore_rng_state(ckpt.capture_rng_state(), "g"),
    TypeError,
    r"data_generator must be a torch.Generator or None",
)
good(
    K + "restore_rng_state",
    "round trip",
    lambda: (lambda s: (torch.rand(3), ckpt.restore_rng_state(s), torch.rand(3)))(ckpt.capture_rng_state()),
    lambda r: torch.equal(r[0], r[2]),
)
CS = K + "checkpoint_state"
bad(
    CS, "model a string", lambda: ckpt.checkpoint_state("model"), TypeError, r"model must be a torch.nn.Module, got str"
)
bad(
    CS,
    "negative epoch",
    lambda: ckpt.checkpoint_state(linear(), epoch=-1),
    ValueError,
    r"epoch must be an integer >= 0",
)
bad(CS, "epoch a string", lambda: ckpt.checkpoint_state(linear(), epoch="3"), TypeError, r"epoch must be an integer")
bad(CS, "epoch a float", lambda: ckpt.checkpoint_state(linear(), epoch=2.7), TypeError, r"epoch must be an integer")
bad(
    CS,
    "history values not numbers",
    lambda: ckpt.checkpoint_state(linear(), history={"loss": "abc"}),
    TypeError,
    r"history\['loss'\] must be a list of numbers",
)
bad(
    CS,
    "history not a dict",
    lambda: ckpt.checkpoint_state(linear(), history=[1.0]),
    TypeError,
    r"history must be a dict",
)
bad(CS, "extra not a dict", lambda: ckpt.checkpoint_state(linear(), extra=[1, 2]), TypeError, r"extra must be a dict")
bad(
    CS,
    "optimizer a string",
    lambda: ckpt.checkpoint_state(linear(), optimizer="sgd"),
    TypeError,
    r"optimizer must be a torch.optim.Optimizer or None, got str",
)
bad(
    CS,
    "scheduler without state_dict",
    lambda: ckpt.checkpoint_state(linear(), scheduler=3),
    TypeError,
    r"scheduler must have state_dict\(\)",
)
good(
    CS,
    "NaN in the history is kept",
    lambda: ckpt.checkpoint_state(linear(), history={"loss": [float("nan")]}),
    lambda s: s["history"]["loss"][0] != s["history"]["loss"][0],
)
SC = K + "save_checkpoint"
bad(
    SC,
    "NumPy int in extra",
    lambda: ckpt.save_checkpoint(fresh_dir() / "c.pt", linear(), extra={"n": np.int64(3)}),
    TypeError,
    r"cannot save checkpoint\['extra'\]\['n'\]",
)
bad(SC, "path None", lambda: ckpt.save_checkpoint(None, linear()), TypeError, r"path must be a file path")
bad(
    SC,
    "model None",
    lambda: ckpt.save_checkpoint(fresh_dir() / "c.pt", None),
    TypeError,
    r"model must be a torch.nn.Module, got NoneType",
)
good(
    SC,
    "nothing written on refusal",
    lambda: (
        lambda d: (
            pytest.raises(TypeError, ckpt.save_checkpoint, d / "c.pt", linear(), extra={"p": Path("x")}),
            os.listdir(d),
        )
    )(fresh_dir()),
    lambda r: r[1] == [],
)
RD = K + "read_checkpoint"
bad(RD, "missing file", lambda: ckpt.read_checkpoint(fresh_dir() / "lats.pt"), FileNotFoundError, r"no checkpoint at")
bad(RD, "a folder", lambda: ckpt.read_checkpoint(fresh_dir()), IsADirectoryError, r"is a folder.*last.pt")
bad(
    RD,
    "a text file",
    lambda: (lambda p: (p.write_text("hello"), ckpt.read_checkpoint(p)))(fresh_dir() / "t.pt"),
    ckpt.CheckpointError,
    r"not a torch.save file",
)
bad(
    RD,
    "a bare state_dict",
    lambda: (lambda p: (torch.save(linear().state_dict(), p), ckpt.read_checkpoint(p)))(fresh_dir() / "s.pt"),
    ckpt.CheckpointError,
    r"bare state_dict.*model.load_state_dict",
)
bad(
    RD,
    "a whole pickled model",
    lambda: (lambda p: (torch.save(linear(), p), ckpt.read_checkpoint(p)))(fresh_dir() / "m.pt"),
    ckpt.CheckpointError,
    r"torch.save\(model\) for a whole model",
)
bad(
    RD,
    "a truncated file",
    lambda: (lambda p: (p.write_bytes(saved_checkpoint().read_bytes()[:200]), ckpt.read_checkpoint(p)))(
        fresh_dir() / "t.pt"
    ),
    ckpt.CheckpointError,
    r"damaged or incomplete",
)
bad(
    RD,
    "another format version",
    lambda: (lambda p: (torch.save({"format_version": 99}, p), ckpt.read_checkpoint(p)))(fresh_dir() / "v.pt"),
    ckpt.CheckpointError,
    r"format 99",
)
bad(
    RD,
    "unknown map_location",
    lambda: ckpt.read_checkpoint(saved_checkpoint(), map_location="gpu"),
    ValueError,
    r"Unknown device 'gpu'",
)
bad(RD, "path None", lambda: ckpt.read_checkpoint(None), TypeError, r"path must be a file path")
good(
    RD,
    "reads what save_checkpoint wrote",
    lambda: ckpt.read_checkpoint(saved_checkpoint()),
    lambda s: s["epoch"] == 1 and s["history"] == {"train_loss": [1.0]},
)
LC = K + "load_checkpoint"
bad(
    LC,
    "weights of another model",
    lambda: ckpt.load_checkpoint(saved_checkpoint(), nn.Linear(5, 3)),
    RuntimeError,
    r"the saved weights do not fit this model",
)
bad(
    LC,
    "model a string",
    lambda: ckpt.load_checkpoint(saved_checkpoint(), "model"),
    TypeError,
    r"model must be a torch.nn.Module or None, got str",
)
bad(
    LC,
    "restore_rng a string",
    lambda: ckpt.load_checkpoint(saved_checkpoint(), restore_rng="no"),
    TypeError,
    r"restore_rng must be True or False",
)
bad(
    LC,
    "optimizer of another model",
    lambda: (
        lambda p, m: (
            ckpt.save_checkpoint(p, m, optimizer=sgd(m)),
            ckpt.load_checkpoint(p, optimizer=sgd(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 3)))),
        )
    )(fresh_dir() / "o.pt", linear()),
    ValueError,
    r"optimizer state .* does not fit this optimizer",
)
good(
    LC,
    "loads the weights",
    lambda: (lambda p, m: (ckpt.load_checkpoint(p, m), m))(saved_checkpoint(), nn.Linear(4, 3)),
    lambda r: torch.equal(r[1].weight, linear().weight),
)
RK = K + "RunCheckpoints"
bad(
    RK,
    "folder is a file",
    lambda: (lambda p: (p.write_text("x"), ckpt.RunCheckpoints(p, None)))(fresh_dir() / "f"),
    OSError,
    r"cannot write checkpoints",
)
bad(
    RK,
    "best_key a number",
    lambda: ckpt.RunCheckpoints(fresh_dir(), 3),
    TypeError,
    r"best_key must be a history key \(str\) or None, got int",
)
bad(RK, "folder None", lambda: ckpt.RunCheckpoints(None, None), TypeError, r"folder must be a folder path")
good(RK + ".files", "new folder: none", lambda: ckpt.RunCheckpoints(fresh_dir(), None).files(), lambda r: r == [])
good(
    RK + ".resumable",
    "new folder: None",
    lambda: ckpt.RunCheckpoints(fresh_dir(), None).resumable(),
    lambda r: r is None,
)
bad(
    RK + ".resumable",
    "a damaged last.pt",
    lambda: (lambda d: ((d / "last.pt").write_bytes(b"PK\x03\x04junk"), ckpt.RunCheckpoints(d, None).resumable()))(
        fresh_dir()
    ),
    ckpt.CheckpointError,
    r"damaged or incomplete|not a torch.save file",
)
bad(
    RK + ".refuse_existing",
    "folder with a run",
    lambda: (
        lambda d: (shutil.copy(saved_checkpoint(), d / "last.pt"), ckpt.RunCheckpoints(d, None).refuse_existing("x"))
    )(fresh_dir()),
    FileExistsError,
    r"already holds checkpoints of another run .*Pass resume=True",
)
good(
    RK + ".refuse_existing",
    "empty folder passes",
    lambda: ckpt.RunCheckpoints(fresh_dir(), None).refuse_existing("x"),
    lambda r: r is None,
)
bad(
    RK + ".restore",
    "other best_key",
    lambda: ckpt.RunCheckpoints(fresh_dir(), "val_acc").restore({"extra": {"best_key": "val_loss"}}),
    ValueError,
    r"checkpointed with best_key='val_loss'",
)
bad(
    RK + ".restore",
    "not a checkpoint",
    lambda: ckpt.RunCheckpoints(fresh_dir(), "val_acc").restore({}),
    ValueError,
    r"state must be a checkpoint dict.*'extra'",
)
good(
    RK + ".restore",
    "takes the best score",
    lambda: (lambda r: (r.restore({"extra": {"best_key": "val_acc", "best": 0.5, "best_epoch": 2}}), r.best))(
        ckpt.RunCheckpoints(fresh_dir(), "val_acc")
    ),
    lambda r: r[1] == 0.5,
)
bad(
    RK + ".save",
    "history without best_key",
    lambda: ckpt.RunCheckpoints(fresh_dir(), "val_acc").save(1, {"train_loss": [1.0]}, model=linear()),
    ValueError,
    r"best_key='val_acc' is not in the history",
)
bad(
    RK + ".save",
    "model a string",
    lambda: ckpt.RunCheckpoints(fresh_dir(), None).save(1, {}, model="m"),
    TypeError,
    r"model must be a torch.nn.Module",
)
good(
    RK + ".save",
    "NaN never counts as best",
    lambda: (lambda r: (r.save(1, {"val_loss": [float("nan")]}, model=linear()), r.files()))(
        ckpt.RunCheckpoints(fresh_dir(), "val_loss")
    ),
    lambda r: r[0] is False and [p.name for p in r[1]] == ["last.pt"],
)
good(K + "CheckpointError", "is a ValueError", lambda: ckpt.CheckpointError("x"), lambda e: isinstance(e, ValueError))

# ============================================================================= checks
Q = "checks."
bad(
    Q + "expect_tensor", "a list", lambda: chk.expect_tensor([1], "x"), TypeError, r"x must be a torch.Tensor, got list"
)
bad(
    Q + "expect_tensor",
    "None",
    lambda: chk.expect_tensor(None, "x"),
    TypeError,
    r"x must be a torch.Tensor, got NoneType",
)
good(Q + "expect_tensor", "a tensor", lambda: chk.expect_tensor(torch.ones(1), "x"), lambda t: t.shape == (1,))
bad(
    Q + "expect_shape",
    "too many dims",
    lambda: chk.expect_shape(torch.zeros(2, 3, 4), ("B", "T"), "x"),
    ValueError,
    r"x must have 2 dimensions \(B, T\), got shape \(2, 3, 4\)",
)
bad(
    Q + "expect_shape",
    "named dims disagree",
    lambda: chk.expect_shape(torch.zeros(2, 3), ("N", "N"), "x"),
    ValueError,
    r"named 'N' must agree",
)
bad(
    Q + "expect_shape",
    "pattern an int",
    lambda: chk.expect_shape(torch.zeros(2), 2, "x"),
    TypeError,
    r"shape pattern must be a tuple or list",
)
bad(
    Q + "expect_shape",
    "not a tensor",
    lambda: chk.expect_shape(np.zeros(2), (2,), "x"),
    TypeError,
    r"x must be a torch.Tensor, got ndarray",
)
good(
    Q + "expect_shape",
    "empty dimension matches None",
    lambda: chk.expect_shape(torch.zeros(0, 3), (None, 3), "x"),
    lambda r: r == {},
)
bad(
    Q + "expect_positive_int", "0", lambda: chk.expect_positive_int(0, "n"), ValueError, r"n must be a positive integer"
)
bad(
    Q + "expect_positive_int",
    "True",
    lambda: chk.expect_positive_int(True, "n"),
    TypeError,
    r"n must be a positive integer",
)
bad(
    Q + "expect_positive_int",
    "NaN",
    lambda: chk.expect_positive_int(float("nan"), "n"),
    TypeError,
    r"n must be a positive",
)
bad(
    Q + "expect_positive_int",
    "inf",
    lambda: chk.expect_positive_int(float("inf"), "n"),
    TypeError,
    r"n must be a positive",
)
good(
    Q + "expect_positive_int",
    "a 0-d integer tensor",
    lambda: chk.expect_positive_int(torch.tensor(5), "n"),
    lambda r: r == 5 and type(r) is int,
)
bad(
    Q + "expect_int",
    "below the minimum",
    lambda: chk.expect_int(-1, "seed"),
    ValueError,
    r"seed must be an integer >= 0, got -1",
)
bad(Q + "expect_int", "a float", lambda: chk.expect_int(1.0, "seed"), TypeError, r"seed must be an integer, got 1.0")
bad(
    Q + "expect_int",
    "a numpy bool",
    lambda: chk.expect_int(np.bool_(True), "seed"),
    TypeError,
    r"seed must be an integer",
)
good(
    Q + "expect_int", "no minimum", lambda: chk.expect_int(np.int8(-3), "i", None), lambda r: r == -3 and type(r) is int
)
bad(Q + "expect_bool", "0", lambda: chk.expect_bool(0, "flag"), TypeError, r"flag must be True or False, got 0 \(int\)")
bad(Q + "expect_bool", "'False'", lambda: chk.expect_bool("False", "flag"), TypeError, r"flag must be True or False")
good(Q + "expect_bool", "numpy bool", lambda: chk.expect_bool(np.bool_(False), "flag"), lambda r: r is False)
bad(
    Q + "expect_number",
    "NaN",
    lambda: chk.expect_number(float("nan"), "lr", 0),
    ValueError,
    r"lr must be a finite number >= 0, got nan",
)
bad(
    Q + "expect_number",
    "-inf",
    lambda: chk.expect_number(float("-inf"), "lr"),
    ValueError,
    r"lr must be a finite number",
)
bad(Q + "expect_number", "a string", lambda: chk.expect_number("0.1", "lr"), TypeError, r"lr must be a finite number")
bad(Q + "expect_number", "True", lambda: chk.expect_number(True, "lr"), TypeError, r"lr must be a finite number")
bad(
    Q + "expect_number",
    "at the upper bound",
    lambda: chk.expect_number(1.0, "p", 0, below=1),
    ValueError,
    r"p must be a finite number >= 0 and < 1, got 1.0",
)
good(
    Q + "expect_number",
    "a 0-d tensor",
    lambda: chk.expect_number(torch.tensor(0.5), "p", 0, below=1),
    lambda r: r == 0.5 and type(r) is float,
)
bad(
    Q + "expect_callable",
    "a string",
    lambda: chk.expect_callable("relu", "fn"),
    TypeError,
    r"fn must be callable, got 'relu'",
)
bad(
    Q + "expect_callable",
    "None, not optional",
    lambda: chk.expect_callable(None, "fn"),
    TypeError,
    r"fn must be callable",
)
good(
    Q + "expect_callable", "None, optional", lambda: chk.expect_callable(None, "fn", optional=True), lambda r: r is None
)
bad(
    Q + "expect_path",
    "a number",
    lambda: chk.expect_path(3, "root", "folder path"),
    TypeError,
    r"root must be a folder path \(str or os.PathLike\), got 3 \(int\)",
)
bad(Q + "expect_path", "bytes", lambda: chk.expect_path(b"runs", "root"), TypeError, r"root must be a file path")
good(Q + "expect_path", "a str", lambda: chk.expect_path("runs/x", "root"), lambda r: r == Path("runs/x"))
bad(
    Q + "expect_mapping",
    "a list of pairs",
    lambda: chk.expect_mapping([("a", 1)], "metrics", "name -> fn"),
    TypeError,
    r"metrics must be a dict of name -> fn, got \[\('a', 1\)\] \(list\)",
)
good(Q + "expect_mapping", "a History", lambda: chk.expect_mapping(tr.History(a=[1.0]), "h", "x"), lambda r: "a" in r)
bad(
    Q + "expect_iterable",
    "an int",
    lambda: chk.expect_iterable(3, "loader"),
    TypeError,
    r"loader must be an iterable of",
)
bad(
    Q + "expect_iterable",
    "a string",
    lambda: chk.expect_iterable("data", "loader"),
    TypeError,
    r"loader must be an iterable",
)
good(
    Q + "expect_iterable",
    "a DataLoader is not started",
    lambda: (
        lambda g: (
            chk.expect_iterable(torch.utils.data.DataLoader(list(range(4)), shuffle=True, generator=g), "loader"),
            g.get_state(),
        )
    )(G().manual_seed(0)),
    lambda r: torch.equal(r[1], G().manual_seed(0).get_state()),
)

# ============================================================================= cifar10
F10 = "cifar10."
bad(F10 + "cifar10_present", "root a number", lambda: cif.cifar10_present(5), TypeError, r"root must be a folder path")
good(F10 + "cifar10_present", "empty folder", lambda: cif.cifar10_present(fresh_dir()), lambda r: r is False)
bad(
    F10 + "load_cifar10",
    "synthetic='no'",
    lambda: cif.load_cifar10(synthetic="no"),
    TypeError,
    r"synthetic \(True, False or None\) must be True or False",
)
bad(
    F10 + "load_cifar10",
    "download='yes'",
    lambda: cif.load_cifar10(download="yes"),
    TypeError,
    r"download must be True or False",
)
bad(
    F10 + "load_cifar10",
    "a zero size",
    lambda: cif.load_cifar10(sizes=(0, 1, 1), synthetic=True),
    ValueError,
    r"train size must be a positive integer",
)
bad(
    F10 + "load_cifar10",
    "two sizes",
    lambda: cif.load_cifar10(sizes=(10, 2), synthetic=True),
    ValueError,
    r"sizes must be \(train, validation, test\)",
)
bad(
    F10 + "load_cifar10",
    "more than CIFAR-10 has",
    lambda: cif.load_cifar10(sizes=(50_000, 1, 1), synthetic=True),
    ValueError,
    r"CIFAR-10 has 50000 training and 10000 test images",
)
bad(
    F10 + "load_cifar10",
    "negative seed",
    lambda: cif.load_cifar10(sizes=(4, 2, 2), synthetic=True, seed=-1),
    ValueError,
    r"seed must be an integer >= 0",
)
bad(
    F10 + "load_cifar10",
    "root a number",
    lambda: cif.load_cifar10(root=5, sizes=(4, 2, 2), synthetic=True),
    TypeError,
    r"root must be a folder path",
)
bad(
    F10 + "load_cifar10",
    "real data missing, no download",
    lambda: cif.load_cifar10(fresh_dir(), sizes=(4, 2, 2), download=False, synthetic=False),
    cif.CifarUnavailableError,
    r"(?s)CIFAR-10 is not in .*To install it by hand",
)
bad(
    F10 + "load_cifar10",
    "COURSE_CIFAR10_SYNTHETIC=maybe",
    with_env(lambda: cif.load_cifar10(sizes=(4, 2, 2)), COURSE_CIFAR10_SYNTHETIC="maybe"),
    ValueError,
    r"COURSE_CIFAR10_SYNTHETIC='maybe' is not understood",
)
good(
    F10 + "load_cifar10",
    "COURSE_CIFAR10_SYNTHETIC=y",
    printed(with_env(lambda: cif.load_cifar10(sizes=(4, 2, 2)), COURSE_CIFAR10_SYNTHETIC="y")),
    lambda out: "SYNTHETIC stand-in" in out,
)
good(
    F10 + "load_cifar10",
    "synthetic, tiny",
    lambda: cif.load_cifar10(sizes=(4, 2, 2), synthetic=True),
    lambda d: d.synthetic and d.image_shape == (32, 32, 3) and len(d.train_labels) == 4 and d.tag == " [SYNTHETIC]",
)
bad(
    F10 + "offline_message",
    "root a number",
    lambda: cif.offline_message(5, "x"),
    TypeError,
    r"root must be a folder path",
)
good(
    F10 + "offline_message",
    "root a string",
    lambda: cif.offline_message("some/folder", "no network"),
    lambda m: "some/folder" in m and cif.CIFAR10_MD5 in m and "no network" in m,
)
bad(F10 + "synthetic_cifar10", "n 0", lambda: cif.synthetic_cifar10(0), ValueError, r"n must be a positive integer")
bad(F10 + "synthetic_cifar10", "n 2.0", lambda: cif.synthetic_cifar10(2.0), TypeError, r"n must be a positive integer")
bad(
    F10 + "synthetic_cifar10",
    "seed a string",
    lambda: cif.synthetic_cifar10(2, seed="a"),
    TypeError,
    r"seed must be an integer",
)
good(
    F10 + "synthetic_cifar10",
    "shapes and dtypes",
    lambda: cif.synthetic_cifar10(3),
    lambda r: r[0].shape == (3, 32, 32, 3) and r[0].dtype == np.uint8 and r[1].dtype == np.int64,
)
good(
    F10 + "CifarUnavailableError",
    "is a RuntimeError",
    lambda: cif.CifarUnavailableError("x"),
    lambda e: isinstance(e, RuntimeError),
)

# ============================================================================= kv_cache
KV = "kv_cache."
kv_k = lambda t=1: torch.zeros(1, 2, t, 4)  # noqa: E731  (B, H, t, head_dim) of the small cache below
small_cache = lambda: kvc.KVCache(2, 1, 2, 4, max_len=3)  # noqa: E731
bad(KV + "kv_cache_bytes", "zero layers", lambda: kvc.kv_cache_bytes(0, 8, 16), ValueError, r"num_layers must be")
bad(KV + "kv_cache_bytes", "length '8'", lambda: kvc.kv_cache_bytes(1, "8", 16), TypeError, r"length must be")
good(KV + "kv_cache_bytes", "2 layers x 3 positions x 4 wide", lambda: kvc.kv_cache_bytes(2, 3, 4), lambda n: n == 192)
bad(KV + "KVCache", "max_len 0", lambda: kvc.KVCache(1, 1, 1, 4, max_len=0), ValueError, r"max_len must be")
bad(KV + "KVCache", "heads 2.0", lambda: kvc.KVCache(1, 1, 2.0, 4, max_len=3), TypeError, r"num_heads must be")
bad(KV + "KVCache.append", "layer '0'", lambda: small_cache().append("0", kv_k(), kv_k()), TypeError, r"layer must be")
bad(
    KV + "KVCache.append", "layer 2 of 2", lambda: small_cache().append(2, kv_k(), kv_k()), IndexError, r"layers 0\.\.1"
)
bad(
    KV + "KVCache.append",
    "keys (B, t, d)",
    lambda: small_cache().append(0, torch.zeros(1, 1, 8), kv_k()),
    ValueError,
    r"\(B, H, t, head_dim\)",
)
bad(
    KV + "KVCache.append",
    "float64 keys",
    lambda: small_cache().append(0, kv_k().double(), kv_k().double()),
    ValueError,
    r"must be torch.float32",
)
bad(
    KV + "KVCache.append",
    "meta-device keys",
    lambda: small_cache().append(0, kv_k().to("meta"), kv_k().to("meta")),
    ValueError,
    r"on cpu",
)
bad(
    KV + "KVCache.append",
    "4 positions into max_len 3",
    lambda: small_cache().append(0, kv_k(4), kv_k(4)),
    ValueError,
    r"exceed max_len=3",
)
bad(KV + "KVCache.append", "values None", lambda: small_cache().append(0, kv_k(), None), TypeError, r"v must be")


def _filled_cache() -> Any:
    cache = small_cache()
    for layer in (0, 1):
        cache.append(layer, kv_k(2) + 1, kv_k(2) + 2)
    return cache


good(KV + "KVCache.length", "2 positions in both layers", lambda: _filled_cache().length, lambda n: n == 2)
good(KV + "KVCache.num_layers", "a 2-layer cache", lambda: small_cache().num_layers, lambda n: n == 2)
good(KV + "KVCache.nbytes", "2 buffers of 1x2x2x3x4 floats", lambda: small_cache().nbytes, lambda n: n == 2 * 48 * 4)
good(
    KV + "KVCache.reset",
    "reset empties every layer",
    lambda: (c := _filled_cache(), c.reset(), c.length)[2],
    lambda n: n == 0,
)


# ============================================================================= cifar_models
CM = "cifar_models."


@functools.cache
def notes_net() -> nn.Module:
    torch.manual_seed(0)
    return cm.NotesNet().eval()


@functools.cache
def small_resnet() -> nn.Module:
    torch.manual_seed(0)
    return cm.SmallResNet(width=2).eval()


def recipe(name: str = "better", model: Any = None, **overrides: Any) -> Callable[[], Any]:
    """A call of make_recipe on a tiny model (2 epochs of 4 steps) with some arguments changed."""
    kwargs = {"epochs": 2, "steps_per_epoch": 4, **overrides}
    return lambda: cm.make_recipe(name, linear() if model is None else model, **kwargs)


NN = CM + "NotesNet"
bad(NN, "num_classes 0", lambda: cm.NotesNet(0), ValueError, r"num_classes must be a positive integer")
bad(NN, "num_classes '10'", lambda: cm.NotesNet("10"), TypeError, r"num_classes must be a positive integer")
good(NN, "numpy num_classes", lambda: cm.NotesNet(np.int64(4)), lambda m: m.layers[-1].out_features == 4)
NF = NN + ".forward"
bad(
    NF,
    "28x28 images",
    lambda: notes_net()(x3(2, 3, 28, 28)),
    ValueError,
    r"NotesNet's input x must have size 32 in dimension 2 \(\*, 3, 32, 32\)",
)
bad(NF, "greyscale images", lambda: notes_net()(x3(2, 1, 32, 32)), ValueError, r"must have size 3 in dimension 1")
bad(
    NF,
    "channels last (B, H, W, C)",
    lambda: notes_net()(x3(2, 32, 32, 3)),
    ValueError,
    r"must have size 3 in dimension 1",
)
bad(
    NF,
    "one image without its batch axis",
    lambda: notes_net()(x3(3, 32, 32)),
    ValueError,
    r"must have 4 dimensions \(\*, 3, 32, 32\)",
)
bad(
    NF,
    "uint8 images",
    lambda: notes_net()(torch.zeros(1, 3, 32, 32, dtype=torch.uint8)),
    TypeError,
    r"must be float32 like its weights, got torch.uint8: convert uint8 images with x.float\(\) / 255",
)
bad(
    NF,
    "float64 images",
    lambda: notes_net()(x3(1, 3, 32, 32, dtype=torch.float64)),
    TypeError,
    r"must be float32 like its weights, got torch.float64",
)
bad(
    NF,
    "images on another device",
    lambda: notes_net()(meta(1, 3, 32, 32)),
    ValueError,
    r"input x is on meta but its weights are on cpu",
)
bad(
    NF,
    "a NumPy array",
    lambda: notes_net()(np.zeros((1, 3, 32, 32), np.float32)),
    TypeError,
    r"x must be a torch.Tensor, got ndarray",
)
good(NF, "empty batch", lambda: notes_net()(x3(0, 3, 32, 32)), lambda out: out.shape == (0, 10))
good(
    NF,
    "class scores",
    lambda: notes_net()(x3(2, 3, 32, 32)),
    lambda out: out.shape == (2, 10) and bool(out.isfinite().all()),
)
SR = CM + "SmallResNet"
bad(SR, "width 0", lambda: cm.SmallResNet(width=0), ValueError, r"width must be a positive integer")
bad(SR, "num_classes 2.0", lambda: cm.SmallResNet(2.0), TypeError, r"num_classes must be a positive integer")
good(
    SR,
    "width 2",
    lambda: cm.SmallResNet(3, width=2),
    lambda m: (m.layers[-1].in_features, m.layers[-1].out_features) == (16, 3),
)
SF = SR + ".forward"
bad(
    SF,
    "4x4 images (pooled to nothing)",
    lambda: small_resnet()(x3(1, 3, 4, 4)),
    ValueError,
    r"SmallResNet's input x must be at least 8x8 pixels",
)
bad(SF, "channels last", lambda: small_resnet()(x3(1, 8, 8, 3)), ValueError, r"must have size 3 in dimension 1")
bad(SF, "2-D input", lambda: small_resnet()(x3(3, 32)), ValueError, r"must have 4 dimensions \(\*, 3, \*, \*\)")
bad(
    SF,
    "uint8 images",
    lambda: small_resnet()(torch.zeros(1, 3, 8, 8, dtype=torch.uint8)),
    TypeError,
    r"must be float32 like its weights, got torch.uint8",
)
good(
    SF,
    "any size from 8x8 (global pooling)",
    lambda: (small_resnet()(x3(2, 3, 8, 8)), small_resnet()(x3(1, 3, 20, 12))),
    lambda r: r[0].shape == (2, 10) and r[1].shape == (1, 10),
)
RS = CM + "Residual"
bad(RS, "channels 0", lambda: cm.Residual(0), ValueError, r"channels must be a positive integer")
bad(RS, "channels None", lambda: cm.Residual(None), TypeError, r"channels must be a positive integer")
good(RS, "keeps the channel count", lambda: cm.Residual(4), lambda r: r.channels == 4)
RF = RS + ".forward"
bad(
    RF,
    "another channel count",
    lambda: cm.Residual(4)(x3(1, 3, 4, 4)),
    ValueError,
    r"Residual's input x must have size 4 in dimension 1",
)
bad(RF, "3-D input", lambda: cm.Residual(4)(x3(4, 4, 4)), ValueError, r"must have 4 dimensions")
good(
    RF,
    "a zero body gives the identity",
    lambda: (lambda r, x: (nn.init.zeros_(r.body[1][1].weight), r(x), x))(cm.Residual(4).eval(), x3(1, 4, 3, 3)),
    lambda r: torch.equal(r[1], r[2]),
)
CB = CM + "conv_bn"
bad(CB, "c_out 0", lambda: cm.conv_bn(3, 0), ValueError, r"c_out must be a positive integer")
bad(CB, "c_in a float", lambda: cm.conv_bn(3.0, 4), TypeError, r"c_in must be a positive integer")
good(
    CB,
    "keeps H and W, output >= 0",
    lambda: cm.conv_bn(3, 5)(x3(2, 3, 6, 6)),
    lambda out: out.shape == (2, 5, 6, 6) and bool((out >= 0).all()),
)
RA = CM + "recipe_augmentation"
bad(
    RA,
    "unknown name",
    lambda: cm.recipe_augmentation("fast"),
    ValueError,
    r"unknown recipe 'fast': choose one of \['better', 'notes'\]",
)
bad(RA, "a list", lambda: cm.recipe_augmentation(["notes"]), ValueError, r"unknown recipe \['notes'\]")
good(
    RA,
    "notes: none; better: crop + flip",
    lambda: (cm.recipe_augmentation("notes"), cm.recipe_augmentation("better")),
    lambda r: not r[0].active and r[1] == aug.CIFAR_AUGMENTATION,
)
MR = CM + "make_recipe"
bad(MR, "unknown name", recipe("fast"), ValueError, r"unknown recipe 'fast'")
bad(MR, "name capitalised", recipe("Better"), ValueError, r"unknown recipe 'Better': choose one of")
bad(MR, "model a string", recipe(model="resnet"), TypeError, r"model must be a torch.nn.Module, got str")
bad(MR, "epochs 0", recipe(epochs=0), ValueError, r"epochs must be a positive integer")
bad(MR, "epochs '2'", recipe(epochs="2"), TypeError, r"epochs must be a positive integer")
bad(MR, "epochs 2.5", recipe(epochs=2.5), TypeError, r"epochs must be a positive integer")
bad(
    MR,
    "notes recipe, steps_per_epoch -1",
    recipe("notes", steps_per_epoch=-1),
    ValueError,
    r"steps_per_epoch must be a positive integer",
)
bad(MR, "lr 0", recipe(lr=0.0), ValueError, r"learning rate must be positive, got 0")
bad(MR, "lr inf", recipe(lr=float("inf")), ValueError, r"lr must be a finite number")
bad(MR, "lr NaN", recipe("notes", lr=float("nan")), ValueError, r"lr must be a finite number")
bad(MR, "lr '0.1'", recipe(lr="0.1"), TypeError, r"lr must be a finite number")
bad(MR, "one-cycle shorter than 8 steps", recipe(epochs=1), ValueError, r"needs at least 8 steps")
good(
    MR,
    "NumPy lr and epochs",
    recipe(lr=np.float32(0.25), epochs=np.int64(2)),
    lambda r: r.scheduler.total_steps == 8 and r.lr == 0.25 and r.scheduler_interval == "step",
)
good(
    MR,
    "notes: one step is enough",
    recipe("notes", epochs=1, steps_per_epoch=1),
    lambda r: r.scheduler is None and r.lr == 0.01 and not r.augment.active,
)
good(
    CM + "Recipe",
    "a plain record",
    lambda: cm.Recipe("x", sgd(linear()), nn.CrossEntropyLoss(), aug.Augmentation()),
    lambda r: r.scheduler is None and r.scheduler_interval == "epoch",
)
good(
    CM + "Recipe.describe",
    "the better recipe in one line",
    lambda: recipe()().describe(),
    lambda s: s.startswith("better: SGD(lr=0.05), OneCycleLR per step, cross-entropy (label smoothing 0.1)"),
)

# ============================================================================= decoding
D = "decoding."
good(
    D + "SearchResult",
    "a plain record",
    lambda: dec.SearchResult(*(torch.zeros(1, 1, 1),) * 5),
    lambda r: r.tokens.shape == (1, 1, 1),
)
good(
    D + "SearchResult.to_lists",
    "drops empty slots",
    lambda: dec.beam_search(
        uniform_step(), None, bos_id=1, eos_id=2, max_len=3, beam_size=3, n_best=3, batch_size=2
    ).to_lists(),
    lambda r: len(r) == 2 and r[0][0] == [2],
)
good(
    D + "SearchResult.best",
    "one list per source",
    lambda: dec.greedy_search(uniform_step(), None, bos_id=1, eos_id=2, max_len=3, batch_size=2).best(),
    lambda r: r == [[2], [2]],
)
LP = D + "length_penalty"
bad(LP, "float lengths", lambda: dec.length_penalty(torch.tensor([1.5]), 1.0), TypeError, r"lengths must be integers")
bad(LP, "negative length", lambda: dec.length_penalty(torch.tensor([-1]), 1.0), ValueError, r"lengths must be >= 0")
bad(LP, "alpha NaN", lambda: dec.length_penalty(3, float("nan")), ValueError, r"alpha .* must be a finite number >= 0")
bad(LP, "alpha a string", lambda: dec.length_penalty(3, "1"), ValueError, r"alpha .* must be a finite number >= 0")
bad(LP, "negative alpha", lambda: dec.length_penalty(3, -0.5), ValueError, r"alpha .* must be a finite number >= 0")
bad(
    LP,
    "integer dtype",
    lambda: dec.length_penalty(3, 1.0, dtype=torch.int64),
    TypeError,
    r"dtype must be a floating-point dtype",
)
good(LP, "empty lengths", lambda: dec.length_penalty(torch.zeros(0, dtype=torch.long), 1.0), lambda r: r.shape == (0,))
good(LP, "GNMT values", lambda: dec.length_penalty([0, 1, 7], 1.0), lambda r: close(r, [5 / 6, 1.0, 2.0]))
GS = D + "greedy_search"
bad(
    GS,
    "step_fn not callable",
    lambda: dec.greedy_search(3, None, bos_id=1, eos_id=2, max_len=3, batch_size=1),
    TypeError,
    r"step_fn must be callable",
)
bad(
    GS,
    "max_len 0",
    lambda: dec.greedy_search(uniform_step(), None, bos_id=1, eos_id=2, max_len=0, batch_size=1),
    ValueError,
    r"max_len must be a positive integer",
)
bad(
    GS,
    "no batch size",
    lambda: dec.greedy_search(uniform_step(), None, bos_id=1, eos_id=2, max_len=3),
    ValueError,
    r"pass batch_size=",
)
bad(
    GS,
    "eos_id outside the vocabulary",
    lambda: dec.greedy_search(uniform_step(), None, bos_id=1, eos_id=9, max_len=3, batch_size=1),
    ValueError,
    r"eos_id must be an int in \[0, 4\)",
)
bad(
    GS,
    "bos_id a string",
    lambda: dec.greedy_search(uniform_step(), None, bos_id="<bos>", eos_id=2, max_len=3, batch_size=1),
    TypeError,
    r"bos_id must be an int",
)
bad(
    GS,
    "state a string",
    lambda: dec.greedy_search(uniform_step(), "memory", bos_id=1, eos_id=2, max_len=3),
    TypeError,
    r"state must be None, a tensor",
)
bad(
    GS,
    "probabilities instead of log-probabilities",
    lambda: dec.greedy_search(
        lambda t, s: torch.full((t.shape[0], 4), 0.25), None, bos_id=1, eos_id=2, max_len=3, batch_size=1
    ),
    ValueError,
    r"normalised log-probabilities",
)
bad(
    GS,
    "NaN log-probabilities",
    lambda: dec.greedy_search(
        lambda t, s: torch.full((t.shape[0], 4), float("nan")), None, bos_id=1, eos_id=2, max_len=3, batch_size=1
    ),
    ValueError,
    r"normalised log-probabilities",
)
bad(
    GS,
    "step_fn returns (N, T, V)",
    lambda: dec.greedy_search(
        lambda t, s: torch.zeros(t.shape[0], 1, 4).log_softmax(-1), None, bos_id=1, eos_id=2, max_len=3, batch_size=1
    ),
    ValueError,
    r"shape \(N, V\)",
)
bad(
    GS,
    "unknown device",
    lambda: dec.greedy_search(uniform_step(), None, bos_id=1, eos_id=2, max_len=3, batch_size=1, device="gpu"),
    ValueError,
    r"Unknown device 'gpu'",
)
bad(
    GS,
    "state rows disagree",
    lambda: dec.greedy_search(uniform_step(), (torch.zeros(2, 3), torch.zeros(3)), bos_id=1, eos_id=2, max_len=3),
    ValueError,
    r"dimension 0",
)
good(
    GS,
    "stops at eos",
    lambda: dec.greedy_search(uniform_step(), torch.zeros(3, 2), bos_id=1, eos_id=2, max_len=5),
    lambda r: (
        r.tokens.shape == (3, 1, 1)
        and bool(r.finished.all())
        and close(r.log_probs, uniform_step()(torch.zeros(3, 1), None)[:, 2:3])
    ),
)
BS = D + "beam_search"
bad(
    BS,
    "beam_size 0",
    lambda: dec.beam_search(uniform_step(), None, bos_id=1, eos_id=2, max_len=3, beam_size=0, batch_size=1),
    ValueError,
    r"beam_size must be a positive integer",
)
bad(
    BS,
    "n_best > beam_size",
    lambda: dec.beam_search(uniform_step(), None, bos_id=1, eos_id=2, max_len=3, beam_size=2, n_best=3, batch_size=1),
    ValueError,
    r"n_best \(3\) cannot exceed",
)
bad(
    BS,
    "alpha inf",
    lambda: dec.beam_search(uniform_step(), None, bos_id=1, eos_id=2, max_len=3, alpha=float("inf"), batch_size=1),
    ValueError,
    r"alpha",
)
bad(
    BS,
    "pad_id -1",
    lambda: dec.beam_search(uniform_step(), None, bos_id=1, eos_id=2, max_len=3, pad_id=-1, batch_size=1),
    ValueError,
    r"pad_id must be an int in \[0, 4\)",
)
bad(
    BS,
    "step_fn not callable",
    lambda: dec.beam_search(None, None, bos_id=1, eos_id=2, max_len=3, batch_size=1),
    TypeError,
    r"step_fn must be callable",
)
bad(
    BS,
    "log-probs on another device",
    lambda: dec.beam_search(lambda t, s: meta(t.shape[0], 4), None, bos_id=1, eos_id=2, max_len=3, batch_size=1),
    ValueError,
    r"log-probabilities on meta",
)
good(
    BS,
    "beam 1 equals greedy",
    lambda: (
        dec.beam_search(uniform_step(), None, bos_id=1, eos_id=2, max_len=3, beam_size=1, batch_size=2).best(),
        dec.greedy_search(uniform_step(), None, bos_id=1, eos_id=2, max_len=3, batch_size=2).best(),
    ),
    lambda r: r[0] == r[1],
)

# ============================================================================= device
V = "device."
bad(V + "get_device", "unknown name", lambda: dev.get_device("gpu"), ValueError, r"Unknown device 'gpu'")
bad(V + "get_device", "a number", lambda: dev.get_device(0), TypeError, r"str, torch.device or None, got int")
bad(V + "get_device", "malformed index", lambda: dev.get_device("cuda:x"), ValueError, r"Malformed device")
bad(V + "get_device", "meta device", lambda: dev.get_device(torch.device("meta")), ValueError, r"Unknown device 'meta'")
bad(
    V + "get_device",
    "COURSE_DEVICE=gpu",
    with_env(dev.get_device, COURSE_DEVICE="gpu"),
    ValueError,
    r"COURSE_DEVICE='gpu'.*Unknown device",
)
if not torch.cuda.is_available():
    bad(V + "get_device", "cuda without CUDA", lambda: dev.get_device("cuda"), RuntimeError, r"CUDA is not available")
good(V + "get_device", "upper case and spaces", lambda: dev.get_device(" CPU "), lambda d: d == torch.device("cpu"))
bad(V + "describe_device", "unknown name", lambda: dev.describe_device("tpu"), ValueError, r"Unknown device 'tpu'")
good(V + "describe_device", "cpu", lambda: dev.describe_device("cpu"), lambda s: s.startswith("cpu ("))
bad(V + "synchronize", "unknown name", lambda: dev.synchronize("gpu"), ValueError, r"Unknown device 'gpu'")
bad(V + "synchronize", "a number", lambda: dev.synchronize(3), TypeError, r"str, torch.device or None, got int")
good(V + "synchronize", "cpu is a no-op", lambda: dev.synchronize("cpu"), lambda r: r is None)
bad(
    V + "model_device",
    "not a module",
    lambda: dev.model_device("model"),
    TypeError,
    r"model must be a torch.nn.Module, got str",
)
good(V + "model_device", "no parameters", lambda: dev.model_device(nn.ReLU()), lambda d: d == torch.device("cpu"))

# ============================================================================= distributed
# One process, no process group: every function must act as the identity / rank 0 of 1, or refuse its input.
# Runs of several processes are tests/test_distributed.py's.
DI = "distributed."
NO_TORCHRUN = {name: None for name in dst.ENV_VARS}  # unset torchrun's variables for a call (with_env)
TORCHRUN = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


def torchrun_env(**changes: str | None) -> dict[str, str]:
    """torchrun's variables for a run of one process, some changed (None: left out)."""
    return {k: v for k, v in {**TORCHRUN, **changes}.items() if v is not None}


def entered(make: Callable[[], Any]) -> Callable[[], Any]:
    """A call that enters the context manager ``make()`` and returns what ``with ... as`` gave."""

    def run() -> Any:
        with make() as value:
            return value

    return run


RE = DI + "read_env"
good(RE, "nothing set: a single process", lambda: dst.read_env({}), lambda r: r is None)
good(RE, "only blank values", lambda: dst.read_env({"RANK": " ", "WORLD_SIZE": ""}), lambda r: r is None)
bad(
    RE,
    "only RANK set",
    lambda: dst.read_env({"RANK": "0"}),
    ValueError,
    r"half set: RANK is set but WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT are not; start the processes "
    r"with torchrun",
)
bad(
    RE,
    "MASTER_PORT missing",
    lambda: dst.read_env(torchrun_env(MASTER_PORT=None)),
    ValueError,
    r"half set: .* but MASTER_PORT is not",
)
bad(
    RE,
    "RANK not an integer",
    lambda: dst.read_env(torchrun_env(RANK="zero")),
    ValueError,
    r"RANK='zero' is not an integer",
)
bad(RE, "RANK = WORLD_SIZE", lambda: dst.read_env(torchrun_env(RANK="1")), ValueError, r"RANK=1 must be in \[0, 0\]")
bad(RE, "WORLD_SIZE 0", lambda: dst.read_env(torchrun_env(WORLD_SIZE="0")), ValueError, r"WORLD_SIZE=0 must be >= 1")
bad(
    RE,
    "MASTER_PORT 70000",
    lambda: dst.read_env(torchrun_env(MASTER_PORT="70000")),
    ValueError,
    r"MASTER_PORT=70000 must be in \[1, 65535\]",
)
bad(RE, "environ a list", lambda: dst.read_env(["RANK=0"]), TypeError, r"environ must be a dict of variable names")
bad(
    RE,
    "an int value",
    lambda: dst.read_env({**TORCHRUN, "RANK": 0}),
    TypeError,
    r"environ\['RANK'\] must be a str, as environment variables are, got 0",
)
good(
    RE,
    "a full environment, spaces around",
    lambda: dst.read_env(torchrun_env(WORLD_SIZE="2", RANK=" 1 ")),
    lambda e: e == dst.DistEnv(1, 2, 0, "127.0.0.1", 29500),
)
good(RE, "os.environ by default", with_env(dst.read_env, **NO_TORCHRUN), lambda r: r is None)
good(
    DI + "DistEnv",
    "a plain frozen record",
    lambda: dst.DistEnv(0, 1, 0, "h", 1),
    lambda e: e.world_size == 1 and e.__dataclass_params__.frozen,
)
DC = DI + "DistContext"
CPU = torch.device("cpu")


def two_ranks() -> dst.DistContext:
    """The context rank 1 of 2 would have (built by hand: no process group is joined)."""
    return dst.DistContext(dst.DistEnv(1, 2, 1, "h", 1), "gloo", CPU)


good(DC, "single process", lambda: dst.DistContext(None, None, CPU), lambda c: c.env is None and c.backend is None)
good(
    DC + ".rank",
    "0 alone, 1 of 2",
    lambda: (dst.DistContext(None, None, CPU).rank, two_ranks().rank),
    lambda r: r == (0, 1),
)
good(
    DC + ".world_size",
    "1 alone, 2 of 2",
    lambda: (dst.DistContext(None, None, CPU).world_size, two_ranks().world_size),
    lambda r: r == (1, 2),
)
good(
    DC + ".local_rank",
    "0 alone, 1 of 2",
    lambda: (dst.DistContext(None, None, CPU).local_rank, two_ranks().local_rank),
    lambda r: r == (0, 1),
)
good(
    DC + ".is_main",
    "alone yes, rank 1 no",
    lambda: (dst.DistContext(None, None, CPU).is_main, two_ranks().is_main),
    lambda r: r == (True, False),
)
DB = DI + "default_backend"
bad(DB, "unknown device", lambda: dst.default_backend("gpu"), ValueError, r"Unknown device 'gpu'")
bad(DB, "None", lambda: dst.default_backend(None), TypeError, r"device must be a str or torch.device, got None")
good(
    DB,
    "nccl for CUDA, gloo for the CPU",
    lambda: (dst.default_backend("cuda:1"), dst.default_backend(CPU)),
    lambda r: r == ("nccl", "gloo"),
)
PD = DI + "pick_device"
bad(
    PD,
    "env a dict of variables",
    lambda: dst.pick_device(TORCHRUN),
    TypeError,
    r"env must be a DistEnv \(what read_env\(\) returns\) or None, got dict",
)
bad(PD, "unknown device", lambda: dst.pick_device(None, "gpu"), ValueError, r"Unknown device 'gpu'")
bad(PD, "mps under torchrun", lambda: dst.pick_device(dst.DistEnv(0, 2, 0, "h", 1), "mps"), RuntimeError, r"'mps'")
if not torch.cuda.is_available():
    bad(
        PD,
        "cuda without CUDA",
        lambda: dst.pick_device(dst.DistEnv(0, 2, 0, "h", 1), "cuda"),
        RuntimeError,
        r"CUDA is not available",
    )
good(PD, "a single process on the CPU", lambda: dst.pick_device(None, "cpu"), lambda d: d == CPU)
good(
    PD,
    "COURSE_DEVICE=cpu under torchrun",
    with_env(lambda: dst.pick_device(dst.DistEnv(0, 2, 0, "h", 1)), COURSE_DEVICE="cpu"),
    lambda d: d == CPU,
)
ID = DI + "init_distributed"
bad(
    ID,
    "half-set environment (RANK only)",
    with_env(dst.init_distributed, **{**NO_TORCHRUN, "RANK": "0"}),
    ValueError,
    r"half set: RANK is set but WORLD_SIZE",
)
bad(
    ID,
    "WORLD_SIZE 'two'",
    with_env(dst.init_distributed, **{**TORCHRUN, "WORLD_SIZE": "two"}),
    ValueError,
    r"WORLD_SIZE='two' is not an integer",
)
bad(
    ID,
    "nccl on the CPU",
    with_env(lambda: dst.init_distributed("cpu", backend="nccl"), **TORCHRUN),
    ValueError,
    r"the nccl backend needs CUDA devices, got cpu",
)
bad(
    ID,
    "backend 'mpi', even alone",
    with_env(lambda: dst.init_distributed("cpu", backend="mpi"), **NO_TORCHRUN),
    ValueError,
    r"backend must be 'gloo' \(CPU\), 'nccl' \(CUDA\) or None",
)
bad(
    ID,
    "timeout 0",
    with_env(lambda: dst.init_distributed("cpu", timeout=0), **NO_TORCHRUN),
    ValueError,
    r"timeout must be a positive number of seconds",
)
bad(
    ID,
    "timeout '600'",
    with_env(lambda: dst.init_distributed("cpu", timeout="600"), **NO_TORCHRUN),
    TypeError,
    r"timeout must be a finite number",
)
bad(
    ID,
    "unknown device",
    with_env(lambda: dst.init_distributed("gpu"), **NO_TORCHRUN),
    ValueError,
    r"Unknown device 'gpu'",
)
good(
    ID,
    "no torchrun variables: one process",
    with_env(lambda: dst.init_distributed("cpu"), **NO_TORCHRUN),
    lambda c: (c.env, c.backend, c.device, c.world_size) == (None, None, CPU, 1) and not dst.is_distributed(),
)
bad(
    DI + "distributed",
    "half-set environment",
    with_env(entered(dst.distributed), **{**NO_TORCHRUN, "WORLD_SIZE": "2"}),
    ValueError,
    r"half set: WORLD_SIZE is set but RANK",
)
good(
    DI + "distributed",
    "one process",
    with_env(entered(lambda: dst.distributed("cpu")), **NO_TORCHRUN),
    lambda c: c.rank == 0 and c.is_main and c.env is None,
)
good(
    DI + "destroy_distributed",
    "without a group, twice",
    lambda: (dst.destroy_distributed(), dst.destroy_distributed()),
    lambda r: r == (None, None),
)
good(DI + "is_distributed", "one process", dst.is_distributed, lambda r: r is False)
good(DI + "rank", "one process", dst.rank, lambda r: r == 0)
good(DI + "world_size", "one process", dst.world_size, lambda r: r == 1)
good(DI + "is_main_process", "one process", dst.is_main_process, lambda r: r is True)
good(DI + "barrier", "one process: returns at once", dst.barrier, lambda r: r is None)
AR = DI + "all_reduce_sum"
good(
    AR,
    "one process: the numbers, as floats",
    lambda: dst.all_reduce_sum((1, 2.5, np.float32(0.5))),
    lambda r: r == [1.0, 2.5, 0.5] and all(type(v) is float for v in r),
)
good(AR, "NaN is summed like the rest", lambda: dst.all_reduce_sum([float("nan")]), lambda r: r[0] != r[0])
good(AR, "empty list", lambda: dst.all_reduce_sum([]), lambda r: r == [])
bad(AR, "a single number", lambda: dst.all_reduce_sum(3.0), TypeError, r"values must be a list of numbers")
bad(AR, "a string", lambda: dst.all_reduce_sum("12"), TypeError, r"values must be a list of numbers")
bad(
    AR,
    "a tensor inside",
    lambda: dst.all_reduce_sum([torch.tensor(1.0)]),
    TypeError,
    r"values must be a list of numbers.*\.item\(\)",
)
bad(AR, "None inside", lambda: dst.all_reduce_sum([1.0, None]), TypeError, r"values must be a list of numbers")
good(
    DI + "gather_objects",
    "one process: [obj]",
    lambda: (dst.gather_objects({"a": 1}), dst.gather_objects(None)),
    lambda r: r == ([{"a": 1}], [None]),
)
RM = DI + "run_on_main"
bad(RM, "fn not callable", lambda: dst.run_on_main("load", "loading"), TypeError, r"fn must be callable, got 'load'")
bad(RM, "what not a str", lambda: dst.run_on_main(lambda: 1, 5), TypeError, r"what must be a str")
bad(
    RM,
    "fn's own error reaches the caller",
    lambda: dst.run_on_main(lambda: dst.read_env({"RANK": "0"}), "reading"),
    ValueError,
    r"half set",
)
good(RM, "fn's result", lambda: dst.run_on_main(lambda: 3, "counting"), lambda r: r == 3)
CA = DI + "check_all"
good(CA, "no error", lambda: dst.check_all(None, "saving"), lambda r: r is None)
bad(CA, "the error is raised", lambda: dst.check_all(OSError("disk full"), "saving"), OSError, r"disk full")
bad(
    CA,
    "error a string",
    lambda: dst.check_all("disk full", "saving"),
    TypeError,
    r"error must be an exception instance or None, got 'disk full'",
)
bad(CA, "error a class", lambda: dst.check_all(OSError, "saving"), TypeError, r"error must be an exception instance")
bad(CA, "what None", lambda: dst.check_all(None, None), TypeError, r"what must be a str")
OE = DI + "on_every_rank"
bad(OE, "fn not callable", lambda: dst.on_every_rank(None, "checking"), TypeError, r"fn must be callable, got None")
bad(OE, "what a number", lambda: dst.on_every_rank(lambda: 1, 3), TypeError, r"what must be a str")
bad(
    OE,
    "fn's own error reaches the caller",
    lambda: dst.on_every_rank(lambda: ckpt.check_writable(None), "checking"),
    TypeError,
    r"folder must be a folder path",
)
good(OE, "fn's result", lambda: dst.on_every_rank(lambda: 4, "counting"), lambda r: r == 4)
ES = DI + "epoch_shard"
good(
    ES,
    "one process: the whole epoch (None)",
    lambda: (dst.epoch_shard(10, even=True), dst.epoch_shard(np.int64(0), even=False)),
    lambda r: r == (None, None),
)
bad(ES, "n -1", lambda: dst.epoch_shard(-1, even=True), ValueError, r"n must be an integer >= 0")
bad(ES, "n 2.5", lambda: dst.epoch_shard(2.5, even=True), TypeError, r"n must be an integer")
bad(ES, "even 'yes'", lambda: dst.epoch_shard(4, even="yes"), TypeError, r"even must be True or False")
EP = DI + "explain_peer_failure"
good(
    EP,
    "one process: the error itself",
    lambda: (lambda e: (dst.explain_peer_failure(e, "in epoch 1"), e))(RuntimeError("Connection reset by peer")),
    lambda r: r[0] is r[1],
)
bad(
    EP,
    "err a string",
    lambda: dst.explain_peer_failure("timeout", "in epoch 1"),
    TypeError,
    r"err must be the exception caught, got 'timeout'",
)
bad(EP, "where None", lambda: dst.explain_peer_failure(RuntimeError("x"), None), TypeError, r"where must be a str")
good(
    DI + "DistributedRunError",
    "is a RuntimeError",
    lambda: dst.DistributedRunError("x"),
    lambda e: isinstance(e, RuntimeError),
)

# ============================================================================= epoch
E = "epoch."
good(E + "StepOutput", "loss only", lambda: ep.StepOutput(torch.tensor(1.0)), lambda s: s.size is None)
bad(
    E + "StepOutput",
    "negative size",
    lambda: ep.evaluate(linear(), batches(1), step=lambda m, b: ep.StepOutput(F.cross_entropy(m(b[0]), b[1]), size=-2)),
    ValueError,
    r"StepOutput.size .*must be a positive integer",
)
bad(
    E + "StepOutput",
    "loss a float",
    lambda: ep.evaluate(linear(), batches(1), step=lambda m, b: ep.StepOutput(1.0)),
    ValueError,
    r"the loss must be a scalar float tensor",
)
bad(
    E + "SupervisedStep",
    "loss_fn a string",
    lambda: ep.SupervisedStep("cross_entropy"),
    TypeError,
    r"loss_fn must be callable",
)
bad(
    E + "SupervisedStep",
    "batch not a pair",
    lambda: ep.SupervisedStep(F.cross_entropy)(linear(), torch.zeros(2, 4)),
    ValueError,
    r"each batch must be an \(inputs, targets\) pair",
)
good(
    E + "SupervisedStep",
    "one batch",
    lambda: ep.SupervisedStep(F.cross_entropy)(linear(), batches(1)[0]),
    lambda s: s.loss.dim() == 0 and s.outputs.shape == (4, 3),
)
AC = E + "accuracy"
bad(
    AC,
    "logits 1-D",
    lambda: ep.accuracy(torch.zeros(3), torch.zeros(3, dtype=torch.long)),
    ValueError,
    r"logits \(N, num_classes\) and targets \(N,\)",
)
bad(
    AC,
    "one-hot targets",
    lambda: ep.accuracy(torch.zeros(3, 2), torch.zeros(3, 2)),
    ValueError,
    r"logits \(N, num_classes\) and targets \(N,\)",
)
bad(
    AC,
    "logits a list",
    lambda: ep.accuracy([[0.1, 0.9]], torch.tensor([1])),
    TypeError,
    r"logits must be a torch.Tensor, got list",
)
bad(
    AC,
    "empty batch",
    lambda: ep.accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)),
    ValueError,
    r"no samples",
)
bad(
    AC,
    "target outside the classes",
    lambda: ep.accuracy(torch.zeros(2, 3), torch.tensor([0, 3])),
    ValueError,
    r"targets must be class indices in \[0, 3\)",
)
good(
    AC,
    "NaN logits give NaN",
    lambda: ep.accuracy(torch.tensor([[float("nan"), 0.0], [1.0, 0.0]]), torch.tensor([0, 0])),
    lambda a: bool(a.isnan()),
)
bad(AC, "on two devices", lambda: ep.accuracy(meta(2, 3), torch.tensor([0, 1])), ValueError, r"same device")
good(
    AC,
    "half right",
    lambda: ep.accuracy(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 1])),
    lambda a: float(a) == 0.5,
)
AD = E + "autocast_dtype"
bad(AD, "unknown device", lambda: ep.autocast_dtype("gpu"), ValueError, r"Unknown device 'gpu'")
good(AD, "cpu: float32", lambda: ep.autocast_dtype("cpu"), lambda d: d is None)
if torch.cuda.is_available():
    good(AD, "cuda", lambda: ep.autocast_dtype("cuda"), lambda d: d in (torch.float16, torch.bfloat16))
else:
    bad(
        AD,
        "cuda on a machine without one",
        lambda: ep.autocast_dtype("cuda"),
        RuntimeError,
        r"cannot ask cuda for its compute capability.*autocast_dtype\(get_device\(\)\)",
    )
bad(
    E + "describe_precision",
    "amp a string",
    lambda: ep.describe_precision("cpu", amp="no"),
    TypeError,
    r"amp must be True or False",
)
bad(E + "describe_precision", "unknown device", lambda: ep.describe_precision("gpu"), ValueError, r"Unknown device")
good(E + "describe_precision", "cpu", lambda: ep.describe_precision("cpu"), lambda s: s.startswith("float32"))
EV = E + "evaluate"
bad(
    EV,
    "model a string",
    lambda: ep.evaluate("model", batches(), F.cross_entropy),
    TypeError,
    r"model must be a torch.nn.Module, got str",
)
bad(
    EV,
    "loader None",
    lambda: ep.evaluate(linear(), None, F.cross_entropy),
    TypeError,
    r"loader must be an iterable of batches .*got None",
)
bad(EV, "empty loader", lambda: ep.evaluate(linear(), [], F.cross_entropy), ValueError, r"produced no batches")
bad(EV, "no loss", lambda: ep.evaluate(linear(), batches()), TypeError, r"missing the loss")
bad(
    EV,
    "loss_fn and step",
    lambda: ep.evaluate(linear(), batches(), F.cross_entropy, step=lambda m, b: 0),
    ValueError,
    r"not both",
)
bad(
    EV,
    "metrics a list",
    lambda: ep.evaluate(linear(), batches(), F.cross_entropy, metrics=[ep.accuracy]),
    TypeError,
    r"metrics must be a dict of name -> fn\(outputs, targets\)",
)
bad(
    EV,
    "a metric not callable",
    lambda: ep.evaluate(linear(), batches(), F.cross_entropy, metrics={"acc": "accuracy"}),
    TypeError,
    r"metrics\['acc'\] must be callable",
)
bad(
    EV,
    "loss per sample",
    lambda: ep.evaluate(linear(), batches(), lambda o, t: F.cross_entropy(o, t, reduction="none")),
    ValueError,
    r"the loss must be a scalar float tensor",
)
bad(
    EV,
    "unknown device",
    lambda: ep.evaluate(linear(), batches(), F.cross_entropy, device="gpu"),
    ValueError,
    r"Unknown device",
)
bad(
    EV,
    "batch of 3 tensors",
    lambda: ep.evaluate(linear(), [(torch.zeros(2, 4),) * 3], F.cross_entropy),
    ValueError,
    r"each batch must be an \(inputs, targets\) pair.* of length 3",
)
bad(
    EV,
    "amp a string",
    lambda: ep.evaluate(linear(), batches(), F.cross_entropy, amp="no"),
    TypeError,
    r"amp must be True or False",
)
good(
    EV,
    "sample-weighted mean",
    lambda: ep.evaluate(
        linear(),
        [batches(1)[0], (batches(1)[0][0][:2], batches(1)[0][1][:2])],
        F.cross_entropy,
        metrics={"acc": ep.accuracy},
    ),
    lambda r: set(r) == {"loss", "acc"} and r["loss"] > 0,
)
PR = E + "predict"
bad(PR, "empty loader", lambda: ep.predict(linear(), []), ValueError, r"produced no batches")
bad(PR, "model None", lambda: ep.predict(None, batches()), TypeError, r"model must be a torch.nn.Module, got NoneType")
bad(
    PR,
    "batches not pairs",
    lambda: ep.predict(linear(), [torch.zeros(2, 4)]),
    ValueError,
    r"each batch must be an \(inputs, targets\) pair",
)
bad(PR, "loader None", lambda: ep.predict(linear(), None), TypeError, r"loader must be an iterable of batches")
good(
    PR,
    "logits and targets",
    lambda: ep.predict(linear(), batches()),
    lambda r: r[0].shape == (8, 3) and r[0].dtype == torch.float32 and r[1].tolist() == [0, 1, 2, 0] * 2,
)
TE = E + "train_epoch"
bad(
    TE,
    "no optimizer",
    lambda: ep.train_epoch(linear(), batches(), F.cross_entropy),
    TypeError,
    r"needs optimizer=a torch.optim.Optimizer",
)
bad(
    TE,
    "optimizer as the 4th positional is the device slot",
    lambda: (lambda m: ep.train_epoch(m, batches(), F.cross_entropy, "cpu"))(linear()),
    TypeError,
    r"needs optimizer=a torch.optim.Optimizer, got str",
)
bad(
    TE,
    "loader None",
    lambda: (lambda m: ep.train_epoch(m, None, F.cross_entropy, sgd(m)))(linear()),
    TypeError,
    r"loader must be an iterable of batches",
)
bad(
    TE,
    "scheduler without step",
    lambda: (lambda m: ep.train_epoch(m, batches(), F.cross_entropy, sgd(m), scheduler="onecycle"))(linear()),
    TypeError,
    r"scheduler must have a step\(\) method",
)
bad(
    TE,
    "scaler a string",
    lambda: (lambda m: ep.train_epoch(m, batches(), F.cross_entropy, sgd(m), scaler="fp16"))(linear()),
    TypeError,
    r"scaler must be a torch.amp.GradScaler or None",
)
bad(
    TE,
    "amp_dtype int32",
    lambda: (lambda m: ep.train_epoch(m, batches(), F.cross_entropy, sgd(m), amp_dtype=torch.int32))(linear()),
    ValueError,
    r"amp_dtype must be torch.float16, torch.bfloat16 or None",
)
bad(
    TE,
    "on_losses not callable",
    lambda: (lambda m: ep.train_epoch(m, batches(), F.cross_entropy, sgd(m), on_losses=[]))(linear()),
    TypeError,
    r"on_losses must be callable",
)
bad(
    TE,
    "NaN inputs",
    lambda: (
        lambda m: ep.train_epoch(m, [(torch.full((2, 4), float("nan")), torch.tensor([0, 1]))], F.cross_entropy, sgd(m))
    )(linear()),
    FloatingPointError,
    r"loss became nan at step 1",
)
good(
    TE,
    "NaN loss leaves the weights untouched",
    lambda: (
        lambda m: (
            pytest.raises(
                FloatingPointError,
                ep.train_epoch,
                m,
                [(torch.full((2, 4), float("nan")), torch.tensor([0, 1]))],
                F.cross_entropy,
                sgd(m),
            ),
            m,
        )
    )(linear()),
    lambda r: torch.equal(r[1].weight, linear().weight),
)
good(
    TE,
    "one step",
    lambda: (lambda m: ep.train_epoch(m, batches(1), F.cross_entropy, sgd(m)))(linear()),
    lambda r: set(r) == {"loss"} and r["loss"] > 0,
)

# ============================================================================= exercises
X = "exercises."
bad(X + "check", "id a number", lambda: ex.check(5.1, 1), TypeError, r"exercise id must be a string such as '05.1'")
bad(X + "check", "malformed id", lambda: ex.check("5-1", 1), ValueError, r"an exercise id looks like '05.1'")
bad(X + "check", "unknown exercise", lambda: ex.check("05.99", 1), KeyError, r"no exercise '05.99'")
bad(
    X + "check",
    "inputs missing",
    lambda: ex.check("05.1", torch.zeros(3, 4)),
    TypeError,
    r"exercise 05.1 needs the inputs q, k, v",
)
good(
    X + "check",
    "not attempted",
    printed(lambda: ex.check("05.1", None, q=x3(3, 4), k=x3(3, 4), v=x3(3, 4))),
    lambda out: "not attempted yet" in out,
)
good(
    X + "check",
    "wrong shape answer",
    printed(lambda: ex.check("05.1", torch.zeros(2), q=x3(3, 4), k=x3(3, 4), v=x3(3, 4))),
    lambda out: "not yet right: expected shape (3, 4), got (2,)" in out,
)
good(
    X + "check",
    "NaN answer",
    printed(lambda: ex.check("05.1", torch.full((3, 4), float("nan")), q=x3(3, 4), k=x3(3, 4), v=x3(3, 4))),
    lambda out: "contains NaN" in out,
)
bad(X + "judge", "id None", lambda: ex.judge(None, 1), TypeError, r"exercise id must be a string")
good(
    X + "judge",
    "a string for a tensor answer",
    lambda: ex.judge("05.1", "tensor", q=x3(3, 4), k=x3(3, 4), v=x3(3, 4)),
    lambda r: r[0] is False and "expected a number or tensor" in r[1],
)
bad(X + "get_exercise", "id an int", lambda: ex.get_exercise(5), TypeError, r"exercise id must be a string")
bad(
    X + "get_exercise",
    "notebook without exercises",
    lambda: ex.get_exercise("98.1"),
    KeyError,
    r"no exercise '98.1'; notebook 98 has none registered",
)
good(X + "get_exercise", "a known one", lambda: ex.get_exercise("05.1"), lambda e: e.id == "05.1" and e.hints)
bad(X + "exercises_of", "unknown notebook", lambda: ex.exercises_of("98"), KeyError, r"notebook '98' has no exercises")
bad(
    X + "exercises_of",
    "notebook an int",
    lambda: ex.exercises_of(5),
    TypeError,
    r"notebook must be a string such as '05'",
)
good(
    X + "exercises_of",
    "in id order",
    lambda: ex.exercises_of("05"),
    lambda r: [e.id for e in r][:2] == ["05.1", "05.2"],
)
good(X + "Exercise", "a record", lambda: ex.Exercise("97.1", "t", "predict", lambda: 1), lambda e: e.atol == 1e-6)
good(
    X + "Exercise.label",
    "id and title",
    lambda: ex.Exercise("97.1", "Title", "predict", lambda: 1).label,
    lambda s: s == "[97.1 Title]",
)
bad(
    X + "exercise",
    "unknown kind",
    lambda: ex.exercise("97.1", title="t", kind="quiz"),
    ValueError,
    r"kind must be one of",
)
bad(
    X + "exercise",
    "malformed id",
    lambda: ex.exercise("97", title="t", kind="predict"),
    ValueError,
    r"an exercise id looks like",
)
bad(
    X + "exercise",
    "hints a single string",
    lambda: ex.exercise("97.1", title="t", kind="predict", hints="look up"),
    TypeError,
    r"hints must be a list of strings",
)
bad(
    X + "exercise",
    "negative atol",
    lambda: ex.exercise("97.1", title="t", kind="predict", atol=-1.0),
    ValueError,
    r"atol must be a finite number >= 0",
)
bad(
    X + "exercise",
    "compare not callable",
    lambda: ex.exercise("97.1", title="t", kind="predict", compare="=="),
    TypeError,
    r"compare must be callable",
)
bad(
    X + "compare_values",
    "rtol NaN",
    lambda: ex.compare_values(1.0, 1.0, rtol=float("nan")),
    ValueError,
    r"rtol must be a finite number >= 0",
)
good(
    X + "compare_values",
    "NaN never matches",
    lambda: ex.compare_values(float("nan"), float("nan")),
    lambda r: r == (False, "the answer contains NaN"),
)
good(
    X + "compare_values",
    "shape mismatch",
    lambda: ex.compare_values([1.0, 2.0], torch.ones(3)),
    lambda r: r[0] is False and "expected shape (3,)" in r[1],
)
good(X + "compare_values", "bool for a number", lambda: ex.compare_values(True, 1), lambda r: r[0] is False)

# ============================================================================= images
I = "images."
bad(
    I + "as_image_array",
    "a tensor",
    lambda: img.as_image_array(torch.zeros(1, 2, 2, 3, dtype=torch.uint8)),
    TypeError,
    r"must be a NumPy array .*got a torch.Tensor",
)
bad(I + "as_image_array", "floats", lambda: img.as_image_array(np.zeros((1, 2, 2, 3))), TypeError, r"must be uint8")
bad(
    I + "as_image_array",
    "2-D",
    lambda: img.as_image_array(np.zeros((2, 2), np.uint8)),
    ValueError,
    r"shape \(N, H, W\) or \(N, H, W, C\)",
)
bad(
    I + "as_image_array",
    "empty",
    lambda: img.as_image_array(np.zeros((0, 2, 2, 3), np.uint8)),
    ValueError,
    r"at least one image",
)
bad(
    I + "as_image_array",
    "channels first",
    lambda: img.as_image_array(np.zeros((2, 3, 8, 8), np.uint8)),
    ValueError,
    r"looks channels-first",
)
bad(I + "as_image_array", "a list", lambda: img.as_image_array([[1, 2]]), TypeError, r"NumPy uint8 array")
good(
    I + "as_image_array",
    "greyscale gets a channel",
    lambda: img.as_image_array(np.zeros((2, 4, 5), np.uint8)),
    lambda a: a.shape == (2, 4, 5, 1),
)
bad(
    I + "as_label_array",
    "float labels",
    lambda: img.as_label_array(np.array([0.0, 1.0]), 2),
    TypeError,
    r"integer class indices",
)
bad(
    I + "as_label_array",
    "NaN labels",
    lambda: img.as_label_array([0, float("nan")], 2),
    TypeError,
    r"integer class indices",
)
bad(
    I + "as_label_array",
    "wrong count",
    lambda: img.as_label_array([0, 1, 2], 2),
    ValueError,
    r"one class index per image",
)
bad(
    I + "as_label_array",
    "out of range",
    lambda: img.as_label_array([0, 3], 2, num_classes=3),
    ValueError,
    r"class indices in \[0, 3\)",
)
bad(I + "as_label_array", "negative", lambda: img.as_label_array([0, -1], 2), ValueError, r"class indices in >= 0")
bad(I + "as_label_array", "None", lambda: img.as_label_array(None, 2), ValueError, r"one class index per image")
bad(I + "as_label_array", "negative n", lambda: img.as_label_array([0], -1), ValueError, r"n must be an integer >= 0")
good(
    I + "as_label_array",
    "a tensor",
    lambda: img.as_label_array(torch.tensor([2, 0]), 2, 3),
    lambda a: a.dtype == np.int64 and a.tolist() == [2, 0],
)
CM = I + "check_mean_std"
bad(CM, "NaN mean", lambda: img.check_mean_std([float("nan")], [1.0]), ValueError, r"mean must be finite numbers")
bad(CM, "zero std", lambda: img.check_mean_std([0.5], [0.0]), ValueError, r"std must be positive")
bad(CM, "inf std", lambda: img.check_mean_std([0.5], [float("inf")]), ValueError, r"std must be finite numbers")
bad(
    CM,
    "two values for three channels",
    lambda: img.check_mean_std([0.5, 0.5], [0.2, 0.2], 3),
    ValueError,
    r"mean has 2 values but the images have 3 channel",
)
bad(CM, "a string", lambda: img.check_mean_std("0.5", [0.2]), TypeError, r"mean must be a sequence of floats")
bad(CM, "None", lambda: img.check_mean_std(None, None), TypeError, r"mean must be a sequence of floats")
bad(CM, "no channels", lambda: img.check_mean_std([], []), ValueError, r"at least one channel")
good(CM, "a tensor", lambda: img.check_mean_std(torch.tensor([0.5]), (0.25,)), lambda r: r == ((0.5,), (0.25,)))
CH = I + "channel_mean_std"
bad(CH, "floats", lambda: img.channel_mean_std(np.zeros((1, 2, 2, 3))), TypeError, r"must be uint8")
bad(CH, "chunk 0", lambda: img.channel_mean_std(images_u8(2), chunk=0), ValueError, r"chunk must be an integer >= 1")
good(
    CH,
    "exact values",
    lambda: img.channel_mean_std(np.array([[[[0], [255]]]], np.uint8)),
    lambda r: r == ((0.5,), (0.5,)),
)
SS = I + "seeded_split"
bad(SS, "n 0", lambda: img.seeded_split(0, [0]), ValueError, r"n must be an integer >= 1")
bad(SS, "sizes too large", lambda: img.seeded_split(3, [2, 2]), ValueError, r"add up to 4, more than the 3")
bad(SS, "negative size", lambda: img.seeded_split(3, [-1]), ValueError, r"each split size must be an integer >= 0")
bad(SS, "sizes a string", lambda: img.seeded_split(3, "12"), TypeError, r"sizes must be a sequence")
bad(SS, "float n", lambda: img.seeded_split(3.0, [1]), TypeError, r"n must be an integer")
good(
    SS,
    "disjoint and sorted",
    lambda: img.seeded_split(10, [3, 7], seed=1),
    lambda r: sorted(np.concatenate(r).tolist()) == list(range(10)) and all((np.diff(a) > 0).all() for a in r),
)
IS = I + "ImageSplits"
pair = (images_u8(4), labels_of(4))
bad(IS, "no classes", lambda: img.ImageSplits(pair, pair, pair, []), TypeError, r"classes must be a non-empty sequence")
bad(IS, "classes a string", lambda: img.ImageSplits(pair, pair, pair, "abc"), TypeError, r"classes must be a non-empty")
bad(IS, "duplicate classes", lambda: img.ImageSplits(pair, pair, pair, ["a", "a", "b"]), ValueError, r"distinct")
bad(
    IS,
    "a split not a pair",
    lambda: img.ImageSplits(pair, images_u8(4), pair, ["a", "b", "c"]),
    TypeError,
    r"val must be an \(images, labels\) pair",
)
bad(
    IS,
    "sizes differ",
    lambda: img.ImageSplits(pair, (images_u8(4, 6, 6), labels_of(4)), pair, ["a", "b", "c"]),
    ValueError,
    r"val images are \(6, 6, 3\) \(H, W, C\) but train images are \(8, 8, 3\)",
)
bad(
    IS,
    "label beyond the classes",
    lambda: img.ImageSplits(pair, pair, pair, ["a", "b"]),
    ValueError,
    r"train labels must be class indices in \[0, 2\)",
)
bad(
    IS,
    "mean without std",
    lambda: img.ImageSplits(pair, pair, pair, ["a", "b", "c"], mean=(0.5,) * 3),
    ValueError,
    r"give both mean and std",
)
bad(
    IS,
    "synthetic='no'",
    lambda: img.ImageSplits(pair, pair, pair, ["a", "b", "c"], synthetic="no"),
    TypeError,
    r"synthetic must be True or False",
)
good(
    IS,
    "given stats kept",
    lambda: img.ImageSplits(pair, pair, pair, ["a", "b", "c"], mean=(0.5,) * 3, std=(0.2,) * 3),
    lambda d: d.mean == (0.5,) * 3 and d.stats_given,
)
FA = IS + ".from_arrays"
bad(
    FA,
    "val_size 1.5",
    lambda: img.ImageSplits.from_arrays(images_u8(), labels_of(), ["a", "b", "c"], val_size=1.5),
    ValueError,
    r"val_size as a fraction must be in \(0, 1\)",
)
bad(
    FA,
    "test_size 0",
    lambda: img.ImageSplits.from_arrays(images_u8(), labels_of(), ["a", "b", "c"], test_size=0),
    ValueError,
    r"test_size must be an integer >= 1",
)
bad(
    FA,
    "val_size NaN",
    lambda: img.ImageSplits.from_arrays(images_u8(), labels_of(), ["a", "b", "c"], val_size=float("nan")),
    ValueError,
    r"val_size as a fraction",
)
bad(
    FA,
    "nothing left to train",
    lambda: img.ImageSplits.from_arrays(images_u8(3), labels_of(3), ["a", "b", "c"], val_size=1, test_size=2),
    ValueError,
    r"leave some for training",
)
bad(
    FA,
    "labels one short",
    lambda: img.ImageSplits.from_arrays(images_u8(), labels_of(11), ["a", "b", "c"]),
    ValueError,
    r"one class index per image, shape \(12,\)",
)
good(
    FA,
    "sizes add up",
    lambda: img.ImageSplits.from_arrays(images_u8(), labels_of(), ["a", "b", "c"], val_size=0.25, test_size=2),
    lambda d: (len(d.train_labels), len(d.val_labels), len(d.test_labels)) == (7, 3, 2),
)
bad(
    IS + ".arrays",
    "unknown split",
    lambda: splits().arrays("training"),
    ValueError,
    r"split must be 'train', 'val' or 'test', got 'training'",
)
good(IS + ".arrays", "train", lambda: splits().arrays("train"), lambda r: r[0].shape == (8, 8, 8, 3))
bad(
    IS + ".tensors", "split None", lambda: splits().tensors(None), ValueError, r"split must be 'train', 'val' or 'test'"
)
good(
    IS + ".tensors",
    "channels first",
    lambda: splits().tensors("val"),
    lambda r: r[0].shape == (2, 3, 8, 8) and r[0].dtype == torch.uint8 and r[1].dtype == torch.int64,
)
bad(
    IS + ".dataset",
    "transform a string",
    lambda: splits().dataset("test", transform="ToTensor"),
    TypeError,
    r"transform must be callable",
)
good(
    IS + ".dataset",
    "PIL images",
    lambda: splits().dataset("test")[0],
    lambda r: r[0].size == (8, 8) and r[1] in (0, 1, 2),
)
good(IS + ".describe", "one line", lambda: splits().describe(), lambda s: "train 8, validation 2, test 2" in s)
good(IS + ".image_shape", "(H, W, C)", lambda: splits().image_shape, lambda r: r == (8, 8, 3))
good(IS + ".channels", "3", lambda: splits().channels, lambda r: r == 3)
good(
    IS + ".mean",
    "measured on train",
    lambda: splits().mean,
    lambda r: close(r, img.channel_mean_std(splits().train_images)[0]),
)
good(
    IS + ".std",
    "measured on train",
    lambda: splits().std,
    lambda r: close(r, img.channel_mean_std(splits().train_images)[1]),
)
good(IS + ".tag", "real data: no tag", lambda: splits().tag, lambda r: r == "")
AI = I + "ArrayImageDataset"
bad(
    AI,
    "transform a string",
    lambda: img.ArrayImageDataset(images_u8(2), [0, 1], transform="x"),
    TypeError,
    r"transform must be callable",
)
bad(
    AI,
    "label beyond classes",
    lambda: img.ArrayImageDataset(images_u8(2), [0, 2], classes=["a", "b"]),
    ValueError,
    r"class indices in \[0, 2\)",
)
bad(AI, "float images", lambda: img.ArrayImageDataset(np.zeros((2, 2, 2, 3)), [0, 1]), TypeError, r"must be uint8")
bad(
    AI + ".image",
    "index out of range",
    lambda: img.ArrayImageDataset(images_u8(2), [0, 1]).image(5),
    IndexError,
    r"index 5 is out of range for 2 images",
)
bad(
    AI + ".image",
    "index a string",
    lambda: img.ArrayImageDataset(images_u8(2), [0, 1]).image("0"),
    TypeError,
    r"index must be an integer",
)
good(
    AI + ".image",
    "negative index counts from the end",
    lambda: img.ArrayImageDataset(images_u8(2), [0, 1]).image(-1),
    lambda im: np.array_equal(np.asarray(im), images_u8(2)[1]),
)
good(
    AI,
    "five channels served as arrays",
    lambda: img.ArrayImageDataset(images_u8(2, c=5), [0, 1])[1],
    lambda r: isinstance(r[0], np.ndarray) and r[0].shape == (8, 8, 5) and r[1] == 1,
)
DA = I + "dataset_to_arrays"
bad(
    DA,
    "channels 2",
    lambda: img.dataset_to_arrays([], channels=2),
    ValueError,
    r"channels must be 1 \(greyscale\) or 3",
)
bad(DA, "size 0", lambda: img.dataset_to_arrays([], size=(0, 4)), ValueError, r"size \(H\) must be an integer >= 1")
bad(DA, "size a string", lambda: img.dataset_to_arrays([], size="32"), TypeError, r"size \(H\) must be an integer")
bad(DA, "empty dataset", lambda: img.dataset_to_arrays([]), ValueError, r"the dataset is empty")
bad(
    DA,
    "tensors instead of images",
    lambda: img.dataset_to_arrays([(torch.zeros(3, 4, 4), 0)]),
    TypeError,
    r"not a PIL image: create the dataset without a transform",
)
bad(
    DA,
    "items not pairs",
    lambda: img.dataset_to_arrays([images_u8(1)[0]]),
    TypeError,
    r"must be an \(image, label\) pair",
)
bad(
    DA,
    "a float label",
    lambda: img.dataset_to_arrays([(images_u8(1)[0], 0.5)]),
    TypeError,
    r"the label of item 0 must be an integer",
)
bad(
    DA,
    "sizes differ",
    lambda: img.dataset_to_arrays([(images_u8(1)[0], 0), (images_u8(1, 4, 4)[0], 1)]),
    ValueError,
    r"pass size=\(H, W\)",
)
good(
    DA,
    "greyscale resize",
    lambda: img.dataset_to_arrays([(images_u8(1)[0], 1)], size=4, channels=1),
    lambda r: r[0].shape == (1, 4, 4, 1) and r[1].tolist() == [1],
)

# ============================================================================= launch
# Every refusal comes before a process starts; the one real launch (fork, one process) is test_distributed's.
LA = "launch."


def one() -> int:
    return 1


def from_main() -> int:
    return 1


from_main.__module__ = "__main__"  # as if defined in a notebook: a spawned process could not import it

LN = LA + "launch"
bad(LN, "nprocs 0", lambda: lch.launch(one, 0), ValueError, r"nprocs must be a positive integer")
bad(LN, "nprocs '2'", lambda: lch.launch(one, "2"), TypeError, r"nprocs must be a positive integer")
bad(LN, "nprocs True", lambda: lch.launch(one, True), TypeError, r"nprocs must be a positive integer")
bad(LN, "fn a string", lambda: lch.launch("train", 1), TypeError, r"fn must be callable, got 'train'")
bad(LN, "args a single value", lambda: lch.launch(one, 1, 5), TypeError, r"args must be a tuple")
bad(LN, "timeout 0", lambda: lch.launch(one, 1, timeout=0), ValueError, r"timeout must be a positive number")
bad(LN, "timeout '60'", lambda: lch.launch(one, 1, timeout="60"), TypeError, r"timeout must be a finite number")
bad(LN, "negative grace", lambda: lch.launch(one, 1, grace=-1), ValueError, r"grace must be a finite number >= 0")
bad(LN, "threads 0", lambda: lch.launch(one, 1, threads=0), ValueError, r"threads must be a positive integer")
bad(
    LN,
    "start_method 'thread'",
    lambda: lch.launch(one, 1, start_method="thread"),
    ValueError,
    r"start_method must be one of \[.*'spawn'.*\] or None, got 'thread'",
)
bad(
    LN,
    "env with an int value",
    lambda: lch.launch(one, 1, env={"SEED": 1}),
    TypeError,
    r"env must map str names to str values, got 'SEED': 1",
)
bad(LN, "env a list", lambda: lch.launch(one, 1, env=["SEED=1"]), TypeError, r"env must be a dict of variable names")
bad(
    LN,
    "spawn with a function from __main__",
    lambda: lch.launch(from_main, 1, start_method="spawn"),
    ValueError,
    r"'from_main' is defined in __main__ .*move it into a .py module",
)
good(LA + "RankResult", "a plain record", lambda: lch.RankResult(0, 7, ""), lambda r: (r.rank, r.value) == (0, 7))
good(
    LA + "LaunchError",
    "a RuntimeError with every rank's fate",
    lambda: lch.LaunchError("1 of 2 processes failed", [0, 1], ["", "Traceback ..."], ["", ""]),
    lambda e: isinstance(e, RuntimeError) and e.exitcodes == [0, 1] and str(e) == "1 of 2 processes failed",
)
good(
    LA + "default_start_method",
    "one this system has",
    lch.default_start_method,
    lambda m: m in multiprocessing.get_all_start_methods() and (m == "fork" or not sys.platform.startswith("linux")),
)
good(
    LA + "free_port",
    "a port that can be bound",
    lch.free_port,
    lambda p: 1 <= p <= 65535 and (lambda s: (s.bind(("127.0.0.1", p)), s.close()))(socket.socket()) is not None,
)

# ============================================================================= loaders
L = "loaders."
u8 = torch.from_numpy(images_u8(6)).permute(0, 3, 1, 2).contiguous()  # (6, 3, 8, 8)
y6 = torch.from_numpy(labels_of(6))
DL = L + "DeviceLoader"
bad(DL, "float images", lambda: ld.DeviceLoader(u8.float(), y6, batch_size=2), TypeError, r"images must be uint8")
bad(
    DL,
    "images a numpy array",
    lambda: ld.DeviceLoader(images_u8(6), y6, batch_size=2),
    TypeError,
    r"images must be a torch.Tensor",
)
bad(DL, "5-D images", lambda: ld.DeviceLoader(u8[None], y6, batch_size=2), ValueError, r"images must have 4 dimensions")
bad(DL, "no images", lambda: ld.DeviceLoader(u8[:0], y6[:0], batch_size=2), ValueError, r"images is empty")
bad(DL, "float labels", lambda: ld.DeviceLoader(u8, y6.float(), batch_size=2), TypeError, r"labels must be integer")
bad(
    DL,
    "negative label",
    lambda: ld.DeviceLoader(u8, y6 - 1, batch_size=2),
    ValueError,
    r"labels must be class indices >= 0",
)
bad(
    DL,
    "labels one short",
    lambda: ld.DeviceLoader(u8, y6[:5], batch_size=2),
    ValueError,
    r"labels must have size 6 in dimension 0",
)
bad(DL, "batch_size 0", lambda: ld.DeviceLoader(u8, y6, batch_size=0), ValueError, r"batch_size must be a positive")
bad(
    DL,
    "shuffle a string",
    lambda: ld.DeviceLoader(u8, y6, batch_size=2, shuffle="yes"),
    TypeError,
    r"shuffle must be True or False",
)
bad(
    DL,
    "crop larger than the images",
    lambda: ld.DeviceLoader(u8, y6, batch_size=2, augment=aug.Augmentation(8)),
    ValueError,
    r"crop_padding=8 is too large for 8x8 images",
)
bad(
    DL,
    "mean without std",
    lambda: ld.DeviceLoader(u8, y6, batch_size=2, mean=(0.5,) * 3),
    ValueError,
    r"give both mean and std",
)
bad(
    DL,
    "NaN std",
    lambda: ld.DeviceLoader(u8, y6, batch_size=2, mean=(0.5,) * 3, std=(float("nan"),) * 3),
    ValueError,
    r"std must be finite",
)
bad(DL, "unknown device", lambda: ld.DeviceLoader(u8, y6, batch_size=2, device="gpu"), ValueError, r"Unknown device")
bad(
    DL,
    "negative seed",
    lambda: ld.DeviceLoader(u8, y6, batch_size=2, seed=-1),
    ValueError,
    r"seed must be an integer >= 0",
)
good(DL, "drop_last", lambda: len(ld.DeviceLoader(u8, y6, batch_size=4, drop_last=True)), lambda r: r == 1)
good(
    DL,
    "greyscale (N, H, W)",
    lambda: next(iter(ld.DeviceLoader(u8[:, 0], y6, batch_size=4))),
    lambda r: r[0].shape == (4, 1, 8, 8) and r[0].dtype == torch.float32,
)
DN = DL + ".normalize"
bad(
    DN,
    "float images",
    lambda: ld.DeviceLoader(u8, y6, batch_size=2).normalize(u8.float()),
    TypeError,
    r"images must be uint8",
)
bad(
    DN,
    "one channel for three",
    lambda: ld.DeviceLoader(u8, y6, batch_size=2).normalize(u8[:, :1]),
    ValueError,
    r"images must have size 3 in dimension 1",
)
good(
    DN,
    "(x / 255 - mean) / std",
    lambda: ld.DeviceLoader(u8, y6, batch_size=2, mean=(0.5,) * 3, std=(0.5,) * 3).normalize(
        torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)
    ),
    lambda r: torch.equal(r, torch.ones(1, 3, 1, 1)),
)
ES = L + "EpochSampler"
bad(
    ES,
    "n 0",
    lambda: ld.EpochSampler(0, shuffle=True, augmentation=aug.Augmentation(), generator=G()),
    ValueError,
    r"n must be an integer >= 1",
)
bad(
    ES,
    "no generator",
    lambda: ld.EpochSampler(4, shuffle=True, augmentation=aug.Augmentation(), generator=None),
    TypeError,
    r"generator must be a torch.Generator",
)
bad(
    ES,
    "shuffle None",
    lambda: ld.EpochSampler(4, shuffle=None, augmentation=aug.Augmentation(), generator=G()),
    TypeError,
    r"shuffle must be True or False",
)
good(
    ES,
    "keys without augmentation",
    lambda: list(ld.EpochSampler(3, shuffle=False, augmentation=aug.Augmentation(), generator=G())),
    lambda r: r == [(0, 0, 0, False), (1, 0, 0, False), (2, 0, 0, False)],
)
AU = L + "AugmentedImages"
bad(
    AU,
    "std of zero",
    lambda: ld.AugmentedImages(splits().dataset("train"), (0.5,) * 3, (0.0,) * 3, aug.Augmentation()),
    ValueError,
    r"std must be positive",
)
bad(
    AU,
    "augmentation True",
    lambda: ld.AugmentedImages(splits().dataset("train"), (0.5,) * 3, (0.5,) * 3, "crop"),
    TypeError,
    r"augment must be True, False or an Augmentation",
)
bad(
    AU,
    "images an int",
    lambda: ld.AugmentedImages(5, (0.5,) * 3, (0.5,) * 3, aug.Augmentation()),
    TypeError,
    r"images must be a Dataset of \(image, label\)",
)
good(
    AU,
    "plain index: no augmentation",
    lambda: ld.AugmentedImages(splits().dataset("train"), (0.0,) * 3, (1.0,) * 3, aug.Augmentation(2, True))[0],
    lambda r: torch.allclose(r[0], torch.from_numpy(splits().train_images[0]).permute(2, 0, 1).float() / 255),
)
IT = L + "image_transforms"
bad(
    IT,
    "crop without image_size",
    lambda: ld.image_transforms((0.5,), (0.5,), augment=True),
    ValueError,
    r"a random crop needs image_size=\(H, W\)",
)
bad(
    IT,
    "image_size an int",
    lambda: ld.image_transforms((0.5,), (0.5,), augment=True, image_size=32),
    TypeError,
    r"image_size must be an \(H, W\) pair",
)
bad(
    IT,
    "image_size with a zero",
    lambda: ld.image_transforms((0.5,), (0.5,), augment=True, image_size=(0, 32)),
    ValueError,
    r"height must be a positive integer",
)
bad(IT, "mean None", lambda: ld.image_transforms(None, None), TypeError, r"mean must be a sequence of floats")
good(IT, "eval pipeline", lambda: ld.image_transforms((0.5,), (0.5,)), lambda t: len(t.transforms) == 2)
MD = L + "make_dataloaders"
bad(
    MD,
    "data a tuple of arrays",
    lambda: ld.make_dataloaders((images_u8(), labels_of()), 4),
    TypeError,
    r"data must be an ImageSplits",
)
bad(MD, "batch_size 0", lambda: ld.make_dataloaders(splits(), 0), ValueError, r"batch_size must be a positive integer")
bad(
    MD,
    "negative workers",
    lambda: ld.make_dataloaders(splits(), 4, num_workers=-1),
    ValueError,
    r"num_workers must be an integer >= 0",
)
bad(MD, "unknown device", lambda: ld.make_dataloaders(splits(), 4, device="gpu"), ValueError, r"Unknown device")
bad(
    MD,
    "eval_batch_size 0",
    lambda: ld.make_dataloaders(splits(), 4, eval_batch_size=0),
    ValueError,
    r"eval_batch_size must be a positive",
)
good(MD, "three loaders", lambda: ld.make_dataloaders(splits(), 4), lambda r: [len(x.dataset) for x in r] == [8, 2, 2])
MV = L + "make_device_loaders"
bad(
    MV,
    "augment a string",
    lambda: ld.make_device_loaders(splits(), 4, augment="flip"),
    TypeError,
    r"augment must be True, False or an Augmentation",
)
bad(
    MV,
    "four means for three channels",
    lambda: ld.make_device_loaders(splits(), 4, mean=(0.5,) * 4, std=(0.5,) * 4),
    ValueError,
    r"mean has 4 values but the images have 3 channel",
)
bad(MV, "seed a float", lambda: ld.make_device_loaders(splits(), 4, seed=0.5), TypeError, r"seed must be an integer")
good(
    MV,
    "same batches as the classic path",
    lambda: (
        next(iter(ld.make_device_loaders(splits(), 4, augment=True)[0])),
        next(iter(ld.make_dataloaders(splits(), 4, augment=True)[0])),
    ),
    lambda r: torch.allclose(r[0][0], r[1][0], atol=1e-6) and torch.equal(r[0][1], r[1][1]),
)

# ============================================================================= memory
bad(
    "memory.peak_memory",
    "fn not callable",
    lambda: mem.peak_memory(torch.zeros(3), "cpu"),
    TypeError,
    r"fn must be callable",
)
bad(
    "memory.peak_memory",
    "unknown device",
    lambda: mem.peak_memory(lambda: None, "gpu"),
    ValueError,
    r"Unknown device 'gpu'",
)
bad(
    "memory.peak_memory",
    "meta device",
    lambda: mem.peak_memory(lambda: None, "meta"),
    ValueError,
    r"Unknown device 'meta'|peak memory can be measured on 'cpu' or a CUDA device",
)
bad(
    "memory.peak_memory",
    "mps (no peak counter)",
    lambda: mem.peak_memory(lambda: None, "mps"),
    ValueError,
    r"peak memory can be measured on 'cpu' or a CUDA device, not 'mps'",
)
if not torch.cuda.is_available():
    bad(
        "memory.peak_memory",
        "cuda without CUDA",
        lambda: mem.peak_memory(lambda: None, "cuda"),
        RuntimeError,
        r"CUDA is not available",
    )

# ============================================================================= mode
bad(
    "mode.env_flag",
    "unknown value",
    with_env(lambda: md.env_flag("COURSE_X_TEST"), COURSE_X_TEST="maybe"),
    ValueError,
    r"COURSE_X_TEST='maybe' is not understood",
)
bad("mode.env_flag", "name None", lambda: md.env_flag(None), TypeError, r"name must be an environment variable name")
good(
    "mode.env_flag",
    "spaces and case",
    with_env(lambda: md.env_flag("COURSE_X_TEST"), COURSE_X_TEST=" Yes "),
    lambda r: r is True,
)
good("mode.env_flag", "unset", with_env(lambda: md.env_flag("COURSE_X_TEST"), COURSE_X_TEST=None), lambda r: r is False)
bad("mode.fast_mode", "COURSE_FAST=2", with_env(md.fast_mode, COURSE_FAST="2"), ValueError, r"COURSE_FAST='2'")
good("mode.fast_mode", "COURSE_FAST=off", with_env(md.fast_mode, COURSE_FAST="off"), lambda r: r is False)
bad(
    "mode.by_mode",
    "COURSE_FAST=fast",
    with_env(lambda: md.by_mode(10, 1), COURSE_FAST="fast"),
    ValueError,
    r"COURSE_FAST='fast' is not understood",
)
good("mode.by_mode", "fast", with_env(lambda: md.by_mode(full=10, fast=1), COURSE_FAST="1"), lambda r: r == 1)
bad("mode.describe_mode", "COURSE_FAST=-1", with_env(md.describe_mode, COURSE_FAST="-1"), ValueError, r"COURSE_FAST")
good("mode.describe_mode", "full", with_env(md.describe_mode, COURSE_FAST="0"), lambda s: s.startswith("FULL mode"))

# ============================================================================= notebook
bad(
    "notebook.setup_notebook",
    "negative seed",
    lambda: nbk.setup_notebook(-1),
    ValueError,
    r"seed must be in \[0, 2\*\*32\)",
)
bad(
    "notebook.setup_notebook",
    "unknown device",
    lambda: nbk.setup_notebook(0, device="gpu"),
    ValueError,
    r"Unknown device 'gpu'",
)
bad(
    "notebook.setup_notebook",
    "deterministic a string",
    lambda: nbk.setup_notebook(0, deterministic="no"),
    TypeError,
    r"deterministic must be True or False",
)


def _setup_cpu() -> Any:
    with matplotlib.rc_context():  # setup_notebook sets figure defaults: keep them out of the other tests
        return nbk.setup_notebook(0, device="cpu")


good(
    "notebook.setup_notebook", "cpu", printed(_setup_cpu), lambda out: out.startswith("device: cpu") and "mode:" in out
)

# ============================================================================= number_words
W = "number_words."
bad(W + "number_to_words", "1000", lambda: nw.number_to_words(1000), ValueError, r"n must be in \[0, 999\], got 1000")
bad(W + "number_to_words", "-1", lambda: nw.number_to_words(-1), ValueError, r"n must be in \[0, 999\]")
bad(W + "number_to_words", "3.0", lambda: nw.number_to_words(3.0), TypeError, r"n must be an int")
bad(W + "number_to_words", "True", lambda: nw.number_to_words(True), TypeError, r"n must be an int")
bad(W + "number_to_words", "'7'", lambda: nw.number_to_words("7"), TypeError, r"n must be an int")
good(
    W + "number_to_words",
    "numpy integer",
    lambda: nw.number_to_words(np.int64(342)),
    lambda r: r == ["three", "hundred", "forty", "two"],
)
bad(W + "encode_source", "None", lambda: nw.encode_source(None), TypeError, r"n must be an int")
good(W + "encode_source", "0", lambda: nw.encode_source(0), lambda r: r == [1])
bad(W + "encode_target", "NaN", lambda: nw.encode_target(float("nan")), TypeError, r"n must be an int")
good(W + "encode_target", "seven", lambda: nw.encode_target(7), lambda r: r == [nw.TGT_INDEX["seven"], nw.EOS_ID])
CT = W + "check_token_ids"
bad(CT, "float ids", lambda: nw.check_token_ids(torch.zeros(2), 5, "ids"), TypeError, r"ids must be an integer tensor")
bad(
    CT,
    "a list",
    lambda: nw.check_token_ids([1, 2], 5, "ids"),
    TypeError,
    r"ids must be an integer tensor of token ids, got list",
)
bad(
    CT,
    "out of vocab",
    lambda: nw.check_token_ids(torch.tensor([0, 5]), 5, "ids"),
    ValueError,
    r"outside the vocabulary \[0, 5\): min 0, max 5",
)
bad(CT, "negative id", lambda: nw.check_token_ids(torch.tensor([-1]), 5, "ids"), ValueError, r"outside the vocabulary")
bad(
    CT,
    "vocab_size 0",
    lambda: nw.check_token_ids(torch.tensor([0]), 0, "ids"),
    ValueError,
    r"vocab_size must be a positive integer",
)
good(CT, "empty ids", lambda: nw.check_token_ids(torch.zeros(0, dtype=torch.long), 5, "ids"), lambda r: r.numel() == 0)
DT = W + "decode_target"
bad(DT, "[-1]", lambda: nw.decode_target([-1]), ValueError, r"token id -1 is outside the target vocabulary \[0, 32\)")
bad(DT, "id 32", lambda: nw.decode_target(torch.tensor([32])), ValueError, r"outside the vocabulary \[0, 32\)")
bad(DT, "2-D tensor", lambda: nw.decode_target(torch.zeros(2, 2, dtype=torch.long)), TypeError, r"1-D tensor")
bad(DT, "float ids", lambda: nw.decode_target([1.0]), TypeError, r"integer token ids")
bad(DT, "None", lambda: nw.decode_target(None), TypeError, r"ids must be a sequence of token ids")
bad(DT, "strip a string", lambda: nw.decode_target([3], strip="no"), TypeError, r"strip must be True or False")
good(DT, "numpy ids", lambda: nw.decode_target(np.array([5, 2, 9])), lambda s: s == "two")
good(DT, "empty", lambda: nw.decode_target([]), lambda s: s == "")
MB = W + "make_batch"
bad(MB, "empty", lambda: nw.make_batch([]), ValueError, r"at least one number")
bad(MB, "1000", lambda: nw.make_batch([1, 1000]), ValueError, r"n must be in \[0, 999\]")
bad(MB, "a string number", lambda: nw.make_batch(["5"]), TypeError, r"n must be an int")
bad(MB, "a float number", lambda: nw.make_batch([3.7]), TypeError, r"n must be an int")
bad(MB, "unknown device", lambda: nw.make_batch([1], device="gpu"), ValueError, r"Unknown device")
good(
    MB,
    "a tensor of numbers",
    lambda: nw.make_batch(torch.tensor([7, 342])),
    lambda r: r[0].tolist() == [[0, 0, 8], [4, 5, 3]] and r[2][0].tolist()[:2] == [nw.TGT_INDEX["seven"], nw.EOS_ID],
)
SN = W + "split_numbers"
bad(SN, "n_val 0", lambda: nw.split_numbers(0), ValueError, r"n_val must be a positive integer")
bad(SN, "n_val too large", lambda: nw.split_numbers(980), ValueError, r"n_val must be below 980")
bad(SN, "seed a string", lambda: nw.split_numbers(10, seed="a"), TypeError, r"seed must be an integer")
bad(SN, "negative seed", lambda: nw.split_numbers(10, seed=-1), ValueError, r"seed must be an integer >= 0")
good(
    SN,
    "disjoint, 0-19 in training",
    lambda: nw.split_numbers(10, seed=3),
    lambda r: not set(r[0]) & set(r[1]) and len(r[0]) + len(r[1]) == 1000 and set(range(20)) <= set(r[0]),
)
NB = W + "NumberBatches"
bad(NB, "no numbers", lambda: nw.NumberBatches([]), ValueError, r"at least one number")
bad(NB, "numbers an int", lambda: nw.NumberBatches(5), TypeError, r"numbers must be a sequence of numbers 0-999")
bad(NB, "batch_size 0", lambda: nw.NumberBatches([1, 2], 0), ValueError, r"batch_size must be a positive")
bad(NB, "shuffle a string", lambda: nw.NumberBatches([1, 2], shuffle="no"), TypeError, r"shuffle must be True or False")
bad(NB, "seed a float", lambda: nw.NumberBatches([1, 2], seed=0.5), TypeError, r"seed must be an integer")
good(
    NB,
    "every number once",
    lambda: list(nw.NumberBatches(list(range(5)), 2, seed=1)),
    lambda r: len(r) == 3 and sorted(torch.cat([b[0] for b in r]).tolist()) == nw.make_batch(range(5))[0].tolist(),
)
ST = W + "Seq2SeqTransformer"
bad(
    ST,
    "d_model not divisible by heads",
    lambda: nw.Seq2SeqTransformer(d_model=10, num_heads=4),
    ValueError,
    r"d_model \(10\) must be divisible by num_heads \(4\)",
)
bad(ST, "odd d_model", lambda: nw.Seq2SeqTransformer(d_model=9, num_heads=3), ValueError, r"even dim")
bad(
    ST,
    "dropout 1.5",
    lambda: nw.Seq2SeqTransformer(d_model=8, num_heads=2, dropout=1.5),
    ValueError,
    r"dropout must be a probability in \[0, 1\)",
)
bad(
    ST,
    "no layers",
    lambda: nw.Seq2SeqTransformer(d_model=8, num_heads=2, num_layers=0),
    ValueError,
    r"num_layers must be a positive integer",
)
bad(
    ST,
    "max_len 0",
    lambda: nw.Seq2SeqTransformer(d_model=8, num_heads=2, max_len=0),
    ValueError,
    r"max_len must be a positive integer",
)
bad(
    ST,
    "tiny target vocabulary",
    lambda: nw.Seq2SeqTransformer(tgt_vocab_size=2, d_model=8, num_heads=2),
    ValueError,
    r"tgt_vocab_size must be at least 3",
)
good(ST, "default sizes", lambda: seq_model(), lambda m: m.out.out_features == len(nw.TGT_VOCAB))
SE = ST + ".encode"
bad(SE, "src 1-D", lambda: seq_model().encode(torch.tensor([1, 2])), ValueError, r"src must have 2 dimensions")
bad(SE, "float src", lambda: seq_model().encode(torch.ones(1, 3)), TypeError, r"src must be an integer tensor")
bad(
    SE,
    "target ids as source",
    lambda: seq_model().encode(torch.tensor([[20, 1]])),
    ValueError,
    r"src holds token ids outside the vocabulary \[0, 11\)",
)
bad(
    SE,
    "too long",
    lambda: seq_model().encode(torch.ones(1, 17, dtype=torch.long)),
    ValueError,
    r"sequence length 17 exceeds the model's max_len=16",
)
good(
    SE,
    "shapes",
    lambda: seq_model().encode(nw.make_batch([5, 42])[0]),
    lambda r: r[0].shape == (2, 3, 8) and r[1].dtype == torch.bool,
)
SD = ST + ".decode"
mem_ = lambda: seq_model().encode(nw.make_batch([5, 42])[0])  # noqa: E731
bad(
    SD,
    "memory of another batch",
    lambda: seq_model().decode(torch.ones(3, 2, dtype=torch.long), *mem_()),
    ValueError,
    r"memory must have size 3 in dimension 0",
)
bad(
    SD,
    "src_pad of the wrong shape",
    lambda: seq_model().decode(torch.ones(2, 2, dtype=torch.long), mem_()[0], torch.zeros(2, 4, dtype=torch.bool)),
    ValueError,
    r"src_pad must have size 3 in dimension 1",
)
bad(
    SD,
    "src_pad float",
    lambda: seq_model().decode(torch.ones(2, 2, dtype=torch.long), mem_()[0], torch.zeros(2, 3)),
    TypeError,
    r"src_pad must be a bool tensor",
)
bad(
    SD,
    "tgt_in out of vocab",
    lambda: seq_model().decode(torch.full((2, 2), 40), *mem_()),
    ValueError,
    r"tgt_in holds token ids outside the vocabulary \[0, 32\)",
)
good(
    SD,
    "logits",
    lambda: seq_model().decode(torch.ones(2, 4, dtype=torch.long), *mem_()),
    lambda r: r.shape == (2, 4, 32) and r.isfinite().all(),
)
SM = ST + ".embed"
bad(
    SM,
    "ids 1-D",
    lambda: seq_model().embed(seq_model().src_embed, torch.tensor([1, 2])),
    ValueError,
    r"ids must have 2 dimensions",
)
good(
    SM,
    "shape",
    lambda: seq_model().embed(seq_model().tgt_embed, torch.ones(2, 3, dtype=torch.long)),
    lambda r: r.shape == (2, 3, 8),
)
SFW = ST + ".forward"
bad(
    SFW,
    "src and tgt batches differ",
    lambda: seq_model()(torch.ones(2, 3, dtype=torch.long), torch.ones(3, 2, dtype=torch.long)),
    ValueError,
    r"memory must have size 3 in dimension 0",
)
good(SFW, "teacher forcing", lambda: seq_model()(*nw.make_batch([1, 2, 3])[:2]), lambda r: r.shape == (3, 5, 32))
bad(
    W + "make_step_fn",
    "not a model",
    lambda: nw.make_step_fn("model"),
    TypeError,
    r"model must be a Seq2SeqTransformer \(or have decode\), got str",
)
good(
    W + "make_step_fn",
    "normalised log-probs",
    lambda: nw.make_step_fn(seq_model())(torch.full((2, 1), nw.BOS_ID), mem_()),
    lambda r: r.shape == (2, 32) and close(r.logsumexp(-1), [0.0, 0.0]),
)
bad(
    W + "encode_numbers",
    "model None",
    lambda: nw.encode_numbers(None, [1]),
    TypeError,
    r"model must be a Seq2SeqTransformer",
)
bad(W + "encode_numbers", "no numbers", lambda: nw.encode_numbers(seq_model(), []), ValueError, r"at least one number")
good(
    W + "encode_numbers",
    "state for the search",
    lambda: nw.encode_numbers(seq_model(), [3, 999]),
    lambda r: r[0].shape == (2, 3, 8) and r[1].tolist()[0] == [True, True, False],
)
EM = W + "exact_match"
bad(EM, "lengths differ", lambda: nw.exact_match([[2]], [1, 2]), ValueError, r"got 1 predictions for 2 numbers")
bad(EM, "empty", lambda: nw.exact_match([], []), ValueError, r"no predictions")
bad(
    EM,
    "words instead of ids",
    lambda: nw.exact_match(["one"], [1]),
    TypeError,
    r"each prediction must be a sequence of token ids",
)
bad(EM, "number 1000", lambda: nw.exact_match([[2]], [1000]), ValueError, r"n must be in \[0, 999\]")
good(
    EM,
    "eos required, tail ignored",
    lambda: nw.exact_match([nw.encode_target(5) + [7], nw.encode_target(6)[:-1]], [5, 6]),
    lambda r: r == 0.5,
)

# ============================================================================= paths
bad(
    "paths.is_course_clone",
    "folder None",
    lambda: pth.is_course_clone(None),
    TypeError,
    r"folder must be a folder path",
)
good("paths.is_course_clone", "a string folder", lambda: pth.is_course_clone(str(fresh_dir())), lambda r: r is False)
bad(
    "paths.data_dir",
    "COURSE_DATA names a file",
    with_env(pth.data_dir, COURSE_DATA=__file__),
    NotADirectoryError,
    r"COURSE_DATA=.* names a file, not a folder",
)
good("paths.data_dir", "COURSE_DATA blank", with_env(pth.data_dir, COURSE_DATA="  "), lambda p: p.name == "data")
bad(
    "paths.runs_dir",
    "COURSE_RUNS names a file",
    with_env(pth.runs_dir, COURSE_RUNS=__file__),
    NotADirectoryError,
    r"COURSE_RUNS=.* names a file",
)
good(
    "paths.runs_dir",
    "relative COURSE_RUNS",
    with_env(pth.runs_dir, COURSE_RUNS="my-runs"),
    lambda p: p.is_absolute() and p.name == "my-runs",
)
bad(
    "paths.describe_paths",
    "COURSE_DATA names a file",
    with_env(pth.describe_paths, COURSE_DATA=__file__),
    NotADirectoryError,
    r"names a file",
)
good("paths.describe_paths", "two lines", pth.describe_paths, lambda s: s.startswith("data: ") and "\nruns: " in s)
good("paths.repo_root", "this clone", pth.repo_root, lambda p: p is None or pth.is_course_clone(p))
good(
    "paths.user_cache_dir",
    "XDG_CACHE_HOME",
    with_env(pth.user_cache_dir, XDG_CACHE_HOME="/x/cache"),
    lambda p: sys.platform in ("win32", "darwin") or p == Path("/x/cache/course-utils"),
)

# ============================================================================= plot
PL = "plot."
bad(PL + "plot_curves", "no curves", lambda: plo.plot_curves([0, 1], {}), ValueError, r"curves is empty")
bad(
    PL + "plot_curves",
    "lengths differ",
    lambda: plo.plot_curves([0, 1, 2], {"f": [1, 2]}),
    ValueError,
    r"curve 'f' has 2 values but x has 3",
)
bad(
    PL + "plot_curves",
    "curves a list",
    lambda: plo.plot_curves([0, 1], [[1, 2]]),
    TypeError,
    r"curves must be a dict of label -> values",
)
bad(
    PL + "plot_curves",
    "ax a string",
    lambda: plo.plot_curves([0, 1], {"f": [1, 2]}, ax="left"),
    TypeError,
    r"ax must be a matplotlib Axes or None",
)
good(
    PL + "plot_curves",
    "NaN leaves a gap",
    lambda: plo.plot_curves([0, 1, 2], {"f": [1.0, float("nan"), 3.0]}),
    lambda ax: np.isnan(ax.lines[0].get_ydata()[1]),
)
PH = PL + "plot_history"
bad(PH, "empty history", lambda: plo.plot_history({}), ValueError, r"no values to plot")
bad(
    PH,
    "unknown key",
    lambda: plo.plot_history({"train_loss": [1.0]}, keys=["val_acc"]),
    KeyError,
    r"'val_acc' is not in the history",
)
bad(
    PH,
    "keys a string",
    lambda: plo.plot_history({"train_loss": [1.0]}, keys="train_loss"),
    TypeError,
    r"keys must be a list of history keys",
)
bad(PH, "history a list", lambda: plo.plot_history([1.0, 2.0]), TypeError, r"history must be a dict")
good(
    PH,
    "one panel per metric",
    lambda: plo.plot_history(tr.History(train_loss=[2.0, 1.0], val_loss=[2.5, 1.5])),
    lambda axes: len(axes) == 1 and len(axes[0].lines) == 2,
)
PF = PL + "plot_fit"
bad(PF, "x and y differ", lambda: plo.plot_fit([1, 2, 3], [1, 2]), ValueError, r"x has 3 points but y has 2")
bad(
    PF,
    "lines a list",
    lambda: plo.plot_fit([1, 2], [1, 2], [([1, 2], [1, 2])]),
    TypeError,
    r"lines must be a dict of label -> \(x values, y values\)",
)
bad(
    PF,
    "a line not a pair",
    lambda: plo.plot_fit([1, 2], [1, 2], {"fit": [1, 2, 3]}),
    ValueError,
    r"lines\['fit'\] must be an \(x values, y values\) pair",
)
good(
    PF,
    "tensors",
    lambda: plo.plot_fit(torch.tensor([2.0, 1.0]), torch.tensor([4.0, 2.0]), {"f": ([2, 1], [4, 2])}),
    lambda ax: ax.lines[0].get_xdata().tolist() == [1, 2],
)
IG = PL + "image_grid"
bad(
    IG,
    "3-D images",
    lambda: plo.image_grid(torch.zeros(3, 8, 8)),
    ValueError,
    r"\(N, C, H, W\) tensor, got \(3, 8, 8\)",
)
bad(IG, "2 channels", lambda: plo.image_grid(torch.zeros(1, 2, 4, 4)), ValueError, r"1 or 3 channels")
bad(IG, "titles count", lambda: plo.image_grid(torch.zeros(2, 1, 4, 4), ["a"]), ValueError, r"1 titles for 2 images")
bad(IG, "no images", lambda: plo.image_grid(torch.zeros(0, 3, 4, 4)), ValueError, r"images is empty")
bad(
    IG,
    "mean without std",
    lambda: plo.image_grid(torch.zeros(1, 3, 4, 4), mean=(0.5,) * 3),
    ValueError,
    r"give both mean and std",
)
bad(
    IG,
    "one mean for three channels",
    lambda: plo.image_grid(torch.zeros(1, 3, 4, 4), mean=(0.5,), std=(0.5,)),
    ValueError,
    r"mean has 1 values but the images have 3 channel",
)
bad(
    IG,
    "ncols 0",
    lambda: plo.image_grid(torch.zeros(1, 3, 4, 4), ncols=0),
    ValueError,
    r"ncols must be a positive integer",
)
good(
    IG,
    "uint8 greyscale",
    lambda: plo.image_grid(torch.full((3, 1, 4, 4), 255, dtype=torch.uint8), ncols=2),
    lambda axes: axes.shape == (2, 2) and np.allclose(axes[0, 0].images[0].get_array(), 1.0),
)
HM = PL + "heatmap"
bad(HM, "1-D", lambda: plo.heatmap([1, 2, 3]), ValueError, r"matrix must be 2-D")
bad(
    HM,
    "row labels count",
    lambda: plo.heatmap(np.zeros((2, 2)), row_labels=["a"]),
    ValueError,
    r"1 row labels for 2 rows",
)
bad(HM, "empty", lambda: plo.heatmap(np.zeros((0, 3))), ValueError, r"matrix is empty")
good(
    HM,
    "NaN cell",
    lambda: plo.heatmap(np.array([[0.5, float("nan")], [0.2, 0.1]])),
    lambda ax: ax.get_xlabel() == "column" and len(ax.texts) == 4,
)
LH = PL + "LiveHistoryPlot"
bad(LH, "keys a string", lambda: plo.LiveHistoryPlot("train_loss"), TypeError, r"keys must be a list of history keys")
bad(LH, "total_epochs 0", lambda: plo.LiveHistoryPlot(total_epochs=0), ValueError, r"total_epochs must be a positive")
bad(LH, "total_epochs a string", lambda: plo.LiveHistoryPlot(total_epochs="5"), TypeError, r"total_epochs must be")
good(
    LH,
    "as fit's on_epoch_end",
    lambda: (lambda p: (p(1, {"train_loss": [1.0]}), p.figure))(plo.LiveHistoryPlot()),
    lambda r: r[1] is not None and len(r[1].axes) == 1,
)
LD = LH + ".draw"
bad(
    LD,
    "unknown key",
    lambda: plo.LiveHistoryPlot(["val_acc"]).draw({"train_loss": [1.0]}),
    KeyError,
    r"'val_acc' is not in the history",
)
bad(LD, "empty history", lambda: plo.LiveHistoryPlot().draw({}), ValueError, r"no values to plot")
bad(LD, "history a list", lambda: plo.LiveHistoryPlot().draw([1.0]), TypeError, r"history must be a dict")
good(
    LD,
    "fixed x range",
    lambda: plo.LiveHistoryPlot(total_epochs=5).draw({"train_loss": [1.0, 0.5]}),
    lambda fig: fig.axes[0].get_xlim() == (0.5, 5.5),
)

# ============================================================================= progress, seed
bad("progress.progress", "an int", lambda: prg.progress(5), TypeError, r"iterable must be an iterable .*got 5 \(int\)")
bad("progress.progress", "None", lambda: prg.progress(None), TypeError, r"iterable must be an iterable")
good(
    "progress.progress",
    "a generator with total",
    lambda: list(prg.progress((i for i in range(3)), total=3, disable=True)),
    lambda r: r == [0, 1, 2],
)
bad("seed.seed_everything", "-1", lambda: sd.seed_everything(-1), ValueError, r"seed must be in \[0, 2\*\*32\)")
bad("seed.seed_everything", "2**32", lambda: sd.seed_everything(2**32), ValueError, r"seed must be in")
bad("seed.seed_everything", "1.5", lambda: sd.seed_everything(1.5), TypeError, r"seed must be an int")
bad("seed.seed_everything", "'0'", lambda: sd.seed_everything("0"), TypeError, r"seed must be an int")
bad(
    "seed.seed_everything",
    "deterministic 'no'",
    lambda: sd.seed_everything(0, deterministic="no"),
    TypeError,
    r"deterministic must be True or False",
)
good(
    "seed.seed_everything",
    "numpy seed repeats",
    lambda: (sd.seed_everything(np.int64(3)), torch.rand(2), sd.seed_everything(3), torch.rand(2)),
    lambda r: torch.equal(r[1], r[3]),
)

# ============================================================================= train
H = "train.History"
bad(
    H + ".log",
    "a string value",
    lambda: tr.History().log(loss="low"),
    TypeError,
    r"History.log: loss must be a number, got 'low'",
)
bad(
    H + ".log",
    "a tensor of many values",
    lambda: tr.History().log(loss=torch.ones(2)),
    TypeError,
    r"loss must be a number",
)
good(
    H + ".log",
    "NaN is recorded",
    lambda: (lambda h: (h.log(loss=float("nan")), h))(tr.History()),
    lambda r: r[1]["loss"][0] != r[1]["loss"][0],
)
good(
    H + ".log",
    "0-d tensor",
    lambda: (lambda h: (h.log(loss=torch.tensor(0.5)), h))(tr.History()),
    lambda r: r[1] == {"loss": [0.5]},
)
good(H + ".last", "empty series skipped", lambda: tr.History(a=[1.0, 2.0], b=[]).last(), lambda r: r == {"a": 2.0})
good(
    H + ".state_dict",
    "a plain copy",
    lambda: tr.History(a=[1.0]).state_dict(),
    lambda r: type(r) is dict and r == {"a": [1.0]},
)
bad(
    H + ".load_state_dict",
    "a string",
    lambda: tr.History().load_state_dict("history"),
    TypeError,
    r"state must be a dict of key -> list of numbers",
)
bad(
    H + ".load_state_dict",
    "a series not a list",
    lambda: tr.History().load_state_dict({"a": 5}),
    TypeError,
    r"state\['a'\] must be a list of numbers",
)
good(
    H + ".load_state_dict",
    "round trip",
    lambda: (lambda h: (h.load_state_dict({"a": [1, 2]}), h))(tr.History()),
    lambda r: r[1] == {"a": [1.0, 2.0]},
)
good(H, "starts empty", tr.History, lambda h: h == {} and h.last() == {})
FT = "train.fit"
bad(FT, "model a string", fit_args(model="model"), TypeError, r"model must be a torch.nn.Module, got str")
bad(FT, "no optimizer", fit_args(optimizer=None), TypeError, r"fit trains and needs optimizer=")
bad(FT, "no epochs", fit_args(epochs=None), TypeError, r"fit needs epochs=")
bad(FT, "epochs 0", fit_args(epochs=0), ValueError, r"epochs must be a positive integer")
bad(FT, "epochs 2.5", fit_args(epochs=2.5), TypeError, r"epochs must be a positive integer")
bad(
    FT,
    "scheduler_interval 'batch'",
    fit_args(scheduler_interval="batch"),
    ValueError,
    r"scheduler_interval must be 'epoch' or 'step'",
)
bad(
    FT,
    "per-step schedule without a scheduler",
    fit_args(scheduler_interval="step"),
    ValueError,
    r"scheduler_interval='step' needs scheduler=",
)
bad(FT, "train_loader None", fit_args(train_loader=None), TypeError, r"train_loader must be an iterable of batches")
bad(FT, "val_loader an int", fit_args(val_loader=3), TypeError, r"val_loader must be an iterable of batches")
bad(FT, "empty train_loader", fit_args(train_loader=[]), ValueError, r"produced no batches")
bad(
    FT,
    "misspelled best_key",
    lambda: fit_args(
        checkpoint_dir=fresh_dir(), val_loader=batches(1), metrics={"acc": ep.accuracy}, best_key="val_accuracy"
    )(),
    ValueError,
    r"best_key='val_accuracy' would never be logged",
)
bad(
    FT,
    "resume path that does not exist",
    lambda: fit_args(checkpoint_dir=fresh_dir(), best_key=None, resume=fresh_dir() / "lats.pt")(),
    FileNotFoundError,
    r"no such checkpoint .*nothing was trained or overwritten",
)
bad(FT, "resume 'yes'", fit_args(resume="yes"), FileNotFoundError, r"resume='yes': no such checkpoint")
bad(FT, "resume=True without a folder", fit_args(resume=True), ValueError, r"resume=True needs checkpoint_dir")
bad(
    FT,
    "checkpoint_dir is a file",
    lambda: fit_args(checkpoint_dir=Path(__file__), best_key=None)(),
    OSError,
    r"cannot write checkpoints to",
)
bad(FT, "compile_model 'no'", fit_args(compile_model="no"), TypeError, r"compile_model must be True or False")
bad(FT, "amp 'yes'", fit_args(amp="yes"), TypeError, r"amp must be True or False")
bad(FT, "show_progress None", fit_args(show_progress=None), TypeError, r"show_progress must be True or False")
bad(FT, "on_epoch_end not callable", fit_args(on_epoch_end="plot"), TypeError, r"on_epoch_end must be callable")
bad(FT, "metrics a list", fit_args(metrics=[ep.accuracy]), TypeError, r"metrics must be a dict")
bad(FT, "tensorboard a number", fit_args(tensorboard=5), TypeError, r"tensorboard must be a folder path")
bad(FT, "unknown device", fit_args(device="gpu"), ValueError, r"Unknown device 'gpu'")
bad(
    FT,
    "NaN data",
    fit_args(train_loader=[(torch.full((2, 4), float("nan")), torch.tensor([0, 1]))]),
    FloatingPointError,
    r"epoch 1: loss became nan",
)
bad(
    FT,
    "persistent workers with checkpoints (fault 6)",
    lambda: fit_args(
        checkpoint_dir=fresh_dir(),
        best_key=None,
        train_loader=torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(*batches(1)[0]), batch_size=4, num_workers=1, persistent_workers=True
        ),
    )(),
    ValueError,
    r"persistent_workers=True: .*would not repeat.*Build it with persistent_workers=False",
)
bad(
    FT,
    "NaN data with an accuracy metric",
    fit_args(train_loader=[(torch.full((2, 4), float("nan")), torch.tensor([0, 1]))], metrics={"acc": ep.accuracy}),
    FloatingPointError,
    r"epoch 1: loss became nan",
)
bad(FT, "best_key a number", fit_args(best_key=1), TypeError, r"best_key must be a history key \(str\) or None")
good(
    FT,
    "one epoch",
    fit_args(val_loader=batches(1), metrics={"acc": ep.accuracy}),
    lambda h: set(h) == {"train_loss", "train_acc", "val_loss", "val_acc"} and len(h["train_loss"]) == 1,
)


# ============================================================================= widgets
def knob(n: int = 4) -> int:
    return n * 10


def needs_n(n: int) -> int:
    return n


WI = "widgets.interactive"
bad(WI, "function None", lambda: wdg.interactive(None), TypeError, r"function must be callable, got None")
bad(
    WI,
    "misspelled control",
    lambda: wdg.interactive(knob, m=(0, 5)),
    TypeError,
    r"knob\(\) has no argument 'm'.*its arguments are \['n'\]",
)
bad(
    WI,
    "argument without default or control",
    lambda: wdg.interactive(needs_n),
    TypeError,
    r"argument 'n' has no default and no control: pass n=",
)
bad(
    WI,
    "default None without a control",
    lambda: wdg.interactive(lambda ax=None, n=2: n),
    ValueError,
    r"argument 'ax' has no control and its default None cannot become a widget.*fixed\(value\)",
)
good(
    WI,
    "fixed(None) for that argument",
    lambda: wdg.interactive(lambda ax=None, n=2: n, ax=fixed(None)),
    lambda w: w.result == 2,
)
bad(WI, "empty list of options", lambda: wdg.interactive(knob, n=[]), ValueError, r"control n=\[\] is empty")
bad(WI, "min > max", lambda: wdg.interactive(knob, n=(5, 1)), ValueError, r"control n=\(5, 1\) cannot become a widget")
bad(WI, "NaN bound", lambda: wdg.interactive(knob, n=(0.0, float("nan"))), ValueError, r"cannot become a widget")
bad(WI, "an object", lambda: wdg.interactive(knob, n=object()), ValueError, r"cannot become a widget.*fixed\(value\)")
good(
    WI,
    "(min, max, step) slider",
    lambda: wdg.interactive(knob, n=(0, 8, 2)),
    lambda w: w.result == 40 and (w.children[0].min, w.children[0].max, w.children[0].step) == (0, 8, 2),
)
good(
    WI,
    "a one-shot generator of options",
    lambda: wdg.interactive(knob, n=(i for i in (1, 2, 3))),
    lambda w: w.children[0].options == (1, 2, 3),
)
WU = WI + ".update"
good(
    WU,
    "extra arguments are ignored",
    lambda: (lambda w: (setattr(w.children[0], "value", 3), w.update("x"), w))(wdg.interactive(knob, n=(0, 5))),
    lambda r: r[2].result == 30,
)
WA = "widgets.interact"
bad(WA, "function a string", lambda: wdg.interact("knob"), TypeError, r"function must be callable, got 'knob'")
bad(WA, "misspelled control", lambda: wdg.interact(knob, nn=3), TypeError, r"has no argument 'nn'")
good(WA, "returns the function", printed(lambda: wdg.interact(knob, n=(0, 5))), lambda out: "interactive" in out)


# ----------------------------------------------------------------------------- running and judging a case
def _show(value: Any, limit: int = 200) -> str:
    try:
        text = repr(value)
    except Exception as err:  # noqa: BLE001 - an object whose repr fails is still a result
        text = f"<{type(value).__name__} whose repr raised {type(err).__name__}>"
    return text[:limit]


def _raised_by_course_utils(err: BaseException) -> bool:
    """True when the innermost frame of the traceback is a ``raise`` statement in a course_utils module."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return False
    last = frames[-1]
    inside = Path(last.filename).resolve().is_relative_to(PACKAGE_DIR)
    return inside and linecache.getline(last.filename, last.lineno).strip().startswith("raise")


def judge_case(case: Case) -> tuple[str, str]:
    """(verdict, detail): ``clear``, ``correct``, ``obscure``, ``silent``, or ``wrong-error`` / ``refused``
    for a course_utils error of another kind or message than the case expects (or a refused valid input)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = case.call()
    except Exception as err:  # noqa: BLE001 - judged below
        message = f"{type(err).__name__}: {err}"
        if not _raised_by_course_utils(err):
            where = traceback.extract_tb(err.__traceback__)[-1]
            return "obscure", f"{message[:300]} (raised at {Path(where.filename).name}:{where.lineno})"
        if case.raises is None:
            return "refused", message[:300]
        if isinstance(err, case.raises) and re.search(case.match, str(err)):
            return "clear", message[:300]
        return "wrong-error", f"expected {case.raises} matching {case.match!r}; got {message[:300]}"
    finally:
        plt.close("all")
    if case.raises is not None:
        return "silent", f"returned {_show(result)}"
    try:
        ok = case.check(result)
    except Exception as err:  # noqa: BLE001 - a check that cannot even run on the result: wrong result
        ok, result = False, f"{_show(result, 150)} ({type(err).__name__}: {err})"
    return ("correct", "") if ok else ("silent", f"wrong result: {_show(result)}")


# ----------------------------------------------------------------------------- public names
def public_names() -> set[str]:
    """Every public name of course_utils, relative to the package, each object under the module defining it.

    A module's public names are its ``__all__``, else its top-level functions and classes defined there;
    a class adds its public methods and properties. Re-exports (``course_utils.data``, ``course_utils.train``
    re-exporting ``course_utils.epoch``) count once, under the defining module.
    """
    names: dict[int, str] = {}
    for info in pkgutil.walk_packages(course_utils.__path__, "course_utils."):
        if info.name.split(".")[1] in EXEMPT_PACKAGES:
            continue
        module = importlib.import_module(info.name)
        short = info.name.removeprefix("course_utils.")
        listed = getattr(module, "__all__", None)
        if listed is None:
            listed = [
                name
                for name, obj in vars(module).items()
                if not name.startswith("_")
                and (inspect.isfunction(obj) or inspect.isclass(obj))
                and obj.__module__ == module.__name__
            ]
        for name in listed:
            obj = getattr(module, name)
            defined = inspect.isfunction(obj) or inspect.isclass(obj)
            if defined and obj.__module__.startswith("course_utils."):
                names.setdefault(id(obj), f"{obj.__module__.removeprefix('course_utils.')}.{obj.__qualname__}")
            elif not defined:
                names.setdefault(id(obj), f"{short}.{name}")
            if inspect.isclass(obj) and obj.__module__.startswith("course_utils."):
                for attr, value in vars(obj).items():
                    if not attr.startswith("_") and (
                        inspect.isfunction(value) or isinstance(value, (property, classmethod, staticmethod))
                    ):
                        names.setdefault(
                            id(value), f"{obj.__module__.removeprefix('course_utils.')}.{obj.__qualname__}.{attr}"
                        )
    return set(names.values())


# ----------------------------------------------------------------------------- the tests
@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    plt.close("all")
    _remove_tmp()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case) -> None:
    verdict, detail = judge_case(case)
    assert verdict in ("clear", "correct"), f"{verdict}: {detail}"


def test_every_public_name_has_a_case() -> None:
    public = public_names()
    covered = {case.covers for case in CASES}
    missing = sorted(public - covered - set(EXEMPT))
    assert not missing, (
        f"public names of course_utils without a bad-input case (add cases, or an EXEMPT entry): {missing}"
    )
    assert not covered - public, f"cases cover names that are not public: {sorted(covered - public)}"
    assert not set(EXEMPT) - public, f"EXEMPT lists names that are not public: {sorted(set(EXEMPT) - public)}"
    assert len({case.id for case in CASES}) == len(CASES), "two cases share a name"


def tally() -> dict[str, int]:
    """Run every case and count the verdicts (the numbers in issue 10's closing note).

    Cases of names the measured version of the package does not have are counted as ``absent``.
    """
    counts: dict[str, int] = {}
    public = public_names()
    for case in CASES:
        if case.covers not in public:
            counts["absent"] = counts.get("absent", 0) + 1
            continue
        verdict, detail = judge_case(case)
        counts[verdict] = counts.get(verdict, 0) + 1
        if verdict not in ("clear", "correct"):
            print(f"{verdict:>11}  {case.id}  --  {detail}")
    return counts


if __name__ == "__main__":
    torch.set_num_threads(1)
    os.environ.setdefault("COURSE_FAST", "1")
    try:
        counts = tally()
    finally:
        _remove_tmp()
    names = public_names()
    covered = {case.covers for case in CASES}
    top = {name for name in names if name.count(".") == 1}
    print(f"\npackage: {PACKAGE_DIR}")
    print(
        f"public names: {len(names)} ({len(top)} top-level, {len(names) - len(top)} methods/properties), "
        f"{len(EXEMPT)} exempt; names with cases: {len(covered & names)}; cases: {len(CASES)} "
        f"({sum(c.raises is not None for c in CASES)} expect an error, "
        f"{sum(c.raises is None for c in CASES)} a result)"
    )
    print("verdicts:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
