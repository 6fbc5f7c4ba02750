# %% [markdown]
# # Lab 02: Attention
#
# Every transformer, whether it is BERT, GPT or the original translation model, is built
# around one operation: **attention**. It lets each token look at the other tokens of the
# text and take what it needs from them. In this lab you build it from scratch and check
# every piece against PyTorch's own implementation:
#
# 1. scaled dot-product attention, and why it divides by $\sqrt{D}$;
# 2. the two masks every model needs: the **causal** mask (no peeking at the future) and
#    the **padding** mask (ignore the filler at the end of short texts);
# 3. the mask patterns of the three architectures of this course, side by side;
# 4. **multi-head** attention: splitting the channels into heads and merging them back;
# 5. a small trained model, and an **explorer** to see what its heads look at.
#
# Later labs import the course's version of everything you write here from
# `course_utils.layers`, so what you learn now is exactly what runs in labs 03 to 08.

# %% [markdown]
# ## 0. Set-up
#
# The usual start: imports, a fixed seed so that every run gives the same numbers, and the
# settings of the current profile (tiny when grading, small on a laptop, bigger on a GPU).
# Only the small model trained in section 10 uses them.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import course_utils
from course_utils.plots import plot_curves, plot_heatmap, plot_masks

course_utils.seed_everything(0)
cfg = course_utils.settings(
    smoke=dict(d_model=32, n_heads=4, n_layers=2, block_size=32, batch_size=16, steps=40, lr=1e-2),
    cpu=dict(d_model=64, n_heads=4, n_layers=2, block_size=64, batch_size=32, steps=500, lr=1e-2),
    gpu=dict(
        d_model=128, n_heads=4, n_layers=2, block_size=128, batch_size=64, steps=1500, lr=3e-3
    ),
)
device = course_utils.pick_device()
print(f"profile {cfg.profile!r} on {device}")

# %% [markdown]
# ## 1. Attention is a soft dictionary lookup
#
# Think of a Python dictionary. You look up a **query**; it is compared with every **key**;
# the one key that matches hands you its **value**. Attention does the same, but softly:
#
# - every token produces a query $q$ ("what am I looking for?"), a key $k$ ("what do I
#   contain?") and a value $v$ ("what do I hand over if chosen?"), each a vector;
# - the query is compared with *every* key by a dot product: the bigger $q \cdot k$, the
#   better the match;
# - a softmax turns those scores into **weights** that are positive and sum to 1;
# - the result is the weighted average of the values.
#
# For all queries at once, with the queries stacked as the rows of a matrix $Q$ (and the
# same for $K$ and $V$):
#
# $$\text{Attention}(Q, K, V) = \text{softmax}\!\left(\frac{Q K^\top}{\sqrt{D}}\right) V$$
#
# Shapes, which are most of the work: $Q$ is $(T_q, D)$, $K$ is $(T_k, D)$, $V$ is
# $(T_k, D_v)$. The scores $Q K^\top$ are $(T_q, T_k)$: **one row per query, one column
# per key**. The softmax runs along each row, over the keys, so that each query shares out
# its attention among the keys. The output is $(T_q, D_v)$: one vector per query. In
# self-attention the queries, keys and values all come from the same text, so
# $T_q = T_k = T$; in cross-attention (section 7) they do not.
#
# Here is the arithmetic on a toy example, with one query and three keys, before you
# write the general function. The query points the same way as key 1, so key 1 wins most
# of the weight and the output is mostly value 1.

# %%
keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # (T_k=3, D=2)
values = torch.tensor([[10.0, 0.0], [0.0, 10.0], [-10.0, -10.0]])  # (T_k=3, D_v=2)
query = torch.tensor([[0.0, 3.0]])  # (T_q=1, D=2)

scores = query @ keys.T / math.sqrt(2)  # (1, 3)
weights = torch.softmax(scores, dim=-1)  # (1, 3), sums to 1
print("scores: ", scores)
print("weights:", weights, "sum:", weights.sum().item())
print("output: ", weights @ values)

# %% [markdown]
# ## 2. Why divide by $\sqrt{D}$?
#
# The dot product $q \cdot k = \sum_{i=1}^{D} q_i k_i$ adds up $D$ products. If the
# entries of $q$ and $k$ are independent with mean 0 and variance 1 (roughly what a freshly
# initialised model produces), each product has variance 1, so the sum has variance $D$
# and a typical size (standard deviation) of $\sqrt{D}$. With $D = 64$, scores are spread
# over about $\pm 8$; with $D = 1024$, over $\pm 32$.
#
# Softmax is very sensitive to that spread: $e^{32}$ is $10^{14}$ times $e^{0}$. When the
# scores are spread widely, the softmax puts nearly all the weight on the single largest
# score: it **saturates** into a one-hot vector. A saturated softmax is flat to small
# changes of its inputs, so its **gradient is almost zero**, and a model whose attention
# starts saturated barely learns where to look.
#
# Dividing by $\sqrt{D}$ brings the scores back to a spread of about 1, whatever $D$ is.
# The experiment below measures all three effects on random vectors, for one query and 16
# keys, with and without the scaling.

# %%
gen = torch.Generator().manual_seed(0)
dims = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
n_rows, n_keys = 500, 16
curves = {
    name: {"std": [], "top": [], "grad": []} for name in ("without scaling", "with 1/sqrt(D)")
}
for d in dims:
    q = torch.randn(n_rows, 1, d, generator=gen)
    k = torch.randn(n_rows, n_keys, d, generator=gen)
    upstream = torch.randn(n_rows, n_keys, generator=gen)  # some gradient from later layers
    raw = (q @ k.transpose(-2, -1)).squeeze(1)  # (n_rows, n_keys)
    for name, divisor in (("without scaling", 1.0), ("with 1/sqrt(D)", math.sqrt(d))):
        s = (raw / divisor).requires_grad_()
        w = torch.softmax(s, dim=-1)
        (w * upstream).sum().backward()  # how much would a change of the scores matter?
        curves[name]["std"].append(s.std().item())
        curves[name]["top"].append(w.max(dim=-1).values.mean().item())
        curves[name]["grad"].append(s.grad.abs().mean().item())

fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
panels = [
    ("std", "spread (std) of the scores", False),
    ("top", "mean largest weight in a row", False),
    ("grad", "mean |gradient| of the scores", True),
]
for ax, (key, title, log_y) in zip(axes, panels):
    plot_curves(
        {name: (dims, c[key]) for name, c in curves.items()},
        ax=ax,
        log_x=True,
        log_y=log_y,
        xlabel="D, channels per head",
        title=title,
        markers=True,
    )
axes[1].axhline(1 / n_keys, color="gray", linestyle=":", label="uniform (1/16)")
axes[1].legend()
fig.tight_layout()

# %% [markdown]
# Read the three panels from left to right:
#
# - **Left:** without scaling the spread of the scores grows like $\sqrt{D}$; with it, it
#   stays near 1.
# - **Middle:** without scaling the largest weight in each row heads for 1, so the softmax
#   becomes a hard one-hot choice; with it, attention stays spread over several keys.
# - **Right:** without scaling, the gradient that reaches the scores shrinks as $D$ grows,
#   more than tenfold by $D = 1024$; with it, it does not change. That is the real reason
#   for $1/\sqrt{D}$: it keeps attention equally trainable at any width. (It was introduced with the Transformer in *Attention Is All
#   You Need*, 2017.)

