"""Resume with DataLoader workers (issue 10, fault 6): exact on every input path fit accepts, refused otherwise.

A DataLoader draws its workers' base seed from ``loader.generator`` (or the global RNG) each time a worker
pool starts. Non-persistent workers restart every epoch, so an uninterrupted run and a resumed one draw
alike and the workers' own random states are re-seeded from what checkpoints save. Persistent workers
start once: the uninterrupted run draws no new seed at epoch 2 and its workers carry their random state
over, while the resumed run's fresh pool draws and re-seeds (measured: weights differ by about 0.1).
``fit`` therefore refuses ``persistent_workers=True`` when it writes checkpoints. The course's own loader
(``make_dataloaders``) is checked in tests/test_image_data.py; here a user's plain DataLoader whose
Dataset draws random numbers inside the workers.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from course_utils.train import fit


class NoisyPoints(Dataset):
    """Points of 3 classes; each item adds noise drawn in the worker process (a random augmentation)."""

    def __init__(self, n: int = 48) -> None:
        g = torch.Generator().manual_seed(0)
        self.y = torch.arange(n) % 3
        self.x = torch.randn(n, 6, generator=g) + self.y[:, None].float()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i] + 0.3 * torch.randn(6), self.y[i]  # global RNG: the worker's, seeded by the pool


def run(folder, *, persistent=False, stop_after=None, resume=False, init_seed=0) -> nn.Module:
    torch.manual_seed(init_seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    loader = DataLoader(NoisyPoints(), batch_size=16, shuffle=True, num_workers=2, persistent_workers=persistent)

    def crash(epoch, history):
        if epoch == stop_after:
            raise KeyboardInterrupt

    fit(
        model,
        loader,
        nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        2,
        device="cpu",
        checkpoint_dir=folder,
        resume=resume,
        best_key=None,
        on_epoch_end=crash,
        show_progress=False,
    )
    return model


def test_a_plain_dataloader_with_workers_resumes_exactly(tmp_path):
    """Shuffle from the global RNG, noise drawn in 2 workers: stopped after epoch 1 + resumed = uninterrupted."""
    uninterrupted = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_after=1)
    torch.manual_seed(1234)  # the resuming process starts from another random state
    resumed = run(tmp_path / "b", resume=True, init_seed=99)
    for (name, a), b in zip(uninterrupted.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after resuming"


def test_persistent_workers_are_refused_before_training_when_checkpointing(tmp_path):
    """Such a run could not resume exactly: refused up front, nothing trained or written."""
    with pytest.raises(ValueError, match=r"persistent_workers=True.*would not repeat.*persistent_workers=False"):
        run(tmp_path / "p", persistent=True)
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())
