"""Plot helpers: accept tensors and arrays, label what they draw, reject what they cannot draw."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_utils.plots import plot_bar, plot_curves, plot_heatmap, plot_masks  # noqa: E402
from course_utils.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _draw(obj):
    """Render for real, so errors that only appear at draw time are caught too."""
    figure = obj if isinstance(obj, Figure) else obj.figure
    figure.canvas.draw()


# ---- plot_heatmap


@pytest.mark.parametrize(
    "matrix",
    [
        torch.softmax(torch.randn(4, 5, requires_grad=True), dim=-1),  # needs detach
        np.arange(20, dtype=np.float64).reshape(4, 5),
        [[0, 1, 2, 3, 4]] * 4,
        torch.ones(4, 5, dtype=torch.bool),
        torch.randn(4, 5).to(torch.bfloat16),
    ],
    ids=["tensor-with-grad", "ndarray", "list", "bool-tensor", "bfloat16"],
)
def test_heatmap_accepts_tensors_arrays_and_lists(matrix):
    ax = plot_heatmap(matrix, title="weights")
    assert isinstance(ax, Axes)
    assert ax.get_title() == "weights"
    assert ax.images[0].get_array().shape == (4, 5)
    _draw(ax)


def test_heatmap_labels_rows_and_columns():
    tokens = ["the", "cat", "sat"]
    ax = plot_heatmap(torch.eye(3), x_labels=tokens, y_labels=tokens, xlabel="key", ylabel="query")
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens
    assert [t.get_text() for t in ax.get_yticklabels()] == tokens
    assert ax.get_xlabel() == "key" and ax.get_ylabel() == "query"


def test_heatmap_draws_on_given_axes_with_limits_and_colorbar_option():
    fig, ax = plt.subplots()
    returned = plot_heatmap(np.ones((2, 2)), ax=ax, vmin=0, vmax=2, colorbar=False, cmap="magma")
    assert returned is ax
    assert len(fig.axes) == 1  # no colorbar axes
    assert ax.images[0].get_clim() == (0, 2)
    assert ax.images[0].get_cmap().name == "magma"
    plot_heatmap(np.ones((2, 2)), ax=ax)
    assert len(fig.axes) == 2  # now with a colorbar


def test_heatmap_leaves_masked_scores_blank_and_annotates():
    scores = torch.tensor([[0.5, float("-inf")], [0.2, 0.8]])
    ax = plot_heatmap(scores, annotate=True)
    data = ax.images[0].get_array()
    assert bool(data.mask[0, 1]) and not bool(data.mask[0, 0])
    assert sorted(t.get_text() for t in ax.texts) == ["0.20", "0.50", "0.80"]
    _draw(ax)


@pytest.mark.parametrize("shape", [(2, 3, 4), (5,), ()])
def test_heatmap_rejects_non_2d_input(shape):
    with pytest.raises(ValueError, match=r"2-D matrix.*expected, got shape"):
        plot_heatmap(torch.zeros(shape))


def test_heatmap_hints_at_picking_a_head():
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*matrix\[0\]"):
        plot_heatmap(np.zeros((2, 3, 4)))


def test_heatmap_rejects_wrong_label_counts_and_non_numbers():
    with pytest.raises(ValueError, match="2 column labels for 3 columns"):
        plot_heatmap(torch.zeros(3, 3), x_labels=["a", "b"])
    with pytest.raises(ValueError, match="4 row labels for 3 rows"):
        plot_heatmap(torch.zeros(3, 3), y_labels="abcd")
    with pytest.raises(TypeError):
        plot_heatmap([["a", "b"], ["c", "d"]])


# ---- plot_masks


def test_masks_side_by_side_with_titles():
    n = 4
    masks = {
        "Type C: bidirectional": torch.ones(n, n, dtype=torch.bool),
        "Type B: causal": torch.tril(torch.ones(n, n, dtype=torch.bool)),
        "Type A: cross": np.ones((3, n), dtype=bool),
    }
    fig = plot_masks(masks, title="three patterns", true_label="may attend")
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == list(masks)
    assert all(ax.get_xlabel() == "key" and ax.get_ylabel() == "query" for ax in fig.axes)
    assert fig.axes[2].images[0].get_array().shape == (3, n)
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_texts == ["True: may attend", "False"]
    assert fig.get_suptitle() == "three patterns"
    _draw(fig)


def test_masks_accept_zero_one_numbers_and_per_mask_labels():
    causal = torch.tril(torch.ones(3, 3))  # float 0/1
    fig = plot_masks(
        {"causal": causal, "cross": torch.ones(2, 3, dtype=torch.int64)},
        x_labels=["a", "b", "c"],
        y_labels={"causal": ["a", "b", "c"], "cross": ["x", "y"]},
    )
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["x", "y"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b", "c"]


def test_masks_reject_weights_and_wrong_shapes():
    with pytest.raises(ValueError, match="boolean mask expected.*plot_heatmap"):
        plot_masks({"weights": torch.rand(3, 3) + 0.1})
    with pytest.raises(ValueError, match=r"'batched'.*2-D mask expected"):
        plot_masks({"batched": torch.ones(2, 3, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_masks({})
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_masks([torch.ones(2, 2, dtype=torch.bool)])


# ---- plot_curves


def test_curves_from_pairs_of_tensors_arrays_and_lists():
    x = np.array([1, 10, 100, 1000])
    curves = {
        "tensor": (torch.tensor(x), torch.tensor([4.0, 3.0, 2.5, 2.2])),
        "array": (x, np.array([4.5, 3.5, 3.0, 2.8])),
        "list": (list(x), [5.0, 4.0, 3.5, 3.3]),
    }
    ax = plot_curves(
        curves, xlabel="parameters", ylabel="loss", log_x=True, log_y=True, title="scaling"
    )
    assert isinstance(ax, Axes)
    assert [line.get_label() for line in ax.get_lines()] == list(curves)
    assert ax.get_xlabel() == "parameters" and ax.get_ylabel() == "loss"
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_title() == "scaling"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(curves)
    _draw(ax)


def test_curves_from_histories_use_eval_loss_when_present():
    with_eval = History(
        steps=[1, 2, 3], train_loss=[3.0, 2.0, 1.0], eval_steps=[3], eval_loss=[1.5]
    )
    train_only = History(steps=[1, 2, 3], train_loss=[3.5, 2.5, 1.5])
    ax = plot_curves({"encoder": with_eval, "decoder": train_only})
    lines = ax.get_lines()
    assert list(lines[0].get_xdata()) == [3] and list(lines[0].get_ydata()) == [1.5]
    assert list(lines[1].get_ydata()) == [3.5, 2.5, 1.5]
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "loss"

    ax = plot_curves({"encoder": with_eval}, which="train", ylabel="train loss")
    assert list(ax.get_lines()[0].get_ydata()) == [3.0, 2.0, 1.0]
    assert ax.get_ylabel() == "train loss"
    with pytest.raises(ValueError, match="no evaluation points"):
        plot_curves({"decoder": train_only}, which="eval")


def test_curves_draw_on_given_axes():
    fig, ax = plt.subplots()
    assert plot_curves({"a": ([0, 1], [1, 0])}, ax=ax) is ax


def test_curves_reject_bad_input():
    with pytest.raises(ValueError, match=r"'a'.*same length"):
        plot_curves({"a": ([1, 2, 3], [1, 2])})
    with pytest.raises(ValueError, match=r"'a'.*1-D"):
        plot_curves({"a": (np.zeros((2, 2)), np.zeros((2, 2)))})
    with pytest.raises(ValueError, match=r"'b'.*\(x, y\) pair or a History"):
        plot_curves({"b": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_curves({})
    with pytest.raises(ValueError, match="which"):
        plot_curves({"a": ([0], [0])}, which="test")


# ---- plot_bar


def test_bar_accepts_numbers_tensors_and_arrays_and_writes_values():
    values = {"encoder": 1.25, "decoder": torch.tensor(0.75), "enc-dec": np.float32(1.5)}
    ax = plot_bar(values, ylabel="parameters (M)", xlabel="architecture", title="size")
    assert isinstance(ax, Axes)
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx([1.25, 0.75, 1.5])
    assert [t.get_text() for t in ax.get_xticklabels()] == list(values)
    assert ax.get_ylabel() == "parameters (M)" and ax.get_xlabel() == "architecture"
    assert ax.get_title() == "size"
    assert [t.get_text() for t in ax.texts] == ["1.25", "0.75", "1.5"]
    _draw(ax)


def test_bar_options():
    fig, ax = plt.subplots()
    assert plot_bar({"a": 1, "b": 100}, ax=ax, log_y=True, annotate=False) is ax
    assert ax.get_yscale() == "log" and len(ax.texts) == 0


def test_bar_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_bar({})
    with pytest.raises(ValueError, match=r"'a'.*one number"):
        plot_bar({"a": torch.ones(3)})
    with pytest.raises(ValueError, match=r"'a'.*one number"):
        plot_bar({"a": "big"})
    with pytest.raises(ValueError, match="log_y"):
        plot_bar({"a": 0.0}, log_y=True)


def test_no_helper_calls_show(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("plt.show() called inside a helper")

    monkeypatch.setattr(plt, "show", fail)
    plot_heatmap(np.eye(2))
    plot_masks({"m": np.eye(2, dtype=bool)})
    plot_curves({"c": ([0, 1], [0, 1])})
    plot_bar({"b": 1.0})


def test_figure_image_is_a_png_whatever_the_backend():
    import matplotlib.pyplot as plt

    from course_utils.plots import figure_image

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    image = figure_image(fig)
    assert image.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)  # closed: not drawn a second time
