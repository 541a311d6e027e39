"""Notebook 07's hand-written test loop against course_utils.train.evaluate, and the exercise references of
notebook 07 against closed forms (so that a wrong reference cannot make every student answer "wrong")."""

import math
import re

import nbformat
import pytest
import torch
import torch.nn.functional as F
from nbcode import load_exports
from torch import nn
from torch.testing import assert_close

from course_utils.exercises import get_exercise, judge
from course_utils.paths import REPO_ROOT
from course_utils.train import accuracy, evaluate

NOTEBOOK = "07_cifar10_pipeline"


@pytest.fixture(scope="module")
def nb():
    return load_exports(NOTEBOOK)


def batchnorm_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 10),
    )


def test_evaluate_by_hand_equals_evaluate_with_batchnorm_and_a_short_last_batch(nb):
    g = torch.Generator().manual_seed(7)
    batches = [
        (2 + 3 * torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)) for n in (16, 16, 5)
    ]
    model = batchnorm_net().train()  # left in training mode: the loop must switch to eval itself
    loss, acc = nb.evaluate_by_hand(model, batches, nn.CrossEntropyLoss(), torch.device("cpu"))
    assert not model.training
    package = evaluate(batchnorm_net(), batches, nn.CrossEntropyLoss(), device="cpu", metrics={"acc": accuracy})
    assert loss == pytest.approx(package["loss"], rel=1e-5) and acc == pytest.approx(package["acc"], rel=1e-6)
    with torch.no_grad():  # the mean per image over all 37 images, not the mean of the three batch means
        logits = torch.cat([model(x) for x, _ in batches])
        labels = torch.cat([y for _, y in batches])
    assert loss == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)
    assert acc == pytest.approx((logits.argmax(1) == labels).float().mean().item())


def reference(exercise_id):
    return get_exercise(exercise_id).reference


def test_references_against_closed_forms():
    assert reference("07.1")(in_channels=64, out_channels=128, kernel_size=3) == 128 * 64 * 9 + 128
    assert reference("07.2")(size=32, kernel_size=3, stride=2, padding=1, pool=2) == 8
    assert_close(reference("07.3")(num_classes=10), torch.tensor([0.1, math.log(10)]))
    steps = math.ceil(50_000 / 64) * 10  # the last batch of an epoch is kept
    assert reference("07.4")(images=50_000, batch_size=64, epochs=10, log_every=100) == steps // 100
    assert reference("07.4")(images=640, batch_size=64, epochs=3, log_every=4) == 7  # 30 steps: 4, 8, ..., 28


def test_precision_reference_against_the_confusion_matrix():
    g = torch.Generator().manual_seed(3)
    targets = torch.randint(0, 10, (300,), generator=g)
    preds = torch.where(torch.rand(300, generator=g) < 0.5, targets, torch.randint(0, 10, (300,), generator=g))
    preds[preds == 9] = 8  # class 9 is never predicted: its precision is 0
    cm = torch.bincount(targets * 10 + preds, minlength=100).view(10, 10).float()
    expected = torch.nan_to_num(cm.diag() / cm.sum(dim=0))
    assert_close(reference("07.6")(preds=preds, targets=targets), expected)


def test_the_buggy_test_loop_fails_its_check_and_the_fix_passes():
    nb07 = nbformat.read(REPO_ROOT / "notebooks" / f"{NOTEBOOK}.ipynb", as_version=4)
    cell = next(c for c in nb07.cells if c.cell_type == "code" and 'check("07.5"' in c.source)
    namespace = {"torch": torch, "nn": nn, "F": F}
    exec(re.sub(r"\ncheck\(.*\)\s*$", "", cell.source), namespace)
    correct, why = judge("07.5", namespace["evaluate_v2"])
    assert correct is False and "largest difference" in why, why
    fixed_source = re.sub(r"\ncheck\(.*\)\s*$", "", cell.source).replace(
        "    with torch.no_grad():", "    model.eval()\n    with torch.no_grad():", 1
    )
    exec(fixed_source, namespace)
    assert judge("07.5", namespace["evaluate_v2"]) == (True, "")
