# %% [markdown]
# # Lab 03: The transformer block
#
# In lab 02 you built attention: the one place in a transformer where tokens exchange
# information. A real model wraps attention in a few more parts and stacks the result many
# times. That unit, the **transformer block**, is the same in BERT, in GPT and in the
# original translation model, so this lab is the last one before the three architectures
# part ways.
#
# You will build, test against PyTorch, and then measure:
#
# 1. **LayerNorm**, which keeps every token's vector at a fixed scale, and a small detail
#    in it that trips up many implementations (dividing by $C$, not $C - 1$);
# 2. the **feed-forward network**, where most of a block's parameters live;
# 3. **residual connections**, the reason a deep stack can be trained at all;
# 4. the **block** itself, in its two classic orders: **post-norm** (the 2017 paper, BERT)
#    and **pre-norm** (GPT-2 and nearly every large model since), checked against
#    `nn.TransformerEncoderLayer` with the same weights;
# 5. a deep stack of blocks, and an experiment that shows why pre-norm won;
# 6. how many parameters a model has, with a formula you derive yourself and an
#    explorer to play with sizes up to GPT-2 XL.
#
# Here is the whole block in one picture. Each of the two **sub-layers** (attention, then
# the feed-forward network) sits on a side branch; its output is *added* to the main path.
# The only difference between the two orders is where the LayerNorm goes.
#
# ```text
#          pre-norm (GPT-2, most LLMs)            post-norm (2017 Transformer, BERT)
#
#     x ──────────┬─────────────┐                x ──────────┬─────────────┐
#                 │             │                            │             │
#             LayerNorm         │                        attention         │
#                 │             │                            │             │
#             attention         │                            ▼             │
#                 │             │                            + ◄───────────┘
#                 ▼             │                            │
#                 + ◄───────────┘                        LayerNorm
#                 │                                          │
#                 ▼                                          ▼
#        the same again with the feed-forward network in place of attention
# ```

# %% [markdown]
# ## 0. Set-up
#
# Imports, a fixed seed so that every run gives the same numbers, and the settings of the
# current profile (tiny when grading, small on a laptop). Only the training experiment of
# section 9 uses them.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import course_utils
from course_utils import data
from course_utils.layers import MultiHeadAttention, count_parameters
from course_utils.plots import plot_bar, plot_curves
from course_utils.tokenizers import CharTokenizer
from course_utils.training import train

course_utils.seed_everything(0)
cfg = course_utils.settings(
    smoke=dict(n_layers=3, d_model=32, block_size=16, batch_size=4, steps=4, warmup=2),
    cpu=dict(n_layers=12, d_model=64, block_size=32, batch_size=16, steps=200, warmup=100),
)
device = course_utils.pick_device()
print(f"profile {cfg.profile!r} on {device}")

# %% [markdown]
# ## 1. LayerNorm: every token at the same scale
#
# As a vector passes through layer after layer, nothing stops its numbers from drifting:
# growing, shrinking, or moving away from zero. Each layer works best when its inputs stay
# in a familiar range, and gradients stay well sized when the activations do. **Layer
# normalisation** puts each token's vector back in that range, on its own: for one token
# with channels $x_1, \dots, x_C$,
#
# $$\mu = \frac{1}{C}\sum_{i=1}^{C} x_i, \qquad
#   \sigma^2 = \frac{1}{C}\sum_{i=1}^{C} (x_i - \mu)^2, \qquad
#   y_i = \gamma_i \, \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_i .$$
#
# - Subtracting the mean $\mu$ and dividing by the standard deviation $\sigma$ gives a
#   vector with mean 0 and variance 1.
# - $\epsilon$ (PyTorch's default is $10^{-5}$) is added **inside** the square root. It
#   keeps a constant vector ($\sigma = 0$) from dividing by zero.
# - $\gamma$ (the **gain**, PyTorch calls it `weight`) and $\beta$ (the **shift**, `bias`)
#   are learned, one number per channel, starting at 1 and 0. They let the model undo
#   the normalisation wherever that helps.
#
# The statistics are taken over the **channels of one token**, never across the batch or
# the sequence. So a token's output does not depend on its neighbours or on the batch size,
# and the layer behaves the same in training and in use, even for a batch of one. (That is
# the difference from BatchNorm, which normalises each channel across the batch.)
#
# A worked example, before you write the general version: $x = (1, 2, 3, 6)$ has
# $\mu = 3$, deviations $(-2, -1, 0, 3)$, and $\sigma^2 = (4 + 1 + 0 + 9) / 4 = 3.5$.

# %%
x = torch.tensor([1.0, 2.0, 3.0, 6.0])
mu = x.mean()
var = ((x - mu) ** 2).mean()  # divide by C = 4
y = (x - mu) / torch.sqrt(var + 1e-5)
print("mean", mu.item(), " variance", var.item())
print("normalised", y)
print("its mean", round(y.mean().item(), 6), " its variance", round((y**2).mean().item(), 4))

# %% [markdown]
# ## 2. Exercise: LayerNorm
#
# Write `layer_norm(x, weight, bias, eps)`, the formula above, over the **last** axis of
# `x`, whatever the axes before it are: `(C,)`, `(B, T, C)`, `(B, H, T, C)` all work the
# same way.
#
# - `weight` and `bias` have shape `(C,)` and broadcast against `x`; either may be `None`,
#   which means "no gain" (multiply by 1) or "no shift" (add 0). Models built with
#   `bias=False` have a LayerNorm without a shift.
# - Use `keepdim=True` in `mean`, so that the statistics, of shape `(..., 1)`, broadcast
#   back against `x`.
# - Compute the variance as the mean of the squared deviations, $(x - \mu)^2$, dividing by
#   $C$. Two traps: `torch.var` divides by $C - 1$ unless you pass `unbiased=False` (section
#   3 shows why that matters), and the shortcut $E[x^2] - \mu^2$ loses digits in float32
#   when the mean is large compared with the spread.
# - Do not change `x` in place.
#
# <details><summary>Hint</summary>
#
# ```python
# mean = x.mean(dim=-1, keepdim=True)              # (..., 1)
# var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
# y = (x - mean) / torch.sqrt(var + eps)           # (..., C)
# ```
# then multiply by `weight` if it is not `None`, and add `bias` if it is not `None`.
# </details>


# %% exercise="layer_norm"
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    """Normalise each vector along the last axis, then scale and shift it.

    x: (..., C) floats. weight (gain) and bias (shift): (C,) or None.
    eps: added to the variance inside the square root.
    Returns (..., C), same dtype as x: (x - mean) / sqrt(var + eps) * weight + bias, with
    mean and var over the last axis and var dividing by C (the population variance).
    """
    ### BEGIN SOLUTION
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y
    ### END SOLUTION


# %% [markdown]
# The tests compare your function with PyTorch's `F.layer_norm`, given the same gain and
# shift. The tolerance, `atol=1e-5, rtol=1e-5`: PyTorch sums the mean and the variance in a
# different order from yours, so results of size 1 to 5 differ by up to about $2 \cdot
# 10^{-6}$ in float32. Almost every mistake the tests look for changes them by $10^{-3}$ or
# more; the one exception, the shortcut $E[x^2] - \mu^2$, is off by about $10^{-4}$ and gets
# a test of its own (the second one below). The first test also tries a vector of small
# spread, where adding $\epsilon$ to the standard deviation instead of the variance shows.
# The grader also checks that `[1, 3]` normalises to `[-1, 1]` (the variance divides by $C$),
# other shapes, `None` for the gain or the shift, other values of
# `eps`, a constant vector, float64, and that `x` is left unchanged.

# %% test="layer_norm" points=3 hint="Mean and variance over dim=-1 with keepdim=True; the variance divides by C (unbiased=False); eps goes inside the square root; skip weight or bias when None." nudge="Layer normalisation standardises each vector over its channels, then scales and shifts it."
import torch
import torch.nn.functional as F

from course_utils.checks import check_tensor, check_true

TOL = dict(rtol=1e-5, atol=1e-5)  # float32 sums in another order (see above)
gen = torch.Generator().manual_seed(0)

x = torch.randn(2, 3, 8, generator=gen) * 3 + 1
weight = 1 + 0.5 * torch.randn(8, generator=gen)
bias = 0.5 * torch.randn(8, generator=gen)
expected = F.layer_norm(x, (8,), weight, bias, eps=1e-5)
check_tensor(
    layer_norm(x.clone(), weight.clone(), bias.clone(), eps=1e-5),
    expected,
    name="layer_norm(x of shape (2, 3, 8), weight, bias)",
    **TOL,
)
small = 0.5 + 0.01 * torch.randn(2, 4, 8, generator=gen)  # spread 0.01: var 1e-4, eps 1e-5
check_tensor(
    layer_norm(small.clone(), None, None, eps=1e-5),
    F.layer_norm(small, (8,), None, None, eps=1e-5),
    name="layer_norm of vectors with spread 0.01 (eps=1e-5)",
    hint="eps goes inside the square root: (x - mean) / sqrt(var + eps), not / (std + eps).",
    **TOL,
)
print("✓ layer_norm: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_layer_norm", gen)  # the course's secret, if any
# The population variance: [1, 3] has mean 2 and variance ((-1)² + 1²) / 2 = 1, so the
# output is [-1, 1] / sqrt(1 + eps). Dividing by C - 1 = 1 would give [-0.707, 0.707].
pair = torch.tensor([[1.0, 3.0]])
check_tensor(
    layer_norm(pair.clone(), None, None, eps=1e-5),
    torch.tensor([[-1.0, 1.0]]) / (1 + 1e-5) ** 0.5,
    name="layer_norm([[1, 3]]): its variance is 1, dividing by C (not C - 1)",
    hint="The variance divides by C, the population variance: torch.var(x, dim=-1, "
    "unbiased=False), or ((x - mean) ** 2).mean(dim=-1). torch.var's default divides by C - 1.",
    **TOL,
)
for c in (3, 16, 768):
    x = torch.randn(4, 5, c, generator=gen)
    w, b = torch.randn(c, generator=gen), torch.randn(c, generator=gen)
    check_tensor(
        layer_norm(x.clone(), w.clone(), b.clone(), 1e-5),
        F.layer_norm(x, (c,), w, b, 1e-5),
        name=f"layer_norm of (4, 5, {c})",
        **TOL,
    )
