"""The figures the notebooks share. Every function labels its axes and returns the Axes it drew on.

Functions return Axes rather than Figures so that a plot call as the last line of a notebook cell
is drawn once (Jupyter's inline backend would show a returned Figure a second time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

from .checks import expect_mapping, expect_positive_int
from .images import check_mean_std

ArrayLike = torch.Tensor | np.ndarray | Sequence[float]


def _np(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float32).numpy()
    return np.asarray(values)


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.0, 4.0)) -> Axes:
    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
        return ax
    _, new_ax = plt.subplots(figsize=figsize)
    return new_ax


def _label(ax: Axes, xlabel: str, ylabel: str, title: str | None) -> Axes:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def plot_curves(
    x: ArrayLike,
    curves: Mapping[str, ArrayLike],
    *,
    xlabel: str = "x",
    ylabel: str = "y",
    title: str | None = None,
    ax: Axes | None = None,
    styles: Mapping[str, str] | None = None,
    logy: bool = False,
) -> Axes:
    """Plot several named curves over the same x, e.g. a function and its derivative.

    Args:
        x: the shared horizontal coordinates, shape (N,).
        curves: legend label -> values of shape (N,).
        styles: optional legend label -> matplotlib format string such as ``"--"``; curves without one
            take colour and line style from the axes' property cycle (``axes.prop_cycle``).
        logy: logarithmic y axis (then no zero line is drawn).

    Raises:
        ValueError: no curves, or a curve whose length differs from ``x``.
    """
    xs = _np(x).reshape(-1)
    expect_mapping(curves, "curves", "label -> values, e.g. {'sigmoid': y}")
    if not curves:
        raise ValueError("curves is empty: pass at least one {label: values} entry")
    ax = _axes(ax)
    for label, ys in curves.items():
        ys_np = _np(ys).reshape(-1)
        if ys_np.shape != xs.shape:
            raise ValueError(f"curve {label!r} has {ys_np.size} values but x has {xs.size}; they must match")
        style = (styles or {}).get(label)  # None: the axes' property cycle picks colour and line style
        ax.plot(xs, ys_np, *([style] if style else []), label=label)
    if logy:
        ax.set_yscale("log")
    else:
        ax.axhline(0.0, color="0.8", linewidth=0.8, zorder=0)
    return _label(ax, xlabel, ylabel, title)


def _history_panels(keys: Sequence[str]) -> dict[str, list[str]]:
    """Group history keys by metric: ``train_<m>``, ``val_<m>`` and ``test_<m>`` share the ``<m>`` panel."""
    panels: dict[str, list[str]] = {}
    for key in keys:
        metric = key.split("_", 1)[1] if key.startswith(("train_", "val_", "test_")) else key
        panels.setdefault(metric, []).append(key)
    return panels


def _history_keys(history: Any, keys: Sequence[str] | None) -> list[str]:
    """The keys to draw: checked against ``history`` (a dict of per-epoch lists), at least one."""
    expect_mapping(history, "history", "key -> per-epoch values (e.g. what fit returns)")
    if isinstance(keys, str):
        raise TypeError(f"keys must be a list of history keys, got the string {keys!r}: pass [{keys!r}]")
    keys = list(keys) if keys is not None else [k for k, v in history.items() if len(v) > 0]
    if not keys:
        raise ValueError("history has no values to plot: train for at least one epoch first")
    for key in keys:
        if key not in history:
            raise KeyError(f"{key!r} is not in the history (it has {sorted(history)})")
    return keys


def _draw_panel(
    ax: Axes,
    history: Mapping[str, Sequence[float]],
    metric: str,
    members: Sequence[str],
    *,
    xlabel: str,
    label_suffix: str = "",
    markers: bool = True,
) -> None:
    """One metric's curves against the epoch, labelled, with a grid and a legend.

    Each curve of a panel gets its own line style and marker as well as its colour (train solid with circles,
    validation dashed with squares, ...), so the curves stay apart in greyscale and for colour-blind readers.
    """
    styles = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]
    for index, key in enumerate(members):
        values = _np(history.get(key, [])).reshape(-1)
        linestyle, marker = styles[index % len(styles)]
        ax.plot(
            np.arange(1, len(values) + 1),
            values,
            linestyle=linestyle,
            marker=marker if markers else None,
            label=key + label_suffix,
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend()


def plot_history(
    history: Mapping[str, Sequence[float]],
    *,
    keys: Sequence[str] | None = None,
    xlabel: str = "epoch",
    title: str | None = None,
    logy: bool = False,
) -> np.ndarray:
    """Plot training curves: one panel per metric, train and validation lines together.

    Keys named ``train_<metric>`` and ``val_<metric>`` share the ``<metric>`` panel; other keys get
    their own panel. Returns the array of Axes.
    """
    keys = _history_keys(history, keys)
    panels = _history_panels(keys)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.6), squeeze=False)
    for ax, (metric, members) in zip(axes[0], panels.items()):
        _draw_panel(ax, history, metric, members, xlabel=xlabel, markers=all(len(history[key]) < 30 for key in members))
        if logy:
            ax.set_yscale("log")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return axes[0]


def plot_fit(
    x: ArrayLike,
    y: ArrayLike,
    lines: Mapping[str, tuple[ArrayLike, ArrayLike]] | None = None,
    *,
    xlabel: str = "x",
    ylabel: str = "y",
    title: str | None = None,
    ax: Axes | None = None,
    data_label: str = "data",
) -> Axes:
    """Scatter the data and draw fitted lines or curves over it.

    Args:
        x, y: the data points, shape (N,) each.
        lines: legend label -> (x values, y values) of a fitted curve.
    """
    xs, ys = _np(x).reshape(-1), _np(y).reshape(-1)
    if xs.shape != ys.shape:
        raise ValueError(f"x has {xs.size} points but y has {ys.size}; they must match")
    if lines is not None:
        expect_mapping(lines, "lines", "label -> (x values, y values) of a fitted curve")
        for label, pair in lines.items():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"lines[{label!r}] must be an (x values, y values) pair, got {pair!r:.60}")
    ax = _axes(ax)
    ax.scatter(xs, ys, s=12, alpha=0.6, label=data_label)
    for label, (lx, ly) in (lines or {}).items():
        lx_np, ly_np = _np(lx).reshape(-1), _np(ly).reshape(-1)
        order = np.argsort(lx_np)
        ax.plot(lx_np[order], ly_np[order], linewidth=2, label=label)
    return _label(ax, xlabel, ylabel, title)


def image_grid(
    images: torch.Tensor,
    titles: Sequence[str] | None = None,
    *,
    ncols: int = 8,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    title: str | None = None,
) -> np.ndarray:
    """Show a batch of images with a title under each.

    Args:
        images: (N, C, H, W) float in [0, 1] (or normalised, with ``mean``/``std`` to undo it) or uint8.
        titles: one caption per image, e.g. ``"true: cat / pred: dog"``.
        ncols: images per row.
        mean, std: per-channel statistics used to normalise the images, undone before display.

    Raises:
        ValueError: images not (N, C, H, W) with 1 or 3 channels, a titles list of another length, or
            ``mean``/``std`` that do not match the channels.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a (N, C, H, W) tensor, got {shape}")
    n, c = images.shape[:2]
    if n == 0:
        raise ValueError("images is empty: pass at least one image (N >= 1)")
    if c not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels in dimension 1 (N, C, H, W), got {c}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} images")
    ncols = expect_positive_int(ncols, "ncols")
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std (to undo the normalisation), or neither")
    if mean is not None:
        mean, std = check_mean_std(mean, std, c)
    imgs = images.detach().to("cpu")
    imgs = imgs.float() / 255.0 if imgs.dtype == torch.uint8 else imgs.float()
    if mean is not None and std is not None:
        imgs = imgs * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    imgs = imgs.clamp(0, 1).permute(0, 2, 3, 1).numpy()  # (N, H, W, C) for imshow
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.9 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(imgs[i].squeeze(-1) if c == 1 else imgs[i], cmap="gray" if c == 1 else None)
            if titles is not None:
                ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return axes


