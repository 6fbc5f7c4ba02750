"""Small plot helpers the labs share (matplotlib only).

Every helper accepts PyTorch tensors (on any device, with or without grad) as well as NumPy
arrays and lists, draws on ``ax`` when given (else on a new pyplot figure, which a notebook
shows at the end of the cell) and returns what it drew on: an ``Axes``, or a ``Figure`` for
:func:`plot_masks`. None of them calls ``plt.show()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

__all__ = ["plot_heatmap", "plot_masks", "plot_curves", "plot_bar"]


def _to_numpy(value: Any, name: str) -> np.ndarray:
    """A NumPy copy of a tensor, array or nested list (tensors are detached and moved to CPU)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor, without importing torch
        value = value.detach().cpu()
        if value.dtype.is_floating_point and value.element_size() < 4:
            value = value.float()  # NumPy has no bfloat16
        value = value.numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name}: expected a tensor, array or list of numbers ({error})") from None
    if array.dtype == object:
        raise TypeError(f"{name}: expected numbers, got an array of Python objects")
    return array


def _new_axes(ax, figsize: tuple[float, float]):
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _check_labels(labels: Sequence[Any] | None, n: int, what: str, name: str) -> list[str] | None:
    if labels is None:
        return None
    labels = [str(label) for label in labels]
    if len(labels) != n:
        raise ValueError(f"{name}: {len(labels)} {what} labels for {n} {what}s")
    return labels


def _set_ticks(ax, x_labels: list[str] | None, y_labels: list[str] | None) -> None:
    if x_labels is not None:
        ax.set_xticks(range(len(x_labels)))
        widest = max((len(label) for label in x_labels), default=0)
        crowded = widest * len(x_labels) > 40 or len(x_labels) > 20
        ax.set_xticklabels(x_labels, rotation=90 if crowded else 0)
    if y_labels is not None:
        ax.set_yticks(range(len(y_labels)))
        ax.set_yticklabels(y_labels)