# %% [markdown]
# ## 3. Masks: who may look at whom
#
# Often a query must **not** see some keys: the future, in a model that predicts the next
# token; padding, in a batch of texts of different lengths. A **mask** says which pairs are
# allowed. In this course a mask is a `bool` tensor, broadcastable to the shape of the
# scores `(..., T_q, T_k)`, where
#
# > **`True` means "query *i* may attend to key *j*"**, and `False` means "hidden".
#
# This is the convention of PyTorch's `F.scaled_dot_product_attention` (its boolean
# `attn_mask`). Section 6 shows that another PyTorch class uses the opposite one: keep your
# eyes open.
#
# How to hide a key: set its score to $-\infty$ *before* the softmax. Since
# $e^{-\infty} = 0$, it gets a weight of exactly 0, and the other weights of the row still
# sum to 1. (Setting weights to zero *after* the softmax, instead of before it, would
# leave rows that no longer sum to 1.)
#
# **A row where every key is hidden.** It happens: a text in the batch that is all
# padding, or, with padding on the left, the first positions of a GPT batch. Its scores are
# all $-\infty$, and the softmax computes $0 / 0$ = `NaN`. One `NaN` spreads through every
# later layer, into the loss, and ruins training for the whole batch. So we **define** the
# answer: such a row has **all-zero weights and an all-zero output** ("nothing to attend
# to, so nothing is taken"). PyTorch is not consistent here: `nn.MultiheadAttention` returns
# `NaN`, and `F.scaled_dot_product_attention` returns `NaN` or zeros depending on the
# version and the device. That is why the tests below handle this case explicitly.

# %% [markdown]
# ## 4. Exercise: scaled dot-product attention
#
# Write `scaled_dot_product_attention(q, k, v, mask=None)`, returning both the output and
# the weights:
#
# 1. the scores `q @ kᵀ / sqrt(D)`, of shape `(..., T_q, T_k)`. Transpose only the last two
#    axes of `k`: `k.transpose(-2, -1)`; the leading axes `...` (batch, heads) stay put;
# 2. if a mask is given, set the scores where `mask` is `False` to `float("-inf")`
#    (`Tensor.masked_fill` does it; `~mask` flips a bool tensor);
# 3. softmax over the **keys**, the last axis;
# 4. rows whose keys were all hidden must come out as zeros, not `NaN` (see section 3);
# 5. return `weights @ v` and the weights.
#
# The same code must work for `(T, D)` inputs, `(B, T, D)`, `(B, H, T, D)` and so on, and for
# $T_q \neq T_k$.
#
# <details><summary>Hint</summary>
#
# ```python
# d = q.size(-1)
# scores = q @ k.transpose(-2, -1) / math.sqrt(d)
# ```
# After `torch.softmax(scores, dim=-1)`, a fully hidden row is all `NaN`. Setting every hidden
# position's weight to 0, `weights.masked_fill(~mask, 0.0)`, fixes exactly those rows and
# changes nothing else (the other hidden weights are 0 already). A large negative number
# such as `-1e9` instead of `-inf` avoids the `NaN` but gives a fully hidden row *uniform*
# weights over the hidden keys, which is not what we defined.
# </details>


# %% exercise="attention"
def scaled_dot_product_attention(q, k, v, mask=None):
    """softmax(q kᵀ / sqrt(D)) v, with an optional mask. Returns (out, weights).

    q: (..., T_q, D) queries; k: (..., T_k, D) keys; v: (..., T_k, D_v) values.
    The leading axes ... are the same for all three, e.g. (B,) or (B, H), or none at all.
    mask: None, or a bool tensor broadcastable to (..., T_q, T_k); True = may attend.
    Returns out: (..., T_q, D_v) and weights: (..., T_q, T_k). Each row of weights sums to 1,
    except a row whose keys are all masked: its weights and its output are all zeros.
    """
    ### BEGIN SOLUTION
    d = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        # A fully masked row is NaN after softmax; every one of its weights is masked.
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights
    ### END SOLUTION


# %% [markdown]
# The first test checks attention without a mask against PyTorch's
# `F.scaled_dot_product_attention`. PyTorch does not return the weights, but a trick gets
# them from it anyway: with the identity matrix as the values, the output *is* the
# weights (`weights @ I = weights`).
#
# About the tolerance, here and in every test of this lab: float32 keeps about 7
# significant digits, and attention computed in a different order than PyTorch's (dividing
# before or after the product, say) differs by up to about $10^{-6}$ on values of size 1. The
# tests allow `atol=1e-5, rtol=1e-5`, ten times that, while the mistakes they look for
# change values by $10^{-2}$ or more.

# %% test="attention" points=2 hint="Scale by 1/sqrt(D) (D = q.size(-1)); softmax over the last axis." nudge="Attention weights are a softmax of query-key similarities, scaled so that they do not grow with the head size."
import torch
import torch.nn.functional as F

from course_utils.checks import check_tensor

TOL = dict(rtol=1e-5, atol=1e-5)  # float32, computed in another order (see above)


def reference(q, k, v):
    """PyTorch's attention output and weights (the weights: values = identity)."""
    eye = torch.eye(k.size(-2)).expand(*k.shape[:-1], k.size(-2))
    return F.scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, eye)


gen = torch.Generator().manual_seed(0)
q, k, v = (torch.randn(2, 3, 5, 8, generator=gen) for _ in range(3))
expected_out, expected_weights = reference(q, k, v)
out, weights = scaled_dot_product_attention(q.clone(), k.clone(), v.clone())
check_tensor(weights, expected_weights, name="weights for q, k, v of shape (2, 3, 5, 8)", **TOL)
check_tensor(out, expected_out, name="output for q, k, v of shape (2, 3, 5, 8)", **TOL)
print("✓ attention: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_attention", gen)  # the course's secret, if any
cases = [
    ("cross-attention T_q=4 != T_k=7", (2, 4, 16), (2, 7, 16), (2, 7, 3)),
    ("batch of one", (1, 2, 6, 8), (1, 2, 6, 8), (1, 2, 6, 8)),
    ("length-1 sequences", (3, 1, 8), (3, 1, 8), (3, 1, 8)),
    ("one query, nine keys", (2, 1, 8), (2, 9, 8), (2, 9, 5)),
    ("no batch axis at all", (6, 32), (6, 32), (6, 4)),
    ("wide heads, D=256", (2, 2, 10, 256), (2, 2, 10, 256), (2, 2, 10, 256)),
]
for label, q_shape, k_shape, v_shape in cases:
    q = torch.randn(q_shape, generator=gen)
    k = torch.randn(k_shape, generator=gen)
    v = torch.randn(v_shape, generator=gen)
    expected_out, expected_weights = reference(q, k, v)
    out, weights = scaled_dot_product_attention(q.clone(), k.clone(), v.clone())
    check_tensor(weights, expected_weights, name=f"weights, {label}", **TOL)
    check_tensor(out, expected_out, name=f"output, {label}", **TOL)
