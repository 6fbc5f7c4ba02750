# %% [markdown]
# # Lab 09: The decoder today: what Llama changed since GPT-2, and LoRA
#
# The decoder you built in lab 05 is GPT-2 (2019). The decoders teams train and fine-tune
# today (Llama, Mistral, Qwen, Gemma) keep the same plan: token embeddings, a stack of
# pre-norm causal blocks, a final norm and an output layer, trained to predict the next
# token. What changed is a handful of parts inside the block, and the way a team adapts a
# pretrained model to its own data. In this lab you write each changed part, prove that
# together they *are* Llama, and measure what each buys at laptop scale:
#
# 1. **RMSNorm**: LayerNorm without the mean;
# 2. **rotary positions** (RoPE): positions as rotations of queries and keys instead of a
#    learned vector added to the input;
# 3. **SwiGLU**: a gated feed-forward network;
# 4. **grouped-query attention**: fewer key/value heads than query heads, so that the KV
#    cache shrinks;
# 5. **"your model is Llama"**: a random Hugging Face Llama reproduced by your parts;
# 6. **LoRA**: fine-tuning through two small low-rank matrices next to each frozen weight.
#
# Then the experiments, all measured when the notebook runs: GPT-2-style against
# Llama-style at equal training compute (three seeds each), the KV cache of multi-head,
# grouped-query and multi-query attention, positions beyond the trained context, and LoRA
# against full fine-tuning on lab 08's private memos, canary included.

# %% [markdown]
# ## 0. Set-up
#
# Imports, a fixed seed and the settings of the current profile: tiny when grading, small
# models on a laptop CPU, larger ones on a GPU. The corpus and the memos are those of
# lab 08, with one character-level tokenizer for both.

# %%
import copy
import math
import statistics
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import course_utils
from course_utils import data
from course_utils.experiments import measure_flops, steps_for_budget
from course_utils.layers import count_parameters, merge_heads, split_heads
from course_utils.models import DecoderModel, ModelConfig
from course_utils.plots import plot_bar, plot_curves
from course_utils.tasks import memos
from course_utils.tokenizers import CharTokenizer
from course_utils.training import evaluate_loss, train

course_utils.seed_everything(0)
cfg = course_utils.settings(
    smoke=dict(
        d_model=32, n_layers=1, n_heads=4, block_size=16, batch_size=4, budget_steps=8,
        seeds=[0, 1], eval_batches=2, gen_tokens=8, finetune_steps=6, n_memos=60,
        n_candidates=50, lora_rank=4,
    ),
    cpu=dict(
        d_model=64, n_layers=2, n_heads=4, block_size=64, batch_size=16, budget_steps=250,
        seeds=[0, 1, 2], eval_batches=8, gen_tokens=64, finetune_steps=300, n_memos=240,
        n_candidates=500, lora_rank=8,
    ),
    gpu=dict(
        d_model=128, n_layers=4, n_heads=4, block_size=128, batch_size=32, budget_steps=1500,
        seeds=[0, 1, 2], eval_batches=20, gen_tokens=256, finetune_steps=600, n_memos=240,
        n_candidates=2000, lora_rank=8,
    ),
)  # fmt: skip
device = course_utils.pick_device()
LR = 3e-3  # constant, as in lab 08: small models at this size train fastest near 3e-3

corpus = data.load_corpus()
all_memos = memos.make_memos(cfg.n_memos, seed=0)
tokenizer = CharTokenizer.train(corpus + "".join(all_memos))


def encode(text):
    return torch.tensor(tokenizer.encode(text), dtype=torch.long)


train_text, val_text = data.train_val_split(corpus, 0.1)
train_ids, val_ids = encode(train_text), encode(val_text)
print(f"profile {cfg.profile!r} on {device}; vocabulary {tokenizer.vocab_size} characters")
print(f"corpus: {len(train_ids):,} characters for training, {len(val_ids):,} held out")

# %% [markdown]
# ## 1. RMSNorm: LayerNorm without the mean
#
# LayerNorm (lab 03) centres each token's vector and scales it to unit variance:
# $\mathrm{LN}(x) = \gamma \odot (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta$.
# Zhang and Sennrich (2019) asked whether the centring is needed, and found that dividing
# by the **root mean square** alone works as well and costs less:
#
# $$\mathrm{RMSNorm}(x) = \gamma \odot \frac{x}{\sqrt{\frac{1}{C}\sum_{i=1}^{C} x_i^2 + \epsilon}} .$$
#
# No mean is subtracted, and there is no bias $\beta$. Llama, Mistral, Qwen and Gemma all use
# it, with $\epsilon = 10^{-6}$ or $10^{-5}$ (read from each model's config).
#
# ### Exercise 1: `rms_norm`
#
# Write `rms_norm(x, weight, eps=1e-6)`: normalise over the last axis, then multiply by
# `weight` (shape `(C,)`, the gain $\gamma$). The mean of the squares is over the last axis
# only, and `eps` goes **inside** the square root. Do not change `x`.
#
# The visible test compares with PyTorch's own `F.rms_norm` and checks that a vector whose
# mean is far from zero keeps its mean (RMSNorm does not centre); the grader also checks
# Hugging Face's `LlamaRMSNorm` (when `transformers` is installed), float64, large and tiny
# values and a batch of shape `(2, 3, 4, C)`.


# %% exercise="rms_norm"
def rms_norm(x, weight, eps=1e-6):
    """Root-mean-square normalisation over the last axis, times a gain.

    x: (..., C) floats. weight: (C,) gain. eps: added to the mean of squares, inside the
    square root. Returns (..., C): x / sqrt(mean(x**2 over C) + eps) * weight.
    """
    ### BEGIN SOLUTION
    rms = torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)
    return x / rms * weight
    ### END SOLUTION


# %% test="rms_norm" points=2 hint="Divide x by torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) and multiply by weight; do not subtract the mean." nudge="RMSNorm divides each vector by its root mean square; unlike LayerNorm it does not centre it."
import torch
import torch.nn.functional as F

from course_utils.checks import check_tensor

TOL = dict(rtol=1e-5, atol=1e-6)  # float32 sums in another order
gen = torch.Generator().manual_seed(0)
x = torch.randn(2, 5, 8, generator=gen)
weight = 1 + 0.1 * torch.randn(8, generator=gen)
expected = F.rms_norm(x, (8,), weight, eps=1e-6)
check_tensor(rms_norm(x.clone(), weight.clone()), expected, name="rms_norm of x (2, 5, 8)", **TOL)
# A vector far from zero mean: RMSNorm keeps its mean away from zero; LayerNorm would centre it.
shifted = 5.0 + torch.randn(3, 8, generator=gen)
expected = F.rms_norm(shifted, (8,), torch.ones(8), eps=1e-5)
check_tensor(
    rms_norm(shifted.clone(), torch.ones(8), eps=1e-5),
    expected,
    name="rms_norm(x with mean ~5, ones, eps=1e-5)",
    hint="Do not subtract the mean: RMSNorm divides x itself by sqrt(mean(x**2) + eps).",
    **TOL,
)
print("✓ rms_norm: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import check_true, hidden_generator

gen = hidden_generator("test_rms_norm", 1)
x = torch.randn(2, 3, 4, 16, generator=gen) * 3 + 1
w = torch.randn(16, generator=gen)
expected = x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-6) * w  # the formula, here
saved = x.clone()
check_tensor(rms_norm(x, w.clone()), expected, name="rms_norm of (2, 3, 4, 16), mean ~1", **TOL)
check_true(torch.equal(x, saved), "rms_norm changed its input x in place")
# eps inside the square root matters for tiny vectors.
tiny = 1e-4 * torch.randn(4, 16, generator=gen)
expected = F.rms_norm(tiny, (16,), w, eps=1e-6)
check_tensor(
    rms_norm(tiny.clone(), w.clone(), eps=1e-6),
    expected,
    name="rms_norm of vectors of size 1e-4 (eps matters)",
    hint="eps goes inside the square root: sqrt(mean(x**2) + eps).",
    **TOL,
)
big = 1e4 * torch.randn(4, 16, generator=gen)
expected = F.rms_norm(big, (16,), w, eps=1e-6)
check_tensor(rms_norm(big.clone(), w.clone()), expected, name="rms_norm of large x", **TOL)
x64 = torch.randn(3, 7, generator=gen, dtype=torch.float64)
w64 = torch.randn(7, generator=gen, dtype=torch.float64)
expected = F.rms_norm(x64, (7,), w64, eps=1e-5)
check_tensor(
    rms_norm(x64.clone(), w64.clone(), eps=1e-5),
    expected,
    name="rms_norm in float64, C = 7",
    rtol=1e-12,
    atol=1e-12,
)
try:
    from transformers.models.llama.modeling_llama import LlamaRMSNorm
except ImportError:
    LlamaRMSNorm = None
