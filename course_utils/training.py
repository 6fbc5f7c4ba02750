"""The one small training loop every lab uses.

The loop knows nothing about the model: ``get_batch(step)`` returns a batch and
``loss_fn(model, batch)`` turns it into a scalar loss, so the same :func:`train` trains a GPT
(next-token loss), a BERT (masked-token loss) or a seq2seq model (loss on the target side)::

    def get_batch(step):
        x, y = sample_batch(train_ids, batch_size=16, block_size=64)
        return x, y

    def loss_fn(model, batch):
        x, y = batch
        logits = model(x)
        return F.cross_entropy(logits.flatten(0, 1), y.flatten())

    history = train(
        model, get_batch, loss_fn, steps=500, lr=3e-4,
        eval_every=100, eval_fn=lambda m: evaluate_loss(m, get_val_batch, loss_fn, 10),
    )
    history.plot()

Steps are counted from 1: ``get_batch(1)`` feeds the first update, ``history.steps`` runs
1, 2, ..., ``steps`` and an evaluation "at step 100" happens after the 100th update.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import torch

__all__ = ["History", "train", "evaluate_loss", "warmup_cosine", "count_tokens"]


@dataclass(repr=False)
class History:
    """What happened during :func:`train`, in plain Python lists (easy to save and compare).

    - ``steps`` / ``train_loss``: the training loss, averaged over the ``log_every`` steps
      that end at each recorded step (every step when ``log_every=1``);
    - ``eval_steps`` / ``eval_loss``: the value of ``eval_fn`` after those steps;
    - ``tokens_seen``: tokens processed so far at each recorded step (see
      :func:`count_tokens`), empty when the batches hold no token ids;
    - ``seconds``: wall time of the whole call; ``train_seconds``: the part spent on training
      steps (evaluation and plotting excluded), which :attr:`tokens_per_second` uses.
    """

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    tokens_seen: list[int] = field(default_factory=list)
    seconds: float = 0.0
    train_seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float | None:
        """Training throughput in tokens per second, or ``None`` if tokens were not counted."""
        if not self.tokens_seen or self.train_seconds <= 0:
            return None
        return self.tokens_seen[-1] / self.train_seconds

    @property
    def final_train_loss(self) -> float | None:
        return self.train_loss[-1] if self.train_loss else None

    @property
    def final_eval_loss(self) -> float | None:
        return self.eval_loss[-1] if self.eval_loss else None

    def plot(self, ax=None, *, title: str | None = None, log_y: bool = False):
        """Plot the training loss (and the evaluation loss, if any) against the step.

        Draws one line for the training loss and one for the evaluation loss when there is
        one; returns the matplotlib ``Axes``. A new figure is made when ``ax`` is ``None``.
        """
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
        ax.plot(self.steps, self.train_loss, label="train", color="C0", linewidth=1.2)
        if self.eval_steps:
            ax.plot(
                self.eval_steps,
                self.eval_loss,
                label="eval",
                color="C1",
                marker="o",
                markersize=4,
            )
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        if log_y:
            ax.set_yscale("log")
        if title is not None:
            ax.set_title(title)
        ax.legend()
        ax.grid(True, alpha=0.3)
        return ax

    def as_dict(self) -> dict[str, Any]:
        """All fields, plus ``tokens_per_second``, as a JSON-ready dict."""
        out: dict[str, Any] = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        out["tokens_per_second"] = self.tokens_per_second
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Rebuild a :class:`History` from :meth:`as_dict` (extra keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def __repr__(self) -> str:
        parts = [f"steps={self.steps[-1] if self.steps else 0}"]
        if self.train_loss:
            parts.append(f"train_loss={self.train_loss[-1]:.4g}")
        if self.eval_loss:
            parts.append(f"eval_loss={self.eval_loss[-1]:.4g}")
        parts.append(f"seconds={self.seconds:.1f}")
        if self.tokens_per_second is not None:
            parts.append(f"tokens_per_second={self.tokens_per_second:,.0f}")
        return f"History({', '.join(parts)})"


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


# --------------------------------------------------------------------------------------------
# Batches


def _tensors(batch: Any) -> Iterator[torch.Tensor]:
    """The tensors of a batch, depth first, in the order they appear."""
    if isinstance(batch, torch.Tensor):
        yield batch
    elif isinstance(batch, dict):
        for value in batch.values():
            yield from _tensors(value)
    elif isinstance(batch, (list, tuple)):
        for value in batch:
            yield from _tensors(value)


def _to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) tuple/list/dict to ``device``; leave the rest alone."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return type(batch)((k, _to_device(v, device)) for k, v in batch.items())
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def count_tokens(batch: Any) -> int | None:
    """The default token count of a batch: the number of elements of its first integer tensor.

    For a language-model batch ``(x, y)`` of token ids shaped ``(batch, time)`` this is
    ``batch * time``, the ``D`` of ``FLOPs = 6 * N * D``; padding counts too. A batch with no
    integer tensor (a regression problem, say) has no tokens: ``None``. Pass your own
    ``count_tokens=`` to :func:`train` to count differently (e.g. only the target side).
    """
    for tensor in _tensors(batch):
        if not tensor.dtype.is_floating_point and not tensor.dtype.is_complex:
            if tensor.dtype != torch.bool:
                return tensor.numel()
    return None


# --------------------------------------------------------------------------------------------
# Checks


def _check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_loss(loss: Any, step: int) -> None:
    if not isinstance(loss, torch.Tensor):
        extra = (
            " Return the loss tensor itself, not loss.item()."
            if isinstance(loss, numbers.Number)
            else ""
        )
        raise TypeError(
            f"loss_fn must return a scalar torch.Tensor, but at step {step} it returned "
            f"{type(loss).__name__}: {loss!r:.80}.{extra}"
        )
    if loss.dim() != 0:
        raise ValueError(
            f"loss_fn must return a scalar tensor (shape ()), but at step {step} it returned a "
            f"tensor of shape {tuple(loss.shape)}. Reduce it, e.g. with .mean()."
        )
    if not loss.requires_grad:
        raise ValueError(
            f"loss_fn returned a tensor that does not require grad at step {step} "
            f"(value {loss.item():.4g}), so nothing can be trained. Was it computed under "
            "torch.no_grad(), detached, or from a model whose parameters are all frozen?"
        )


# --------------------------------------------------------------------------------------------
# Learning-rate schedule


def warmup_cosine(steps: int, warmup: int = 0, min_factor: float = 0.1) -> Callable[[int], float]:
    """A learning-rate factor for ``train(scheduler=...)``: linear warm-up, then cosine decay.

    The factor rises linearly from ``1/warmup`` to 1 over the first ``warmup`` steps, then
    follows half a cosine from 1 down to ``min_factor`` at step ``steps``.
    """
    _check_positive_int("steps", steps)
    if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative int, got {warmup!r}")
    if not 0.0 <= min_factor <= 1.0:
        raise ValueError(f"min_factor must be between 0 and 1, got {min_factor!r}")

    def factor(step: int) -> float:
        if step <= warmup:
            return step / warmup
        if steps <= warmup:
            return 1.0
        progress = min(1.0, (step - warmup) / (steps - warmup))
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


# --------------------------------------------------------------------------------------------
# Live plot


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, Colab, VS Code, nbclient)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _progress_bar(steps: int, progress: bool):
    """A tqdm bar, and in a notebook the display handle of its widget (else None)."""
    from tqdm.auto import tqdm

    if progress and _in_notebook():
        try:
            from IPython.display import display
            from tqdm.notebook import tqdm as notebook_tqdm

            bar = notebook_tqdm(total=steps, desc="training", dynamic_ncols=True, display=False)
            return bar, display(bar.container, display_id=True)
        except Exception:  # noqa: BLE001 - no widgets here: the text bar below works anywhere
            pass
    return tqdm(total=steps, desc="training", disable=not progress, dynamic_ncols=True), None


class _LivePlot:
    """One figure, updated in place through an IPython display handle.

    Each update renders the figure to PNG and replaces the previous image, which every
    front end supports (no ipympl, no JupyterLab extension). The figure is never registered
    with pyplot, so the notebook does not draw it a second time at the end of the cell.
    """

    def __init__(self, total_steps: int, min_seconds: float = 0.5) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.total_steps = total_steps
        self.min_seconds = min_seconds
        self.wait = min_seconds
        self.figure = Figure(figsize=(6, 3.5), dpi=90)
        FigureCanvasAgg(self.figure)
        self.handle = None
        self.last = -math.inf

    def update(self, history: History, step: int, *, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < self.wait:
            return
        from IPython.display import display

        from .plots import figure_image

        self.figure.clear()
        ax = self.figure.add_subplot()
        self.figure.subplots_adjust(left=0.12, right=0.97, bottom=0.16, top=0.9)
        history.plot(ax=ax, title=f"step {step} of {self.total_steps}")
        ax.set_xlim(0, self.total_steps)
        image = figure_image(self.figure, close=False)
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
        # Drawing takes about 0.1 s: keep it to a small share of the training time.
        self.last = time.perf_counter()
        self.wait = max(self.min_seconds, 5 * (self.last - now))

    def close(self) -> None:
        self.figure.clear()


# --------------------------------------------------------------------------------------------
# The loop


def _model_device(model: torch.nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _default_optimizer(model: torch.nn.Module, lr: float, weight_decay: float):
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    if weight_decay:
        # As in GPT-2 / nanoGPT: decay the matrices (Linear and Embedding weights), not the
        # biases and LayerNorm gains, whose size is not what overfits.
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
    else:
        groups = [{"params": params, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr)


def train(
    model: torch.nn.Module,
    get_batch: Callable[[int], Any],
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    *,
    steps: int,
    lr: float = 3e-4,
    optimizer: torch.optim.Optimizer | None = None,
    weight_decay: float = 0.0,
    grad_clip: float | None = 1.0,
    eval_every: int | None = None,
    eval_fn: Callable[[torch.nn.Module], float] | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    live_plot: bool = False,
    log_every: int = 1,
    seed: int | None = None,
    scheduler: Any = None,
    count_tokens: Callable[[Any], int | None] | None = count_tokens,
) -> History:
    """Train ``model`` for ``steps`` updates and return its :class:`History`.

    Each step ``s = 1 .. steps``: ``batch = get_batch(s)`` (tensors inside tuples, lists or
    dicts are moved to the device), ``loss = loss_fn(model, batch)`` (a scalar tensor),
    backward, gradient-norm clipping to ``grad_clip`` (``None`` turns it off), an optimizer
    step, then the scheduler.

    - ``optimizer``: default ``AdamW(lr, weight_decay)``, made fresh on every call (weight
      decay applies to weight matrices only); pass your own to keep its state across calls,
      and then ``lr`` and ``weight_decay`` are not used.
    - ``eval_fn(model) -> float`` runs in ``model.eval()`` mode under ``torch.no_grad()``
      every ``eval_every`` steps and after the last step (only at the end when
      ``eval_every`` is ``None``). :func:`evaluate_loss` makes the usual one.
    - ``scheduler``: a PyTorch LR scheduler built on your ``optimizer`` (its ``.step()`` is
      called after every update), or a function ``factor(step)`` that scales the initial
      learning rate at step ``s`` (see :func:`warmup_cosine`).
    - ``device``: moves the model there first; by default the model's own device is used.
    - ``seed``: seeds Python, NumPy and PyTorch first, so a run can be repeated exactly.
    - ``progress``: a progress bar with the smoothed training loss and the last eval loss.
    - ``live_plot``: in a notebook, one loss plot updated in place (elsewhere: ignored).
    - ``log_every``: record the mean training loss every this many steps.
    - ``count_tokens(batch) -> int | None``: tokens in a batch, for ``tokens_seen`` and
      ``History.tokens_per_second``; the default counts the first integer tensor.

    The model's training mode (of every submodule) is restored at the end, even after an
    error. A NaN or infinite loss stops training with a ``FloatingPointError``.
    ``$COURSE_MAX_STEPS``, when set, caps ``steps`` (see :mod:`course_utils.profiles`).
    """
    _check_positive_int("steps", steps)
    from .profiles import max_steps

    cap = max_steps()  # $COURSE_MAX_STEPS: a check of a profile's sizes, not a real run
    if cap is not None:
        steps = min(steps, cap)
    _check_positive_int("eval_every", eval_every, allow_none=True)
    _check_positive_int("log_every", log_every)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(get_batch) or not callable(loss_fn):
        raise TypeError(
            "get_batch and loss_fn must be functions: get_batch(step), loss_fn(model, batch)"
        )
    if eval_every is not None and eval_fn is None:
        raise ValueError("eval_every was given without eval_fn; pass eval_fn=... too")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be positive or None (no clipping), got {grad_clip!r}")
    if optimizer is None and not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")

    start = time.perf_counter()
    if seed is not None:
        from .profiles import seed_everything

        seed_everything(seed)
    if device is not None:
        model.to(device)
    device = _model_device(model)
    if optimizer is None:
        optimizer = _default_optimizer(model, lr, weight_decay)

    lr_factor = None
    if scheduler is not None:
        if hasattr(scheduler, "step"):
            if getattr(scheduler, "optimizer", optimizer) is not optimizer:
                raise ValueError(
                    "the scheduler was built on a different optimizer than the one training; "
                    "pass that optimizer=... too, or give a function factor(step) instead"
                )
        elif callable(scheduler):
            lr_factor = scheduler
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            raise TypeError("scheduler must be a torch LR scheduler or a function factor(step)")

    history = History()
    modes = {module: module.training for module in model.modules()}
    live = _LivePlot(steps) if live_plot and _in_notebook() else None

    bar, shown = _progress_bar(steps, progress)
    smoothed = None
    window: list[float] = []
    tokens = 0
    tokens_known = True

    def run_eval(step: int) -> None:
        model.eval()
        with torch.no_grad():
            value = eval_fn(model)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"eval_fn must return a number, got {type(value).__name__}: {value!r:.80}"
            ) from None
        history.eval_steps.append(step)
        history.eval_loss.append(value)
        model.train()

    try:
        model.train()
        for step in range(1, steps + 1):
            tick = time.perf_counter()
            if lr_factor is not None:
                factor = float(lr_factor(step))
                for group in optimizer.param_groups:
                    group["lr"] = group["initial_lr"] * factor
            batch = _to_device(get_batch(step), device)
            if tokens_known and count_tokens is not None:
                n = count_tokens(batch)
                if n is None:
                    tokens_known = False
                else:
                    tokens += int(n)

            loss = loss_fn(model, batch)
            _check_loss(loss, step)
            value = loss.item()
            if not math.isfinite(value):
                current_lr = optimizer.param_groups[0]["lr"]
                raise FloatingPointError(
                    f"the loss became {value} at step {step} of {steps}; training stopped. "
                    f"This usually means the learning rate is too high: try a lower lr "
                    f"(it is {current_lr:g}; try {current_lr / 10:g})."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if lr_factor is None and scheduler is not None:
                scheduler.step()
            history.train_seconds += time.perf_counter() - tick

            window.append(value)
            if step % log_every == 0 or step == steps:
                history.steps.append(step)
                history.train_loss.append(sum(window) / len(window))
                if tokens_known and count_tokens is not None:
                    history.tokens_seen.append(tokens)
                window.clear()
            smoothed = value if smoothed is None else 0.9 * smoothed + 0.1 * value

            evaluated = eval_fn is not None and (
                step == steps or (eval_every is not None and step % eval_every == 0)
            )
            if evaluated:
                run_eval(step)
            if progress:
                postfix = {"loss": f"{smoothed:.4f}"}
                if history.eval_loss:
                    postfix["eval"] = f"{history.eval_loss[-1]:.4f}"
                bar.set_postfix(postfix, refresh=False)
                bar.update(1)
            if live is not None and (evaluated or step == steps or step % max(1, steps // 20) == 0):
                live.update(history, step, force=step == steps)
        if not (tokens_known and count_tokens is not None):
            history.tokens_seen.clear()
    finally:
        bar.close()
        if shown is not None:
            # The saved text of a notebook widget is what it said when first shown ("0/500"):
            # show it again, closed, so an executed notebook reads the final count.
            shown.update(bar.container)
        if live is not None:
            live.close()
        for module, mode in modes.items():
            module.training = mode
        history.seconds = time.perf_counter() - start
    return history


def evaluate_loss(
    model: torch.nn.Module,
    get_batch: Callable[[int], Any],
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    n_batches: int,
) -> float:
    """The mean of ``loss_fn`` over ``get_batch(0) .. get_batch(n_batches - 1)``.

    Runs in ``model.eval()`` mode under ``torch.no_grad()`` on the model's device and restores
    the training mode afterwards. The same batch indices every time make successive
    evaluations comparable: ``eval_fn=lambda m: evaluate_loss(m, val_batch, loss_fn, 10)``.
    """
    _check_positive_int("n_batches", n_batches)
    device = _model_device(model)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    total = 0.0
    try:
        with torch.no_grad():
            for i in range(n_batches):
                loss = loss_fn(model, _to_device(get_batch(i), device))
                if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                    raise ValueError(
                        "loss_fn must return a scalar tensor, got "
                        f"{type(loss).__name__} {getattr(loss, 'shape', '')}"
                    )
                total += loss.item()
    finally:
        for module, mode in modes.items():
            module.training = mode
    return total / n_batches