# Shapes: a batch of one, a sequence of length 1, no batch axis, an extra head axis.
for shape in [(1, 7, 16), (4, 1, 16), (1, 1, 16), (16,), (2, 3, 4, 16)]:
    x = torch.randn(shape, generator=gen)
    w, b = torch.randn(16, generator=gen), torch.randn(16, generator=gen)
    check_tensor(
        layer_norm(x.clone(), w.clone(), b.clone(), 1e-5),
        F.layer_norm(x, (16,), w, b, 1e-5),
        name=f"layer_norm of shape {shape}",
        **TOL,
    )
# No gain and no shift; a gain but no shift (a LayerNorm built with bias=False).
x = torch.randn(3, 4, 10, generator=gen)
w = torch.randn(10, generator=gen)
check_tensor(
    layer_norm(x.clone(), None, None, 1e-5),
    F.layer_norm(x, (10,), None, None, 1e-5),
    name="layer_norm(x, weight=None, bias=None)",
    **TOL,
)
check_tensor(
    layer_norm(x.clone(), w.clone(), None, 1e-5),
    F.layer_norm(x, (10,), w, None, 1e-5),
    name="layer_norm(x, weight, bias=None): no shift",
    **TOL,
)
# eps: inside the square root, and the argument is used (not a fixed 1e-5).
small = 0.3 * torch.randn(3, 4, 10, generator=gen)
for eps in (1.0, 0.1, 0.0):
    check_tensor(
        layer_norm(small.clone(), w.clone(), None, eps),
        F.layer_norm(small, (10,), w, None, eps),
        name=f"layer_norm with eps={eps} on inputs of spread 0.3",
        hint="Use the eps argument, added to the variance inside the square root: "
        "sqrt(var + eps), not std + eps.",
        **TOL,
    )
# A constant vector has variance 0: eps avoids 0 / 0 and the output is the shift.
const = torch.full((2, 3, 6), 4.0)
b = torch.randn(6, generator=gen)
check_tensor(
    layer_norm(const.clone(), torch.ones(6), b.clone(), 1e-5),
    b.expand(2, 3, 6).clone(),
    name="layer_norm of a constant vector (variance 0) returns the shift",
    **TOL,
)
# One channel: x - mean is 0.
one = torch.randn(5, 1, generator=gen)
check_tensor(
    layer_norm(one.clone(), torch.ones(1), torch.full((1,), 0.5), 1e-5),
    torch.full((5, 1), 0.5),
    name="layer_norm with C = 1",
    **TOL,
)
# float64 in, float64 out; the input is left untouched.
x64 = torch.randn(2, 5, 8, generator=gen, dtype=torch.float64)
w64, b64 = torch.randn(8, generator=gen, dtype=torch.float64), torch.zeros(8, dtype=torch.float64)
check_tensor(
    layer_norm(x64.clone(), w64.clone(), b64.clone(), 1e-5),
    F.layer_norm(x64, (8,), w64, b64, 1e-5),
    name="layer_norm of a float64 tensor",
    rtol=1e-10,
    atol=1e-10,
)
x = torch.randn(2, 3, 8, generator=gen)
before = x.clone()
layer_norm(x, torch.ones(8), torch.zeros(8), 1e-5)
check_true(
    bool(torch.equal(x, before)),
    "layer_norm changed its input x in place",
    hint="Write y = x - mean, not x -= mean.",
)
### END HIDDEN TESTS

# %% [markdown]
# A second, short test: numbers far from zero. Activations can have a large mean compared
# with their spread (here the mean is 20 and the spread 1). Float32 keeps about 7
# significant digits, so $E[x^2] \approx 401$ carries only about three digits of the
# variance, and the shortcut $E[x^2] - \mu^2$ is off by about $10^{-4}$; subtracting the
# mean first keeps the error near $3 \cdot 10^{-6}$, inside the same tolerance.

# %% test="layer_norm" points=1 hint="Subtract the mean first and average the squared deviations: ((x - mean) ** 2).mean(-1, keepdim=True), not (x * x).mean() - mean ** 2." nudge="Two formulas for the variance agree on paper but not in float32: compute it the numerically stable way."
import torch
import torch.nn.functional as F

from course_utils.checks import check_tensor

TOL = dict(rtol=1e-5, atol=1e-5)  # float32 sums in another order (see above)
gen = torch.Generator().manual_seed(5)
x = 20 + torch.randn(4, 6, 64, generator=gen)
check_tensor(
    layer_norm(x.clone(), None, None, 1e-5),
    F.layer_norm(x, (64,), None, None, 1e-5),
    name="layer_norm of vectors with mean 20 and spread 1",
    **TOL,
)
print("✓ layer_norm: large-mean test passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_layer_norm_2", gen)  # the course's secret, if any
x = -15 + 0.8 * torch.randn(3, 5, 256, generator=gen)
check_tensor(
    layer_norm(x.clone(), None, None, 1e-5),
    F.layer_norm(x, (256,), None, None, 1e-5),
    name="layer_norm of vectors with mean -15 and spread 0.8",
    **TOL,
)
### END HIDDEN TESTS

# %% [markdown]
# A LayerNorm *module* is just the function plus its two learned vectors. The class below
# stores them as `nn.Parameter`s (so that optimisers train them and `model.parameters()`
# finds them) under PyTorch's names, `weight` and `bias`, and calls your function. The
# check at the end compares it with `nn.LayerNorm`.


# %%
class LayerNorm(nn.Module):
    """LayerNorm over the last axis with a learned gain (`weight`) and shift (`bias`).

    (..., C) -> (..., C). With bias=False there is no shift (self.bias is None).
    """

    def __init__(self, d_model, eps=1e-5, bias=True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model)) if bias else None

    def forward(self, x):
        return layer_norm(x, self.weight, self.bias, self.eps)


if course_utils.ready("layer_norm"):
    ours, theirs = LayerNorm(16), nn.LayerNorm(16)
    x = torch.randn(2, 5, 16)
    print("largest difference from nn.LayerNorm:", (ours(x) - theirs(x)).abs().max().item())

# %% [markdown]
# ## 3. Why divide by $C$, and not by $C - 1$?
#
# In statistics you often divide by $n - 1$ (Bessel's correction): when a few numbers are
# a *sample* from a larger population, that gives an unbiased estimate of the population's
# variance. It is `torch.var`'s default. LayerNorm estimates nothing: its job is to make
# *these* $C$ numbers have mean 0 and mean square 1, and only dividing by $C$ does that.
# Dividing by $C - 1$ makes the variance $\frac{C}{C-1}$ times too big, so every output
# comes out $\sqrt{(C-1)/C}$ times too small: 13% for $C = 4$, 0.07% for $C = 768$.
#
# 0.07% sounds harmless, but it is a *systematic* shrink at every LayerNorm of the model
# (GPT-2 small has 25 of them), and weights trained with one convention give
# different numbers with the other: load GPT-2's weights (lab 05) into a model whose
# LayerNorm divides by $C - 1$, and its outputs no longer match. *The Annotated
# Transformer*, a well-known tutorial, made exactly this slip, together with a second one:
# adding $\epsilon$ to the standard deviation instead of the variance. Both are measured
# below, against `F.layer_norm`:
#
# - **left**: the error of dividing by $C - 1$ shrinks like $1/C$ but never vanishes;
# - **right**: $\epsilon$ added to $\sigma$ barely matters for inputs of size 1, but when a
#   token's vector is small (a spread of $10^{-2}$, say), $\sqrt{\sigma^2 + \epsilon}$ and
#   $\sigma + \epsilon$ are very different numbers.


# %%
def annotated_transformer_norm(x, eps=1e-5):
    """The slip: unbiased std (C - 1) and eps added to the std."""
    mean = x.mean(-1, keepdim=True)
    return (x - mean) / (x.std(-1, keepdim=True) + eps)