def heatmap(
    matrix: ArrayLike,
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    xlabel: str = "column",
    ylabel: str = "row",
    title: str | None = None,
    ax: Axes | None = None,
    annotate: bool | None = None,
    cmap: str = "viridis",
    fmt: str = ".2f",
) -> Axes:
    """Draw a 2-D matrix (attention weights, a confusion matrix) with labelled rows and columns.

    Args:
        matrix: shape (R, C).
        row_labels, col_labels: tick labels; their lengths must match R and C.
        annotate: write each value in its cell (default: only when the matrix has at most 144 cells).

    Raises:
        ValueError: ``matrix`` not 2-D, or labels whose lengths differ from R and C.
    """
    m = _np(matrix)
    if m.ndim != 2:
        raise ValueError(f"matrix must be 2-D (rows, columns), got shape {m.shape}")
    if m.size == 0:
        raise ValueError(f"matrix is empty (shape {m.shape}): nothing to draw")
    if row_labels is not None and len(row_labels) != m.shape[0]:
        raise ValueError(f"{len(row_labels)} row labels for {m.shape[0]} rows")
    if col_labels is not None and len(col_labels) != m.shape[1]:
        raise ValueError(f"{len(col_labels)} column labels for {m.shape[1]} columns")
    ax = _axes(ax, figsize=(max(4.0, 0.5 * m.shape[1] + 2), max(3.0, 0.45 * m.shape[0] + 1.5)))
    image = ax.imshow(m, cmap=cmap, aspect="auto")
    ax.figure.colorbar(image, ax=ax)
    if col_labels is not None:
        ax.set_xticks(range(m.shape[1]), labels=list(col_labels), rotation=45, ha="right")
    if row_labels is not None:
        ax.set_yticks(range(m.shape[0]), labels=list(row_labels))
    if annotate is None:
        annotate = m.size <= 144
    if annotate:
        threshold = (np.nanmax(m) + np.nanmin(m)) / 2
        for (i, j), value in np.ndenumerate(m):
            ax.text(
                j,
                i,
                format(value, fmt),
                ha="center",
                va="center",
                fontsize=8,
                color="black" if value > threshold else "white",
            )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


