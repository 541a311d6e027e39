import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils.plot import LiveHistoryPlot, heatmap, image_grid, plot_curves, plot_fit, plot_history


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_curves_labels_axes_and_legend():
    x = torch.linspace(-3, 3, 50)
    ax = plot_curves(
        x,
        {"sigmoid": torch.sigmoid(x), "derivative": torch.sigmoid(x) * (1 - torch.sigmoid(x))},
        xlabel="input x",
        ylabel="output",
        title="sigmoid",
    )
    assert ax.get_xlabel() == "input x" and ax.get_ylabel() == "output"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sigmoid", "derivative"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), torch.sigmoid(x).numpy(), rtol=1e-6)


def test_plot_curves_follows_the_style_cycle_unless_told():
    # Curves without an explicit style take colour and line style from axes.prop_cycle (colour-blind-safe cycles).
    x = torch.linspace(0, 1, 5)
    with plt.rc_context(
        {"axes.prop_cycle": plt.cycler(color=["#0072B2", "#D55E00", "#009E73"], linestyle=["-", "--", ":"])}
    ):
        ax = plot_curves(x, {"a": x, "b": 2 * x, "c": 3 * x}, styles={"c": "-."})
    assert [line.get_linestyle() for line in ax.lines[:3]] == ["-", "--", "-."]


def test_plot_curves_bad_input():
    with pytest.raises(ValueError, match="has 3 values but x has 4"):
        plot_curves([0, 1, 2, 3], {"f": [1, 2, 3]})
    with pytest.raises(ValueError, match="curves is empty"):
        plot_curves([0, 1], {})


def test_plot_history_groups_train_and_val():
    axes = plot_history({"train_loss": [3, 2, 1], "val_loss": [3.5, 2.5, 2], "train_acc": [0.1, 0.5, 0.9]})
    assert len(axes) == 2
    assert axes[0].get_ylabel() == "loss" and axes[0].get_xlabel() == "epoch"
    assert [line.get_label() for line in axes[0].lines] == ["train_loss", "val_loss"]
    assert axes[1].get_ylabel() == "acc"


def test_plot_history_errors():
    with pytest.raises(ValueError, match="no values to plot"):
        plot_history({"train_loss": []})
    with pytest.raises(KeyError, match="'val_acc' is not in the history"):
        plot_history({"train_loss": [1.0]}, keys=["val_acc"])


def test_plot_fit_draws_sorted_lines():
    x = torch.tensor([3.0, 1.0, 2.0])
    ax = plot_fit(x, 2 * x, {"fit": (x, 2 * x)}, xlabel="x", ylabel="y")
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1.0, 2.0, 3.0])
    assert ax.get_xlabel() == "x" and ax.get_legend() is not None
    with pytest.raises(ValueError, match="x has 3 points but y has 2"):
        plot_fit(x, [1.0, 2.0])


def test_image_grid_shapes_titles_and_unnormalise():
    images = torch.rand(5, 3, 8, 8)
    axes = image_grid(images, [f"img {i}" for i in range(5)], ncols=3)
    assert axes.shape == (2, 3)
    assert axes[0, 0].get_title() == "img 0"
    shown = axes[0, 0].images[0].get_array()
    np.testing.assert_allclose(shown, images[0].permute(1, 2, 0).numpy(), rtol=1e-6)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    normalised = (images - 0.5) / 0.25
    axes = image_grid(normalised, mean=mean, std=std)
    np.testing.assert_allclose(axes[0, 0].images[0].get_array(), images[0].permute(1, 2, 0).numpy(), atol=1e-6)
    axes = image_grid(torch.full((2, 1, 4, 4), 255, dtype=torch.uint8))
    assert axes[0, 0].images[0].get_array().max() == pytest.approx(1.0)


def test_image_grid_bad_input():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) tensor, got \(3, 8, 8\)"):
        image_grid(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        image_grid(torch.rand(2, 4, 8, 8))
    with pytest.raises(ValueError, match="2 titles for 3 images"):
        image_grid(torch.rand(3, 3, 8, 8), ["a", "b"])


def test_heatmap_labels_and_annotations():
    m = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    ax = heatmap(m, row_labels=["q1", "q2"], col_labels=["k1", "k2"], xlabel="key", ylabel="query", title="A")
    assert ax.get_xlabel() == "key" and ax.get_ylabel() == "query"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["k1", "k2"]
    assert sorted(t.get_text() for t in ax.texts) == ["0.10", "0.20", "0.80", "0.90"]
    np.testing.assert_allclose(ax.images[0].get_array(), m.numpy())


def test_heatmap_bad_input():
    with pytest.raises(ValueError, match="must be 2-D"):
        heatmap(torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="3 row labels for 2 rows"):
        heatmap(torch.zeros(2, 2), row_labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="1 column labels for 2 columns"):
        heatmap(torch.zeros(2, 2), col_labels=["a"])


def test_plot_curves_logy_has_no_zero_line():
    x = torch.arange(1.0, 6.0)
    ax = plot_curves(x, {"loss": 1 / x}, logy=True, xlabel="step", ylabel="loss")
    assert ax.get_yscale() == "log"
    assert len(ax.lines) == 1  # the zero line would stretch a log axis towards 0
    assert len(plot_curves(x, {"loss": 1 / x}).lines) == 2


def test_live_history_plot_draws_labelled_panels_without_ipython(capsys):
    live = LiveHistoryPlot(
        ["train_loss", "val_loss", "val_acc"], title="demo [SYNTHETIC]", total_epochs=4, label_suffix=" [SYNTHETIC]"
    )
    live(2, {"train_loss": [2.0, 1.5], "val_loss": [2.1, 1.7], "val_acc": [0.2, 0.4]})
    loss_ax, acc_ax = live.figure.axes
    assert loss_ax.get_xlabel() == "epoch" and loss_ax.get_ylabel() == "loss" and acc_ax.get_ylabel() == "acc"
    labels = [t.get_text() for t in loss_ax.get_legend().get_texts()]
    assert labels == ["train_loss [SYNTHETIC]", "val_loss [SYNTHETIC]"]
    assert live.figure.get_suptitle() == "demo [SYNTHETIC]"
    assert capsys.readouterr().out == ""  # nothing printed outside IPython