def unbiased_norm(x, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(x.var(-1, keepdim=True) + eps)  # var divides by C - 1


def std_plus_eps_norm(x, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    return (x - mean) / (x.std(-1, keepdim=True, unbiased=False) + eps)


def max_error(fn, x):
    return (fn(x) - F.layer_norm(x, (x.size(-1),))).abs().max().item()


if course_utils.ready("layer_norm"):
    gen = torch.Generator().manual_seed(0)
    widths = [4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
    inputs = [torch.randn(64, c, generator=gen) for c in widths]
    spreads = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0]
    scaled = [s * torch.randn(64, 64, generator=gen) for s in spreads]

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8))
    plot_curves(
        {
            "yours": (widths, [max_error(lambda t: layer_norm(t), x) for x in inputs]),
            "divide by C - 1": (widths, [max_error(unbiased_norm, x) for x in inputs]),
            "Annotated Transformer": (
                widths,
                [max_error(annotated_transformer_norm, x) for x in inputs],
            ),
        },
        ax=left,
        log_x=True,
        log_y=True,
        markers=True,
        xlabel="C, channels",
        ylabel="largest |difference| from F.layer_norm",
        title="inputs of spread 1",
    )
    plot_curves(
        {
            "yours": (spreads, [max_error(lambda t: layer_norm(t), x) for x in scaled]),
            "eps added to the std": (spreads, [max_error(std_plus_eps_norm, x) for x in scaled]),
            "Annotated Transformer": (
                spreads,
                [max_error(annotated_transformer_norm, x) for x in scaled],
            ),
        },
        ax=right,
        log_x=True,
        log_y=True,
        markers=True,
        xlabel="spread (std) of the input vector",
        title="C = 64",
    )
    for line in left.get_lines():  # it lies on the Annotated Transformer's curve: draw it on top
        if line.get_label() == "divide by C - 1":
            line.set(linestyle="--", linewidth=3, zorder=5, alpha=0.8)
    left.legend()
    for ax in (left, right):
        ax.axhline(1e-5, color="gray", linestyle=":")  # the tests' tolerance
    fig.tight_layout()
    plt.show()

# %% [markdown]
# Your curve sits at the level of float32 rounding, about $10^{-6}$ (on a log axis an
# exact zero would not show at all), below the tests' tolerance (the dotted line). The
# other two sit orders of magnitude above it. On the left, "divide by $C - 1$" (dashed)
# lies almost exactly on the Annotated Transformer's curve: for inputs of spread 1, nearly
# all of its error comes from that one slip. Check one number: for a vector of spread
# $10^{-2}$, $\sigma^2 = 10^{-4}$, so $\sqrt{\sigma^2 + \epsilon} = \sqrt{1.1 \cdot
# 10^{-4}} \approx 0.0105$ while $\sigma + \epsilon \approx 0.01001$: outputs 5% apart.

# %% [markdown]
# ## 4. The feed-forward network
#
# Attention moves information *between* tokens. The **feed-forward network** (FFN, or MLP)
# then works on each token **on its own**: the same small two-layer network is applied
# to every position,
#
# $$\text{FFN}(x) = W_2 \, \phi(W_1 x + b_1) + b_2, \qquad
#   W_1: C \to d_{ff}, \quad W_2: d_{ff} \to C,$$
#
# where $\phi$ is a nonlinearity and $d_{ff}$ (the **hidden size**) is usually $4C$: the
# token is expanded into a wider space, transformed there, and projected back. Without
# $\phi$ the two layers would collapse into one linear map. Attention is mostly weighted
# averaging, so the FFN is where most of the per-token computation happens, and, as
# section 10 shows, where two-thirds of a block's parameters are.
#
# The nonlinearity: the 2017 Transformer used **ReLU**, $\max(0, z)$; BERT and GPT use
# **GELU**, $z \cdot \Phi(z)$ with $\Phi$ the standard normal CDF, a smooth ReLU that lets
# a little of the negative side through (GPT-2 uses a `tanh` approximation of it).

# %%
z = torch.linspace(-4, 4, 200)
ax = plot_curves(
    {
        "ReLU": (z, F.relu(z)),
        "GELU": (z, F.gelu(z)),
        "GELU, tanh approx.": (z, F.gelu(z, approximate="tanh")),
    },
    xlabel="z",
    ylabel="φ(z)",
    title="two nonlinearities",
)
ax.figure.set_size_inches(5, 3.2)
plt.show()

# %% [markdown]
# ## 5. Exercise: the feed-forward network
#
# Complete `FeedForward.__init__`; `forward` is given. Create, after `super().__init__()`,
# exactly these three attributes (the tests copy weights into them by name, and
# `course_utils.layers.FeedForward` uses the same names):
#
# - `self.fc1 = nn.Linear(d_model, d_ff, bias=bias)`, the expansion;
# - `self.act`: `nn.GELU()` when `activation == "gelu"` (the exact one, not the tanh
#   approximation), `nn.ReLU()` when `activation == "relu"`, and a `ValueError` for any
#   other name;
# - `self.fc2 = nn.Linear(d_ff, d_model, bias=bias)`, the projection back.
#
# `nn.Linear` works on the last axis and treats every other axis as a batch, which is
# exactly "the same network at every position": no loop over tokens is needed.
#
# <details><summary>Hint</summary>
#
# Assigning an `nn.Module` to `self.something` inside `__init__` registers it, so its
# parameters show up in `self.parameters()`. A dictionary such as
# `{"relu": nn.ReLU, "gelu": nn.GELU}` picks the activation class by name; check that the
# name is a key first, and raise `ValueError(...)` if not.
# </details>


# %% exercise="feed_forward"
class FeedForward(nn.Module):
    """Position-wise MLP: fc1 (C -> d_ff), activation, fc2 (d_ff -> C).

    x: (..., C) -> (..., C), the same network applied at every position.
    Attributes: fc1 = nn.Linear(d_model, d_ff, bias=bias); act = nn.GELU() for
    activation="gelu" or nn.ReLU() for "relu" (else ValueError);
    fc2 = nn.Linear(d_ff, d_model, bias=bias).
    """

    def __init__(self, d_model, d_ff, activation="gelu", bias=True):
        super().__init__()
        ### BEGIN SOLUTION
        activations = {"gelu": nn.GELU, "relu": nn.ReLU}
        if activation not in activations:
            raise ValueError(f"activation must be 'gelu' or 'relu', got {activation!r}")
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.act = activations[activation]()
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)
        ### END SOLUTION

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


# %% [markdown]
# The test builds the reference from PyTorch's own pieces, `nn.Sequential(nn.Linear,
# nn.GELU or nn.ReLU, nn.Linear)`, gives it random weights, copies them into your module
# and compares the outputs. Both run the same `nn.Linear` layers, so they agree to float32
# rounding; the tolerance is `atol=1e-5, rtol=1e-5`.

# %% test="feed_forward" points=2 hint="fc1 = nn.Linear(d_model, d_ff, bias=bias), act = nn.GELU() or nn.ReLU(), fc2 = nn.Linear(d_ff, d_model, bias=bias); raise ValueError for other activations." nudge="A feed-forward layer widens each vector, applies a non-linearity, and narrows it back."
import math

import torch
from torch import nn

from course_utils.checks import check_equal, check_raises, check_shape, check_tensor, check_true

TOL = dict(rtol=1e-5, atol=1e-5)  # the same nn.Linear layers: float32 rounding at most
gen = torch.Generator().manual_seed(0)


def reference_and_yours(d_model, d_ff, activation, bias):
    """PyTorch's MLP with random weights, and a FeedForward holding a copy of them."""
    act = nn.GELU() if activation == "gelu" else nn.ReLU()
    ref = nn.Sequential(
        nn.Linear(d_model, d_ff, bias=bias), act, nn.Linear(d_ff, d_model, bias=bias)
    )
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
    ffn = FeedForward(d_model, d_ff, activation=activation, bias=bias)
    label = f"FeedForward({d_model}, {d_ff}, activation={activation!r}, bias={bias})"
    for attr in ("fc1", "fc2"):
        check_true(
            isinstance(getattr(ffn, attr, None), nn.Linear),
            f"{label} has no nn.Linear attribute {attr!r}",
        )
    check_shape(
        ffn.fc1.weight,
        (d_ff, d_model),
        name=f"{label}.fc1.weight",
        hint="nn.Linear(in_features, out_features) stores weight as (out, in).",
    )
    check_shape(ffn.fc2.weight, (d_model, d_ff), name=f"{label}.fc2.weight")
    for attr in ("fc1", "fc2"):
        has_bias = getattr(ffn, attr).bias is not None
        check_true(has_bias == bias, f"{label}.{attr} should {'' if bias else 'not '}have a bias")
    with torch.no_grad():
        for mine, theirs in ((ffn.fc1, ref[0]), (ffn.fc2, ref[2])):
            mine.weight.copy_(theirs.weight)
            if bias:
                mine.bias.copy_(theirs.bias)
    return ref, ffn, label