# Each row of weights is a probability distribution over the keys.
q, k = torch.randn(2, 5, 8, generator=gen), torch.randn(2, 7, 8, generator=gen)
_, weights = scaled_dot_product_attention(q, k, torch.randn(2, 7, 3, generator=gen))
check_tensor(weights.sum(-1), torch.ones(2, 5), name="each row of weights sums to 1", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# The second test adds masks: random ones, masks that broadcast, and rows where every key
# is masked. Its reference is PyTorch's attention with the same boolean mask, with the
# fully masked rows set to zero explicitly (section 3).

# %% test="attention" points=2 hint="Mask scores with -inf before softmax; then zero the masked weights." nudge="A masked position must get zero weight: mask the scores before they become probabilities."
import torch
import torch.nn.functional as F

from course_utils.checks import check_tensor

TOL = dict(rtol=1e-5, atol=1e-5)  # float32, computed in another order (see above)


def masked_reference(q, k, v, mask):
    """PyTorch's attention with a bool mask (True = may attend); fully masked rows -> 0."""
    eye = torch.eye(k.size(-2)).expand(*k.shape[:-1], k.size(-2))
    shape = (*q.shape[:-1], k.size(-2))
    empty = ~mask.expand(shape).any(dim=-1, keepdim=True)  # (..., T_q, 1)
    allowed = mask | empty  # let empty rows attend anywhere, then zero them: no NaN
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    weights = F.scaled_dot_product_attention(q, k, eye, attn_mask=allowed)
    return out.masked_fill(empty, 0.0), weights.masked_fill(empty, 0.0)


gen = torch.Generator().manual_seed(1)
q, k, v = (torch.randn(2, 3, 5, 8, generator=gen) for _ in range(3))
mask = torch.rand(2, 3, 5, 5, generator=gen) > 0.4
mask[..., 0] = True  # every query may see key 0: no fully masked row yet
expected_out, expected_weights = masked_reference(q, k, v, mask)
out, weights = scaled_dot_product_attention(q.clone(), k.clone(), v.clone(), mask.clone())
check_tensor(weights, expected_weights, name="weights with a random (2, 3, 5, 5) mask", **TOL)
check_tensor(out, expected_out, name="output with a random (2, 3, 5, 5) mask", **TOL)
# A mask that broadcasts: (2, 1, 1, 5), the last two keys of the second sequence hidden.
pad = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])[:, None, None, :]
expected_out, expected_weights = masked_reference(q, k, v, pad)
out, weights = scaled_dot_product_attention(q.clone(), k.clone(), v.clone(), pad.clone())
check_tensor(weights, expected_weights, name="weights with a (2, 1, 1, 5) padding mask", **TOL)
# A fully masked row: query 2 of batch 0, head 1 may see no key at all.
rows = torch.ones(2, 3, 5, 5, dtype=torch.bool)
rows[0, 1, 2] = False
out, weights = scaled_dot_product_attention(q, k, v, rows)
check_tensor(
    weights[0, 1, 2],
    torch.zeros(5),
    name="weights of a fully masked row (must be zeros, not NaN)",
    hint="After the softmax, set the masked weights to 0: weights.masked_fill(~mask, 0.0). "
    "-1e9 instead of -inf would give this row uniform weights.",
)
check_tensor(
    out[0, 1, 2],
    torch.zeros(8),
    name="output of a fully masked row (must be zeros, not NaN)",
    hint="The output is weights @ v: once the weights of that row are 0, so is its output.",
)
print("✓ attention with masks: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_attention_2", gen)  # the course's secret, if any
# Masks that broadcast: (T_q, T_k) for everything, and (B, 1, 1, T_k) padding.
q, k, v = (torch.randn(2, 3, 6, 8, generator=gen) for _ in range(3))
lower = torch.tril(torch.ones(6, 6, dtype=torch.bool))
causal_out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
expected_out, expected_weights = masked_reference(q, k, v, lower)
out, weights = scaled_dot_product_attention(q.clone(), k.clone(), v.clone(), lower.clone())
check_tensor(
    out,
    causal_out,
    name="output with a causal (6, 6) mask, against is_causal=True",
    **TOL,
)
check_tensor(weights, expected_weights, name="weights with a causal (6, 6) mask", **TOL)
pad = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])[:, None, None, :]  # (2, 1, 1, 6)
expected_out, expected_weights = masked_reference(q, k, v, pad)
out, weights = scaled_dot_product_attention(q.clone(), k.clone(), v.clone(), pad.clone())
check_tensor(weights, expected_weights, name="weights with a (2, 1, 1, 6) padding mask", **TOL)
check_tensor(out, expected_out, name="output with a (2, 1, 1, 6) padding mask", **TOL)

# Fully masked rows: a sequence that is all padding, and single masked rows.
full = torch.tensor([[True] * 6, [False] * 6])[:, None, None, :]
expected_out, expected_weights = masked_reference(q, k, v, full)
out, weights = scaled_dot_product_attention(q.clone(), k.clone(), v.clone(), full.clone())
check_tensor(
    out[1],
    torch.zeros(3, 6, 8),
    name="output of a sequence that is all padding (must be zeros, not NaN)",
)
check_tensor(
    weights[1],
    torch.zeros(3, 6, 6),
    name="weights of a sequence that is all padding (must be zeros, not NaN)",
)
check_tensor(out, expected_out, name="output, batch with one all-padding sequence", **TOL)
rows = torch.rand(2, 3, 6, 6, generator=gen) > 0.5
rows[0, 1, 2] = False  # one fully masked row
rows[1, :, 0] = False  # the first query of every head
expected_out, expected_weights = masked_reference(q, k, v, rows)
out, weights = scaled_dot_product_attention(q.clone(), k.clone(), v.clone(), rows.clone())
check_tensor(weights, expected_weights, name="weights with some fully masked rows", **TOL)
check_tensor(out, expected_out, name="output with some fully masked rows", **TOL)

