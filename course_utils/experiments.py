"""Measuring the three families on equal terms (lab 07): FLOPs, budgets and power laws.

**FLOPs per token.** A token passing through a transformer costs two FLOPs (a multiply and an
add) per weight of every matrix it meets, plus attention's two matrix products (scores
``q @ k.T`` and ``weights @ v``), ``2 * context * d_model`` FLOPs each per layer. The backward
pass costs about twice the forward one, so training costs about 3x the forward pass
(Kaplan et al. 2020, section 2.1). Embedding look-ups, biases, LayerNorms and softmaxes
are left out: they are small next to the matrix products, and
``torch.utils.flop_counter.FlopCounterMode`` leaves them out too. On CPU that counter does
not see the fused ``scaled_dot_product_attention`` kernel, so :func:`measure_flops` of a
model's forward pass equals :func:`flops_per_token` minus the attention term
(:func:`attention_flops_per_token`); the tests check both parts.

- decoder-only (Type B) and encoder-only (Type C): every token goes through ``n_layers``
  blocks and the output head (the encoder's MLM head is counted over every position, as
  the model computes it; only the loss is restricted to masked positions);
- encoder-decoder (Type A): a source token goes through the encoder only, a target token
  through the decoder (self-attention, cross-attention over the source, feed-forward) and
  the head; the keys and values of cross-attention are computed once per source token and
  decoder layer, so they count on the source side. :func:`flops_per_token` with
  ``family="encoder-decoder"`` takes ``part="source"`` or ``part="target"``;
  :func:`flops_per_example` adds both sides.

**Budgets.** :func:`steps_for_budget` turns "this many FLOPs" into a number of updates, and
:func:`train_for_flops` trains with :func:`course_utils.training.train` for that many.

**Power laws.** :func:`fit_power_law` fits ``loss = a * n ** (-alpha)`` by least squares on
``log loss`` against ``log n``; :func:`bootstrap_power_law` resamples the points (or the
seeds, given several losses per size) to give ``alpha`` an uncertainty.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .training import History, train

FAMILIES = ("decoder", "encoder", "encoder-decoder")


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")


def _check_positive(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def non_embedding_params(cfg) -> int:
    """Weights in the blocks' matrices (biases and LayerNorms excluded), as Kaplan's ``N``.

    Per self-attention block ``4 * d^2`` (Q, K, V, output) plus ``2 * d * d_ff`` (the
    feed-forward); a decoder block of Type A adds ``4 * d^2`` for cross-attention. For a
    ``ModelConfig`` of a decoder or encoder; :func:`family_params` for the other families.
    """
    return family_params(cfg, "decoder")


def family_params(cfg, family: str) -> int:
    """Non-embedding matrix weights of ``family`` built from ``cfg`` (see above)."""
    _check_family(family)
    d, d_ff = cfg.d_model, cfg.d_ff
    block = 4 * d * d + 2 * d * d_ff
    if family == "encoder-decoder":
        return cfg.n_encoder_layers * block + cfg.n_decoder_layers * (block + 4 * d * d)
    return cfg.n_layers * block


def flops_per_token(
    cfg,
    family: str = "decoder",
    *,
    context: int,
    backward: bool = True,
    part: str = "target",
    source_len: int | None = None,
) -> float:
    """Matrix-product FLOPs for one token of ``family`` built from ``cfg``.

    ``context``: the length of the sequence the token attends over (its own side's length).
    ``backward=True`` counts a training step (forward + backward = 3x forward).
    For ``"encoder-decoder"``: ``part="source"`` (an encoder token, no head) or
    ``part="target"`` (a decoder token: self-attention over ``context`` target tokens,
    cross-attention over ``source_len`` source tokens, the head).
    """
    _check_family(family)
    _check_positive("context", context)
    d, d_ff, vocab = cfg.d_model, cfg.d_ff, cfg.vocab_size
    block = 4 * d * d + 2 * d * d_ff
    attention = 4 * context * d  # q @ k.T and weights @ v, 2 * context * d each
    head = 2 * d * vocab
    if family == "encoder-decoder":
        if part == "source":
            # the encoder, and each decoder layer's keys and values of this memory row
            forward = cfg.n_encoder_layers * (2 * block + attention)
            forward += cfg.n_decoder_layers * 2 * 2 * d * d
        elif part == "target":
            if source_len is None:
                raise ValueError("an encoder-decoder target token needs source_len=")
            _check_positive("source_len", source_len)
            cross = 2 * 2 * d * d + 4 * source_len * d  # queries and output; scores, values
            forward = cfg.n_decoder_layers * (2 * block + attention + cross) + head
        else:
            raise ValueError(f"part must be 'source' or 'target', got {part!r}")
    else:
        forward = cfg.n_layers * (2 * block + attention) + head
        if family == "encoder" and getattr(cfg, "mlm_transform", False):
            forward += 2 * d * d
    return float(3 * forward if backward else forward)


def attention_flops_per_token(cfg, *, context: int, backward: bool = True) -> float:
    """Attention's two matrix products for one token over ``context`` keys, all layers."""
    forward = cfg.n_layers * 4 * context * cfg.d_model
    return float(3 * forward if backward else forward)


def flops_per_example(
    cfg, family: str, *, length: int, target_len: int | None = None, backward: bool = True
) -> float:
    """Training FLOPs for one sequence of ``length`` tokens (Type A: source + target)."""
    _check_family(family)
    if family == "encoder-decoder":
        if target_len is None:
            raise ValueError("an encoder-decoder example needs target_len=")
        src = flops_per_token(cfg, family, context=length, backward=backward, part="source")
        tgt = flops_per_token(
            cfg, family, context=target_len, backward=backward, part="target", source_len=length
        )
        return length * src + target_len * tgt
    return length * flops_per_token(cfg, family, context=length, backward=backward)


def measure_flops(fn: Callable[[], Any]) -> int:
    """FLOPs PyTorch counts while running ``fn()`` (``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def steps_for_budget(budget: float, flops_per_step: float) -> int:
    """Whole updates that fit in ``budget`` FLOPs (at least 1)."""
    _check_positive("budget", budget)
    _check_positive("flops_per_step", flops_per_step)
    return max(1, int(budget // flops_per_step))


@dataclass
class BudgetRun:
    """A run of :func:`train_for_flops`: its history, its steps and the FLOPs of each step."""

    history: History
    steps: int
    flops_per_step: float

    @property
    def flops(self) -> np.ndarray:
        """Cumulative training FLOPs at each recorded step of the history."""
        return np.asarray(self.history.steps, dtype=float) * self.flops_per_step

    @property
    def eval_flops(self) -> np.ndarray:
        return np.asarray(self.history.eval_steps, dtype=float) * self.flops_per_step


def train_for_flops(
    model: torch.nn.Module,
    get_batch: Callable[[int], Any],
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    *,
    budget: float,
    flops_per_step: float,
    n_evals: int | None = None,
    **train_kwargs: Any,
) -> BudgetRun:
    """Train ``model`` for as many steps as ``budget`` FLOPs buy, with :func:`train`.

    ``n_evals``: evaluate about this many times (sets ``eval_every``; needs ``eval_fn``).
    Other keywords go to :func:`course_utils.training.train`.
    """
    steps = steps_for_budget(budget, flops_per_step)
    if n_evals is not None:
        if "eval_fn" not in train_kwargs:
            raise ValueError("n_evals= needs eval_fn= too")
        train_kwargs["eval_every"] = max(1, steps // n_evals)
    history = train(model, get_batch, loss_fn, steps=steps, **train_kwargs)
    return BudgetRun(history=history, steps=steps, flops_per_step=float(flops_per_step))


@dataclass(frozen=True)
class PowerLaw:
    """``loss = a * n ** (-alpha)``, with ``alpha_std`` from a bootstrap (NaN if none)."""

    a: float
    alpha: float
    alpha_std: float = float("nan")
    alpha_low: float = float("nan")
    alpha_high: float = float("nan")

    def __call__(self, n):
        return self.a * np.asarray(n, dtype=float) ** (-self.alpha)

    def __str__(self) -> str:
        if math.isnan(self.alpha_std):
            return f"loss = {self.a:.3g} * N^(-{self.alpha:.3f})"
        return (
            f"loss = {self.a:.3g} * N^(-{self.alpha:.3f} ± {self.alpha_std:.3f}) "
            f"(95% interval {self.alpha_low:.3f} .. {self.alpha_high:.3f})"
        )


def _as_positive_array(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size < 2:
        raise ValueError(f"{name} must be a 1-D sequence of at least 2 numbers, got {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"{name} must be positive and finite (a power law lives in log space)")
    return array


def fit_power_law(n: Sequence[float], loss: Sequence[float]) -> PowerLaw:
    """Least-squares line through ``(log n, log loss)``: ``log loss = log a - alpha log n``."""
    x = np.log(_as_positive_array("n", n))
    y = np.log(_as_positive_array("loss", loss))
    if x.shape != y.shape:
        raise ValueError(f"n and loss need the same length, got {x.size} and {y.size}")
    if np.ptp(x) == 0:
        raise ValueError("n must hold at least two different sizes to fit a slope")
    slope, intercept = np.polyfit(x, y, 1)
    return PowerLaw(a=float(np.exp(intercept)), alpha=float(-slope))


def bootstrap_power_law(
    n: Sequence[float], losses: Sequence[Any], *, n_boot: int = 1000, seed: int = 0
) -> PowerLaw:
    """:func:`fit_power_law` with a bootstrap uncertainty on ``alpha``.

    ``losses[i]`` is one loss or a sequence of losses (seeds) for size ``n[i]``. With
    several seeds per size, each resample draws one seed per size; with one loss per size,
    it resamples the (n, loss) points with replacement (resamples with a single distinct
    size are skipped). ``alpha_std`` is the standard deviation of the resampled exponents,
    ``alpha_low`` / ``alpha_high`` their 2.5% and 97.5% quantiles.
    """
    sizes = _as_positive_array("n", n)
    per_size = [np.atleast_1d(np.asarray(item, dtype=float)) for item in losses]
    if len(per_size) != sizes.size:
        raise ValueError(f"n and losses need the same length, got {sizes.size} and {len(per_size)}")
    means = np.array([p.mean() for p in per_size])
    best = fit_power_law(sizes, means)
    rng = np.random.default_rng(seed)
    alphas = []
    seeds = all(p.size > 1 for p in per_size)
    for _ in range(n_boot):
        if seeds:
            sample_n = sizes
            sample_loss = np.array([p[rng.integers(p.size)] for p in per_size])
        else:
            index = rng.integers(0, sizes.size, sizes.size)
            sample_n, sample_loss = sizes[index], means[index]
            if np.ptp(sample_n) == 0:
                continue
        alphas.append(fit_power_law(sample_n, sample_loss).alpha)
    alphas = np.asarray(alphas)
    return PowerLaw(
        a=best.a,
        alpha=best.alpha,
        alpha_std=float(alphas.std(ddof=1)),
        alpha_low=float(np.quantile(alphas, 0.025)),
        alpha_high=float(np.quantile(alphas, 0.975)),
    )


def supervised_tokens(labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Positions per sequence that give the loss a target: ``(labels != ignore_index).sum(1)``."""
    if not isinstance(labels, torch.Tensor) or labels.dim() != 2:
        raise ValueError("labels must be a (B, T) tensor")
    return (labels != ignore_index).sum(dim=1)