ref, ffn, label = reference_and_yours(16, 64, "gelu", True)
x = torch.randn(2, 5, 16, generator=gen)
check_tensor(ffn(x.clone()), ref(x), name=f"{label} on x of shape (2, 5, 16)", **TOL)
ref, ffn, label = reference_and_yours(16, 32, "relu", False)
check_tensor(ffn(x.clone()), ref(x), name=f"{label} on x of shape (2, 5, 16)", **TOL)
print("✓ feed_forward: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_feed_forward", gen)  # the course's secret, if any
for d_model, d_ff, activation, bias, shape in [
    (16, 64, "relu", True, (3, 4, 16)),
    (32, 8, "gelu", True, (2, 3, 32)),  # a hidden size smaller than d_model
    (24, 96, "gelu", False, (2, 6, 24)),  # no biases
    (24, 96, "relu", False, (2, 6, 24)),
    (16, 64, "gelu", True, (1, 1, 16)),  # a batch of one, a sequence of length 1
    (16, 64, "gelu", True, (7, 16)),  # no sequence axis
]:
    ref, ffn, label = reference_and_yours(d_model, d_ff, activation, bias)
    x = torch.randn(shape, generator=gen)
    check_tensor(ffn(x.clone()), ref(x), name=f"{label} on x of shape {shape}", **TOL)
    check_equal(
        sum(p.numel() for p in ffn.parameters()),
        sum(p.numel() for p in ref.parameters()),
        name=f"number of parameters of {label}",
        hint="Assign the layers to self.fc1 / self.fc2 so that they are registered.",
    )
check_raises(
    ValueError,
    FeedForward,
    8,
    32,
    activation="swish",
    name="FeedForward(8, 32, activation='swish')",
)
check_true(type(FeedForward(8, 32).act) is nn.GELU, "FeedForward's default activation is GELU")
check_true(
    FeedForward(8, 32, activation="gelu").act.approximate == "none",
    "activation='gelu' is the exact GELU, nn.GELU(), not the tanh approximation",
)
### END HIDDEN TESTS

# %% [markdown]
# "Position-wise" has a consequence worth seeing: the FFN cannot tell where a token is or
# what its neighbours are. Shuffle the tokens of a sequence, and the outputs come out
# shuffled the same way, each one unchanged. Only attention (with positions added to the
# inputs, lab 01) ever mixes tokens.

# %%
if course_utils.ready("FeedForward"):
    ffn = FeedForward(16, 64)
    x = torch.randn(1, 6, 16)
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        same = torch.allclose(ffn(x[:, order]), ffn(x)[:, order])
    print("FFN(shuffled tokens) == FFN(tokens), shuffled:", same)

# %% [markdown]
# ## 6. Residual connections: a path straight through
#
# A **residual connection** adds a sub-layer's input to its output: $y = x + f(x)$. The
# sub-layer only has to learn a *change* to $x$, and a sub-layer that outputs nothing
# leaves $x$ untouched. The bigger reason shows in the gradient:
#
# $$\frac{\partial y}{\partial x} = I + \frac{\partial f}{\partial x}.$$
#
# Through a stack of $L$ layers the chain rule multiplies $L$ such factors. Without the
# $I$, that is a product of $L$ Jacobians; if each shrinks vectors a little, the product
# shrinks exponentially and the first layers receive almost no gradient: they cannot
# learn (**vanishing gradients**). With the $I$, the loss's gradient reaches every layer
# directly along the "main road", whatever the sub-layers do.
#
# The experiment: 24 of your feed-forward networks in a row, freshly initialised, once as
# $h \leftarrow f(h)$ and once as $h \leftarrow h + f(h)$. One backward pass of a simple
# loss, then the size (norm) of the gradient of each layer's parameters.

# %%
course_utils.seed_everything(0)
depth, width = 24, 32
gen = torch.Generator().manual_seed(0)
inputs, targets = torch.randn(64, width, generator=gen), torch.randn(64, width, generator=gen)


def grad_norm(module):
    """The norm of all of a module's parameter gradients together, as one long vector."""
    return torch.sqrt(sum((p.grad**2).sum() for p in module.parameters())).item()


if course_utils.ready("FeedForward"):
    mlps = nn.ModuleList(FeedForward(width, 4 * width) for _ in range(depth))
    profiles = {}
    for name, residual in (
        ("without residual: h = f(h)", False),
        ("with residual: h = h + f(h)", True),
    ):
        mlps.zero_grad()
        h = inputs
        for f in mlps:
            h = h + f(h) if residual else f(h)
        F.mse_loss(h, targets).backward()
        profiles[name] = (range(1, depth + 1), [grad_norm(f) for f in mlps])

    ax = plot_curves(
        profiles,
        log_y=True,
        markers=True,
        xlabel="layer (1 = nearest the input)",
        ylabel="gradient norm",
        title="24 feed-forward layers, one backward pass",
    )
    plt.show()


# %% [markdown]
# Without residuals, the gradient shrinks by a roughly constant factor at every layer on
# its way back to the input (the axis is logarithmic). The first layer gets some
# $10^{17}$ times less gradient than the last, which means it does not learn at all. With
# residuals every layer gets a gradient of the same size. Every transformer block has two
# residual connections, one around attention and one around the FFN.

# %% [markdown]
# ## 7. The block: pre-norm and post-norm
#
# Now put the pieces together. A block has two sub-layers, self-attention (mixing tokens)
# and the feed-forward network (working per token), each with a residual connection and a
# LayerNorm. The two classic orders:
#
# | | after the attention sub-layer | after the feed-forward sub-layer |
# |---|---|---|
# | **post-norm** (2017 paper, BERT) | $h = \text{LN}_1(x + \text{Attn}(x))$ | $y = \text{LN}_2(h + \text{FFN}(h))$ |
# | **pre-norm** (GPT-2 and later) | $h = x + \text{Attn}(\text{LN}_1(x))$ | $y = h + \text{FFN}(\text{LN}_2(h))$ |
#
# In post-norm, the LayerNorm sits **on the main path**: everything, including the
# residual stream, is normalised after each addition. In pre-norm, the LayerNorm only
# prepares the input of the side branch; the main path is a pure sum,
# $y = x + \text{Attn}(\dots) + \text{FFN}(\dots)$, exactly the "straight road" of
# section 6. Section 9 measures what that changes.
#
# **Which attention?** The block below uses `course_utils.layers.MultiHeadAttention`, the
# course's copy of the multi-head attention you built in lab 02 (same maths, same
# attribute names `q_proj`, `k_proj`, `v_proj`, `out_proj`, same mask conventions), so
# every line of this block is something you have written. PyTorch's `nn.MultiheadAttention`
# would also work, but it packs the three input projections into one matrix, reads
# boolean masks the other way round (`True` = hidden) and returns averaged weights by
# default: more to keep in mind for nothing gained here. It is called as
# `self.self_attn(h, key_padding_mask=..., is_causal=...)` and returns a pair
# `(output, weights)`; you need the output, `[0]`. The options:
#
# - `key_padding_mask`: `(B, T)` bool, `True` where a token is **padding**, so that no token
#   attends to it (PyTorch's convention for this one argument);
# - `is_causal=True`: each token sees only itself and the tokens before it. The same
#   block is a BERT block without this flag and a GPT block with it.
#
# We leave dropout out of this lab's block: in evaluation mode it does nothing, and the
# course's `course_utils.layers.TransformerBlock` (used from lab 04 on) adds it.
#
# ## 8. Exercise: the transformer block
#
# `__init__` is given; write `forward`, in both orders, chosen by `self.norm_first`. Use
# `self.attn_norm` as $\text{LN}_1$ and `self.ffn_norm` as $\text{LN}_2$, and pass
# `key_padding_mask` and `is_causal` on to attention. Do not change `x` in place (write
# `x = x + ...`, not `x += ...`: the caller still needs its tensor).
#
# <details><summary>Hint</summary>
#
# The attention branch, for some input `h`:
#
# ```python
# self.self_attn(h, key_padding_mask=key_padding_mask, is_causal=is_causal)[0]
# ```
# Write it as `attend(h)`, a small function defined inside `forward`, or spell it out
# each time. Then pre-norm is `x = x + attend(self.attn_norm(x))` followed by
# `x = x + self.ffn(self.ffn_norm(x))`, and post-norm is
# `x = self.attn_norm(x + attend(x))` followed by `x = self.ffn_norm(x + self.ffn(x))`.
# </details>


# %% exercise="transformer_block"
class TransformerBlock(nn.Module):
    """One transformer layer: self-attention and a feed-forward network, each with a
    residual connection and a LayerNorm, in pre-norm or post-norm order.

    x: (B, T, C) -> (B, T, C).
    norm_first=True (pre-norm):   h = x + Attn(LN1(x));  y = h + FFN(LN2(h))
    norm_first=False (post-norm): h = LN1(x + Attn(x));  y = LN2(h + FFN(h))
    """

    def __init__(
        self, d_model, n_heads, d_ff, norm_first=True, activation="gelu", eps=1e-5, bias=True
    ):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, bias=bias)
        self.attn_norm = LayerNorm(d_model, eps=eps, bias=bias)
        self.ffn = FeedForward(d_model, d_ff, activation=activation, bias=bias)
        self.ffn_norm = LayerNorm(d_model, eps=eps, bias=bias)

    def forward(self, x, key_padding_mask=None, is_causal=False):
        """x: (B, T, C). key_padding_mask: None or (B, T) bool, True = padding.

        is_causal: each position attends only to itself and earlier positions.
        Returns (B, T, C).
        """
        ### BEGIN SOLUTION
        masks = dict(key_padding_mask=key_padding_mask, is_causal=is_causal)
        if self.norm_first:
            x = x + self.self_attn(self.attn_norm(x), **masks)[0]
            x = x + self.ffn(self.ffn_norm(x))
        else:
            x = self.attn_norm(x + self.self_attn(x, **masks)[0])
            x = self.ffn_norm(x + self.ffn(x))
        return x
        ### END SOLUTION