# Cross-attention T_q != T_k with a mask; a batch of one; length-1 sequences.
for label, q_shape, k_shape, v_shape in [
    ("cross-attention T_q=3, T_k=7", (2, 3, 16), (2, 7, 16), (2, 7, 4)),
    ("batch of one", (1, 2, 5, 8), (1, 2, 5, 8), (1, 2, 5, 8)),
    ("length-1 sequences", (4, 1, 8), (4, 1, 8), (4, 1, 8)),
]:
    q = torch.randn(q_shape, generator=gen)
    k = torch.randn(k_shape, generator=gen)
    v = torch.randn(v_shape, generator=gen)
    mask = torch.rand(*q_shape[:-1], k_shape[-2], generator=gen) > 0.3
    expected_out, expected_weights = masked_reference(q, k, v, mask)
    out, weights = scaled_dot_product_attention(q.clone(), k.clone(), v.clone(), mask.clone())
    check_tensor(weights, expected_weights, name=f"masked weights, {label}", **TOL)
    check_tensor(out, expected_out, name=f"masked output, {label}", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# Now see your function at work on a lookup you can check by eye: five keys that are
# orthogonal to each other, and three queries (not a square matrix: 3 queries, 5 keys).
# Query 0 is a copy of key 4, query 1 a copy of key 1, and query 2 lies halfway between
# keys 0 and 2. The last query is also forbidden to look at key 0.

# %%
if course_utils.ready("scaled_dot_product_attention"):
    keys = 3.0 * torch.eye(8)[:5]  # (T_k=5, D=8): five orthogonal keys
    queries = torch.stack([keys[4], keys[1], (keys[0] + keys[2]) / 2])  # (T_q=3, D=8)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[2, 0] = False
    _, weights = scaled_dot_product_attention(queries, keys, keys, mask)
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    plot_heatmap(
        weights,
        ax=ax,
        x_labels=[f"k{j}" for j in range(5)],
        y_labels=["q0 = k4", "q1 = k1", "q2 = (k0 + k2) / 2"],
        annotate=True,
        vmin=0,
        vmax=1,
        xlabel="key",
        ylabel="query",
        title="attention weights: each row sums to 1",
    )
    plt.show()

# %% [markdown]
# The first two queries find their key; the third would split its attention between keys
# 0 and 2, but the mask hides key 0, so key 2 gets most of it.
#
# ## 5. Exercise: the causal mask
#
# A GPT is trained to predict the next token at *every* position of a text at once. If
# position 3 could see position 4, it would simply copy the answer. The **causal** mask
# lets query $i$ attend to keys $0, 1, \dots, i$, itself and the past, and hides the future
# $i+1, \dots, T-1$. As a $(T, T)$ matrix with queries down and keys across, the allowed
# cells are the diagonal and everything below it: a lower triangle.
#
# Write `causal_mask(t)` returning that `(t, t)` `bool` tensor, `True` on and below the
# diagonal. Do not hide the diagonal: a token may always look at itself (the first token has
# nothing else to look at).
#
# <details><summary>Hint</summary>
#
# Start from `torch.ones(t, t, dtype=torch.bool)` and keep its lower triangle with
# `torch.tril`. Or compare positions: with `i = torch.arange(t)`, the mask is
# `i[:, None] >= i[None, :]` (query index at least the key index).
# </details>


# %% exercise="causal_mask"
def causal_mask(t):
    """(t, t) bool mask, True where query i may attend key j, i.e. where j <= i."""
    ### BEGIN SOLUTION
    return torch.tril(torch.ones(t, t, dtype=torch.bool))
    ### END SOLUTION


# %% test="causal_mask" points=1 hint="True on and below the diagonal: torch.tril of a bool ones." nudge="A causal mask lets each position see itself and the positions before it, never later ones."
import torch

from course_utils.checks import check_tensor

# Bool tensors: check_tensor compares them exactly (dtype bool is checked too).
check_tensor(causal_mask(5), torch.tril(torch.ones(5, 5, dtype=torch.bool)), name="causal_mask(5)")
print("✓ causal_mask: visible tests passed")
print(causal_mask(5).int())

### BEGIN HIDDEN TESTS
for t in (1, 2, 3, 17, 64):
    expected = torch.tril(torch.ones(t, t, dtype=torch.bool))
    check_tensor(causal_mask(t), expected, name=f"causal_mask({t})")
    # Query i may see exactly i + 1 keys: itself and everything before it.
    check_tensor(
        causal_mask(t).sum(dim=-1),
        torch.arange(1, t + 1),
        name=f"number of visible keys per query in causal_mask({t})",
    )
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Exercise: the padding mask
#
# To train on a batch, all texts of the batch must have the same length, so short ones are
# filled up with a special **padding** token, `pad_id`. Padding is not text: no query may
# attend to a padding key. (A padding *query* may attend wherever it likes: its output is
# thrown away later.)
#
# Write `padding_mask(ids, pad_id)`: from token ids of shape `(B, T)`, return a `bool` mask
# of shape `(B, 1, 1, T)` that is `True` where the key is a real token and `False` where it
# is padding. Why the two axes of size 1? The scores of multi-head attention have shape
# `(B, H, T_q, T_k)`. A `(B, 1, 1, T_k)` mask broadcasts over the heads and over the
# queries: padding hides a key from every head and every query. Any token equal to `pad_id`
# counts as padding, wherever it is.
#
# <details><summary>Hint</summary>
#
# `ids != pad_id` is a `(B, T)` bool tensor that is `True` for real tokens. Add the two
# axes with indexing, `x[:, None, None, :]`, or with `.view(B, 1, 1, T)`.
# </details>


# %% exercise="padding_mask"
def padding_mask(ids, pad_id):
    """ids: (B, T) token ids -> (B, 1, 1, T) bool mask, True where ids != pad_id (may attend)."""
    ### BEGIN SOLUTION
    return (ids != pad_id)[:, None, None, :]
    ### END SOLUTION


# %% test="padding_mask" points=1 hint="(ids != pad_id), then add two axes: x[:, None, None, :]." nudge="The padding mask marks real tokens, and its shape must broadcast against the attention scores."
import torch

from course_utils.checks import check_tensor

# Bool tensors: check_tensor compares them exactly (dtype bool is checked too).
ids = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 0, 0, 0]])
expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)[:, None, None, :]
check_tensor(padding_mask(ids, 0), expected, name="padding_mask of a (2, 5) batch, pad_id=0")
print("✓ padding_mask: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_padding_mask", 2)
cases = [
    ("pad_id=3, padding anywhere", torch.randint(0, 6, (4, 9), generator=gen), 3),
    ("a sequence that is all padding", torch.tensor([[4, 4, 4, 4], [1, 2, 4, 4]]), 4),
    ("a batch of one", torch.tensor([[7, 8, 9, 1]]), 1),
    ("length-1 sequences", torch.tensor([[2], [0], [5]]), 0),
    ("no padding at all", torch.tensor([[1, 2, 3], [4, 5, 6]]), 0),
]
for label, ids, pad in cases:
    # nn.MultiheadAttention's key_padding_mask (True = ignore) is exactly the opposite.
    key_padding_mask = ids == pad
    expected = (~key_padding_mask).view(ids.size(0), 1, 1, ids.size(1))
    result = padding_mask(ids, pad)
    check_tensor(result, expected, name=f"padding_mask, {label}")
    # It must broadcast to the (B, H, T_q, T_k) scores of multi-head attention.
    check_tensor(
        result.expand(ids.size(0), 2, 3, ids.size(1)),
        expected.expand(ids.size(0), 2, 3, ids.size(1)),
        name=f"padding_mask broadcast to (B, H, T_q, T_k), {label}",
    )
### END HIDDEN TESTS

# %% [markdown]
# ### ⚠️ Two opposite conventions in PyTorch
#
# **Read this twice, it costs people days.** This course, like
# `F.scaled_dot_product_attention`, uses **`True` = "may attend"**. But
# `nn.MultiheadAttention` (and `nn.TransformerEncoderLayer`, `nn.TransformerDecoderLayer`,
# which use it) reads boolean masks the other way round:
#
# | PyTorch argument | shape | `True` means |
# |---|---|---|
# | `F.scaled_dot_product_attention(..., attn_mask=)` | broadcastable to `(..., T_q, T_k)` | **may attend** |
# | `nn.MultiheadAttention(...)(..., key_padding_mask=)` | `(B, T_k)` | **padding: ignore** |
# | `nn.MultiheadAttention(...)(..., attn_mask=)` | `(T_q, T_k)` or `(B·H, T_q, T_k)` | **ignore** |
#
# So to hand one of our masks to `nn.MultiheadAttention`, flip it with `~`. Nothing warns
# you if you forget: the shapes are fine, and the model silently attends *only* to the
# padding. The cell below shows exactly that.

# %%
torch.manual_seed(0)
mha = nn.MultiheadAttention(embed_dim=8, num_heads=1, batch_first=True).eval()
if course_utils.ready("padding_mask"):
    ids = torch.tensor([[11, 12, 13, 0, 0]])  # one text of 3 tokens, then 2 padding tokens
    keep = padding_mask(ids, pad_id=0)  # (1, 1, 1, 5), our convention: True = real token
    x = torch.randn(1, 5, 8)
    with torch.no_grad():
        _, right = mha(x, x, x, key_padding_mask=~keep[:, 0, 0, :])  # flipped: True = padding
        _, wrong = mha(x, x, x, key_padding_mask=keep[:, 0, 0, :])  # forgot to flip
    print("weights of query 0, mask flipped:    ", right[0, 0].numpy().round(3))
    print("weights of query 0, mask NOT flipped:", wrong[0, 0].numpy().round(3), "<- only padding")

# %% [markdown]
# ### Masks combine with `&`
#
# A GPT batch with padding needs both masks at once: a key is visible if it is in the past
# **and** it is a real token. Because both masks are `True` = "may attend", combining them
# is a logical *and*, with broadcasting doing the rest: `(T, T) & (B, 1, 1, T)` gives
# `(B, 1, T, T)`.
#
# With padding on the *left* (common when generating text for a batch of prompts), this
# creates fully masked rows: the first queries of the short text are padding themselves,
# and everything they may look at (themselves and what comes before) is padding too. The
# cell below shows what your function does there, next to PyTorch's
# `nn.MultiheadAttention`.

# %%
if course_utils.ready("scaled_dot_product_attention", "causal_mask", "padding_mask"):
    ids = torch.tensor([[0, 0, 21, 22], [31, 32, 33, 34]])  # text 0 is padded on the left
    both = causal_mask(4) & padding_mask(ids, pad_id=0)  # (2, 1, 4, 4)
    print("combined mask for text 0 (rows are queries):")
    print(both[0, 0].int())
    x = torch.randn(2, 4, 8)
    out, weights = scaled_dot_product_attention(x, x, x, both)
    print("your weights for text 0:\n", weights[0, 0].numpy().round(2))
    with torch.no_grad():
        torch_out, _ = mha(x, x, x, attn_mask=~causal_mask(4), key_padding_mask=(ids == 0))
    print("NaN in your output:            ", bool(out.isnan().any()))
    print("NaN in nn.MultiheadAttention's:", bool(torch_out.isnan().any()))

