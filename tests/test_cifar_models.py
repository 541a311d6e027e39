"""course_utils.cifar_models keeps notebook 07's networks and recipes for the script and notebook 08.

Notebook 07 teaches the networks in its own ``# export`` cells; these tests keep the two copies the same
network (same parameter names and shapes, same outputs for the same weights) and the recipes the same
hyper-parameters as notebook 07's training cells.
"""

from __future__ import annotations

import pytest
import torch
from nbcode import load_exports
from torch import nn

from course_utils import cifar_models as cm


@pytest.fixture(scope="module")
def nb07():
    return load_exports("07_cifar10_pipeline")


@pytest.mark.parametrize("name", ["NotesNet", "SmallResNet"])
def test_the_package_has_notebook_07s_network(nb07, name):
    torch.manual_seed(0)
    ours, theirs = getattr(cm, name)(), getattr(nb07, name)()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 3, 32, 32)
    for mode in ("train", "eval"):
        getattr(ours, mode)(), getattr(theirs, mode)()
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


def test_recipes_match_notebook_07():
    model = nn.Linear(2, 2)
    notes = cm.make_recipe("notes", model, epochs=2, steps_per_epoch=10)
    assert type(notes.optimizer) is torch.optim.SGD and notes.scheduler is None
    assert notes.optimizer.defaults["lr"] == 1e-2 and notes.optimizer.defaults["momentum"] == 0
    assert notes.loss_fn.label_smoothing == 0 and not notes.augment.active
    better = cm.make_recipe("better", model, epochs=2, steps_per_epoch=10)
    d = better.optimizer.defaults
    assert (d["momentum"], d["nesterov"], d["weight_decay"]) == (0.9, True, 5e-4)
    assert isinstance(better.scheduler, torch.optim.lr_scheduler.OneCycleLR) and better.scheduler_interval == "step"
    assert better.scheduler.total_steps == 20 and better.loss_fn.label_smoothing == 0.1
    assert better.augment == cm.CIFAR_AUGMENTATION
    assert "OneCycleLR per step" in better.describe() and "label smoothing 0.1" in better.describe()


def test_recipe_errors_say_what_to_do():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="unknown recipe 'fast'"):
        cm.make_recipe("fast", model, epochs=1, steps_per_epoch=1)
    with pytest.raises(ValueError, match="at least 8 steps"):
        cm.make_recipe("better", model, epochs=1, steps_per_epoch=4)
    with pytest.raises(ValueError, match="must be positive"):
        cm.make_recipe("notes", model, epochs=1, steps_per_epoch=1, lr=0.0)