# %% [markdown]
# The tests build PyTorch's `nn.TransformerEncoderLayer(batch_first=True)` with the same
# order (`norm_first`), random weights (LayerNorm gains and shifts too, so that a
# misplaced LayerNorm cannot hide behind gain 1 and shift 0), no dropout, in evaluation
# mode, and copy its weights into your block. Its names map to yours as `self_attn` →
# `self_attn` (with `in_proj_weight` cut into three), `linear1`/`linear2` → `ffn.fc1`/
# `ffn.fc2`, `norm1` → `attn_norm`, `norm2` → `ffn_norm`.
#
# One thing to know about `nn.TransformerEncoderLayer`: in evaluation mode without
# gradients it switches to a fused **fast path**, which rounds differently and may write
# anything at padded positions (nobody should read them). So the tests compare only the
# real tokens, with `atol=1e-5, rtol=1e-4`: through two LayerNorms and six matrix products
# rounding differences reach about $10^{-6}$ on values of size 1 to 5, and a wrong order or
# a missing residual changes outputs by $10^{-1}$ or more. The two orders are graded
# separately. Your block is built from your `layer_norm` and `FeedForward`, so these tests
# can pass only once the tests of those two pass.

# %% test="transformer_block" points=2 hint="Pre-norm: x = x + attention(attn_norm(x)), then x = x + ffn(ffn_norm(x)); pass key_padding_mask and is_causal to self.self_attn and take [0]." nudge="In a pre-norm block each sub-layer sees a normalised copy of x, and its result is added back to x."
import math

import torch
from torch import nn

from course_utils.checks import check_tensor, check_true

TOL = dict(rtol=1e-4, atol=1e-5)  # two LayerNorms and six matmuls, rounded in another order
NORM_FIRST = True  # this cell grades pre-norm


def reference_and_yours(d_model, n_heads, d_ff, *, activation="gelu", bias=True, eps=1e-5, seed=0):
    """nn.TransformerEncoderLayer with random weights, and your block holding a copy."""
    gen = torch.Generator().manual_seed(seed)
    ref = nn.TransformerEncoderLayer(
        d_model,
        n_heads,
        d_ff,
        dropout=0.0,
        activation=activation,
        layer_norm_eps=eps,
        batch_first=True,
        norm_first=NORM_FIRST,
        bias=bias,
    ).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name.startswith("norm"):  # gains near 1 and shifts near 0, but not exactly
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.3 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
    block = TransformerBlock(
        d_model, n_heads, d_ff, norm_first=NORM_FIRST, activation=activation, eps=eps, bias=bias
    ).eval()
    with torch.no_grad():
        attn = block.self_attn
        for proj, w in zip(
            (attn.q_proj, attn.k_proj, attn.v_proj), ref.self_attn.in_proj_weight.chunk(3)
        ):
            proj.weight.copy_(w)
        if bias:
            for proj, b in zip(
                (attn.q_proj, attn.k_proj, attn.v_proj), ref.self_attn.in_proj_bias.chunk(3)
            ):
                proj.bias.copy_(b)
        pairs = [
            (attn.out_proj, ref.self_attn.out_proj),
            (block.ffn.fc1, ref.linear1),
            (block.ffn.fc2, ref.linear2),
            (block.attn_norm, ref.norm1),
            (block.ffn_norm, ref.norm2),
        ]
        for mine, theirs in pairs:
            mine.weight.copy_(theirs.weight)
            if bias:
                mine.bias.copy_(theirs.bias)
    return ref, block


order = "pre-norm" if NORM_FIRST else "post-norm"
gen = torch.Generator().manual_seed(10)
ref, block = reference_and_yours(32, 4, 64)
x = torch.randn(2, 5, 32, generator=gen)
check_tensor(block(x.clone()), ref(x), name=f"{order} block(x of shape (2, 5, 32))", **TOL)
ref, block = reference_and_yours(32, 4, 64, bias=False, seed=30)
check_tensor(
    block(x.clone()),
    ref(x),
    name=f"{order} block without biases (bias=False)",
    hint="Pass bias=bias on to MultiHeadAttention, FeedForward and both LayerNorms.",
    **TOL,
)
pad = torch.zeros(2, 5, dtype=torch.bool)
pad[1, 3:] = True  # the second sequence ends with two padding tokens
with torch.no_grad():
    mine, theirs = block(x.clone(), key_padding_mask=pad.clone()), ref(x, src_key_padding_mask=pad)
check_tensor(
    mine[~pad],
    theirs[~pad],
    name=f"{order} block with padding, real tokens",
    hint="Pass key_padding_mask=key_padding_mask to self.self_attn.",
    **TOL,
)
print(f"✓ transformer_block: visible {order} tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_transformer_block", gen)  # the course's secret, if any
cases = [
    ("a batch of one", dict(), (1, 6, 32)),
    ("a sequence of length 1", dict(), (3, 1, 32)),
    ("a batch of one token", dict(), (1, 1, 32)),
    ("ReLU", dict(activation="relu"), (2, 7, 32)),
    ("no biases (bias=False)", dict(bias=False), (2, 7, 32)),
    ("eps=1e-3", dict(eps=1e-3), (2, 7, 32)),
]
for seed, (label, options, shape) in enumerate(cases, start=1):
    ref, block = reference_and_yours(32, 4, 64, seed=seed, **options)
    x = torch.randn(shape, generator=gen)
    check_tensor(
        block(x.clone()), ref(x), name=f"{order} block, {label}, x of shape {shape}", **TOL
    )
    with torch.no_grad():  # PyTorch's fast path (where it applies)
        check_tensor(block(x.clone()), ref(x), name=f"{order} block, {label}, no_grad", **TOL)
# Padding: compare the real tokens only.
ref, block = reference_and_yours(48, 6, 96, seed=20)
x = torch.randn(3, 6, 48, generator=gen)
pad = torch.zeros(3, 6, dtype=torch.bool)
pad[0, 4:] = True
pad[2, 2:] = True
with torch.no_grad():
    mine, theirs = block(x.clone(), key_padding_mask=pad.clone()), ref(x, src_key_padding_mask=pad)
check_tensor(
    mine[~pad],
    theirs[~pad],
    name=f"{order} block with padding, real tokens",
    hint="Pass key_padding_mask=key_padding_mask to self.self_attn.",
    **TOL,
)
# Causal attention, as in GPT.
causal = nn.Transformer.generate_square_subsequent_mask(6)
with torch.no_grad():
    mine, theirs = block(x.clone(), is_causal=True), ref(x, src_mask=causal, is_causal=True)
check_tensor(
    mine,
    theirs,
    name=f"{order} block with is_causal=True",
    hint="Pass is_causal=is_causal to self.self_attn.",
    **TOL,
)
# The input is left untouched.
before = x.clone()
block(x)
check_true(
    bool(torch.equal(x, before)),
    f"the {order} block changed its input x in place",
    hint="Write x = x + ..., which makes a new tensor, not x += ....",
)
### END HIDDEN TESTS

# %% [markdown]
# The second test is the same for **post-norm**: `nn.TransformerEncoderLayer(...,
# norm_first=False)`, PyTorch's default and the original Transformer's order.

# %% test="transformer_block" points=2 hint="Post-norm: x = attn_norm(x + attention(x)), then x = ffn_norm(x + ffn(x)), when self.norm_first is False." nudge="In a post-norm block the normalisation comes after the residual addition."
import math

import torch
from torch import nn

from course_utils.checks import check_tensor, check_true

TOL = dict(rtol=1e-4, atol=1e-5)  # two LayerNorms and six matmuls, rounded in another order
NORM_FIRST = False  # this cell grades post-norm


def reference_and_yours(d_model, n_heads, d_ff, *, activation="gelu", bias=True, eps=1e-5, seed=0):
    """nn.TransformerEncoderLayer with random weights, and your block holding a copy."""
    gen = torch.Generator().manual_seed(seed)
    ref = nn.TransformerEncoderLayer(
        d_model,
        n_heads,
        d_ff,
        dropout=0.0,
        activation=activation,
        layer_norm_eps=eps,
        batch_first=True,
        norm_first=NORM_FIRST,
        bias=bias,
    ).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name.startswith("norm"):  # gains near 1 and shifts near 0, but not exactly
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.3 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
    block = TransformerBlock(
        d_model, n_heads, d_ff, norm_first=NORM_FIRST, activation=activation, eps=eps, bias=bias
    ).eval()
    with torch.no_grad():
        attn = block.self_attn
        for proj, w in zip(
            (attn.q_proj, attn.k_proj, attn.v_proj), ref.self_attn.in_proj_weight.chunk(3)
        ):
            proj.weight.copy_(w)
        if bias:
            for proj, b in zip(
                (attn.q_proj, attn.k_proj, attn.v_proj), ref.self_attn.in_proj_bias.chunk(3)
            ):
                proj.bias.copy_(b)
        pairs = [
            (attn.out_proj, ref.self_attn.out_proj),
            (block.ffn.fc1, ref.linear1),
            (block.ffn.fc2, ref.linear2),
            (block.attn_norm, ref.norm1),
            (block.ffn_norm, ref.norm2),
        ]
        for mine, theirs in pairs:
            mine.weight.copy_(theirs.weight)
            if bias:
                mine.bias.copy_(theirs.bias)
    return ref, block