# %% [markdown]
# ## 7. Three architectures, three mask patterns
#
# The course compares three families of transformer. Seen through attention, they differ
# mostly in their masks:
#
# - **Type C, encoder-only (BERT).** Every token sees every other token, before and after
#   it: **bidirectional** attention, with padding hidden. Good for understanding a whole
#   text at once (classification, search).
# - **Type B, decoder-only (GPT).** Every token sees only itself and the past: the
#   **causal** mask. That is what makes next-token prediction honest, and generation
#   possible.
# - **Type A, encoder-decoder (the original Transformer, T5).** Two stacks and three kinds
#   of attention: the encoder reads the source bidirectionally; the decoder reads what it
#   has written so far causally; and in **cross-attention** the decoder's queries look at
#   the encoder's keys. Cross-attention is not square: it has one row per *target* token
#   and one column per *source* token, and only the source's padding is hidden.
#
# The figure builds all five masks with **your** `causal_mask` and `padding_mask` (filled
# cells: may attend). Queries are the rows, keys the columns.

# %%
vocab = {"[PAD]": 0}


def to_ids(words):
    """Words -> (1, T) ids in a small vocabulary made on the fly ([PAD] is 0)."""
    return torch.tensor([[vocab.setdefault(w, len(vocab)) for w in words]])


bert_words = ["[CLS]", "not", "bad", "at", "all", "[PAD]"]
gpt_words = ["The", "cat", "sat", "on", "the", "mat"]
src_words = ["le", "chat", "noir", "dort", "[PAD]", "[PAD]"]
tgt_words = ["<s>", "the", "black", "cat", "sleeps"]

if course_utils.ready("causal_mask", "padding_mask"):
    bert_keys = padding_mask(to_ids(bert_words), pad_id=0)[0, 0]  # (1, 6): which keys are real
    src_keys = padding_mask(to_ids(src_words), pad_id=0)[0, 0]  # (1, 6)
    panels = [  # (title, mask, query words down the side, key words along the bottom)
        (
            "Type C (BERT)\nencoder: bidirectional + padding",
            bert_keys.expand(6, 6),
            bert_words,
            bert_words,
        ),
        ("Type B (GPT)\ndecoder: causal", causal_mask(6), gpt_words, gpt_words),
        (
            "Type A: encoder\nself-attention, bidirectional",
            src_keys.expand(6, 6),
            src_words,
            src_words,
        ),
        ("Type A: decoder\nself-attention, causal", causal_mask(5), tgt_words, tgt_words),
        (
            "Type A: cross-attention\ndecoder queries -> encoder keys",
            src_keys.expand(5, 6),
            tgt_words,
            src_words,
        ),
    ]
    fig = plot_masks(
        {title: mask for title, mask, _, _ in panels},
        y_labels={title: rows for title, _, rows, _ in panels},
        x_labels={title: cols for title, _, _, cols in panels},
        true_label="may attend",
        false_label="hidden",
        size=3.2,
    )
    plt.show()

# %% [markdown]
# Things to notice:
#
# - In the encoders (1st and 3rd panels) the padding columns are empty: no one reads
#   padding. The padding *rows* are not hidden: a `[PAD]` query still reads every real
#   token (only the padding columns stay empty). Its output is ignored later, and letting
#   it attend somewhere avoids fully masked rows.
# - The causal masks (2nd and 4th) are lower triangles: "The" sees only itself, "mat"
#   sees the whole sentence. Nothing hides padding there because these texts have none.
# - Cross-attention (5th) is a 5 × 6 rectangle, and it is **not causal**: while writing
#   "black", the decoder may read the *whole* source, "noir" included. The source is
#   known in full before decoding starts; only the target is produced one token at a time.

# %% [markdown]
# ## 8. Many heads: split and merge
#
# One attention layer computes one set of weights per query: one way of looking at the
# text. Language needs several at once: which word is my subject, what came just before
# me, where does this quote start. **Multi-head attention** runs $H$ attentions side by
# side, each in its own smaller space.
#
# The $C$ = `d_model` channels of each token are cut into $H$ groups of $D = C / H$:
# head 0 gets channels $0 \dots D-1$, head 1 the next $D$, and so on. To run all heads in
# one batched matrix product, the head axis must come *before* the time axis, so that
# attention's `(..., T, D)` inputs have `(B, H)` as their leading axes:
#
# ```
# (B, T, C) --view--> (B, T, H, D) --transpose(1, 2)--> (B, H, T, D)      split_heads
# (B, H, T, D) --transpose(1, 2)--> (B, T, H, D) --reshape--> (B, T, C)   merge_heads
# ```
#
# **The classic mistake** is a single `x.view(B, H, T, D)`. It has the right shape, and no
# error is raised, but it reads the numbers in memory order: "head 0" then gets the first
# $T/H$ *tokens* with all their channels, chopped up, instead of every token's first $D$
# channels. Nothing crashes and the model still trains, but each "token" a head sees is
# made of pieces of different tokens, so attention no longer means what it should (in a
# GPT it can even see the future). That makes the bug hard to find.
#
# Write `split_heads(x, n_heads)` and `merge_heads(x)`, the exact inverse of each other.
# Note that after a `transpose` the tensor is no longer laid out contiguously in memory,
# so `.view` refuses to merge it back; use `.reshape` (or `.contiguous().view`).
#
# <details><summary>Hint</summary>
#
# ```python
# b, t, c = x.shape
# x.view(b, t, n_heads, c // n_heads).transpose(1, 2)    # split
# b, h, t, d = x.shape
# x.transpose(1, 2).reshape(b, t, h * d)                 # merge
# ```
# </details>


# %% exercise="heads"
def split_heads(x, n_heads):
    """(B, T, C) -> (B, H, T, D) with H = n_heads, D = C // H.

    Head h gets channels h*D ... (h+1)*D - 1 of every token: out[b, h, t, i] = x[b, t, h*D + i].
    """
    ### BEGIN SOLUTION
    b, t, c = x.shape
    return x.view(b, t, n_heads, c // n_heads).transpose(1, 2)
    ### END SOLUTION


def merge_heads(x):
    """(B, H, T, D) -> (B, T, H*D), the inverse of split_heads."""
    ### BEGIN SOLUTION
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)
    ### END SOLUTION


# %% test="heads" points=2 hint="view(B, T, H, D) then transpose(1, 2); merge: transpose back, reshape." nudge="Splitting heads is only a reshape of the channels plus moving the head axis forward; merging undoes it exactly."
import torch

from course_utils.checks import check_tensor


def reference_split(x, n_heads):
    """Head h = channels h*D ... (h+1)*D - 1 of every token, stacked on a new axis 1."""
    d = x.size(-1) // n_heads
    return torch.stack([x[:, :, h * d : (h + 1) * d] for h in range(n_heads)], dim=1)


# Splitting and merging only move numbers, so the results are exact copies: the default
# tolerance of check_tensor is more than enough, and any real mistake moves values by ~1.


gen = torch.Generator().manual_seed(3)
x = torch.randn(2, 5, 12, generator=gen)
expected = reference_split(x, 3)
heads = split_heads(x.clone(), 3)
check_tensor(heads, expected, name="split_heads of a (2, 5, 12) tensor into 3 heads")
check_tensor(merge_heads(heads), x, name="merge_heads(split_heads(x, 3))")
check_tensor(merge_heads(expected.clone()), x, name="merge_heads of 3 heads of shape (2, 3, 5, 4)")
print("✓ heads: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_heads", gen)  # the course's secret, if any
for label, shape, n_heads in [
    ("batch of one", (1, 7, 8), 2),
    ("length-1 sequences", (3, 1, 8), 4),
    ("one head", (2, 4, 6), 1),
    ("one channel per head", (2, 6, 5), 5),
    ("more heads than tokens", (2, 3, 32), 8),
    ("many tokens", (2, 64, 16), 4),
]:
    x = torch.randn(shape, generator=gen)
    expected = reference_split(x, n_heads)
    check_tensor(split_heads(x.clone(), n_heads), expected, name=f"split_heads, {label} {shape}")
    check_tensor(merge_heads(expected.clone()), x, name=f"merge_heads, {label}")
    check_tensor(merge_heads(split_heads(x.clone(), n_heads)), x, name=f"round trip, {label}")