if LlamaRMSNorm is not None:
    hf_norm = LlamaRMSNorm(16, eps=1e-5)
    with torch.no_grad():
        hf_norm.weight.copy_(w)
        expected = hf_norm(saved)
    check_tensor(
        rms_norm(saved.clone(), w.clone(), eps=1e-5),
        expected,
        name="rms_norm vs LlamaRMSNorm",
        **TOL,
    )
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Rotary positions: a position is an angle
#
# GPT-2 *adds* a learned vector per position to each token's embedding (lab 01), so the
# model can only read positions it was trained on, and attention has to work out relative
# distances from absolute ones. **Rotary position embeddings** (RoPE, Su et al. 2021)
# instead *rotate* each query and key by an angle proportional to its position. Split a
# head's $D$ channels into $D/2$ pairs; pair $i$ turns at frequency
# $\omega_i = \theta^{-2i/D}$ (with $\theta = 10{,}000$ in the paper, $500{,}000$ in
# Llama 3), so at position $m$ it is rotated by the angle $m\,\omega_i$:
#
# $$\begin{pmatrix} x'_a \\ x'_b \end{pmatrix} =
#   \begin{pmatrix} \cos m\omega_i & -\sin m\omega_i \\ \sin m\omega_i & \cos m\omega_i \end{pmatrix}
#   \begin{pmatrix} x_a \\ x_b \end{pmatrix} .$$
#
# Why it works: rotating $q$ by $m\omega$ and $k$ by $n\omega$ changes their dot product to
# one that depends only on $m - n$. Attention scores see **relative** positions, and there
# is nothing to learn. Only queries and keys are rotated: the values carry the content
# that attention mixes, and have nothing to do with where a token sits.
#
# **Which channels form a pair?** The paper pairs neighbours, $(x_0, x_1), (x_2, x_3),
# \dots$ ("interleaved"). Hugging Face's Llama, and this course, pair channel $i$ with
# channel $i + D/2$, the **rotate-half** convention: pair $i$ is $(x_i, x_{i+D/2})$ with
# frequency $\omega_i$. Both are rotations by the same angles; they only lay the pairs out
# differently in memory, and Meta's checkpoints are permuted when converted so that
# rotate-half gives the same model. Mixing the two conventions silently scrambles a
# pretrained model, so the tests use rotate-half, Hugging Face's.
#
# ### Exercise 2: `apply_rotary`
#
# Write `apply_rotary(x, positions, theta=10000.0)` for `x` of shape `(B, H, T, D)` (`D` even)
# and `positions` a `(T,)` tensor of integer positions (not always starting at 0: with a
# KV cache the new tokens sit after the cached ones):
#
# - frequencies $\omega_i = \theta^{-2i/D}$ for $i = 0 \dots D/2 - 1$; angles
#   `positions[:, None] * omega[None, :]`, shape `(T, D/2)`;
# - with `x1 = x[..., :D/2]` and `x2 = x[..., D/2:]`, return
#   `cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)`.
#
# The visible test compares with the rotation written as a complex product in the test
# cell, and with Hugging Face's `LlamaRotaryEmbedding` and `apply_rotary_pos_emb` when
# `transformers` is installed, and checks that position 0 leaves `x` unchanged. The grader
# also checks positions that start later, another `theta`, float64, `D = 2`, that `x` is
# not changed, and the relative property: the score of a rotated query and key depends
# only on the distance between their positions.


# %% exercise="apply_rotary"
def apply_rotary(x, positions, theta=10000.0):
    """Rotary position embedding, rotate-half convention (Hugging Face's Llama).

    x: (B, H, T, D) queries or keys, D even. positions: (T,) integer positions.
    Pair i = (x[..., i], x[..., i + D/2]) is rotated by the angle positions[t] * theta**(-2i/D).
    Returns a new (B, H, T, D) tensor of x's dtype.
    """
    ### BEGIN SOLUTION
    d = x.size(-1)
    omega = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (D/2,)
    angles = positions.to(torch.float64)[:, None] * omega[None, :]  # (T, D/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    ### END SOLUTION


# %% test="apply_rotary" points=3 hint="omega = theta ** (-torch.arange(0, D, 2) / D); angles = positions[:, None] * omega; x1, x2 = x[..., :D//2], x[..., D//2:]; return cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)." nudge="Rotary positions rotate pair (x_i, x_{i+D/2}) of each query and key by the angle position * theta^(-2i/D)."
import torch

from course_utils.checks import check_tensor