order = "pre-norm" if NORM_FIRST else "post-norm"
gen = torch.Generator().manual_seed(11)
ref, block = reference_and_yours(32, 4, 64)
x = torch.randn(2, 5, 32, generator=gen)
check_tensor(block(x.clone()), ref(x), name=f"{order} block(x of shape (2, 5, 32))", **TOL)
ref, block = reference_and_yours(32, 4, 64, bias=False, seed=30)
check_tensor(
    block(x.clone()),
    ref(x),
    name=f"{order} block without biases (bias=False)",
    hint="Pass bias=bias on to MultiHeadAttention, FeedForward and both LayerNorms.",
    **TOL,
)
pad = torch.zeros(2, 5, dtype=torch.bool)
pad[1, 3:] = True  # the second sequence ends with two padding tokens
with torch.no_grad():
    mine, theirs = block(x.clone(), key_padding_mask=pad.clone()), ref(x, src_key_padding_mask=pad)
check_tensor(
    mine[~pad],
    theirs[~pad],
    name=f"{order} block with padding, real tokens",
    hint="Pass key_padding_mask=key_padding_mask to self.self_attn.",
    **TOL,
)
print(f"✓ transformer_block: visible {order} tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_transformer_block_2", gen)  # the course's secret, if any
cases = [
    ("a batch of one", dict(), (1, 6, 32)),
    ("a sequence of length 1", dict(), (3, 1, 32)),
    ("a batch of one token", dict(), (1, 1, 32)),
    ("ReLU", dict(activation="relu"), (2, 7, 32)),
    ("no biases (bias=False)", dict(bias=False), (2, 7, 32)),
    ("eps=1e-3", dict(eps=1e-3), (2, 7, 32)),
]
for seed, (label, options, shape) in enumerate(cases, start=1):
    ref, block = reference_and_yours(32, 4, 64, seed=seed, **options)
    x = torch.randn(shape, generator=gen)
    check_tensor(
        block(x.clone()), ref(x), name=f"{order} block, {label}, x of shape {shape}", **TOL
    )
    with torch.no_grad():  # PyTorch's fast path (where it applies)
        check_tensor(block(x.clone()), ref(x), name=f"{order} block, {label}, no_grad", **TOL)
# Padding: compare the real tokens only.
ref, block = reference_and_yours(48, 6, 96, seed=20)
x = torch.randn(3, 6, 48, generator=gen)
pad = torch.zeros(3, 6, dtype=torch.bool)
pad[0, 4:] = True
pad[2, 2:] = True
with torch.no_grad():
    mine, theirs = block(x.clone(), key_padding_mask=pad.clone()), ref(x, src_key_padding_mask=pad)
check_tensor(
    mine[~pad],
    theirs[~pad],
    name=f"{order} block with padding, real tokens",
    hint="Pass key_padding_mask=key_padding_mask to self.self_attn.",
    **TOL,
)
# Causal attention, as in GPT.
causal = nn.Transformer.generate_square_subsequent_mask(6)
with torch.no_grad():
    mine, theirs = block(x.clone(), is_causal=True), ref(x, src_mask=causal, is_causal=True)
check_tensor(
    mine,
    theirs,
    name=f"{order} block with is_causal=True",
    hint="Pass is_causal=is_causal to self.self_attn.",
    **TOL,
)
# The input is left untouched.
before = x.clone()
block(x)
check_true(
    bool(torch.equal(x, before)),
    f"the {order} block changed its input x in place",
    hint="Write x = x + ..., which makes a new tensor, not x += ....",
)
### END HIDDEN TESTS

# %% [markdown]
# ## 9. Stacking blocks, and why pre-norm won
#
# A model is a stack of identical blocks between an input and an output layer. The one
# below is a small GPT-style language model over characters:
#
# - **embeddings**: a vector per token id plus a learned vector per position (lab 01);
# - **$L$ blocks**, each `(B, T, C) → (B, T, C)`, all causal;
# - a **final LayerNorm**, for pre-norm only. In pre-norm the main path is never
#   normalised, so its scale grows with depth; the final LayerNorm fixes it once, before
#   the output layer. In post-norm the last block already ends with a LayerNorm.
# - an **output layer** `C → V`, the scores of every possible next character.


# %%
class TinyLM(nn.Module):
    """A stack of your blocks as a character language model: ids (B, T) -> logits (B, T, V)."""

    def __init__(self, vocab_size, max_len, d_model, n_layers, n_heads, d_ff, norm_first=True):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, d_ff, norm_first=norm_first) for _ in range(n_layers)
        )
        self.final_norm = LayerNorm(d_model) if norm_first else nn.Identity()
        self.head = nn.Linear(d_model, vocab_size, bias=False)

    def embed(self, ids):
        positions = torch.arange(ids.size(1), device=ids.device)
        return self.tok_emb(ids) + self.pos_emb(positions)  # (B, T, C)

    def forward(self, ids):
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x, is_causal=True)
        return self.head(self.final_norm(x))


text = data.load_corpus()
tokenizer = CharTokenizer.train(text)
ids = torch.tensor(tokenizer.encode(text))
train_ids, val_ids = data.train_val_split(ids, 0.1)


def lm_loss(model, batch):
    """Next-character cross-entropy: logits (B, T, V) against targets (B, T)."""
    x, y = batch
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


def make_model(norm_first):
    torch.manual_seed(0)  # the same starting weights for every variant
    c = cfg.d_model
    return TinyLM(tokenizer.vocab_size, cfg.block_size, c, cfg.n_layers, 4, 4 * c, norm_first)


if course_utils.ready("layer_norm", "FeedForward", "TransformerBlock"):
    model = make_model(norm_first=True)
    batch = data.get_batch(
        train_ids, cfg.batch_size, cfg.block_size, generator=torch.Generator().manual_seed(0)
    )
    print("input ids:", tuple(batch[0].shape), "-> logits:", tuple(model(batch[0]).shape))
    print(
        f"{cfg.n_layers} blocks, {count_parameters(model):,} parameters; "
        f"loss before training {lm_loss(model, batch).item():.2f} "
        f"(a uniform guess over {tokenizer.vocab_size} characters: "
        f"{math.log(tokenizer.vocab_size):.2f})"
    )


# %% [markdown]
# ### At initialisation: one backward pass
#
# First the measurement the literature starts from: build a pre-norm and a post-norm stack
# with the same weights, run one batch forward and backward, and look at the size of the
# gradient of each block's parameters (left), and at the size of the vector on the main
# path after each block (right).


# %%
def block_grad_norms(model, batch):
    """One forward and backward pass; the gradient norm of each block's parameters."""
    model.zero_grad(set_to_none=True)
    lm_loss(model, batch).backward()
    norms = [grad_norm(block) for block in model.blocks]
    model.zero_grad(set_to_none=True)
    return norms


@torch.no_grad()
def stream_sizes(model, ids):
    """The mean length of the token vectors on the main path after each block."""
    x, sizes = model.embed(ids), []
    for block in model.blocks:
        x = block(x, is_causal=True)
        sizes.append(x.norm(dim=-1).mean().item())
    return sizes


if course_utils.ready("layer_norm", "FeedForward", "TransformerBlock"):
    layers = range(1, cfg.n_layers + 1)
    models = {"pre-norm": make_model(True), "post-norm": make_model(False)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8))
    plot_curves(
        {name: (layers, block_grad_norms(m, batch)) for name, m in models.items()},
        ax=left,
        log_y=True,
        markers=True,
        xlabel="block (1 = nearest the input)",
        ylabel="gradient norm",
        title="gradients at initialisation",
    )
    plot_curves(
        {name: (layers, stream_sizes(m, batch[0])) for name, m in models.items()},
        ax=right,
        markers=True,
        xlabel="block",
        ylabel="mean vector length",
        title="size of the main path after each block",
    )
    right.set_ylim(bottom=0)
    fig.tight_layout()
    plt.show()


# %% [markdown]
# At initialisation both stacks are healthy: within each stack, every block gets a
# gradient of about the same size. (Post-norm's are somewhat larger overall, which hardly
# matters: the Adam optimiser rescales every update anyway.) The right panel shows the
# structural difference. In post-norm every block ends with a LayerNorm, so the main path
# always has length about $\sqrt{C}$, the length of a vector of $C$ numbers of mean square
# 1 (8 for the $C = 64$ of the `cpu` profile). In pre-norm each block *adds* to the main
# path and nothing rescales it, so it keeps growing with depth; that is why pre-norm needs
# the final LayerNorm.
#
# So where is the problem with post-norm? It shows up **once training starts**. Below, the
# same two stacks train for a few hundred steps with the same learning rate, $3 \cdot
# 10^{-3}$, started at full strength from the first step. A third run gives post-norm a
# **warm-up**: the learning rate climbs linearly from almost 0 to $3 \cdot 10^{-3}$ over
# the first half of training (the original Transformer warmed up over 4000 steps). After
# training, the same gradient measurement is repeated.


# %%
def run(norm_first, warmup):
    model = make_model(norm_first)
    gen = torch.Generator().manual_seed(1)  # the same batches for every variant

    def get_batch(step):
        return data.get_batch(train_ids, cfg.batch_size, cfg.block_size, generator=gen)

    factor = (lambda step: min(1.0, step / warmup)) if warmup else None
    history = train(
        model, get_batch, lm_loss, steps=cfg.steps, lr=3e-3, scheduler=factor, device=device, seed=0
    )
    return model.cpu(), history