class LiveHistoryPlot:
    """Training curves that redraw in place after every epoch: pass an instance as ``fit(on_epoch_end=...)``.

    In Jupyter the figure is shown once through an ``IPython.display`` handle and then updated in the
    same output area; outside IPython nothing is displayed (``self.figure`` still holds the drawing).
    """

    def __init__(
        self,
        keys: Sequence[str] | None = None,
        *,
        title: str | None = None,
        total_epochs: int | None = None,
        label_suffix: str = "",
    ) -> None:
        """Args: keys: history keys to draw (default all); title: figure title; total_epochs: fixes the
        x range so the axes do not jump; label_suffix: appended to every legend label (e.g. " [SYNTHETIC]")."""
        if isinstance(keys, str) or (keys is not None and not all(isinstance(k, str) for k in keys)):
            raise TypeError(f"keys must be a list of history keys (or None for all), got {keys!r}")
        if total_epochs is not None:
            total_epochs = expect_positive_int(total_epochs, "total_epochs")
        keys = list(keys) if keys is not None else None
        self.keys, self.title, self.total_epochs, self.label_suffix = keys, title, total_epochs, label_suffix
        self.figure: Any = None
        self._handle: Any = None

    def draw(self, history: Mapping[str, Sequence[float]]) -> Any:
        """Draw ``history`` into a new Figure (not managed by pyplot, so Jupyter does not show it twice)."""
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        keys = _history_keys(history, self.keys)
        panels = _history_panels(keys)
        fig = Figure(figsize=(5.0 * max(1, len(panels)), 3.4))
        for index, (metric, members) in enumerate(panels.items(), start=1):
            ax = fig.add_subplot(1, len(panels), index)
            _draw_panel(ax, history, metric, members, xlabel="epoch", label_suffix=self.label_suffix)
            if self.total_epochs:
                ax.set_xlim(0.5, self.total_epochs + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        if self.title:
            fig.suptitle(self.title)
        fig.tight_layout()
        self.figure = fig
        return fig

    def __call__(self, epoch: int, history: Mapping[str, Sequence[float]]) -> None:
        """Redraw after ``epoch``; the signature ``fit`` uses for ``on_epoch_end``."""
        import io

        fig = self.draw(history)
        try:
            from IPython import get_ipython
            from IPython.display import Image, display
        except ImportError:  # plain Python without IPython: keep the figure only
            return
        if get_ipython() is None:
            return
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        image = Image(data=buffer.getvalue(), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)