def plot_heatmap(
    matrix: Any,
    *,
    x_labels: Sequence[Any] | None = None,
    y_labels: Sequence[Any] | None = None,
    title: str | None = None,
    ax=None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    xlabel: str | None = None,
    ylabel: str | None = None,
    annotate: bool = False,
    fmt: str = "{:.2f}",
):
    """Draw a 2-D matrix as a grid of coloured cells: attention weights, masks, tables.

    Row ``i`` is drawn top to bottom, column ``j`` left to right (for attention: queries down,
    keys across). ``x_labels`` / ``y_labels`` name the columns / rows (e.g. the tokens).
    NaN and infinite cells (a ``-inf`` masked score, say) are left blank. ``annotate=True``
    writes each value in its cell with ``fmt``. Returns the ``Axes``.
    """
    array = _to_numpy(matrix, "plot_heatmap")
    if array.ndim != 2:
        hint = " (for several heads or a batch, pick one: matrix[0])" if array.ndim > 2 else ""
        raise ValueError(
            f"plot_heatmap: a 2-D matrix (rows x columns) expected, got shape "
            f"{tuple(array.shape)}{hint}"
        )
    if array.dtype.kind not in "biuf":
        raise TypeError(f"plot_heatmap: expected numbers, got dtype {array.dtype}")
    rows, cols = array.shape
    x_labels = _check_labels(x_labels, cols, "column", "plot_heatmap")
    y_labels = _check_labels(y_labels, rows, "row", "plot_heatmap")
    data = np.ma.masked_invalid(array.astype(float))

    ax = _new_axes(ax, (max(3.0, min(10.0, 0.35 * cols + 2)), max(2.5, min(10.0, 0.35 * rows + 1))))
    image = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    _set_ticks(ax, x_labels, y_labels)
    if annotate:
        masked = np.ma.getmaskarray(data)
        for i in range(rows):
            for j in range(cols):
                if masked[i, j]:
                    continue
                value = float(data[i, j])
                red, green, blue, _ = image.cmap(image.norm(value))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
                ax.text(
                    j,
                    i,
                    fmt.format(value),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
    if colorbar:
        ax.figure.colorbar(image, ax=ax)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    return ax


def plot_masks(
    masks: Mapping[str, Any],
    *,
    x_labels: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None,
    y_labels: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None,
    xlabel: str | None = "key",
    ylabel: str | None = "query",
    true_label: str = "True",
    false_label: str = "False",
    title: str | None = None,
    size: float = 3.0,
):
    """Draw several boolean masks side by side, each under its name.

    ``masks`` maps a title to a 2-D mask (bool, or 0/1 numbers); masks may differ in shape
    (a cross-attention mask is decoder length x encoder length). True cells are filled, False
    cells white; the legend says what each means (``true_label``, ``false_label``, e.g.
    ``"may attend"`` and ``"blocked"``). ``x_labels`` / ``y_labels`` are one list for every
    mask or a dict by mask name. Returns the ``Figure``.
    """
    if not isinstance(masks, Mapping) or not masks:
        raise ValueError("plot_masks: pass a non-empty dict {title: 2-D boolean mask}")
    arrays = {}
    for name, mask in masks.items():
        array = _to_numpy(mask, f"plot_masks[{name!r}]")
        if array.ndim != 2:
            raise ValueError(
                f"plot_masks[{name!r}]: a 2-D mask expected, got shape {tuple(array.shape)}"
            )
        if array.dtype != bool:
            if array.dtype.kind not in "biuf" or not np.isin(array, (0, 1)).all():
                raise ValueError(
                    f"plot_masks[{name!r}]: a boolean mask expected (True/False or 0/1); "
                    "for weights or scores use plot_heatmap"
                )
            array = array.astype(bool)
        arrays[name] = array

    fig, axes = plt.subplots(
        1,
        len(arrays),
        figsize=(size * len(arrays), size + 0.8),
        squeeze=False,
        layout="constrained",
    )
    cmap = ListedColormap(["white", "#3b6ea5"])
    for ax, (name, array) in zip(axes[0], arrays.items()):
        rows, cols = array.shape
        xl = x_labels.get(name) if isinstance(x_labels, Mapping) else x_labels
        yl = y_labels.get(name) if isinstance(y_labels, Mapping) else y_labels
        xl = _check_labels(xl, cols, "column", f"plot_masks[{name!r}]")
        yl = _check_labels(yl, rows, "row", f"plot_masks[{name!r}]")
        ax.imshow(array, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        # Thin grid lines between cells make single positions easy to count.
        ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
        ax.grid(which="minor", color="#999999", linewidth=0.5)
        ax.tick_params(which="minor", length=0)
        if xl is None:
            ax.set_xticks(range(cols) if cols <= 16 else [])
        if yl is None:
            ax.set_yticks(range(rows) if rows <= 16 else [])
        _set_ticks(ax, xl, yl)
        if xlabel:
            ax.set_xlabel(xlabel)
        if ylabel:
            ax.set_ylabel(ylabel)
        ax.set_title(str(name))
    true_text = "True" if true_label == "True" else f"True: {true_label}"
    false_text = "False" if false_label == "False" else f"False: {false_label}"
    fig.legend(
        handles=[
            Patch(facecolor="#3b6ea5", edgecolor="#999999", label=true_text),
            Patch(facecolor="white", edgecolor="#999999", label=false_text),
        ],
        loc="outside lower center",
        ncol=2,
        frameon=False,
    )
    if title is not None:
        fig.suptitle(title)
    return fig


def _curve_from_history(history: Any, which: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    use_eval = which == "eval" or (which == "auto" and len(history.eval_steps) > 0)
    if use_eval:
        if not history.eval_steps:
            raise ValueError(f"plot_curves[{name!r}]: this History has no evaluation points")
        return np.asarray(history.eval_steps), np.asarray(history.eval_loss)
    return np.asarray(history.steps), np.asarray(history.train_loss)


def plot_curves(
    curves: Mapping[str, Any],
    *,
    xlabel: str | None = None,
    ylabel: str | None = None,
    log_x: bool = False,
    log_y: bool = False,
    title: str | None = None,
    ax=None,
    which: str = "auto",
    markers: bool = False,
):
    """Draw several curves on one Axes, one legend entry per name.

    Each value of ``curves`` is an ``(x, y)`` pair (tensors, arrays or lists of equal length)
    or a :class:`~course_utils.training.History`: its eval loss when it has one, else its
    training loss (``which="train"`` or ``"eval"`` forces one). For histories the axis labels
    default to "step" and "loss". Returns the ``Axes``.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("plot_curves: pass a non-empty dict {name: (x, y) or History}")
    if which not in ("auto", "train", "eval"):
        raise ValueError(f"plot_curves: which must be 'auto', 'train' or 'eval', got {which!r}")
    ax = _new_axes(ax, (6, 3.5))
    all_histories = True
    for name, curve in curves.items():
        if hasattr(curve, "train_loss") and hasattr(curve, "eval_loss"):
            x, y = _curve_from_history(curve, which, name)
        else:
            all_histories = False
            if isinstance(curve, (str, bytes)) or not hasattr(curve, "__len__") or len(curve) != 2:
                raise ValueError(
                    f"plot_curves[{name!r}]: expected an (x, y) pair or a History, "
                    f"got {type(curve).__name__}"
                )
            x = _to_numpy(curve[0], f"plot_curves[{name!r}] x")
            y = _to_numpy(curve[1], f"plot_curves[{name!r}] y")
            if x.ndim != 1 or y.ndim != 1 or len(x) != len(y):
                raise ValueError(
                    f"plot_curves[{name!r}]: x and y must be 1-D of the same length, got shapes "
                    f"{tuple(x.shape)} and {tuple(y.shape)}"
                )
        ax.plot(x, y, label=str(name), marker="o" if markers else None, markersize=4)
    if all_histories:
        xlabel = "step" if xlabel is None else xlabel
        ylabel = "loss" if ylabel is None else ylabel
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    if title is not None:
        ax.set_title(title)
    ax.legend()
    ax.grid(True, alpha=0.3, which="both" if (log_x or log_y) else "major")
    return ax


def plot_bar(
    values: Mapping[str, Any],
    *,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    ax=None,
    log_y: bool = False,
    annotate: bool = True,
    fmt: str = "{:.3g}",
    color: Any = None,
):
    """A bar per name, in the dict's order, with its value written above it (``annotate``).

    Values may be numbers or one-element tensors/arrays. Returns the ``Axes``.
    """
    if not isinstance(values, Mapping) or not values:
        raise ValueError("plot_bar: pass a non-empty dict {name: number}")
    names, heights = [], []
    for name, value in values.items():
        array = _to_numpy(value, f"plot_bar[{name!r}]")
        if array.size != 1 or array.dtype.kind not in "biuf":
            raise ValueError(f"plot_bar[{name!r}]: expected one number, got {value!r:.60}")
        names.append(str(name))
        heights.append(float(array.reshape(())))
    if log_y and any(h <= 0 or not math.isfinite(h) for h in heights):
        raise ValueError("plot_bar: log_y needs every value positive")
    ax = _new_axes(ax, (max(4.0, 0.8 * len(names) + 2), 3.5))
    colors = color if color is not None else [f"C{i % 10}" for i in range(len(names))]
    bars = ax.bar(names, heights, color=colors)
    if annotate:
        ax.bar_label(bars, labels=[fmt.format(h) for h in heights], padding=2, fontsize=9)
        ax.margins(y=0.12)
    if max(len(n) for n in names) * len(names) > 60:
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    if title is not None:
        ax.set_title(title)
    return ax


def figure_image(fig, *, close: bool = True, dpi: int | None = None):
    """``fig`` as an ``IPython.display.Image`` (PNG), to ``display`` inside a widget callback.

    A PNG shows the same in JupyterLab, Colab and VS Code, whatever matplotlib backend is
    active (``display(fig)`` shows only ``<Figure size ...>`` under the Agg backend).
    ``close=True`` also closes the figure, so pyplot does not draw it a second time.
    """
    from io import BytesIO

    from IPython.display import Image

    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi or fig.dpi, bbox_inches="tight")
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return Image(data=buffer.getvalue(), format="png")