### END HIDDEN TESTS

# %% [markdown]
# Here is the split drawn for one token sequence of 4 tokens and 8 channels, where each
# number is `10 × token + channel`, so that you can read where it came from. With 2 heads,
# each head keeps all 4 tokens and takes half of the channels. (The wrong, untransposed
# `view` would give head 0 the rows of tokens 0 and 1, cut in half.)

# %%
if course_utils.ready("split_heads"):
    demo = (10 * torch.arange(4)[:, None] + torch.arange(8)[None, :]).float()[None]  # (1, 4, 8)
    fig, axes = plt.subplots(1, 3, figsize=(12, 2.8), gridspec_kw={"width_ratios": [2, 1, 1]})
    tokens = [f"token {t}" for t in range(4)]
    plot_heatmap(
        demo[0],
        ax=axes[0],
        y_labels=tokens,
        annotate=True,
        fmt="{:.0f}",
        colorbar=False,
        cmap="tab20c",
        xlabel="channel",
        title="x: (B=1, T=4, C=8)",
    )
    for h, ax in enumerate(axes[1:]):
        plot_heatmap(
            split_heads(demo, 2)[0, h],
            ax=ax,
            y_labels=tokens,
            annotate=True,
            fmt="{:.0f}",
            colorbar=False,
            cmap="tab20c",
            vmin=0,
            vmax=37,
            xlabel="channel within the head",
            title=f"split_heads(x, 2)[0, {h}]: (T=4, D=4)",
        )
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## 9. Exercise: multi-head attention
#
# Now assemble the layer. Multi-head attention has four learned linear maps of
# `d_model → d_model`, each with a bias:
#
# 1. `q_proj` makes the queries from `x`; `k_proj` and `v_proj` make the keys and values
#    from `context`. In **self-attention** `context` is `x` itself; in **cross-attention**
#    it is another sequence (the encoder's output), possibly of a different length;
# 2. split each of the three into heads: `(B, T, C) → (B, H, T, D)`;
# 3. run your `scaled_dot_product_attention` on all heads at once, with the mask;
# 4. merge the heads back, `(B, H, T_q, D) → (B, T_q, C)`;
# 5. mix the heads with `out_proj`.
#
# Return the output and the attention weights `(B, H, T_q, T_k)`. Use exactly these four
# attribute names (the tests copy PyTorch's weights into them, and
# `course_utils.layers.MultiHeadAttention` uses the same names), and raise a `ValueError`
# when `d_model` is not divisible by `n_heads`.
#
# The test builds PyTorch's `nn.MultiheadAttention` and copies its weights into yours.
# PyTorch packs the three input projections into one `(3C, C)` matrix, `in_proj_weight`:
# rows $0 \dots C-1$ are $W_q$, the next $C$ rows $W_k$, the last $C$ rows $W_v$. Then both
# layers must compute the same thing, to float32 rounding. Remember: the test passes
# **flipped** masks to PyTorch (section 6); yours takes them as they are.
#
# <details><summary>Hint</summary>
#
# In `__init__`, after `super().__init__()`: `self.q_proj = nn.Linear(d_model, d_model)`
# and the same for the other three; keep `n_heads` as `self.n_heads`. In `forward`:
#
# ```python
# context = x if context is None else context
# q = split_heads(self.q_proj(x), self.n_heads)          # (B, H, T_q, D)
# k = split_heads(self.k_proj(context), self.n_heads)    # (B, H, T_k, D)
# ...
# ```
# The mask is already broadcastable to `(B, H, T_q, T_k)`: pass it straight to your
# attention function.
# </details>


# %% exercise="multi_head"
class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate q/k/v/out projections, batch first.

    d_model: C, the channels of each token; n_heads: H, dividing C (else ValueError).
    Attributes q_proj, k_proj, v_proj, out_proj: nn.Linear(C, C) with bias.
    """

    def __init__(self, d_model, n_heads):
        super().__init__()
        ### BEGIN SOLUTION
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.d_model, self.n_heads = d_model, n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        ### END SOLUTION

    def forward(self, x, context=None, mask=None):
        """x: (B, T_q, C) queries' tokens; context: (B, T_k, C) or None (= x, self-attention).

        mask: None or bool, broadcastable to (B, H, T_q, T_k), True = may attend.
        Returns out: (B, T_q, C) and weights: (B, H, T_q, T_k).
        """
        ### BEGIN SOLUTION
        context = x if context is None else context
        q = split_heads(self.q_proj(x), self.n_heads)
        k = split_heads(self.k_proj(context), self.n_heads)
        v = split_heads(self.v_proj(context), self.n_heads)
        y, weights = scaled_dot_product_attention(q, k, v, mask)
        return self.out_proj(merge_heads(y)), weights
        ### END SOLUTION


# %% [markdown]
# The first test: self-attention, without a mask, with a causal mask and with padding. A
# tolerance of `atol=1e-5, rtol=1e-4`: on top of attention, four matrix products are
# rounded in PyTorch's order and in yours, so differences around $10^{-6}$ are normal;
# real mistakes are far above $10^{-3}$.

# %% test="multi_head" points=2 hint="Project, split_heads, attend with the mask, merge_heads, out_proj." nudge="Multi-head attention is projections, attention per head, and one output projection, in that order."
import torch
from torch import nn

from course_utils.checks import check_equal, check_shape, check_tensor, check_true

TOL = dict(rtol=1e-4, atol=1e-5)  # float32; projections + attention in another order


def copy_from_torch(mine, theirs):
    """Copy nn.MultiheadAttention's weights into the learner's module (names as specified)."""
    with torch.no_grad():
        for proj, w, b in zip(
            (mine.q_proj, mine.k_proj, mine.v_proj),
            theirs.in_proj_weight.chunk(3),
            theirs.in_proj_bias.chunk(3),
        ):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        mine.out_proj.weight.copy_(theirs.out_proj.weight)
        mine.out_proj.bias.copy_(theirs.out_proj.bias)


def torch_reference(theirs, x, context, torch_kwargs, empty_rows=None):
    """nn.MultiheadAttention's output and per-head weights; fully masked rows -> our zeros."""
    with torch.no_grad():
        out, weights = theirs(
            x, context, context, need_weights=True, average_attn_weights=False, **torch_kwargs
        )
    if empty_rows is not None:  # (B, 1 or H, T_q, 1): no key visible -> zero attention,
        out = torch.where(empty_rows[:, 0], theirs.out_proj.bias.detach(), out)  # out = bias
        weights = weights.masked_fill(empty_rows, 0.0)
    return out, weights


C, H = 16, 4
torch.manual_seed(4)
theirs = nn.MultiheadAttention(C, H, batch_first=True).eval()
mine = MultiHeadAttention(C, H)
for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
    check_true(
        isinstance(getattr(mine, name, None), nn.Linear),
        f"MultiHeadAttention(16, 4).{name} should be an nn.Linear",
    )
    check_shape(getattr(mine, name).weight, (C, C), name=f"MultiHeadAttention(16, 4).{name}.weight")
n_params = sum(p.numel() for p in mine.parameters())
check_equal(
    n_params,
    4 * C * C + 4 * C,
    name="number of parameters of MultiHeadAttention(16, 4)",
    hint="four nn.Linear(d_model, d_model) with bias, and nothing else",
)
copy_from_torch(mine, theirs)