def rotary_reference(x, positions, theta):
    """The rotation as a complex product: z_i = x_i + 1j * x_{i+D/2}, times e^{1j m w_i}."""
    d = x.size(-1)
    xd = x.double()
    z = torch.complex(xd[..., : d // 2], xd[..., d // 2 :])
    omega = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    turn = torch.polar(torch.ones(len(positions), d // 2, dtype=torch.float64),
                       positions.double()[:, None] * omega)  # fmt: skip
    z = z * turn
    return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)


TOL = dict(rtol=1e-5, atol=1e-5)  # float32 cos/sin of angles up to ~50 rad
gen = torch.Generator().manual_seed(0)
x = torch.randn(2, 3, 6, 8, generator=gen)
positions = torch.arange(6)
expected = rotary_reference(x, positions, 10000.0)
check_tensor(
    apply_rotary(x.clone(), positions.clone()),
    expected,
    name="apply_rotary(x (2, 3, 6, 8), positions 0..5)",
    hint="Pair channel i with channel i + D/2 (rotate-half), not with its neighbour i + 1.",
    **TOL,
)
check_tensor(
    apply_rotary(x[:, :, :1].clone(), torch.tensor([0])),
    x[:, :, :1],
    name="apply_rotary at position 0 (angle 0: no rotation)",
    **TOL,
)
try:
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb
except ImportError:
    LlamaConfig = None
    print("transformers is not installed: the comparison with Hugging Face is skipped")
if LlamaConfig is not None:
    hf_config = LlamaConfig(hidden_size=24, num_attention_heads=3, head_dim=8, rope_theta=500.0)
    cos, sin = LlamaRotaryEmbedding(hf_config)(x, positions[None] + 10)
    hf_q, hf_k = apply_rotary_pos_emb(x, 2 * x, cos, sin)
    check_tensor(
        apply_rotary(x.clone(), positions + 10, theta=500.0),
        hf_q,
        name="apply_rotary vs Hugging Face's Llama (positions 10..15, theta=500)",
        hint="Hugging Face pairs channel i with i + D/2 and uses omega_i = theta ** (-2i / D).",
        **TOL,
    )
print("✓ apply_rotary: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import check_true, hidden_generator

gen = hidden_generator("test_apply_rotary", 1)
x = torch.randn(1, 2, 5, 16, generator=gen)
positions = torch.tensor([7, 8, 9, 30, 31])
saved = x.clone()
expected = rotary_reference(x, positions, 10000.0)
check_tensor(
    apply_rotary(x, positions), expected, name="apply_rotary at positions 7, 8, 9, 30, 31", **TOL
)
check_true(torch.equal(x, saved), "apply_rotary changed its input x in place")
expected = rotary_reference(saved, positions, 50.0)
check_tensor(
    apply_rotary(saved.clone(), positions.clone(), theta=50.0),
    expected,
    name="apply_rotary with theta=50",
    hint="omega_i = theta ** (-2i / D), i = 0 .. D/2 - 1: use the theta you are given.",
    **TOL,
)
x2 = torch.randn(3, 1, 4, 2, generator=gen)
expected = rotary_reference(x2, torch.arange(4), 10000.0)
check_tensor(
    apply_rotary(x2.clone(), torch.arange(4)),
    expected,
    name="apply_rotary with D = 2 (one pair)",
    **TOL,
)
x64 = torch.randn(2, 2, 3, 6, generator=gen, dtype=torch.float64)
expected = rotary_reference(x64, torch.tensor([1, 5, 100]), 10000.0)
check_tensor(
    apply_rotary(x64.clone(), torch.tensor([1, 5, 100])),
    expected,
    name="apply_rotary in float64, D = 6",
    rtol=1e-10,
    atol=1e-10,
)
# Relative positions: <R(m) q, R(n) k> depends only on m - n.
q = torch.randn(1, 1, 1, 16, generator=gen)
k = torch.randn(1, 1, 1, 16, generator=gen)
scores = []
for m in (3, 10, 40):
    rq = apply_rotary(q.double(), torch.tensor([m]))
    rk = apply_rotary(k.double(), torch.tensor([m - 3]))
    scores.append((rq * rk).sum().item())
check_true(
    max(scores) - min(scores) < 1e-8,
    f"the score of a query at m and a key at m - 3 should not depend on m; got {scores}",
    hint="Rotate queries and keys by angles that grow linearly with the position.",
)
if LlamaConfig is not None:
    hf_config = LlamaConfig(hidden_size=32, num_attention_heads=2, head_dim=16, rope_theta=10000.0)
    cos, sin = LlamaRotaryEmbedding(hf_config)(saved, positions[None])
    hf_q, _ = apply_rotary_pos_emb(saved, saved, cos, sin)
    check_tensor(
        apply_rotary(saved.clone(), positions.clone()),
        hf_q,
        name="apply_rotary vs Hugging Face, D = 16",
        **TOL,
    )
### END HIDDEN TESTS

# %% [markdown]
# ### The angles, explored
#
# Each pair turns at its own speed: pair 0 by one radian per position, the last pair
# almost not at all. Fast pairs tell neighbours apart; slow ones still change over
# thousands of positions. The left plot shows $\cos(m\,\omega_i)$ for every position $m$
# and pair $i$; the right one the attention score of a fixed query and key (the same
# random vector) as a function of their distance, the quantity RoPE makes depend on the
# distance alone. Move the sliders: a larger $\theta$ slows every pair down, which is how
# Llama 3 and Qwen stretch their context.

# %%
if course_utils.ready("apply_rotary"):
    import ipywidgets as widgets
    from IPython.display import display

    from course_utils.plots import figure_image

    probe = torch.randn(
        1, 1, 1, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )

    def draw_angles(log10_theta=4.0, head_dim=64, max_position=256):
        theta = 10.0**log10_theta
        positions = torch.arange(max_position)
        omega = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angles = positions.double()[:, None] * omega[None, :]
        v = probe[..., :head_dim]
        rotated = apply_rotary(v.expand(1, 1, max_position, head_dim), positions, theta)
        score = (rotated[0, 0, :1] * rotated[0, 0]).sum(-1) / (v * v).sum()  # q at 0, k at m
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.4))
        left.imshow(angles.cos().T.numpy(), aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
        left.set(
            xlabel="position m", ylabel="pair i", title=f"cos(m * omega_i), theta = {theta:,.0f}"
        )
        right.plot(positions.numpy(), score.numpy())
        right.set(xlabel="distance between query and key", ylabel="score / |q|^2",
                  title="the same vector as query and key")  # fmt: skip
        fig.tight_layout()
        return fig

    theta_slider = widgets.FloatSlider(
        value=4.0, min=1.0, max=6.0, step=0.25, description="log10 theta:"
    )
    dim_slider = widgets.IntSlider(value=64, min=4, max=64, step=4, description="head dim:")
    length_slider = widgets.IntSlider(
        value=256, min=16, max=4096, step=16, description="positions:"
    )
    angle_view = widgets.Output()

    def redraw(_=None):
        fig = draw_angles(theta_slider.value, dim_slider.value, length_slider.value)
        with angle_view:
            angle_view.clear_output(wait=True)
            display(figure_image(fig))

    for slider in (theta_slider, dim_slider, length_slider):
        slider.observe(redraw, names="value")
    display(widgets.VBox([widgets.HBox([theta_slider, dim_slider, length_slider]), angle_view]))
    redraw()
    slowest = 10000.0 ** (-(64 - 2) / 64)
    print(
        f"theta = 10,000, D = 64: pair 0 turns 1 radian per position, the last pair "
        f"{slowest:.2e}: one full turn every {2 * math.pi / slowest:,.0f} positions"
    )

# %% [markdown]
# ## 3. SwiGLU: a gated feed-forward network
#
# GPT-2's feed-forward network is `fc2(gelu(fc1(x)))`. Shazeer (2020) tried *gated* linear
# units: two projections of `x`, one passed through an activation and used as a gate on
# the other, elementwise. With the SiLU activation $\mathrm{silu}(z) = z\,\sigma(z)$ this is
# **SwiGLU**, Llama's feed-forward network:
#
# $$\mathrm{SwiGLU}(x) = W_\text{down}\big(\mathrm{silu}(W_\text{gate}\,x) \odot W_\text{up}\,x\big).$$
#
# Three matrices instead of two, no biases. To keep the parameter count of a $4C$-wide
# GELU network, Llama makes the hidden width about $\frac{2}{3} \cdot 4C = \frac{8}{3}C$
# (rounded up to a multiple of 256 in the real models).
#
# ### Exercise 3: `swiglu`
#
# Write `swiglu(x, w_gate, w_up, w_down)` with the weights stored as `nn.Linear` stores them,
# `(out_features, in_features)`: `w_gate` and `w_up` are `(F, C)`, `w_down` is `(C, F)`. Use
# `F.silu` (or write $z\,\sigma(z)$). The **gate** goes through the activation, the **up**
# projection does not.
#
# The visible test compares with the formula written with `torch.sigmoid` in the test cell
# and with Hugging Face's `LlamaMLP` when it is installed; the grader also checks an odd
# width, float64 and that the inputs are unchanged.


# %% exercise="swiglu"
def swiglu(x, w_gate, w_up, w_down):
    """Llama's feed-forward network, without biases.

    x: (..., C). w_gate, w_up: (F, C). w_down: (C, F) (nn.Linear's weight layout).
    Returns (..., C): (silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T.
    """
    ### BEGIN SOLUTION
    return (F.silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T
    ### END SOLUTION


# %% test="swiglu" points=2 hint="gate = x @ w_gate.T; up = x @ w_up.T; return (F.silu(gate) * up) @ w_down.T: silu on the gate only." nudge="SwiGLU gates one projection of x by the SiLU of another, then projects back down."
import torch
from torch import nn

from course_utils.checks import check_tensor

TOL = dict(rtol=1e-5, atol=1e-5)  # three float32 matrix products in another order
gen = torch.Generator().manual_seed(0)
x = torch.randn(2, 4, 8, generator=gen)
w_gate, w_up = torch.randn(20, 8, generator=gen), torch.randn(20, 8, generator=gen)
w_down = torch.randn(8, 20, generator=gen)
gate = x @ w_gate.T
expected = (gate * torch.sigmoid(gate) * (x @ w_up.T)) @ w_down.T
check_tensor(
    swiglu(x.clone(), w_gate.clone(), w_up.clone(), w_down.clone()),
    expected,
    name="swiglu(x (2, 4, 8), F = 20)",
    hint="The SiLU goes on the gate projection, x @ w_gate.T; the up projection is not activated.",
    **TOL,
)
try:
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP
except ImportError:
    LlamaMLP = None
    print("transformers is not installed: the comparison with Hugging Face is skipped")
if LlamaMLP is not None:
    mlp = LlamaMLP(LlamaConfig(hidden_size=8, intermediate_size=20, num_attention_heads=2))
    with torch.no_grad():
        for layer, w in ((mlp.gate_proj, w_gate), (mlp.up_proj, w_up), (mlp.down_proj, w_down)):
            layer.weight.copy_(w)
        expected = mlp(x)
    check_tensor(
        swiglu(x.clone(), w_gate.clone(), w_up.clone(), w_down.clone()),
        expected,
        name="swiglu vs Hugging Face's LlamaMLP",
        **TOL,
    )
print("✓ swiglu: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import check_true, hidden_generator

gen = hidden_generator("test_swiglu", 1)
x = torch.randn(3, 5, 6, generator=gen)
w_gate, w_up = torch.randn(11, 6, generator=gen), torch.randn(11, 6, generator=gen)
w_down = torch.randn(6, 11, generator=gen)
saved = [t.clone() for t in (x, w_gate, w_up, w_down)]
g = x @ w_gate.T
expected = (g / (1 + torch.exp(-g)) * (x @ w_up.T)) @ w_down.T
with_gelu = (torch.nn.functional.gelu(g) * (x @ w_up.T)) @ w_down.T
check_tensor(swiglu(x, w_gate, w_up, w_down), expected, name="swiglu with F = 11 (odd)", **TOL)
check_true(
    all(torch.equal(a, b) for a, b in zip((x, w_gate, w_up, w_down), saved)),
    "swiglu changed one of its inputs in place",
)
# Swapping gate and up changes the result: the test above already tells them apart; here
# the activation must be SiLU, not GELU.
check_true(
    not torch.allclose(with_gelu, swiglu(*(t.clone() for t in saved))),
    "swiglu should use SiLU (z * sigmoid(z)), not GELU",
)
x64 = torch.randn(4, 3, generator=gen, dtype=torch.float64)
wg, wu = (
    torch.randn(5, 3, generator=gen, dtype=torch.float64),
    torch.randn(5, 3, generator=gen, dtype=torch.float64),
)
wd = torch.randn(3, 5, generator=gen, dtype=torch.float64)
g = x64 @ wg.T
expected = (g * torch.sigmoid(g) * (x64 @ wu.T)) @ wd.T
check_tensor(
    swiglu(x64.clone(), wg.clone(), wu.clone(), wd.clone()),
    expected,
    name="swiglu in float64 on a (4, 3) input",
    rtol=1e-10,
    atol=1e-10,
)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Grouped-query attention: share keys and values between heads
#
# When a decoder generates, its KV cache (lab 05) stores a key and a value vector per
# token, per head, per layer. For a large model and a long context that cache, not the
# weights, fills the GPU. **Multi-query attention** (Shazeer 2019) keeps all the query
# heads but only *one* key/value head, shared by all; **grouped-query attention** (Ainslie
# et al. 2023, used by Llama 2 70B, Llama 3 and Mistral) is the middle ground: $H$ query
# heads in $G$ groups, each group sharing one key/value head. With $H_{kv} = H$ it is
# ordinary multi-head attention; with $H_{kv} = 1$, multi-query. The cache shrinks by
# $H / H_{kv}$.
#
# The simplest way to compute it is to **repeat** each key/value head for the query heads
# of its group, then attend as usual. Query head $h$ belongs to group $h // (H / H_{kv})$:
# with 4 query heads and 2 key/value heads, query heads 0 and 1 use key/value head 0, heads
# 2 and 3 use head 1. So the repeats of one head must sit **next to each other**,
# `[k0, k0, k1, k1]` (`repeat_interleave`), not `[k0, k1, k0, k1]` (`repeat`), which would
# give query head 1 the wrong group's keys. That is Hugging Face's `repeat_kv`, and what
# PyTorch's `scaled_dot_product_attention(..., enable_gqa=True)` does inside.
#
# ### Exercise 4: `repeat_kv` and `grouped_query_attention`
#
# - `repeat_kv(x, n_rep)`: `(B, H_kv, T, D)` to `(B, H_kv * n_rep, T, D)`, each head repeated
#   `n_rep` times in a row. `n_rep = 1` returns `x` as it is.
# - `grouped_query_attention(q, k, v, positions, theta=10000.0)`: `q` is `(B, H, T, D)`, `k`
#   and `v` are `(B, H_kv, T, D)` with `H` a multiple of `H_kv` (else a `ValueError`). Rotate
#   **`q` and `k`** (not `v`) with your `apply_rotary`, repeat the key/value heads, and
#   return causal attention, `(B, H, T, D)` (use `F.scaled_dot_product_attention(...,
#   is_causal=True)` or your own from lab 02).
#
# The visible tests compare with PyTorch's `enable_gqa=True` on keys and queries rotated by
# Hugging Face's functions (or, without `transformers`, by a complex product written in the
# cell); the grader also checks multi-query ($H_{kv} = 1$), multi-head, one token, a batch
# of one and the `ValueError`.


# %% exercise="grouped_attention"
def repeat_kv(x, n_rep):
    """Repeat each key/value head n_rep times, the repeats of a head next to each other.

    x: (B, H_kv, T, D). Returns (B, H_kv * n_rep, T, D) where head h is x[:, h // n_rep].
    """
    ### BEGIN SOLUTION
    return x.repeat_interleave(n_rep, dim=1)
    ### END SOLUTION


def grouped_query_attention(q, k, v, positions, theta=10000.0):
    """Causal attention with H query heads sharing H_kv key/value heads, rotary on q and k.

    q: (B, H, T, D). k, v: (B, H_kv, T, D), H a multiple of H_kv (else ValueError).
    positions: (T,) integer positions for apply_rotary. Returns (B, H, T, D).
    """
    ### BEGIN SOLUTION
    h, h_kv = q.size(1), k.size(1)
    if h % h_kv != 0:
        raise ValueError(f"{h} query heads cannot share {h_kv} key/value heads evenly")
    q, k = apply_rotary(q, positions, theta), apply_rotary(k, positions, theta)
    k, v = repeat_kv(k, h // h_kv), repeat_kv(v, h // h_kv)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    ### END SOLUTION


# %% test="grouped_attention" points=2 hint="x.repeat_interleave(n_rep, dim=1): the heads axis is dim 1, and the repeats of one head are neighbours ([k0, k0, k1, k1], not [k0, k1, k0, k1])." nudge="Each key/value head serves a group of neighbouring query heads, so its copies must sit next to each other on the heads axis."
import torch

from course_utils.checks import check_equal, check_tensor

gen = torch.Generator().manual_seed(0)
kv = torch.randn(2, 3, 4, 5, generator=gen)
expected = torch.stack([kv[:, h // 2] for h in range(6)], dim=1)  # query head h uses h // 2
got = repeat_kv(kv.clone(), 2)
check_equal(tuple(got.shape), (2, 6, 4, 5), name="shape of repeat_kv((2, 3, 4, 5), 2)")
check_tensor(
    got,
    expected,
    name="repeat_kv((2, 3, 4, 5), 2): heads [k0, k0, k1, k1, k2, k2]",
    hint="The copies of one head sit next to each other: repeat_interleave, not repeat.",
)
check_tensor(repeat_kv(kv.clone(), 1), kv, name="repeat_kv(x, 1) is x")
print("✓ repeat_kv: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_grouped_attention", 1)
kv = torch.randn(1, 2, 3, 4, generator=gen)
expected = torch.stack([kv[:, h // 4] for h in range(8)], dim=1)
check_tensor(repeat_kv(kv.clone(), 4), expected, name="repeat_kv((1, 2, 3, 4), 4)")
one = torch.randn(3, 1, 5, 2, generator=gen)
expected = one.expand(3, 3, 5, 2).clone()
check_tensor(repeat_kv(one.clone(), 3), expected, name="repeat_kv of a single head (multi-query)")
### END HIDDEN TESTS

# %% test="grouped_attention" points=3 hint="Rotate q and k (not v) with apply_rotary(., positions, theta); k, v = repeat_kv(k, H // H_kv), repeat_kv(v, H // H_kv); return F.scaled_dot_product_attention(q, k, v, is_causal=True); raise ValueError when H % H_kv != 0." nudge="Grouped-query attention is ordinary causal attention after rotating queries and keys and sharing each key/value head with its group of query heads."
import torch
import torch.nn.functional as F

from course_utils.checks import check_raises, check_tensor


def rotate(x, positions, theta):
    """Rotate-half rotary, as a complex product written here (independent of apply_rotary)."""
    d = x.size(-1)
    z = torch.complex(x.double()[..., : d // 2], x.double()[..., d // 2 :])
    omega = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    z = z * torch.polar(torch.ones(len(positions), d // 2, dtype=torch.float64),
                        positions.double()[:, None] * omega)  # fmt: skip
    return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)


def gqa_reference(q, k, v, positions, theta):
    rq, rk = rotate(q, positions, theta), rotate(k, positions, theta)
    return F.scaled_dot_product_attention(rq, rk, v, is_causal=True, enable_gqa=True)


TOL = dict(rtol=1e-4, atol=1e-5)  # rotary + attention in float32, in another order
gen = torch.Generator().manual_seed(0)
q = torch.randn(2, 4, 6, 8, generator=gen)
k, v = torch.randn(2, 2, 6, 8, generator=gen), torch.randn(2, 2, 6, 8, generator=gen)
positions = torch.arange(6)
expected = gqa_reference(q, k, v, positions, 10000.0)
check_tensor(
    grouped_query_attention(q.clone(), k.clone(), v.clone(), positions.clone()),
    expected,
    name="grouped_query_attention with 4 query heads, 2 key/value heads, T = 6",
    hint="Rotate only q and k; values are not rotated. Then repeat the key/value heads with "
    "repeat_kv and attend with a causal mask.",
    **TOL,
)
# Later positions (after a cache) and another theta: compared with Hugging Face's rotary.
try:
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb
except ImportError:
    LlamaConfig = None
    print("transformers is not installed: the comparison with Hugging Face is skipped")
if LlamaConfig is not None:
    hf_config = LlamaConfig(hidden_size=32, num_attention_heads=4, head_dim=8, rope_theta=500.0)
    cos, sin = LlamaRotaryEmbedding(hf_config)(q, positions[None] + 20)
    hq, hk = apply_rotary_pos_emb(q, k, cos, sin)
    expected = F.scaled_dot_product_attention(hq, hk, v, is_causal=True, enable_gqa=True)
    check_tensor(
        grouped_query_attention(q.clone(), k.clone(), v.clone(), positions + 20, theta=500.0),
        expected,
        name="grouped_query_attention vs Hugging Face's rotary (positions 20..25, theta=500)",
        **TOL,
    )
check_raises(
    ValueError,
    grouped_query_attention,
    torch.randn(1, 3, 2, 4),
    torch.randn(1, 2, 2, 4),
    torch.randn(1, 2, 2, 4),
    torch.arange(2),
    name="grouped_query_attention with 3 query heads and 2 key/value heads",
)
print("✓ grouped_query_attention: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import check_true, hidden_generator

gen = hidden_generator("test_grouped_attention_2", 1)
# Multi-query: one key/value head for 6 query heads; an explicit loop as the reference.
q = torch.randn(1, 6, 5, 4, generator=gen)
k, v = torch.randn(1, 1, 5, 4, generator=gen), torch.randn(1, 1, 5, 4, generator=gen)
positions = torch.arange(3, 8)
saved = [t.clone() for t in (q, k, v)]
rq, rk = rotate(q, positions, 10000.0), rotate(k, positions, 10000.0)
heads = []
for h in range(6):
    scores = rq[:, h] @ rk[:, 0].transpose(-2, -1) / 2.0  # sqrt(D) = 2
    scores = scores.masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), float("-inf"))
    heads.append(torch.softmax(scores, dim=-1) @ v[:, 0])
expected = torch.stack(heads, dim=1)
check_tensor(
    grouped_query_attention(q, k, v, positions.clone()),
    expected,
    name="multi-query attention (6 query heads, 1 key/value head), positions 3..7",
    **TOL,
)
check_true(
    all(torch.equal(a, b) for a, b in zip((q, k, v), saved)),
    "grouped_query_attention changed q, k or v in place",
)
# Multi-head (H_kv = H), three groups of two, one token, a batch of one.
for b, h, h_kv, t in ((3, 4, 4, 5), (2, 6, 3, 7), (1, 2, 1, 1)):
    q = torch.randn(b, h, t, 8, generator=gen)
    k, v = torch.randn(b, h_kv, t, 8, generator=gen), torch.randn(b, h_kv, t, 8, generator=gen)
    positions = torch.arange(t) + 2
    expected = gqa_reference(q, k, v, positions, 1000.0)
    check_tensor(
        grouped_query_attention(q.clone(), k.clone(), v.clone(), positions.clone(), theta=1000.0),
        expected,
        name=f"grouped_query_attention with B = {b}, H = {h}, H_kv = {h_kv}, T = {t}, theta=1000",
        hint="Query head h uses key/value head h // (H // H_kv): repeat_interleave along dim 1.",
        **TOL,
    )
_ = check_raises(
    ValueError,
    grouped_query_attention,
    torch.randn(1, 4, 2, 4),
    torch.randn(1, 3, 2, 4),
    torch.randn(1, 3, 2, 4),
    torch.arange(2),
    name="grouped_query_attention with 4 query heads and 3 key/value heads",
)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Your model is Llama
#
# Those four parts are everything that separates a Llama block from a GPT-2 block:
#
# | part | GPT-2 (lab 05) | Llama |
# |---|---|---|
# | norm | LayerNorm, with bias | RMSNorm, no bias |
# | positions | learned vector added to the embedding | rotary, on queries and keys in every layer |
# | feed-forward | `fc2(gelu(fc1(x)))`, width $4C$ | SwiGLU, width about $\frac{8}{3}C$ |
# | attention | $H$ key/value heads | $H_{kv} \le H$ key/value heads |
# | biases | everywhere | none |
# | output layer | tied to the embedding | untied (Llama 2, 3 8B), tied (Llama 3.2 1B) |
#
# The cell below builds a small Hugging Face `LlamaForCausalLM` with **random** weights (no
# download: 4 query heads, 2 key/value heads, $\theta = 500$, an untied output layer, an
# odd feed-forward width, every weight perturbed so that nothing sits at its default), then
# runs its weights through **your** four functions, block by block, and compares the
# logits with Hugging Face's. Then the course's `DecoderModel`, which has these parts as
# switches (`norm="rmsnorm"`, `positions="rotary"`, `activation="swiglu"`, `n_kv_heads`,
# `bias=False`), loads the same model with `DecoderModel.from_llama`, and greedy generation
# is compared token for token.

# %%
try:
    import transformers
except ImportError:
    transformers = None
    print("transformers is not installed: `pip install transformers` to run this comparison.")

if transformers is not None:
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    llama_config = transformers.LlamaConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=64, intermediate_size=171,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=128, rope_theta=500.0, rms_norm_eps=1e-5,
        tie_word_embeddings=False,
    )  # fmt: skip
    hf_llama = transformers.LlamaForCausalLM(llama_config).eval()
    with torch.no_grad():
        for parameter in hf_llama.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    llama_ids = torch.tensor([tokenizer.encode("The while statement is used for repeated")])
    with torch.no_grad():
        hf_logits = hf_llama(llama_ids).logits
    print(f"a random Llama: {count_parameters(hf_llama):,} parameters, {llama_config.num_hidden_layers}"
          f" layers, {llama_config.num_attention_heads} query heads, "
          f"{llama_config.num_key_value_heads} key/value heads")  # fmt: skip


@torch.no_grad()
def llama_with_your_parts(hf, ids):
    """Hugging Face Llama weights, run through rms_norm, grouped_query_attention, swiglu."""
    c, body = hf.config, hf.model
    theta = c.rope_parameters["rope_theta"]
    positions = torch.arange(ids.size(1))
    x = body.embed_tokens(ids)
    for layer in body.layers:
        attn, mlp = layer.self_attn, layer.mlp
        h = rms_norm(x, layer.input_layernorm.weight, c.rms_norm_eps)
        q = split_heads(attn.q_proj(h), c.num_attention_heads)
        k = split_heads(attn.k_proj(h), c.num_key_value_heads)
        v = split_heads(attn.v_proj(h), c.num_key_value_heads)
        x = x + attn.o_proj(merge_heads(grouped_query_attention(q, k, v, positions, theta)))
        h = rms_norm(x, layer.post_attention_layernorm.weight, c.rms_norm_eps)
        x = x + swiglu(h, mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight)
    return hf.lm_head(rms_norm(x, body.norm.weight, c.rms_norm_eps))


if transformers is not None and course_utils.ready(
    "rms_norm", "apply_rotary", "swiglu", "grouped_query_attention"
):
    yours = llama_with_your_parts(hf_llama, llama_ids)
    difference = (yours - hf_logits).abs().max().item()
    print(f"your four functions vs Hugging Face's Llama: largest logit difference {difference:.1e}"
          f" ({difference / hf_logits.abs().max().item():.1e} of the largest logit)")  # fmt: skip

# %%
if transformers is not None:
    course_llama = DecoderModel.from_llama(hf_llama).eval()
    with torch.no_grad():
        ours_logits = course_llama(llama_ids)
    difference = (ours_logits - hf_logits).abs().max().item()
    print(f"DecoderModel.from_llama vs Hugging Face: largest logit difference {difference:.1e}")
    ours_out = course_llama.generate(llama_ids, 20, temperature=0)
    hf_out = hf_llama.generate(
        llama_ids, max_new_tokens=20, do_sample=False, pad_token_id=0,
        attention_mask=torch.ones_like(llama_ids),
    )  # fmt: skip
    print("same 20 greedy tokens as Hugging Face's generate:", torch.equal(ours_out, hf_out))

# %% [markdown]
# The differences are float32 rounding: the same numbers, added in another order. A
# mistake in any part (a mean subtracted, a pair of channels mismatched, the values
# rotated, a key/value head given to the wrong group) moves the logits by far more.
#
# ## 6. Experiment: GPT-2 against Llama at equal compute
#
# Which of the changes matter at laptop scale? Four decoders, each one change away from the
# one before, all of the same width and depth, trained on the course corpus:
#
# 1. **GPT-2-style**: LayerNorm with biases, learned positions, GELU, 4 heads;
# 2. **+ RMSNorm, no biases**;
# 3. **+ rotary** positions instead of learned ones;
# 4. **+ SwiGLU** with width $\frac{8}{3}C$ instead of GELU with $4C$: this one is
#    **Llama-style**.
#
# They are given the **same training compute**: each step's FLOPs are counted
# (`measure_flops`, as in lab 07), and each model gets as many steps as fit in the budget
# of `budget_steps` GPT-2 steps. Each is trained with three seeds (two when grading); the
# table gives the mean validation loss and its standard error over seeds. A difference
# smaller than about twice the standard errors is a tie.

# %%
VARIANTS = {
    "GPT-2-style": dict(norm="layernorm", positions="learned", activation="gelu", bias=True),
    "+ RMSNorm, no biases": dict(norm="rmsnorm", positions="learned", activation="gelu", bias=False),
    "+ rotary": dict(norm="rmsnorm", positions="rotary", activation="gelu", bias=False),
    "+ SwiGLU (Llama-style)": dict(norm="rmsnorm", positions="rotary", activation="swiglu", bias=False),
}  # fmt: skip


def make_decoder(variant, seed=0, n_kv_heads=None, max_len=None):
    """A fresh decoder of the lab's size in the given style (a key of VARIANTS)."""
    torch.manual_seed(seed)
    style = dict(VARIANTS[variant])
    swiglu_style = style["activation"] == "swiglu"
    d_ff = 2 * math.ceil(8 * cfg.d_model / 3 / 2) if swiglu_style else 4 * cfg.d_model
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size, d_model=cfg.d_model, n_heads=cfg.n_heads,
        n_layers=cfg.n_layers, d_ff=d_ff, max_len=max_len or 2 * cfg.block_size,
        n_kv_heads=n_kv_heads, **style,
    )  # fmt: skip
    return DecoderModel(config).to(device)


def lm_loss(model, batch):
    x, y = batch
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


def random_batches(ids, seed, block_size=cfg.block_size):
    gen = torch.Generator().manual_seed(seed)
    return lambda step: data.get_batch(
        ids, cfg.batch_size, block_size, generator=gen, device=device
    )


def fixed_batches(ids, block_size=cfg.block_size, seed=123):
    gen = torch.Generator().manual_seed(seed)
    batches = [
        data.get_batch(ids, 32, block_size, generator=gen, device=device)
        for _ in range(cfg.eval_batches)
    ]
    return lambda i: batches[i]


val_batches = fixed_batches(val_ids)


def val_loss(model):
    return evaluate_loss(model, val_batches, lm_loss, cfg.eval_batches)


def step_flops(model):
    """Training FLOPs of one step: 3x the forward pass (forward + backward)."""
    x = torch.zeros(cfg.batch_size, cfg.block_size, dtype=torch.long, device=device)
    return 3 * measure_flops(lambda: model(x))


def pretrain(model, steps, seed):
    return train(model, random_batches(train_ids, seed), lm_loss, steps=steps, lr=LR,
                 progress=False, seed=seed)  # fmt: skip


budget = cfg.budget_steps * step_flops(make_decoder("GPT-2-style"))
results, models = {}, {}
for name in VARIANTS:
    probe_model = make_decoder(name)
    steps = steps_for_budget(budget, step_flops(probe_model))
    losses, seconds = [], 0.0
    for seed in cfg.seeds:
        model = make_decoder(name, seed=seed)
        history = pretrain(model, steps, seed)
        losses.append(val_loss(model))
        seconds += history.seconds
        models[name, seed] = model
    results[name] = dict(
        params=count_parameters(probe_model), steps=steps, losses=losses, seconds=seconds,
        mean=statistics.mean(losses), se=statistics.stdev(losses) / math.sqrt(len(losses)),
    )  # fmt: skip
print(f"budget: {budget:.2e} training FLOPs per run ({cfg.budget_steps} GPT-2-style steps), "
      f"{len(cfg.seeds)} seeds")  # fmt: skip
print(f"{'variant':<24} {'params':>8} {'steps':>6} {'val loss':>9} {'± s.e.':>7} {'s/run':>6}")
for name, r in results.items():
    print(f"{name:<24} {r['params']:>8,} {r['steps']:>6} {r['mean']:>9.3f} {r['se']:>7.3f} "
          f"{r['seconds'] / len(cfg.seeds):>6.1f}")  # fmt: skip

# %%
names = list(results)
ax = plot_bar(
    {n: results[n]["mean"] for n in names},
    ylabel="validation loss (nats/char)", title="one change at a time, equal training FLOPs",
)  # fmt: skip
ax.errorbar(range(len(names)), [results[n]["mean"] for n in names],
            yerr=[results[n]["se"] for n in names], fmt="none", color="black", capsize=4)  # fmt: skip
low = min(results[n]["mean"] - 3 * results[n]["se"] for n in names)
ax.set_ylim(bottom=low - 0.05)
plt.show()


def compare(a, b):
    """A sentence: is b better than a, worse, or a tie (within 2 combined standard errors)?"""
    ra, rb = results[a], results[b]
    gap = ra["mean"] - rb["mean"]
    noise = 2 * math.hypot(ra["se"], rb["se"])
    verdict = "better" if gap > noise else "worse" if gap < -noise else "a tie"
    return (f"{b} vs {a}: {-gap:+.3f} nats (noise ±{noise:.3f}): {verdict}")  # fmt: skip


verdicts = {}
for a, b in zip(names, names[1:]):
    print(compare(a, b))
    verdicts[b.removeprefix("+ ")] = compare(a, b).rsplit(": ", 1)[1]
print(compare(names[0], names[-1]))
MEANING = {"better": "lowered the loss", "a tie": "were ties (within the noise)",
           "worse": "raised the loss"}  # fmt: skip
for verdict, meaning in MEANING.items():
    changes = [change for change, v in verdicts.items() if v == verdict] or ["none"]
    print(f"on this run, the changes that {meaning}: {', '.join(changes)}")
fastest = min(names, key=lambda n: results[n]["seconds"])
slowest = max(names, key=lambda n: results[n]["seconds"])
print(f"wall time per run: {results[fastest]['seconds'] / len(cfg.seeds):.1f} s ({fastest}) to "
      f"{results[slowest]['seconds'] / len(cfg.seeds):.1f} s ({slowest})")  # fmt: skip

# %% [markdown]
# The last three lines above are the answer for this run: which changes helped, which are
# ties, which hurt. Read them rather than a story told in advance: at this size (about a
# hundred thousand parameters, a few hundred steps) some changes are within the noise of
# three seeds. Published ablations find each change worth a little at scale: RMSNorm mostly
# saves time rather than loss, SwiGLU lowers the loss at equal compute (Shazeer 2020),
# and rotary positions beat learned ones most clearly on long contexts. A tie here says
# that our runs are too small and too short to tell, not that a change is useless; a
# clear gap at this scale is worth more. Notice also that equal FLOPs is not equal wall
# time: a CPU runs several small operations (the extra gate, the rotation) more slowly
# than their FLOPs suggest.
#
# ## 7. Experiment: the KV cache of multi-head, grouped-query and multi-query attention
#
# The KV cache holds, for every generated token, a key and a value of `head_dim` numbers
# per key/value head per layer:
#
# $$\text{bytes per token} = 2 \times n_\text{layers} \times H_{kv} \times d_\text{head}
#   \times \text{bytes per number}.$$
#
# Three Llama-style models with 4 query heads and 4, 2 or 1 key/value heads, trained as in
# section 6 with the same seeds: what they keep in the cache, how fast they generate, and
# the loss each keeps. (Fewer key/value heads also means smaller `k_proj` and `v_proj`
# matrices, so a step costs slightly less.)

# %%
LLAMA = "+ SwiGLU (Llama-style)"
kv_results = {}
for n_kv in (cfg.n_heads, cfg.n_heads // 2, 1):
    label = {cfg.n_heads: "multi-head", 1: "multi-query"}.get(n_kv, "grouped-query")
    losses = []
    for seed in cfg.seeds:
        if n_kv == cfg.n_heads:
            model = models[LLAMA, seed]  # trained in section 6
        else:
            model = make_decoder(LLAMA, seed=seed, n_kv_heads=n_kv)
            pretrain(model, results[LLAMA]["steps"], seed)
        losses.append(val_loss(model))
    head_dim = cfg.d_model // cfg.n_heads
    formula = 2 * cfg.n_layers * n_kv * head_dim * 4  # float32: 4 bytes a number
    cache = model.new_cache()  # what the model really stores, for a full window
    with torch.no_grad():
        model(torch.zeros(1, cfg.block_size, dtype=torch.long, device=device), kv_cache=cache)
    stored = sum(t.numel() * t.element_size() for c in cache for t in (c.k, c.v))
    prompt = torch.zeros(1, 8, dtype=torch.long, device=device)
    model.eval()
    model.generate(prompt, 4, temperature=0)  # warm-up
    timings = []
    for _ in range(3):
        tick = time.perf_counter()
        model.generate(prompt, cfg.gen_tokens, temperature=0)
        timings.append(time.perf_counter() - tick)
    kv_results[label] = dict(
        n_kv=n_kv, bytes=stored // cfg.block_size, formula=formula, mean=statistics.mean(losses),
        se=statistics.stdev(losses) / math.sqrt(len(losses)),
        tokens_per_s=cfg.gen_tokens / statistics.median(timings),
    )  # fmt: skip
for label, r in kv_results.items():
    print(f"{label:<14} {r['n_kv']} key/value head(s): {r['bytes']:,} bytes of cache per token "
          f"(measured; the formula: {r['formula']:,}), "
          f"{r['tokens_per_s']:,.0f} tokens/s, validation loss {r['mean']:.3f} ± {r['se']:.3f}")  # fmt: skip
mha, mqa = kv_results["multi-head"], kv_results["multi-query"]
print(f"multi-query stores {mha['bytes'] // mqa['bytes']}x less cache than multi-head; its loss is "
      f"{mqa['mean'] - mha['mean']:+.3f} nats different (noise ±"
      f"{2 * math.hypot(mha['se'], mqa['se']):.3f})")  # fmt: skip

# %% [markdown]
# The cache shrinks exactly by $H / H_{kv}$, as measured in the models' own caches, and
# the loss changes little or not at all at this size (the last line compares it with the
# noise of the seeds). Do not read much into the tokens per second: our cache holds a few
# kilobytes, a CPU generating from a model this small spends its time on overheads, and
# whatever else the machine is doing moves these timings more than the cache does (run the
# cell again and the order may change). The saving matters where the cache is large. Explore it for the published shapes below: Llama 2 7B (32 layers, 32 heads of
# 128, no grouping), Llama 3 8B (32 layers, 32 query heads, 8 key/value heads), Llama 2
# 70B (80 layers, 64 query heads, 8 key/value heads), in 16-bit numbers.

# %%
import ipywidgets as widgets
from IPython.display import display

SHAPES = {  # n_layers, query heads, head_dim, the published number of key/value heads
    "Llama 2 7B": (32, 32, 128, 32),
    "Llama 3 8B": (32, 32, 128, 8),
    "Llama 2 70B": (80, 64, 128, 8),
}


def cache_gigabytes(shape, n_kv, context, batch=1, bytes_per_number=2):
    n_layers, _, head_dim, _ = shape
    return 2 * n_layers * n_kv * head_dim * bytes_per_number * context * batch / 1e9


def draw_cache(model_name="Llama 3 8B", context=8192, batch=1):
    shape = SHAPES[model_name]
    kv_options = [h for h in range(1, shape[1] + 1) if shape[1] % h == 0]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(kv_options, [cache_gigabytes(shape, h, context, batch) for h in kv_options], "o-")
    ax.axvline(shape[3], color="C1", linestyle=":", label=f"{model_name}: {shape[3]} kv heads")
    ax.set(xscale="log", xlabel="key/value heads", ylabel="KV cache (GB, 16-bit)",
           title=f"{model_name}, context {context:,}, batch {batch}")  # fmt: skip
    ax.set_xticks(kv_options, [str(h) for h in kv_options])
    ax.legend()
    plt.show()


cache_widget = widgets.interactive(
    draw_cache,
    model_name=widgets.Dropdown(options=list(SHAPES), value="Llama 3 8B", description="model:"),
    context=widgets.IntSlider(value=8192, min=1024, max=131072, step=1024, description="context:"),
    batch=widgets.IntSlider(value=1, min=1, max=64, description="batch:"),
)
display(cache_widget)
for name, shape in SHAPES.items():
    all_heads_gb = cache_gigabytes(shape, shape[1], 8192)
    published_gb = cache_gigabytes(shape, shape[3], 8192)
    print(f"{name}: {published_gb:.1f} GB of cache for 8,192 tokens with {shape[3]} key/value heads "
          f"({all_heads_gb:.1f} GB with {shape[1]})")  # fmt: skip

# %% [markdown]
# ## 8. Experiment: positions beyond the trained context
#
# Every model of section 6 was trained on windows of `block_size` characters. What happens
# when it reads a window twice as long? A learned position embedding has rows for the
# positions beyond `block_size` (we gave the models room for them), but those rows were
# never trained: they are still random. Rotary positions have nothing to learn, and attend
# by relative distance, which the model has seen up to `block_size`. Below, the
# "+ RMSNorm, no biases" models (learned positions) and the "+ rotary" models (identical
# otherwise) are evaluated on held-out windows of twice the length; the plot shows the loss
# at each position, averaged over seeds.

# %%
long_batches = fixed_batches(val_ids, block_size=2 * cfg.block_size)


@torch.no_grad()
def loss_by_position(model):
    model.eval()
    total = torch.zeros(2 * cfg.block_size)
    for i in range(cfg.eval_batches):
        x, y = long_batches(i)
        total += F.cross_entropy(model(x).transpose(1, 2), y, reduction="none").mean(0).cpu()
    return total / cfg.eval_batches


position_curves = {}
for name, label in (("+ RMSNorm, no biases", "learned"), ("+ rotary", "rotary")):
    curves = torch.stack([loss_by_position(models[name, seed]) for seed in cfg.seeds])
    position_curves[label] = curves.mean(0)
ax = plot_curves(
    {label: (range(2 * cfg.block_size), c) for label, c in position_curves.items()},
    xlabel="position in the window", ylabel="validation loss (nats)",
    title=f"trained on {cfg.block_size} positions, read at {2 * cfg.block_size}",
)  # fmt: skip
ax.axvline(cfg.block_size - 0.5, color="gray", linestyle=":")
plt.show()
for label, c in position_curves.items():
    inside, beyond = c[: cfg.block_size].mean().item(), c[cfg.block_size :].mean().item()
    print(f"{label} positions: loss {inside:.3f} on the trained positions, {beyond:.3f} beyond "
          f"them ({beyond - inside:+.3f})")  # fmt: skip

# %% [markdown]
# Compare the two increases printed above. Learned positions have nothing to go on beyond
# the trained length: those rows of the embedding are still random, and the loss rises
# there. Rotary positions have nothing to learn, yet they are not free of the problem either:
# at distances never seen in training the attention scores take values the model was not
# trained on, so their loss rises too (by how much, on this run, is the last number of its
# line). Large models extend their context by raising $\theta$ or rescaling positions
# (position interpolation, YaRN) and then training briefly on long texts.
#
# ## 9. LoRA: fine-tune through two small matrices
#
# Full fine-tuning (lab 08) updates every weight, so the optimizer keeps two more numbers
# per weight (AdamW's moments) and every fine-tuned copy is a whole model. **LoRA** (Hu et
# al. 2021) freezes the pretrained weight $W$ (`out × in`) and learns a low-rank update
# beside it:
#
# $$y = x W^\top + b + \frac{\alpha}{r}\, x A^\top B^\top, \qquad
#   A \in \mathbb{R}^{r \times \text{in}},\ B \in \mathbb{R}^{\text{out} \times r}.$$
#
# $B$ starts at zero, so training starts from the pretrained model exactly; $A$ starts
# random. Only $A$ and $B$ are trained: $r(\text{in} + \text{out})$ numbers instead of
# $\text{in} \times \text{out}$. The scale is $\alpha / r$, not $\alpha$: with it, changing
# the rank does not change how large the update starts out, so a learning rate tuned for
# one rank still works for another (PEFT's `LoraConfig(r=..., lora_alpha=...)` does the
# same). After training the update can be **merged**: $W' = W + \frac{\alpha}{r} B A$ is an
# ordinary `nn.Linear`, and the adapted model costs nothing extra to run.
#
# ### Exercise 5: `LoRALinear`
#
# The constructor is written: it keeps the frozen `base` layer and creates `lora_A` (random)
# and `lora_B` (zeros), named as in PEFT. Write
#
# - `forward(x)`: the base layer's output plus the scaled low-rank update (for `x` of any
#   shape `(..., in)`);
# - `merge()`: a **new** `nn.Linear` (with a bias when the base has one) whose weight is
#   $W + \frac{\alpha}{r} B A$, so that `merge()(x)` equals `forward(x)`. Leave the base
#   layer unchanged.
#
# The visible tests compare with the formula written in the test cell, with $r \ne \alpha$
# so that the scale matters; the grader also checks a base without bias, a 3-D input, that
# only `lora_A` and `lora_B` receive gradients, that `merge` leaves the base alone and returns a new
# layer, and rank 1.


# %% exercise="lora"
class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update, scaled by alpha / r.

    base: nn.Linear(in, out), frozen. lora_A: (r, in), random. lora_B: (out, r), zeros.
    forward: x (..., in) -> (..., out) = base(x) + (alpha / r) * x @ lora_A.T @ lora_B.T.
    merge() -> a new nn.Linear(in, out) with weight W + (alpha / r) * lora_B @ lora_A.
    """

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base, self.r, self.alpha = base, r, alpha
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.randn(r, base.in_features) / math.sqrt(base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.base(x) + (self.alpha / self.r) * (x @ self.lora_A.T) @ self.lora_B.T
        ### END SOLUTION

    def merge(self):
        ### BEGIN SOLUTION
        base = self.base
        merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
        with torch.no_grad():
            merged.weight.copy_(base.weight + (self.alpha / self.r) * self.lora_B @ self.lora_A)
            if base.bias is not None:
                merged.bias.copy_(base.bias)
        return merged
        ### END SOLUTION


# %% test="lora" points=2 hint="forward: self.base(x) + (self.alpha / self.r) * (x @ self.lora_A.T) @ self.lora_B.T: the scale is alpha / r, not alpha." nudge="LoRA adds a scaled low-rank product to the frozen layer's output; B starts at zero, so the layer starts as the base."
import math

import torch
from torch import nn

from course_utils.checks import check_tensor

TOL = dict(rtol=1e-5, atol=1e-5)  # float32 matrix products in another order
gen = torch.Generator().manual_seed(0)
W, b = torch.randn(5, 6, generator=gen), torch.randn(5, generator=gen)


def linear_with(weight, bias):
    """A fresh nn.Linear holding copies of weight (out, in) and bias (out,) or None."""
    layer = nn.Linear(weight.size(1), weight.size(0), bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


x = torch.randn(4, 6, generator=gen)
expected = x @ W.T + b
layer = LoRALinear(linear_with(W, b), r=2, alpha=8)
check_tensor(
    layer(x.clone()), expected, name="a new LoRALinear (lora_B = 0) is its base layer", **TOL
)
A, B = torch.randn(2, 6, generator=gen), torch.randn(5, 2, generator=gen)
layer = LoRALinear(linear_with(W, b), r=2, alpha=8)  # a fresh one: the first call had the other
with torch.no_grad():
    layer.lora_A.copy_(A)
    layer.lora_B.copy_(B)
expected = x @ W.T + b + (8 / 2) * (x @ A.T) @ B.T
check_tensor(
    layer(x.clone()),
    expected,
    name="LoRALinear(r=2, alpha=8) with random lora_A and lora_B",
    hint="Scale the update by alpha / r (here 4), not by alpha (8).",
    **TOL,
)
print("✓ lora forward: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import check_true, hidden_generator

gen = hidden_generator("test_lora", 1)
W = torch.randn(3, 7, generator=gen)
A, B = torch.randn(4, 7, generator=gen), torch.randn(3, 4, generator=gen)


def adapted(r, alpha):
    """A fresh LoRALinear(r, alpha) on a bias-free copy of W, holding copies of A and B."""
    layer = LoRALinear(linear_with(W, None), r=r, alpha=alpha)
    with torch.no_grad():
        layer.lora_A.copy_(A[:r])
        layer.lora_B.copy_(B[:, :r])
    return layer


x = torch.randn(2, 5, 7, generator=gen)
expected = x @ W.T + 0.5 * torch.einsum("btr,or->bto", torch.einsum("bti,ri->btr", x, A), B)
check_tensor(
    adapted(4, 2)(x.clone()), expected, name="LoRALinear(r=4, alpha=2), no bias, x (2, 5, 7)", **TOL
)
layer = adapted(4, 2)
layer(x.clone()).pow(2).sum().backward()
check_true(
    layer.lora_A.grad is not None
    and layer.lora_B.grad is not None
    and layer.base.weight.grad is None,
    "only lora_A and lora_B should receive gradients; the base weight stays frozen",
)
x = torch.randn(5, 3, generator=gen)
W = torch.randn(3, 3, generator=gen)
A, B = torch.randn(1, 3, generator=gen), torch.randn(3, 1, generator=gen)
expected = x @ W.T + (x @ A.T) @ B.T
check_tensor(adapted(1, 1)(x.clone()), expected, name="LoRALinear with rank 1, alpha 1", **TOL)
### END HIDDEN TESTS

# %% test="lora" points=2 hint="merge: a new nn.Linear(in, out, bias=base.bias is not None) whose weight is base.weight + (alpha / r) * lora_B @ lora_A (out x in), the bias copied; do not change self.base." nudge="Merging folds the scaled low-rank product into the base weight, so the merged layer computes what the adapter did."
import torch
from torch import nn

from course_utils.checks import check_equal, check_tensor, check_true

TOL = dict(rtol=1e-5, atol=1e-5)
gen = torch.Generator().manual_seed(1)
base = nn.Linear(6, 5)
with torch.no_grad():
    base.weight.copy_(torch.randn(5, 6, generator=gen))
    base.bias.copy_(torch.randn(5, generator=gen))
W, b = base.weight.detach().clone(), base.bias.detach().clone()
layer = LoRALinear(base, r=3, alpha=12)
A, B = torch.randn(3, 6, generator=gen), torch.randn(5, 3, generator=gen)
with torch.no_grad():
    layer.lora_A.copy_(A)
    layer.lora_B.copy_(B)
merged = layer.merge()
check_true(isinstance(merged, nn.Linear), f"merge() should return an nn.Linear, got {type(merged)}")
check_tensor(
    merged.weight.detach(),
    W + (12 / 3) * B @ A,
    name="merge().weight with r=3, alpha=12",
    hint="W' = W + (alpha / r) * lora_B @ lora_A: lora_B (out x r) times lora_A (r x in) is out x in, like W.",
    **TOL,
)
check_tensor(merged.bias.detach(), b, name="merge().bias (the base layer's bias)")
check_tensor(base.weight.detach(), W, name="the base weight after merge() (unchanged)")
x = torch.randn(4, 6, generator=gen)
expected = x @ W.T + b + 4 * (x @ A.T) @ B.T
check_tensor(merged(x.clone()), expected, name="merge()(x) equals the adapter", **TOL)
check_equal(merged is base, False, name="merge() returns a new layer, not the base")
print("✓ lora merge: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_lora_2", 2)
base = nn.Linear(4, 8, bias=False)
with torch.no_grad():
    base.weight.copy_(torch.randn(8, 4, generator=gen))
W = base.weight.detach().clone()
layer = LoRALinear(base, r=2, alpha=3)
A, B = torch.randn(2, 4, generator=gen), torch.randn(8, 2, generator=gen)
with torch.no_grad():
    layer.lora_A.copy_(A)
    layer.lora_B.copy_(B)
merged = layer.merge()
check_true(merged.bias is None, "merge() of a base without bias should have no bias")
check_tensor(merged.weight.detach(), W + 1.5 * B @ A, name="merge().weight, r=2, alpha=3", **TOL)
check_tensor(base.weight.detach(), W, name="the base weight after merge() (unchanged)")
x = torch.randn(3, 2, 4, generator=gen)
expected = x @ W.T + 1.5 * (x @ A.T) @ B.T
check_tensor(merged(x.clone()), expected, name="merge()(x) == forward(x) on a 3-D input", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# ## 10. Experiment: LoRA against full fine-tuning on private memos
#
# Lab 08 fine-tuned a pretrained decoder on the private memos of a fictional company, with
# a canary (`"the access code is 493-27-1854"`) planted in them, and measured how exposed
# it became. Here the pretrained model is the Llama-style model of section 6 (seed 0). The
# memos are split as in lab 08 (copies of a memo stay on the same side), the canary is
# planted 16 times in the training memos, and two fine-tunings get the same number of
# steps on them:
#
# - **full**: every weight trained;
# - **LoRA**: the course's `course_utils.lora.add_lora` wraps the attention and
#   feed-forward projections of every block in LoRA layers like yours (rank `lora_rank`,
#   $\alpha = 2r$), everything else frozen.
#
# For each: trainable parameters, the optimizer's memory (AdamW keeps two numbers per
# trainable parameter), the held-out memo loss, the time, and the canary's exposure (lab
# 08's measure: the rank of the true code among random codes, in bits).

# %%
from course_utils import lora

groups = {}  # copies of a memo (same normal form) stay on one side, as in lab 08
for memo in all_memos:
    groups.setdefault(memos.normalise(memo), []).append(memo)
keys = list(groups)
cut = int(0.85 * len(keys))
train_memos = [memo for key in keys[:cut] for memo in groups[key]]
held_out_memos = [memo for key in keys[cut:] for memo in groups[key]]
CANARY_COPIES = 16
private_train = memos.plant_canaries(train_memos, {memos.CANARY: CANARY_COPIES}, seed=1)
private_ids, memo_val_ids = encode("".join(private_train)), encode("".join(held_out_memos))
memo_val = fixed_batches(memo_val_ids)
CANDIDATES = memos.random_codes(cfg.n_candidates, seed=7, exclude=["493-27-1854"])


@torch.no_grad()
def canary_exposure(model):
    """Exposure in bits of the canary's code among the random candidates (lab 08)."""
    model.eval()
    codes = ["493-27-1854"] + CANDIDATES
    ids = torch.stack([encode(memos.CANARY_PREFIX + c) for c in codes]).to(device)
    logp = torch.log_softmax(model(ids[:, :-1]), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
    scores = logp[:, len(memos.CANARY_PREFIX) - 1 :].sum(-1)
    rank = 1 + int((scores[1:] > scores[0]).sum())
    return math.log2(len(codes)) - math.log2(rank)


def optimizer_bytes(optimizer):
    return sum(t.numel() * t.element_size() for s in optimizer.state.values()
               for t in s.values() if torch.is_tensor(t) and t.dim() > 0)  # fmt: skip


def fine_tune(model, label):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    history = train(model, random_batches(private_ids, 2), lm_loss, steps=cfg.finetune_steps,
                    optimizer=optimizer, progress=False, seed=0)  # fmt: skip
    return dict(
        label=label, trainable=sum(p.numel() for p in params), opt_bytes=optimizer_bytes(optimizer),
        loss=evaluate_loss(model, memo_val, lm_loss, cfg.eval_batches), seconds=history.seconds,
        exposure=canary_exposure(model),
    )  # fmt: skip


TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "gate_proj", "up_proj", "down_proj")
pretrained = models[LLAMA, 0]
before = evaluate_loss(pretrained, memo_val, lm_loss, cfg.eval_batches)
print(f"pretrained Llama-style model: held-out memo loss {before:.3f}, canary exposure "
      f"{canary_exposure(pretrained):.1f} bits (maximum {math.log2(len(CANDIDATES) + 1):.1f})")  # fmt: skip
full = fine_tune(copy.deepcopy(pretrained), "full fine-tuning")
adapted = copy.deepcopy(pretrained)
lora.add_lora(adapted, r=cfg.lora_rank, alpha=2 * cfg.lora_rank, target_modules=TARGETS)
low_rank = fine_tune(adapted, f"LoRA, rank {cfg.lora_rank}")
total = count_parameters(pretrained)
for r in (full, low_rank):
    print(f"{r['label']:<18} trains {r['trainable']:>7,} parameters ({r['trainable'] / total:.1%}), "
          f"optimizer state {r['opt_bytes'] / 1024:,.0f} KiB, held-out memo loss {r['loss']:.3f}, "
          f"{r['seconds']:.1f} s, canary exposure {r['exposure']:.1f} bits")  # fmt: skip

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
labels = [full["label"], low_rank["label"]]
for ax, key, title in zip(
    axes, ("trainable", "loss", "exposure"),
    ("trainable parameters", "held-out memo loss", f"canary exposure (bits, {CANARY_COPIES} copies)"),
):  # fmt: skip
    plot_bar({label: r[key] for label, r in zip(labels, (full, low_rank))}, ax=ax, title=title)
fig.tight_layout()
plt.show()
print(f"LoRA trains {full['trainable'] / low_rank['trainable']:.0f}x fewer parameters and keeps "
      f"{full['opt_bytes'] / max(low_rank['opt_bytes'], 1):.0f}x less optimizer state; its held-out "
      f"loss is {low_rank['loss'] - full['loss']:+.3f} nats from full fine-tuning's, its canary "
      f"exposure {low_rank['exposure'] - full['exposure']:+.1f} bits")  # fmt: skip

# %% [markdown]
# The savings in trainable parameters and optimizer memory are exact: they are why a
# 7-billion-parameter model can be fine-tuned on one consumer GPU (with the frozen weights
# in 4 bits, QLoRA). Time is another matter at this size: a LoRA step still runs the whole
# model forward and backward, plus the adapters' small products, so it need not be faster
# here (compare the two times printed above); on a large model the weight gradients and
# optimizer updates it saves weigh more.
#
# The loss and the exposure are what this run measured (the last line gives both
# differences). A low-rank update cannot move the model as far as full fine-tuning in the
# same number of steps: it usually learns the memos less well, and memorises the canary
# less. But less is not nothing: an adapter trained on private data can still leak it, and
# the exposure measurement, not the method's name, is what tells you. Lab 08's
# deduplication helps LoRA exactly as it helps full fine-tuning.
#
# ## What's next
#
# You have the parts of a 2024 decoder, proven equal to Hugging Face's Llama, and the
# cheapest way to adapt one. The same loaders (`DecoderModel.from_llama`) read a real
# Llama-architecture checkpoint (TinyLlama, SmolLM, Qwen 2's are close cousins) when you
# are online, and `course_utils.lora` fine-tunes it on your own text.