if course_utils.ready("layer_norm", "FeedForward", "TransformerBlock"):
    variants = {
        "pre-norm": (True, 0),
        "post-norm": (False, 0),
        f"post-norm, {cfg.warmup}-step warm-up": (False, cfg.warmup),
    }
    results = {name: run(*options) for name, options in variants.items()}

    # The loss of a model that knows only how often each character occurs (its entropy).
    frequencies = torch.bincount(train_ids).float() / len(train_ids)
    frequencies = frequencies[frequencies > 0]
    unigram_loss = -(frequencies * frequencies.log()).sum().item()

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8))
    plot_curves(
        {name: h for name, (_, h) in results.items()},
        ax=left,
        title="training loss, learning rate 3e-3",
    )
    left.axhline(unigram_loss, color="gray", linestyle=":", label="character frequencies only")
    left.legend()
    plot_curves(
        {name: (layers, block_grad_norms(m, batch)) for name, (m, _) in results.items()},
        ax=right,
        log_y=True,
        markers=True,
        xlabel="block (1 = nearest the input)",
        ylabel="gradient norm",
        title="gradients after training",
    )
    fig.tight_layout()
    for name, (_, history) in results.items():
        print(f"{name:>30}: final training loss {history.final_train_loss:.2f}")


# %% [markdown]
# What you should see in the `cpu` profile (the `smoke` profile used for grading trains
# for only a few steps and shows none of this):
#
# - **pre-norm** learns steadily;
# - **post-norm without warm-up gets stuck** on the dotted line, the loss of a model that
#   knows nothing but how often each character occurs. Its gradient profile (right) has
#   collapsed: the blocks near the input get about a million times less gradient than
#   the last block (the axis is logarithmic). What happened: a few large early updates
#   made the sub-layers' outputs as large as the main path or larger, so each sum
#   $x + f(x)$ is big, and the LayerNorm after it divides by its big size. A gradient
#   flowing back to block 1 passes through every LayerNorm above it, up to 24 of them, and is
#   divided again each time: the vanishing gradients of section 6, back through the
#   front door. The lower blocks stop learning, and the model stays where it is;
# - **post-norm with warm-up** trains: small early steps keep the sub-layers' outputs
#   small compared with the main path, and its gradient profile stays even.
#
# This is what "pre-norm trains stably without warm-up" means in practice. In pre-norm the
# gradient always has the plain sum of the main path to travel along, so no block can be
# cut off, and a deep model tolerates larger learning rates with less tuning. That
# robustness is worth a lot when one training run costs millions, and it is why GPT-2 and
# almost every large model since use pre-norm. Post-norm is not worse in every way: well
# tuned, with warm-up, it can match or beat pre-norm at moderate depth (BERT is post-norm),
# and pre-norm's ever-growing main path has costs of its own (later blocks add less and
# less to an ever longer vector). But "works without babysitting" won.

# %% [markdown]
# ## 10. Counting parameters
#
# How big is a model? Count the numbers it learns. `nn.Linear(n_in, n_out)` has a weight
# matrix of $n_{in} \cdot n_{out}$ numbers plus $n_{out}$ biases; `nn.Embedding(V, C)` has
# $V \cdot C$; a LayerNorm over $C$ channels has $C$ gains and $C$ shifts. For one block
# (self-attention, feed-forward network, two LayerNorms):
#
# | part | weights | biases |
# |---|---|---|
# | attention: $W_q, W_k, W_v, W_o$, each $C \times C$ | $4C^2$ | $4C$ |
# | feed-forward: $W_1$ ($C \times d_{ff}$), $W_2$ ($d_{ff} \times C$) | $2 C d_{ff}$ | $d_{ff} + C$ |
# | two LayerNorms | $2C$ (gains) | $2C$ (shifts) |
#
# The number of heads does not appear: splitting $C$ channels into $H$ heads of $C/H$
# changes how $W_q, W_k, W_v$ are *used*, not their size. With `bias=False` every bias and
# every LayerNorm shift disappears, as in `nn.TransformerEncoderLayer(..., bias=False)`.
#
# ## 11. Exercise: the parameter count of a block
#
# Write `block_params(d_model, d_ff, bias=True)`: the number of parameters of one block,
# from the table, as a Python `int`. The test compares it with
# `sum(p.numel() for p in layer.parameters())` for PyTorch's `nn.TransformerEncoderLayer`
# at several sizes, with and without biases.
#
# <details><summary>Hint</summary>
#
# Add the "weights" column, then, only if `bias` is true, the "biases" column (the LayerNorm
# shifts count as biases). Use only integer arithmetic (`*`, `+`), so that the result is an
# `int`, not a float.
# </details>


# %% exercise="block_params"
def block_params(d_model, d_ff, bias=True):
    """Parameters of one transformer block (self-attention, FFN, two LayerNorms).

    d_model: C; d_ff: hidden size of the feed-forward network; bias: whether the linear
    layers have biases and the LayerNorms have shifts. Returns an int.
    """
    ### BEGIN SOLUTION
    c = d_model
    weights = 4 * c * c + 2 * c * d_ff + 2 * c  # attention, FFN, LayerNorm gains
    biases = 4 * c + d_ff + c + 2 * c  # attention, FFN, LayerNorm shifts
    return weights + biases if bias else weights
    ### END SOLUTION


# %% [markdown]
# The test builds the layers on PyTorch's **meta** device: modules with every shape but no
# memory and no values, so that counting even a 1024-wide layer takes no time. Counts are
# integers: no tolerance.

# %% test="block_params" points=2 hint="4C² + 2·C·d_ff + 2C weights; with bias, add 4C (attention) + d_ff + C (FFN) + 2C (LayerNorm shifts)." nudge="Count the weights of each linear layer and each LayerNorm in a block, then add the biases when they exist."
import torch
from torch import nn

from course_utils.checks import check_equal


def torch_block_params(d_model, d_ff, bias, n_heads=1):
    with torch.device("meta"):  # shapes only: no memory, no time
        layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, batch_first=True, bias=bias)
    return sum(p.numel() for p in layer.parameters())


check_equal(block_params(64, 256), torch_block_params(64, 256, True), name="block_params(64, 256)")
check_equal(
    block_params(64, 256, bias=False),
    torch_block_params(64, 256, False),
    name="block_params(64, 256, bias=False)",
    hint="Without biases only the weight matrices and the two LayerNorm gains remain: "
    "4C² + 2·C·d_ff + 2C.",
)
print(
    "✓ block_params: visible tests passed; a 64-wide block has",
    f"{block_params(64, 256):,} parameters",
)

### BEGIN HIDDEN TESTS
for d_model, d_ff, bias, n_heads in [
    (64, 256, False, 4),
    (8, 32, True, 2),
    (96, 100, True, 3),
    (1, 1, True, 1),
    (48, 48, False, 6),
    (768, 3072, True, 12),
    (1024, 4096, False, 16),
]:
    check_equal(
        block_params(d_model, d_ff, bias=bias),
        torch_block_params(d_model, d_ff, bias, n_heads),
        name=f"block_params({d_model}, {d_ff}, bias={bias})",
    )
check_equal(
    block_params(64, 256, True),
    block_params(64, 256),
    name="block_params(64, 256): bias defaults to True",
)
### END HIDDEN TESTS

# %% [markdown]
# ## 12. Exercise: the parameter count of a whole model
#
# Now a whole GPT-style model, as `TinyLM` above but in the general form that GPT-2 uses:
#
# - a token embedding `nn.Embedding(vocab_size, d_model)`;
# - a position embedding `nn.Embedding(max_len, d_model)`;
# - `n_layers` blocks;
# - a final LayerNorm (with a shift only if `bias`);
# - an output layer `nn.Linear(d_model, vocab_size, bias=False)`. With `tied=True` it
#   **shares** its weight matrix with the token embedding (GPT-2 does this, and so do many
#   models since: the matrix that turns a token into a vector also scores vectors against
#   every token), so it adds no parameters at all. `model.parameters()` lists a shared
#   tensor once.
#
# Write `model_params(...)`, returning an `int`; use your `block_params`.
#
# <details><summary>Hint</summary>
#
# `vocab_size * d_model + max_len * d_model + n_layers * block_params(d_model, d_ff, bias)`,
# plus the final LayerNorm (`2 * d_model` with a shift, `d_model` without), plus
# `vocab_size * d_model` only when the output layer is not tied.
# </details>


# %% exercise="model_params"
def model_params(vocab_size, max_len, d_model, n_layers, d_ff, bias=True, tied=True):
    """Parameters of a GPT-style model: token and position embeddings, n_layers blocks,
    a final LayerNorm, and an output layer (d_model -> vocab_size, no bias) that shares
    the token embedding's weights when tied. Returns an int.
    """
    ### BEGIN SOLUTION
    embeddings = vocab_size * d_model + max_len * d_model
    blocks = n_layers * block_params(d_model, d_ff, bias=bias)
    final_norm = 2 * d_model if bias else d_model
    head = 0 if tied else vocab_size * d_model
    return embeddings + blocks + final_norm + head
    ### END SOLUTION