gen = torch.Generator().manual_seed(4)
x = torch.randn(2, 6, C, generator=gen)
causal = torch.tril(torch.ones(6, 6, dtype=torch.bool))
ids = torch.tensor([[3, 4, 5, 6, 7, 8], [3, 4, 5, 0, 0, 0]])
keep = (ids != 0)[:, None, None, :]
for label, mask, torch_kwargs in [
    ("no mask", None, {}),
    ("a causal mask", causal, dict(attn_mask=~causal)),
    ("a padding mask", keep, dict(key_padding_mask=(ids == 0))),
]:
    expected_out, expected_weights = torch_reference(theirs, x, x, torch_kwargs)
    out, weights = mine(x.clone(), mask=mask)
    check_tensor(weights, expected_weights, name=f"self-attention weights with {label}", **TOL)
    check_tensor(out, expected_out, name=f"self-attention output with {label}", **TOL)
print("✓ multi_head: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator, hidden_seed

gen = hidden_generator("test_multi_head", gen)  # the course's secret, if any
# Causal and padding together; a batch of one; length-1 sequences; many heads of width 2.
both = causal & keep
expected_out, expected_weights = torch_reference(
    theirs, x, x, dict(attn_mask=~causal, key_padding_mask=(ids == 0))
)
out, weights = mine(x.clone(), mask=both.clone())
check_tensor(out, expected_out, name="self-attention with causal & padding masks", **TOL)
for label, shape in [("batch of one", (1, 5, C)), ("length-1 sequences", (3, 1, C))]:
    x1 = torch.randn(shape, generator=gen)
    expected_out, expected_weights = torch_reference(theirs, x1, x1, {})
    out, weights = mine(x1.clone())
    check_tensor(weights, expected_weights, name=f"weights, {label}", **TOL)
    check_tensor(out, expected_out, name=f"output, {label}", **TOL)
torch.manual_seed(hidden_seed("test_multi_head", 5))
theirs8 = nn.MultiheadAttention(C, 8, batch_first=True).eval()
mine8 = MultiHeadAttention(C, 8)
copy_from_torch(mine8, theirs8)
x8 = torch.randn(2, 7, C, generator=gen)
expected_out, expected_weights = torch_reference(theirs8, x8, x8, {})
out, weights = mine8(x8.clone())
check_tensor(weights, expected_weights, name="weights with 8 heads of 2 channels", **TOL)
check_tensor(out, expected_out, name="output with 8 heads of 2 channels", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# The second test: cross-attention, where the keys and values come from another sequence
# of a different length, with the context's padding masked, a context that is all padding
# (for that one, `nn.MultiheadAttention` returns `NaN`; the reference applies our rule:
# zero attention, so the output is `out_proj`'s bias), and a `d_model` that `n_heads` does
# not divide.

# %% test="multi_head" points=2 hint="context = x if context is None; k, v from context; T_q != T_k." nudge="In cross-attention the queries come from one sequence and the keys and values from another, which may be longer or shorter."
import torch
from torch import nn

from course_utils.checks import check_raises, check_tensor

TOL = dict(rtol=1e-4, atol=1e-5)  # float32; projections + attention in another order


def copy_from_torch(mine, theirs):
    """Copy nn.MultiheadAttention's weights into the learner's module (names as specified)."""
    with torch.no_grad():
        for proj, w, b in zip(
            (mine.q_proj, mine.k_proj, mine.v_proj),
            theirs.in_proj_weight.chunk(3),
            theirs.in_proj_bias.chunk(3),
        ):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        mine.out_proj.weight.copy_(theirs.out_proj.weight)
        mine.out_proj.bias.copy_(theirs.out_proj.bias)


def torch_reference(theirs, x, context, torch_kwargs, empty_rows=None):
    """nn.MultiheadAttention's output and per-head weights; fully masked rows -> our zeros."""
    with torch.no_grad():
        out, weights = theirs(
            x, context, context, need_weights=True, average_attn_weights=False, **torch_kwargs
        )
    if empty_rows is not None:  # (B, 1 or H, T_q, 1): no key visible -> zero attention,
        out = torch.where(empty_rows[:, 0], theirs.out_proj.bias.detach(), out)  # out = bias
        weights = weights.masked_fill(empty_rows, 0.0)
    return out, weights


C, H = 16, 4
torch.manual_seed(6)
theirs = nn.MultiheadAttention(C, H, batch_first=True).eval()
mine = MultiHeadAttention(C, H)
copy_from_torch(mine, theirs)
gen = torch.Generator().manual_seed(6)
x = torch.randn(2, 3, C, generator=gen)  # 3 decoder tokens ask ...
context = torch.randn(2, 7, C, generator=gen)  # ... 7 encoder tokens
expected_out, expected_weights = torch_reference(theirs, x, context, {})
out, weights = mine(x.clone(), context.clone())
check_tensor(weights, expected_weights, name="cross-attention weights, T_q=3, T_k=7", **TOL)
check_tensor(out, expected_out, name="cross-attention output, T_q=3, T_k=7", **TOL)
# The context's padding, and a context that is all padding (a fully masked row for every query).
src = torch.tensor([[5, 6, 7, 8, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]])
keep = (src != 0)[:, None, None, :]  # (2, 1, 1, 7)
empty = ~keep.any(dim=-1, keepdim=True).expand(2, 1, 3, 1)  # (2, 1, T_q=3, 1)
expected_out, expected_weights = torch_reference(
    theirs, x, context, dict(key_padding_mask=(src == 0)), empty_rows=empty
)
out, weights = mine(x.clone(), context.clone(), mask=keep.clone())
check_tensor(
    weights,
    expected_weights,
    name="cross-attention weights, context padded / all padding",
    hint="Pass the mask to your attention unchanged; fully masked rows give zero weights.",
    **TOL,
)
check_tensor(out, expected_out, name="cross-attention output, context padded / all padding", **TOL)
error = check_raises(
    ValueError,
    MultiHeadAttention,
    10,
    4,
    name="MultiHeadAttention(10, 4)",
    hint="10 channels cannot be cut into 4 equal heads: raise ValueError",
)
print("✓ multi_head cross-attention: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_multi_head_2", gen)  # the course's secret, if any
# One query against many keys, and many queries against one key; a batch of one.
for label, tq, tk, b in [
    ("T_q=1, T_k=9", 1, 9, 2),
    ("T_q=6, T_k=1", 6, 1, 2),
    ("batch of one, T_q=4, T_k=5", 4, 5, 1),
]:
    xq = torch.randn(b, tq, C, generator=gen)
    ctx = torch.randn(b, tk, C, generator=gen)
    expected_out, expected_weights = torch_reference(theirs, xq, ctx, {})
    out, weights = mine(xq.clone(), ctx.clone())
    check_tensor(weights, expected_weights, name=f"cross-attention weights, {label}", **TOL)
    check_tensor(out, expected_out, name=f"cross-attention output, {label}", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# Your layer is the course's layer. `course_utils.layers.MultiHeadAttention`, which labs 03
# to 08 use, has the same four projections (plus a fast path through PyTorch's fused
# kernel and some input checks). Load your weights into it and compare:

# %%
from course_utils import layers

if course_utils.ready("MultiHeadAttention", "causal_mask"):
    torch.manual_seed(0)
    yours = MultiHeadAttention(32, 4)
    course = layers.MultiHeadAttention(32, 4)
    course.load_state_dict(yours.state_dict())
    x = torch.randn(2, 10, 32)
    with torch.no_grad():
        mine_out = yours(x, mask=causal_mask(10))[0]
        difference = (mine_out - course(x, is_causal=True)[0]).abs().max()
    print(f"largest difference from course_utils.layers.MultiHeadAttention: {difference:.1e}")

# %% [markdown]
# ## 10. What do trained heads look at?
#
# Random weights attend almost uniformly. To see real patterns we need a trained model.
# Below, a tiny **GPT** (Type B) is built from the course's layers: embeddings, a few
# transformer blocks (each one a multi-head attention like yours, with a causal mask, and
# a small feed-forward network; lab 03 builds them), and an output layer that predicts the
# next character. It reads the course's corpus one character at a time and trains for
# 500 steps (40 when grading). That takes seconds when grading, under a minute on a
# laptop CPU.

# %%
import copy

from course_utils import data
from course_utils.tokenizers import CharTokenizer
from course_utils.training import train, warmup_cosine

text = data.load_corpus()
tokenizer = CharTokenizer.train(text)
train_ids = torch.tensor(tokenizer.encode(text))


class TinyGPT(nn.Module):
    """A small character-level GPT from course_utils.layers: ids (B, T) -> logits (B, T, V)."""

    def __init__(self, vocab_size, d_model, n_heads, n_layers, block_size):
        super().__init__()
        self.embed = layers.Embeddings(vocab_size, d_model, block_size)
        self.blocks = nn.ModuleList(
            layers.TransformerBlock(d_model, n_heads, 4 * d_model) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, ids):
        h = self.embed(ids)
        for block in self.blocks:
            h = block(h, is_causal=True)
        return self.head(self.norm(h))

    @torch.no_grad()
    def attention_maps(self, ids):
        """ids (1, T) -> the weights of every head, (n_layers, n_heads, T, T)."""
        h, maps = self.embed(ids), []
        for block in self.blocks:
            # The blocks are pre-norm: attention reads attn_norm(h). Ask it for its weights.
            _, w = block.self_attn(block.attn_norm(h), is_causal=True, need_weights=True)
            maps.append(w[0])
            h = block(h, is_causal=True)
        return torch.stack(maps)


model = TinyGPT(tokenizer.vocab_size, cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.block_size)
untrained = copy.deepcopy(model)  # kept for comparison in the explorer
batches = torch.Generator().manual_seed(0)


def get_batch(step):
    return data.get_batch(train_ids, cfg.batch_size, cfg.block_size, generator=batches)


def next_char_loss(model, batch):
    x, y = batch
    logits = model(x)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


history = train(
    model,
    get_batch,
    next_char_loss,
    steps=cfg.steps,
    lr=cfg.lr,
    device=device,
    scheduler=warmup_cosine(cfg.steps, warmup=cfg.steps // 10),
)
model = model.cpu().eval()
print(history)
print(
    f"loss {history.train_loss[0]:.2f} -> {history.final_train_loss:.2f} "
    f"(guessing uniformly among {tokenizer.vocab_size} characters: "
    f"{math.log(tokenizer.vocab_size):.2f})"
)

# %% [markdown]
# Here are all the heads of both models on one sentence. Each small picture is a head's
# weights: row $i$ is the character that is looking, and the bright cells of that row
# are the characters it looks at. Everything above the diagonal is dark: that is the
# causal mask at work.

# %%
SENTENCES = [
    "The for statement iterates over the items of a sequence.",
    "If the condition is false, the else clause is executed.",
    "x = [i * i for i in range(10)] if n > 0 else None",
    "A function definition defines a user-defined function object.",
]


def encode_for_model(sentence):
    """Keep the characters the model knows, cut to its block size -> (1, T) ids, text."""
    known = "".join(ch for ch in sentence if ch in tokenizer.stoi)[: cfg.block_size]
    return torch.tensor([tokenizer.encode(known)]), known


ids, shown = encode_for_model(SENTENCES[0])
fig, axes = plt.subplots(
    2 * cfg.n_layers, cfg.n_heads, figsize=(2.6 * cfg.n_heads, 5.2 * cfg.n_layers)
)
for row, (name, m) in enumerate([("untrained", untrained), ("trained", model)]):
    maps = m.attention_maps(ids)  # (n_layers, n_heads, T, T)
    for layer in range(cfg.n_layers):
        for head in range(cfg.n_heads):
            ax = axes[row * cfg.n_layers + layer, head]
            ax.imshow(maps[layer, head], cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"{name}: layer {layer}, head {head}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("key (looked at) →", fontsize=8)
            if head == 0:
                ax.set_ylabel("← query (looking)", fontsize=8)
fig.suptitle(f"every head on {shown!r}", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# The untrained heads smear their attention over the whole past. The trained ones have
# become specialists. Depending on the run you will typically find:
#
# - a head that looks at the **character itself** (a bright diagonal) or at the **one just
#   before it** (a line just below the diagonal): it gathers the immediate context;
# - heads with short **vertical stripes**: the characters of a word all looking back at
#   the same key, often the space that starts the word, or a punctuation mark. Such a head
#   tells every character which word it is in.
#
# ### The attention explorer
#
# Pick a sentence (or type your own in the text box), a layer and a head, and compare with
# the untrained model. Good things to try: a sentence with repeated words, Python code with
# brackets, the word "the" in different places. Characters the corpus never contains are
# dropped, and the text is cut to the model's context length, `cfg.block_size` characters
# (64 on a laptop).

# %%
import ipywidgets as widgets
from IPython.display import display

from course_utils.plots import figure_image


def label(ch):
    return {" ": "␣", "\n": "⏎", "\t": "⇥"}.get(ch, ch)


sentence_box = widgets.Dropdown(
    options=SENTENCES,
    value=SENTENCES[0],
    description="sentence:",
    layout=widgets.Layout(width="95%"),
)
text_box = widgets.Text(
    value=SENTENCES[0],
    description="text:",
    continuous_update=False,
    layout=widgets.Layout(width="95%"),
)
layer_box = widgets.Dropdown(
    options=[(f"layer {i}", i) for i in range(cfg.n_layers)], description="layer:"
)
head_box = widgets.Dropdown(
    options=[(f"head {h}", h) for h in range(cfg.n_heads)], description="head:"
)
model_box = widgets.Dropdown(options=["trained", "untrained"], description="model:")
explorer = widgets.Output(layout=widgets.Layout(border="1px solid #ccc", min_height="300px"))


def draw(_=None):
    ids, shown = encode_for_model(text_box.value)
    chosen = model if model_box.value == "trained" else untrained
    with explorer:
        explorer.clear_output(wait=True)
        if len(shown) < 2:
            print("Type at least two characters the corpus knows.")
            return
        weights = chosen.attention_maps(ids)[layer_box.value, head_box.value]  # (T, T)
        chars = [label(ch) for ch in shown]
        size = min(9.0, 2.5 + 0.13 * len(shown))
        fig, ax = plt.subplots(figsize=(size + 1.2, size))
        plot_heatmap(
            weights,
            x_labels=chars,
            y_labels=chars,
            ax=ax,
            vmin=0,
            xlabel="key: the character looked at",
            ylabel="query: the character looking",
            title=f"{model_box.value} model, layer {layer_box.value}, head {head_box.value}",
        )
        # Up to 64 labels on one axis: smaller type as the text grows, so they do not overlap.
        ax.tick_params(labelsize=max(5.0, min(10.0, 380 / len(shown))))
        display(figure_image(fig))  # a PNG: the same in every front end


def pick_sentence(change):
    text_box.value = change["new"]  # redraws through text_box's observer


sentence_box.observe(pick_sentence, names="value")
for box in (text_box, layer_box, head_box, model_box):
    box.observe(draw, names="value")
display(
    widgets.VBox([sentence_box, text_box, widgets.HBox([layer_box, head_box, model_box]), explorer])
)
draw()

# %% [markdown]
# ## What's next
#
# You have built the heart of the transformer and seen it learn. Lab 03 wraps multi-head
# attention into the full **transformer block**: layer normalisation, a feed-forward
# network and residual connections, stacked into the models of labs 04 to 06. From now on
# the labs import the course's versions of what you wrote from `course_utils.layers`:
# `scaled_dot_product_attention`, `causal_mask`, `padding_mask`, `split_heads`,
# `merge_heads` and `MultiHeadAttention`. They follow the same conventions as yours
# (`True` = may attend, zeros for fully masked rows) and add a few options, such as
# `is_causal=True` and a fast path through PyTorch's fused kernel; their docstrings say how.