# %% test="model_params" points=2 hint="Embeddings (V·C + max_len·C) + n_layers · block_params + final LayerNorm (2C, or C without bias) + V·C for an untied output layer." nudge="A whole model is its embeddings, its blocks, a final norm and an output layer: add up each part."
import torch
from torch import nn

from course_utils.checks import check_equal


def torch_model_params(vocab_size, max_len, d_model, n_layers, d_ff, bias=True, tied=True):
    with torch.device("meta"):  # shapes only: no memory, no time
        model = nn.ModuleDict(
            {
                "tok_emb": nn.Embedding(vocab_size, d_model),
                "pos_emb": nn.Embedding(max_len, d_model),
                "blocks": nn.ModuleList(
                    nn.TransformerEncoderLayer(d_model, 1, d_ff, batch_first=True, bias=bias)
                    for _ in range(n_layers)
                ),
                "final_norm": nn.LayerNorm(d_model, bias=bias),
                "head": nn.Linear(d_model, vocab_size, bias=False),
            }
        )
    if tied:
        model["head"].weight = model["tok_emb"].weight  # one tensor, counted once
    return sum(p.numel() for p in model.parameters())


check_equal(
    model_params(100, 64, 32, 2, 128),
    torch_model_params(100, 64, 32, 2, 128),
    name="model_params(100, 64, 32, 2, 128)",
)
check_equal(
    model_params(100, 64, 32, 2, 128, bias=False, tied=False),
    torch_model_params(100, 64, 32, 2, 128, bias=False, tied=False),
    name="model_params(100, 64, 32, 2, 128, bias=False, tied=False)",
    hint="Untied, the output layer adds its own V·C weights; without biases the final "
    "LayerNorm has C parameters, not 2C.",
)
print("✓ model_params: visible tests passed")

### BEGIN HIDDEN TESTS
for args, options in [
    ((100, 64, 32, 2, 128), dict(tied=False)),
    ((100, 64, 32, 2, 128), dict(bias=False)),
    ((100, 64, 32, 2, 128), dict(bias=False, tied=False)),
    ((7, 3, 16, 1, 8), dict()),
    ((500, 256, 64, 0, 256), dict()),  # no blocks at all
    ((50257, 1024, 768, 12, 3072), dict()),  # GPT-2 small: 124,439,808
    ((32000, 2048, 512, 6, 1365), dict(bias=False, tied=False)),
]:
    check_equal(
        model_params(*args, **options),
        torch_model_params(*args, **options),
        name=f"model_params{args} with {options or 'the defaults'}",
    )
check_equal(
    model_params(50257, 1024, 768, 12, 3072), 124_439_808, name="model_params of GPT-2 small"
)
### END HIDDEN TESTS

# %% [markdown]
# Your formula against the real thing: this lab's `TinyLM` (pre-norm, untied output
# layer), and GPT-2 small, whose published size is "124M".

# %%
if course_utils.ready("layer_norm", "FeedForward", "TransformerBlock", "model_params"):
    c = cfg.d_model
    print(
        f"TinyLM: counted {count_parameters(make_model(True)):,}, formula "
        f"{model_params(tokenizer.vocab_size, cfg.block_size, c, cfg.n_layers, 4 * c, tied=False):,}"
    )
    print(f"GPT-2 small: {model_params(50257, 1024, 768, 12, 3072):,} parameters")


# %% [markdown]
# With $d_{ff} = 4C$, a block has $4C^2 + 8C^2 = 12C^2$ weights plus a few $C$'s, so a
# model has about
#
# $$N \approx 12 \, L \, C^2 + V C,$$
#
# blocks plus embeddings. Two things follow. A third of each block is attention and
# two-thirds is the feed-forward network. And the blocks grow with $C^2$ while the
# embeddings grow with $C$, so the bigger the model, the smaller the embeddings' share.
# The explorer below builds the real PyTorch modules (on the meta device) for any size you
# choose and splits the count by part; the presets are the four GPT-2 sizes. Try:
#
# - GPT-2 small, then XL: what share of the parameters is the embedding table?
# - set the feed-forward multiple to 8, then to 1: how does the split move?
# - double `d_model`, then double `n_layers`: which grows the model more?


# %%
import ipywidgets as widgets
from IPython.display import display

from course_utils.plots import figure_image


def parameters_by_part(vocab_size, max_len, d_model, n_layers, d_ff):
    """Count each part of a GPT-style model (tied output layer) on real meta-device modules."""
    with torch.device("meta"):
        layer = nn.TransformerEncoderLayer(d_model, 1, d_ff, batch_first=True)
        tok, pos, final = (
            nn.Embedding(vocab_size, d_model),
            nn.Embedding(max_len, d_model),
            nn.LayerNorm(d_model),
        )
    per_block = {"attention": 0, "feed-forward": 0, "LayerNorms": 0}
    for name, p in layer.named_parameters():
        part = (
            "attention"
            if name.startswith("self_attn")
            else "feed-forward"
            if name.startswith("linear")
            else "LayerNorms"
        )
        per_block[part] += p.numel()
    parts = {"token embedding": count_parameters(tok), "positions": count_parameters(pos)}
    parts.update({part: n_layers * n for part, n in per_block.items()})
    parts["LayerNorms"] += count_parameters(final)
    return parts


presets = {
    "GPT-2 small": dict(d_model=768, n_layers=12),
    "GPT-2 medium": dict(d_model=1024, n_layers=24),
    "GPT-2 large": dict(d_model=1280, n_layers=36),
    "GPT-2 XL": dict(d_model=1600, n_layers=48),
}
preset_box = widgets.Dropdown(options=list(presets), description="preset:")
wide = {"description_width": "initial"}  # room for the whole label
d_model_slider = widgets.IntSlider(
    value=768, min=64, max=2048, step=64, description="d_model:", style=wide
)
layers_slider = widgets.IntSlider(value=12, min=1, max=48, description="n_layers:", style=wide)
ff_slider = widgets.IntSlider(value=4, min=1, max=8, description="d_ff / d_model:", style=wide)
vocab_box = widgets.BoundedIntText(
    value=50257, min=1, max=300_000, description="vocab_size:", style=wide
)
max_len_box = widgets.BoundedIntText(
    value=1024, min=1, max=131_072, description="max_len:", style=wide
)
explorer = widgets.Output(layout=widgets.Layout(border="1px solid #ccc", min_height="360px"))
applying_preset = False


def show(_=None):
    if applying_preset:
        return
    v, t, c, n = vocab_box.value, max_len_box.value, d_model_slider.value, layers_slider.value
    d_ff = ff_slider.value * c
    parts = parameters_by_part(v, t, c, n, d_ff)
    total = sum(parts.values())
    with explorer:
        explorer.clear_output(wait=True)
        ax = plot_bar(
            {part: count / 1e6 for part, count in parts.items()},
            ylabel="millions of parameters",
            title=f"{total:,} parameters in all",
            fmt="{:.3g}",
        )
        ax.figure.set_size_inches(7, 3.2)
        display(figure_image(ax.figure))  # a PNG: the same in every front end
        embedding_share = (parts["token embedding"] + parts["positions"]) / total
        rough = n * (4 * c * c + 2 * c * d_ff) + v * c  # 12·L·C² + V·C when d_ff = 4C
        print(
            f"embeddings: {embedding_share:.0%} of the model;  "
            f"L·(4C² + 2·C·d_ff) + V·C = {rough:,} (weight matrices only)"
        )
        try:
            yours = model_params(v, t, c, n, d_ff)
            verdict = "agrees" if yours == total else "DISAGREES"
            print(f"your model_params: {yours:,} ({verdict})")
        except NotImplementedError:
            print("your model_params: not written yet (exercise 5)")
        except Exception as error:  # a half-finished exercise must not break the explorer
            print(f"your model_params raised {type(error).__name__}: {error}")


def apply_preset(change):
    global applying_preset
    applying_preset = True
    d_model_slider.value = presets[change["new"]]["d_model"]
    layers_slider.value = presets[change["new"]]["n_layers"]
    ff_slider.value, vocab_box.value, max_len_box.value = 4, 50257, 1024
    applying_preset = False
    show()


preset_box.observe(apply_preset, names="value")
for box in (d_model_slider, layers_slider, ff_slider, vocab_box, max_len_box):
    box.observe(show, names="value")
display(
    widgets.VBox(
        [
            widgets.HBox([preset_box, vocab_box, max_len_box]),
            widgets.HBox([d_model_slider, layers_slider, ff_slider]),
            explorer,
        ]
    )
)
show()

# %% [markdown]
# ## What's next
#
# You now have every part of a transformer: tokens and positions (lab 01), attention
# (lab 02) and the block (this lab). The course's `course_utils.layers.TransformerBlock` is
# the same block with dropout and an optional cross-attention sub-layer; its
# `norm_first=True` is your pre-norm, and `TransformerBlock.from_torch(layer)` loads an
# `nn.TransformerEncoderLayer` exactly as the tests did. From lab 04 on, the three
# architectures are built from it: **lab 04** stacks bidirectional blocks into a small
# BERT, **lab 05** causal ones into a small GPT (and shows it is exactly GPT-2's
# architecture), and **lab 06** joins an encoder and a decoder with cross-attention.
