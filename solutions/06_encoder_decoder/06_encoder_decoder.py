# %% [markdown]
# # Lab 06: The encoder-decoder (Type A): translation with cross-attention
#
# Lab 04 built an **encoder** that reads a whole text at once, and lab 05 a **decoder** that
# writes one token after another. The original Transformer of 2017, and today's T5 and BART,
# join the two: the encoder reads the input and leaves **notes** (one vector per input
# token), and the decoder writes the output while reading those notes through
# **cross-attention**. Think of a studious note-taker: first read the whole page and take
# notes, then write the answer, glancing back at the notes for each word.
#
# The task is a small translation problem with real reordering: dates as people write them,
# in many formats and three languages, to ISO dates.
#
# ```text
#   "Thursday, 26 November 2026"   ->  2026-11-26
#   "11/26/26"                     ->  2026-11-26
#   "26 novembre 2026"             ->  2026-11-26
# ```
#
# You will build, each checked against PyTorch and against the course's model:
#
# 1. **cross-attention**: queries from the decoder, keys and values from the encoder;
# 2. a **decoder block** with self-attention, cross-attention and a feed-forward network
#    (checked against `nn.TransformerDecoderLayer`);
# 3. **teacher forcing**: the shifted inputs and targets the decoder trains on;
# 4. **greedy decoding**, for a whole batch, stopping each sequence at its end;
# 5. **beam search**, with length normalisation.
#
# Then you train a small encoder-decoder, measure exact match on dates written in formats
# and years it never saw, compare greedy and beam decoding, look at the errors that remain,
# and watch the decoder read the encoder's notes in a heat map. At the end, the proof that
# this model is exactly BART's architecture.

# %% [markdown]
# ## 0. Set-up
#
# Imports, a fixed seed, and the settings of the current profile (tiny when grading, small
# on a laptop, bigger on a GPU). Only the training of section 6 and the evaluations after it
# use them.

# %%
import datetime
import math
import time
from collections import Counter

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.patches import Patch
from torch import nn

import course_utils
from course_utils.layers import FeedForward, MultiHeadAttention, merge_heads, split_heads
from course_utils.models import EncoderDecoderModel, ModelConfig
from course_utils.plots import plot_bar, plot_curves, plot_heatmap
from course_utils.tasks import dates
from course_utils.training import evaluate_loss, train, warmup_cosine

course_utils.seed_everything(0)
cfg = course_utils.settings(
    smoke=dict(
        d_model=32, n_heads=2, n_layers=1, steps=30, batch_size=32, lr=3e-3, warmup=5,
        eval_every=15, n_valid=64, n_test=60, n_beam=12, beam_size=3,
    ),
    cpu=dict(
        d_model=64, n_heads=4, n_layers=2, steps=600, batch_size=64, lr=1.5e-3, warmup=60,
        eval_every=150, n_valid=256, n_test=1000, n_beam=150, beam_size=4,
    ),
    gpu=dict(
        d_model=128, n_heads=4, n_layers=3, steps=3000, batch_size=128, lr=1e-3, warmup=200,
        eval_every=300, n_valid=512, n_test=2000, n_beam=300, beam_size=4,
    ),
)  # fmt: skip
device = course_utils.pick_device()
print(f"profile {cfg.profile!r} on {device}")

# %% [markdown]
# ## 1. The task: dates in many formats, to ISO
#
# `course_utils.tasks.dates` writes random dates between 1950 and 2049 in 14 formats. Each
# format says how to read its numbers, and the rules are part of the task:
#
# - with **slashes**, the month comes first, as in the USA: `3/6/2026` is 6 March;
# - with **dots**, the day comes first, as in Germany: `6.3.2026` is 6 March;
# - a **two-digit year** `YY` means 19YY from 50 to 99 and 20YY from 00 to 49.
#
# The target is always the ISO form `YYYY-MM-DD`. Getting there takes real reordering: the
# year moves from the end to the front, and the month, wherever it is, becomes a number.
#
# **What is held out.** The test set measures generalisation, not memory. Training never
# contains:
#
# - **ten years**, 1957, 1964, 1971, 1988, 1993, 2006, 2019, 2026, 2032 and 2045. Every
#   digit still appears in every place of the training years, so the model can learn to
#   *copy* a year's digits; it cannot have memorised these years;
# - **three formats**, each a new combination of two things the training formats show
#   separately: `Thursday, 26 Nov. 2026` (the weekday of `Thursday, 26 November 2026` with
#   the abbreviated month of `26 Nov. 2026`), `the 26th of Nov. 2026` (the ordinal of `the
#   26th of November 2026`, abbreviated), and `Thursday, November 26, 2026` (the weekday
#   with the month-first order of `November 26, 2026`).
#
# Every test example has a held-out year or a held-out format: half are written in a
# held-out format (any year), half in a training format with a held-out year.

# %%
vocab = dates.DateVocab()
PAD, BOS, EOS = vocab.pad_id, vocab.bos_id, vocab.eos_id
print(f"{'format':22} {'order':5} {'language':8} {'split':9} 26 November 2026 written so")
for fmt in dates.FORMATS.values():
    split = "held out" if fmt.held_out else "train"
    print(f"{fmt.name:22} {fmt.order:5} {fmt.language:8} {split:9} {fmt.example}")

train_examples = dates.make_examples("train", cfg.steps * cfg.batch_size)
valid_examples = dates.make_examples("valid", cfg.n_valid)
test_examples = dates.make_examples("test", cfg.n_test)
print(f"\n{len(train_examples):,} training pairs (a new batch every step), for example:")
for example in train_examples[:4]:
    print(f"  {example.source!r:32} -> {example.target}")
print("and test pairs:")
for example in test_examples[:4]:
    print(f"  {example.source!r:32} -> {example.target}   ({example.format})")
train_years = {e.date.year for e in train_examples}
print("held-out years in training:", sorted(train_years & set(dates.HELD_OUT_YEARS)))

# %% [markdown]
# **Tokens are characters.** The vocabulary has every character any format writes, plus four
# special tokens: `<pad>` (0) fills short rows, `<bos>` (1) starts every output, `<eos>` (2)
# ends it, and `<unk>` (3) stands for a character no format writes. Sources and targets
# share one vocabulary, as in BART.
#
# **Sources are padded on the left**, to 32 characters: every source then *ends* at the
# same position, and since every format writes the year last, the year always sits in the
# last two or four places. With learned position embeddings, as here, that makes the year
# easy to find; padded on the right, the year would move with the length of the month's
# name, and a small model trained for two minutes copies years it has never seen far less
# reliably. The padding mask tells the encoder and cross-attention to ignore the filler.

# %%
src_ids, src_pad = vocab.batch(
    [e.source for e in test_examples[:3]], width=dates.SOURCE_LEN, pad_side="left"
)
print("vocabulary:", vocab.vocab_size, "tokens;", "".join(vocab.itos[4:]))
print("source ids (B, T) =", tuple(src_ids.shape))
print(src_ids[:, -16:])
print("padding mask (True = padding), last 16 columns:")
print(src_pad[:, -16:].int())

# %% [markdown]
# ## 2. Why a separate encoder and decoder?
#
# A decoder-only model (lab 05) could do this task too: feed it
# `"26 novembre 2026 => 2026-11-26"` and train it to continue after `=>`. The
# encoder-decoder splits the job in two, and each half gets what it needs:
#
# - the **encoder** reads the source **bidirectionally**: every character sees every other
#   one, so the `2` of `26` can know it belongs to the day before any output is written;
# - the **decoder** writes the output **causally**, one token at a time, each token seeing
#   only the tokens before it (it must, since at inference time the later ones do not exist
#   yet);
# - **cross-attention** joins them: in every decoder block, each output position asks a
#   question (a query) and the encoder's notes answer (keys and values). The source is
#   encoded **once**, however long the output.
#
# ```text
#        source  "26 novembre 2026"                target so far  <bos> 2 0 2 6 -
#                      |                                      |
#           +----------v----------+                +----------v-----------+
#           |  encoder block x N  |                |   decoder block x N  |
#           |  self-attention:    |                |   causal self-attn   |
#           |  all see all        |   memory       |   cross-attention <--+-- keys, values
#           |  feed-forward       |--------------->|     queries here     |   from memory
#           +---------------------+  (B, Ts, C)    |   feed-forward       |
#                                                  +----------+-----------+
#                                                             v
#                                                  next characters  2 0 2 6 - 1
# ```
#
# The price is more parts (two stacks, a third kind of attention) and a strict split of
# every example into an input and an output. Lab 07 weighs that price.

# %% [markdown]
# ## 3. Exercise: cross-attention
#
# Cross-attention is the multi-head attention of lab 02 with one change: the queries come
# from one sequence and the keys and values from another.
#
# - **queries** $Q = x W_q$ from the decoder's states `x` (B, Tq, C);
# - **keys** $K = m W_k$ and **values** $V = m W_v$ from the encoder's output, the
#   **memory** `m` (B, Tk, C);
# - then, per head, $\mathrm{softmax}(Q K^\top / \sqrt{D})\,V$, heads merged, and the output
#   projection $W_o$.
#
# Two things differ from the decoder's self-attention, and both are classic bugs:
#
# - there is **no causal mask**. The whole source exists before the first output token is
#   written; the output's first character (the year's `2`) must be free to look at the end
#   of the source. The score matrix is (Tq, Tk), not even square;
# - the **source's padding** must be masked: a padded key gets score $-\infty$, so weight 0.
#   `memory_padding_mask` is (B, Tk) with True = padding (PyTorch's convention, the same
#   as `key_padding_mask` in `course_utils.layers`).
#
# Write `forward` below. The four projections are made for you. `split_heads` and
# `merge_heads` from lab 02 are imported: (B, T, C) <-> (B, H, T, D). Return the weights
# too, (B, H, Tq, Tk): section 9 draws them.
#
# <details><summary>Hint</summary>
#
# ```python
# q = split_heads(self.q_proj(x), self.n_heads)        # (B, H, Tq, D)
# k = split_heads(self.k_proj(memory), self.n_heads)   # (B, H, Tk, D)
# scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
# ```
# then, if there is a mask, `scores.masked_fill(memory_padding_mask[:, None, None, :],
# float("-inf"))`, a softmax over the last axis, `weights @ v`, `merge_heads`, `out_proj`.
# </details>


# %% exercise="cross_attention"
class CrossAttention(nn.Module):
    """Multi-head cross-attention: queries from the decoder, keys and values from the memory.

    Weights: q_proj, k_proj, v_proj, out_proj, each nn.Linear(d_model, d_model).
    """

    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x, memory, memory_padding_mask=None):
        """x (B, Tq, C): decoder states; memory (B, Tk, C): the encoder's output;
        memory_padding_mask: (B, Tk) bool, True = padding, or None.
        Returns (out (B, Tq, C), weights (B, H, Tq, Tk)); no causal mask.
        """
        ### BEGIN SOLUTION
        q = split_heads(self.q_proj(x), self.n_heads)  # (B, H, Tq, D)
        k = split_heads(self.k_proj(memory), self.n_heads)  # (B, H, Tk, D)
        v = split_heads(self.v_proj(memory), self.n_heads)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, Tq, Tk)
        if memory_padding_mask is not None:
            scores = scores.masked_fill(memory_padding_mask[:, None, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return self.out_proj(merge_heads(weights @ v)), weights
        ### END SOLUTION


# %% [markdown]
# The test copies the weights of PyTorch's `nn.MultiheadAttention` into your layer (its
# `in_proj_weight` stacks $W_q$, $W_k$, $W_v$) and calls PyTorch's with `query=x,
# key=value=memory`. Tolerance `rtol=1e-5, atol=1e-6`: the same float32 sums in another
# order; the mistakes it looks for move outputs by $10^{-2}$ or more.

# %% test="cross_attention" points=3 hint="Queries from x, keys and values from memory; no causal mask; masked_fill padded keys with -inf before the softmax (memory_padding_mask[:, None, None, :])." nudge="Cross-attention lets the decoder look at the encoder's output; padded source positions must get no attention."
import torch
from torch import nn

from course_utils.checks import check_tensor

TOL = dict(rtol=1e-5, atol=1e-6)  # float32 sums in another order


def copy_from_torch(ours, mha):
    """Copy nn.MultiheadAttention's weights into a layer with q/k/v/out_proj."""
    with torch.no_grad():
        for proj, w, b in zip(
            (ours.q_proj, ours.k_proj, ours.v_proj),
            mha.in_proj_weight.chunk(3),
            mha.in_proj_bias.chunk(3),
        ):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        ours.out_proj.weight.copy_(mha.out_proj.weight)
        ours.out_proj.bias.copy_(mha.out_proj.bias)


gen = torch.Generator().manual_seed(0)
torch.manual_seed(0)
mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()
layer = CrossAttention(16, 4)
copy_from_torch(layer, mha)
x = torch.randn(3, 5, 16, generator=gen)  # 5 decoder positions
memory = torch.randn(3, 7, 16, generator=gen)  # 7 source positions
pad = torch.zeros(3, 7, dtype=torch.bool)
pad[1, 5:] = True  # source 1 has 5 real tokens, source 2 has 3
pad[2, 3:] = True
with torch.no_grad():  # the reference first; the layer gets copies
    expected, expected_w = mha(
        x, memory, memory, key_padding_mask=pad, need_weights=True, average_attn_weights=False
    )
out, weights = layer(x.clone(), memory.clone(), pad.clone())
check_tensor(out, expected, name="CrossAttention(x (3, 5, 16), memory (3, 7, 16), padding)", **TOL)
check_tensor(weights, expected_w, name="its weights (B, H, Tq, Tk)", **TOL)
print("✓ cross_attention: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator, hidden_seed
from course_utils.layers import MultiHeadAttention

gen = hidden_generator("test_cross_attention", gen)  # the course's secret, if any
# No mask at all, and a square case (Tq == Tk), where a causal mask would change the output.
for b, t_q, t_k, c, h in [(2, 6, 6, 16, 4), (2, 4, 9, 12, 3), (1, 1, 5, 8, 1), (2, 3, 1, 8, 2)]:
    torch.manual_seed(b * 100 + t_q)
    mha = nn.MultiheadAttention(c, h, batch_first=True).eval()
    layer = CrossAttention(c, h)
    copy_from_torch(layer, mha)
    x = torch.randn(b, t_q, c, generator=gen)
    memory = torch.randn(b, t_k, c, generator=gen)
    with torch.no_grad():
        expected, expected_w = mha(x, memory, memory, need_weights=True, average_attn_weights=False)
    out, weights = layer(x.clone(), memory.clone())
    name = f"CrossAttention with x {tuple(x.shape)}, memory {tuple(memory.shape)}, {h} heads"
    check_tensor(
        out,
        expected,
        name=name,
        hint="Every decoder position may look at every source position: no causal mask in "
        "cross-attention; keys and values come from memory, queries from x.",
        **TOL,
    )
    check_tensor(weights, expected_w, name=name + ": weights", **TOL)

# Padding: padded keys get weight 0, and what is written there changes nothing.
torch.manual_seed(hidden_seed("test_cross_attention", 7))
mha = nn.MultiheadAttention(16, 2, batch_first=True).eval()
layer = CrossAttention(16, 2)
copy_from_torch(layer, mha)
x = torch.randn(2, 4, 16, generator=gen)
memory = torch.randn(2, 6, 16, generator=gen)
pad = torch.tensor([[True, True, False, False, False, False], [False] * 5 + [True]])
out, weights = layer(x.clone(), memory.clone(), pad.clone())
check_tensor(
    weights[0, :, :, :2],
    torch.zeros(2, 4, 2),
    name="cross-attention weights on padded source positions",
    hint="Mask the padded keys: scores.masked_fill(memory_padding_mask[:, None, None, :], "
    "float('-inf')) before the softmax.",
    **TOL,
)
changed = memory.clone()
changed[pad] = 100.0
out_changed, _ = layer(x.clone(), changed, pad.clone())
check_tensor(
    out_changed,
    out,
    name="CrossAttention output when only padded source positions change",
    hint="Padded source positions must not influence the output: mask them.",
    **TOL,
)

# The course's cross-attention (course_utils.layers.MultiHeadAttention with context=).
torch.manual_seed(hidden_seed("test_cross_attention", 3))
course = MultiHeadAttention(16, 4).eval()
layer = CrossAttention(16, 4)
with torch.no_grad():
    for proj, w, bias in zip(
        (layer.q_proj, layer.k_proj, layer.v_proj),
        course.in_proj.weight.chunk(3),
        course.in_proj.bias.chunk(3),
    ):
        proj.weight.copy_(w)
        proj.bias.copy_(bias)
    layer.out_proj.weight.copy_(course.out_proj.weight)
    layer.out_proj.bias.copy_(course.out_proj.bias)
x = torch.randn(2, 3, 16, generator=gen)
memory = torch.randn(2, 8, 16, generator=gen)
pad = torch.zeros(2, 8, dtype=torch.bool)
pad[0, :4] = True  # padded on the left, as this lab's sources
with torch.no_grad():  # the reference first; the layer gets copies
    expected = course(x, memory, key_padding_mask=pad)[0]
out, _ = layer(x.clone(), memory.clone(), pad.clone())
check_tensor(out, expected, name="CrossAttention against course_utils.layers", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Exercise: the decoder block
#
# A decoder block has three sub-layers, each with a residual connection and, in the
# pre-norm order of lab 03, a LayerNorm before it:
#
# $$x \leftarrow x + \mathrm{SelfAttn}_{causal}(\mathrm{LN}_1(x)), \qquad
#   x \leftarrow x + \mathrm{CrossAttn}(\mathrm{LN}_2(x), \text{memory}), \qquad
#   x \leftarrow x + \mathrm{FFN}(\mathrm{LN}_3(x)).$$
#
# The self-attention is **causal**: output position $t$ sees positions $\le t$ only. The
# cross-attention sees the whole memory, except its padding. Write `forward`; the parts are
# made in `__init__`: `self_attn` is the course's `MultiHeadAttention` from lab 02 (call it
# as `self.self_attn(h, is_causal=True)`; it returns `(out, weights)`), `cross_attn` is your
# `CrossAttention`, and `ffn` is lab 03's feed-forward network.
#
# The test compares your block with PyTorch's `nn.TransformerDecoderLayer(...,
# norm_first=True)` holding the same weights, and with the decoder block of the course's
# model, `course_utils.layers.TransformerBlock(..., cross_attention=True)`.
#
# <details><summary>Hint</summary>
#
# ```python
# x = x + self.self_attn(self.norm1(x), is_causal=True)[0]
# ```
# then the same pattern with `self.cross_attn(self.norm2(x), memory, memory_padding_mask)[0]`
# and with `self.ffn(self.norm3(x))` (the FFN returns a tensor, not a pair).
# </details>


# %% exercise="decoder_block"
class DecoderBlock(nn.Module):
    """Pre-norm decoder block: causal self-attention, cross-attention, feed-forward."""

    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads)  # lab 02's, causal here
        self.cross_attn = CrossAttention(d_model, n_heads)  # yours
        self.ffn = FeedForward(d_model, d_ff)  # lab 03's: fc1, GELU, fc2
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(self, x, memory, memory_padding_mask=None):
        """x (B, T, C): the decoder's states; memory (B, Ts, C); memory_padding_mask (B, Ts)
        bool, True = padding, or None. Returns (B, T, C)."""
        ### BEGIN SOLUTION
        x = x + self.self_attn(self.norm1(x), is_causal=True)[0]
        x = x + self.cross_attn(self.norm2(x), memory, memory_padding_mask)[0]
        return x + self.ffn(self.norm3(x))
        ### END SOLUTION


# %% [markdown]
# PyTorch's layer takes its causal mask as a float matrix with $-\infty$ above the diagonal
# (`nn.Transformer.generate_square_subsequent_mask`). Same tolerance as before.

# %% test="decoder_block" points=3 hint="Three residual sub-layers, each x = x + f(norm(x)): self_attn(norm1(x), is_causal=True)[0], then cross_attn(norm2(x), memory, memory_padding_mask)[0], then ffn(norm3(x))." nudge="A decoder block has three sub-layers: masked self-attention, cross-attention to the encoder, and the feed-forward layer."
import torch
from torch import nn

from course_utils.checks import check_tensor

TOL = dict(rtol=1e-5, atol=1e-5)  # float32 sums in another order, through three sub-layers


def torch_decoder_layer(d_model, n_heads, d_ff, seed):
    torch.manual_seed(seed)
    layer = nn.TransformerDecoderLayer(
        d_model, n_heads, d_ff, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    ).eval()
    with torch.no_grad():  # biases start at 0 and norms at 1: perturb them, so all count
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return layer


def copy_decoder_layer(block, layer):
    with torch.no_grad():
        block.self_attn.load_from_torch(layer.self_attn)
        cross, mha = block.cross_attn, layer.multihead_attn
        for proj, w, b in zip(
            (cross.q_proj, cross.k_proj, cross.v_proj),
            mha.in_proj_weight.chunk(3),
            mha.in_proj_bias.chunk(3),
        ):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        cross.out_proj.weight.copy_(mha.out_proj.weight)
        cross.out_proj.bias.copy_(mha.out_proj.bias)
        for ours, theirs in [
            (block.ffn.fc1, layer.linear1),
            (block.ffn.fc2, layer.linear2),
            (block.norm1, layer.norm1),
            (block.norm2, layer.norm2),
            (block.norm3, layer.norm3),
        ]:
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)


def torch_decode(layer, x, memory, pad):
    causal = nn.Transformer.generate_square_subsequent_mask(x.size(1))
    with torch.no_grad():
        return layer(x, memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=pad)


gen = torch.Generator().manual_seed(1)
layer = torch_decoder_layer(16, 4, 32, seed=0)
block = DecoderBlock(16, 4, 32).eval()
copy_decoder_layer(block, layer)
x = torch.randn(2, 5, 16, generator=gen)
memory = torch.randn(2, 7, 16, generator=gen)
pad = torch.zeros(2, 7, dtype=torch.bool)
pad[1, :3] = True
expected = torch_decode(layer, x, memory, pad)  # the reference first; the block gets copies
out = block(x.clone(), memory.clone(), pad.clone())
check_tensor(out, expected, name="DecoderBlock(x (2, 5, 16))", **TOL)
print("✓ decoder_block: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator
from course_utils.layers import TransformerBlock

gen = hidden_generator("test_decoder_block", gen)  # the course's secret, if any
for b, t, t_s, c, h, f in [(1, 1, 4, 8, 2, 16), (3, 6, 6, 12, 3, 24), (2, 9, 3, 16, 1, 8)]:
    layer = torch_decoder_layer(c, h, f, seed=t)
    block = DecoderBlock(c, h, f).eval()
    copy_decoder_layer(block, layer)
    x = torch.randn(b, t, c, generator=gen)
    memory = torch.randn(b, t_s, c, generator=gen)
    expected = torch_decode(layer, x, memory, None)
    out = block(x.clone(), memory.clone())
    check_tensor(
        out,
        expected,
        name=f"DecoderBlock with x {tuple(x.shape)}, memory {tuple(memory.shape)}, no padding",
        hint="Pre-norm: x + f(norm(x)) for each of the three sub-layers, in the order "
        "self-attention (causal), cross-attention, feed-forward.",
        **TOL,
    )

# Causal: changing a later decoder position leaves the earlier outputs as they were.
layer = torch_decoder_layer(16, 4, 32, seed=5)
block = DecoderBlock(16, 4, 32).eval()
copy_decoder_layer(block, layer)
x = torch.randn(2, 6, 16, generator=gen)
memory = torch.randn(2, 4, 16, generator=gen)
later = x.clone()
later[:, 4:] = torch.randn(2, 2, 16, generator=gen)
check_tensor(
    block(later.clone(), memory.clone())[:, :4],
    block(x.clone(), memory.clone())[:, :4],
    name="DecoderBlock outputs 0..3 when only positions 4, 5 change",
    hint="The self-attention must be causal: self.self_attn(h, is_causal=True).",
    **TOL,
)
# Source padding reaches the cross-attention.
pad = torch.tensor([[False, False, True, True], [True, False, False, False]])
expected = torch_decode(layer, x, memory, pad)
out = block(x.clone(), memory.clone(), pad.clone())
check_tensor(
    out,
    expected,
    name="DecoderBlock with source padding",
    hint="Pass memory_padding_mask on to self.cross_attn.",
    **TOL,
)
# The course's decoder block, loaded from the same PyTorch layer.
course = TransformerBlock(16, 4, 32, cross_attention=True, norm_first=True).eval()
course.load_from_torch_layer(layer)
with torch.no_grad():
    expected = course(x, context=memory, is_causal=True, context_key_padding_mask=pad)
check_tensor(out, expected, name="DecoderBlock against course_utils.layers.TransformerBlock", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Exercise: teacher forcing
#
# How does a decoder learn to write? At training time the whole correct output is known, so
# instead of letting the model write (slowly, one token at a time, from its own possibly
# wrong guesses) we **feed it the correct output, shifted by one**, and ask it to predict
# every next token at once. This is **teacher forcing**:
#
# ```text
#   decoder input   <bos>  2    0    2    6    -    1    1    -    2    6
#   labels            2    0    2    6    -    1    1    -    2    6  <eos>
# ```
#
# Position $t$ of the input is the target's token $t - 1$ (and `<bos>` at $t = 0$); the
# label at $t$ is the target's token $t$, and the last label is `<eos>`, so that the model
# learns when to stop. The causal mask makes sure position $t$ cannot peek at its own label.
#
# In a batch, targets of different lengths are padded on the right: inputs with `pad_id`,
# labels with `ignore_index` (-100), the value `F.cross_entropy` skips, so that padding
# counts for nothing in the loss. (Dates all have 10 characters, so this lab's batches have
# no padding, but your function must handle it.)
#
# <details><summary>Hint</summary>
#
# With `L = max(len(t) for t in targets)`, start from `torch.full((B, L + 1), pad_id)` and
# `torch.full((B, L + 1), ignore_index)`, then fill row `i`: `inputs[i, :n + 1] =
# torch.tensor([bos_id] + t)` and `labels[i, :n + 1] = torch.tensor(t + [eos_id])`, with
# `n = len(t)`.
# </details>


# %% exercise="teacher_forcing"
def teacher_forcing_batch(targets, *, bos_id, eos_id, pad_id, ignore_index=-100):
    """targets: a list of B lists of token ids (no bos, no eos), of any lengths.

    Returns (inputs, labels), both long tensors (B, L + 1) with L the longest target:
      inputs[i] = [bos_id] + targets[i], then pad_id;
      labels[i] = targets[i] + [eos_id], then ignore_index.
    """
    ### BEGIN SOLUTION
    width = max(len(t) for t in targets) + 1
    inputs = torch.full((len(targets), width), pad_id, dtype=torch.long)
    labels = torch.full((len(targets), width), ignore_index, dtype=torch.long)
    for i, target in enumerate(targets):
        n = len(target)
        inputs[i, : n + 1] = torch.tensor([bos_id, *target], dtype=torch.long)
        labels[i, : n + 1] = torch.tensor([*target, eos_id], dtype=torch.long)
    return inputs, labels
    ### END SOLUTION


# %% test="teacher_forcing" points=2 hint="inputs = [bos] + target, padded with pad_id; labels = target + [eos], padded with ignore_index (-100); both (B, longest + 1), dtype long." nudge="Teacher forcing feeds the decoder the right answer shifted by one: inputs start with a start token, labels end with an end token."
import torch

from course_utils.checks import check_tensor

inputs, labels = teacher_forcing_batch([[5, 6, 7], [8]], bos_id=1, eos_id=2, pad_id=0)
check_tensor(
    inputs,
    torch.tensor([[1, 5, 6, 7], [1, 8, 0, 0]]),
    name="teacher_forcing_batch([[5, 6, 7], [8]]): inputs",
)
check_tensor(
    labels,
    torch.tensor([[5, 6, 7, 2], [8, 2, -100, -100]]),
    name="teacher_forcing_batch([[5, 6, 7], [8]]): labels",
)
print("✓ teacher_forcing: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import check_equal, hidden_generator

# Other special ids (not hard-coded), another ignore_index, a batch of one.
inputs, labels = teacher_forcing_batch([[10, 11]], bos_id=7, eos_id=9, pad_id=4, ignore_index=-1)
check_tensor(inputs, torch.tensor([[7, 10, 11]]), name="inputs with bos_id=7, one target")
check_tensor(labels, torch.tensor([[10, 11, 9]]), name="labels with eos_id=9, one target")
# An empty target: the decoder must learn to stop at once.
inputs, labels = teacher_forcing_batch([[], [3, 3]], bos_id=1, eos_id=2, pad_id=0)
check_tensor(inputs, torch.tensor([[1, 0, 0], [1, 3, 3]]), name="inputs with an empty target")
check_tensor(
    labels,
    torch.tensor([[2, -100, -100], [3, 3, 2]]),
    name="labels with an empty target",
    hint="Padding in the labels is ignore_index (-100), never pad_id: the loss must skip it.",
)
# The shift on random lengths: inputs[:, 1:] and labels[:, :-1] agree where real.
gen = hidden_generator("test_teacher_forcing", 0)
targets = [
    torch.randint(4, 30, (int(n),), generator=gen).tolist()
    for n in torch.randint(0, 12, (8,), generator=gen)
]
copies = [list(t) for t in targets]
inputs, labels = teacher_forcing_batch(targets, bos_id=1, eos_id=2, pad_id=0)
width = max(len(t) for t in copies) + 1
expected_in = torch.zeros(8, width, dtype=torch.long)
expected_lab = torch.full((8, width), -100, dtype=torch.long)
for i, t in enumerate(copies):
    expected_in[i, : len(t) + 1] = torch.tensor([1, *t])
    expected_lab[i, : len(t) + 1] = torch.tensor([*t, 2])
check_tensor(inputs, expected_in, name="inputs for 8 random targets")
check_tensor(labels, expected_lab, name="labels for 8 random targets")
check_equal(targets, copies, name="the targets after teacher_forcing_batch (unchanged)")
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Training
#
# The model is the course's `EncoderDecoderModel`: an encoder and a decoder of
# `TransformerBlock`s (the decoder's blocks are the same as yours), pre-norm, learned
# positions, one embedding table shared by the encoder, the decoder and the output layer.
# A batch is 64 fresh training pairs, turned into ids by your `teacher_forcing_batch`; the
# loss is the cross-entropy of every next character. Every few hundred steps it also
# decodes the validation pairs greedily and records **exact match**, the share of dates
# with every character right (a date with one wrong digit is simply wrong).

# %%
model_cfg = ModelConfig(
    vocab_size=vocab.vocab_size,
    d_model=cfg.d_model,
    n_heads=cfg.n_heads,
    n_layers=cfg.n_layers,
    max_len=dates.SOURCE_LEN,
    pad_id=PAD,
    bos_id=BOS,
    eos_id=EOS,
)
model = EncoderDecoderModel(model_cfg).to(device)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters")


def sources(examples):
    """Source ids (B, 32), left-padded, and their padding mask (True = padding)."""
    return vocab.batch([e.source for e in examples], width=dates.SOURCE_LEN, pad_side="left")


def make_batch(examples):
    src, src_pad = sources(examples)
    inputs, labels = teacher_forcing_batch(
        [vocab.encode(e.target) for e in examples], bos_id=BOS, eos_id=EOS, pad_id=PAD
    )
    return src, src_pad, inputs, labels


def loss_fn(model, batch):
    src, src_pad, inputs, labels = batch
    logits = model(src, inputs, src_padding_mask=src_pad)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


def exact_match_of(model, examples, batch_size=500):
    """Greedy decoding with the course's model.greedy_decode, scored by exact match."""
    predictions = []
    for i in range(0, len(examples), batch_size):
        src, src_pad = sources(examples[i : i + batch_size])
        out = model.greedy_decode(
            src.to(device), src_padding_mask=src_pad.to(device), max_new_tokens=11
        )
        predictions += [vocab.decode(row[1:]) for row in out.cpu()]
    return dates.exact_match(predictions, [e.target for e in examples])


# %%
if course_utils.ready("teacher_forcing_batch"):
    valid_batch = make_batch(valid_examples)
    match_valid = []  # exact match at each evaluation

    def evaluate(model):
        match_valid.append(exact_match_of(model, valid_examples))
        return evaluate_loss(model, lambda i: valid_batch, loss_fn, 1)

    start = time.perf_counter()
    history = train(
        model,
        lambda step: make_batch(
            train_examples[(step - 1) * cfg.batch_size : step * cfg.batch_size]
        ),
        loss_fn,
        steps=cfg.steps,
        lr=cfg.lr,
        scheduler=warmup_cosine(cfg.steps, cfg.warmup),
        eval_every=cfg.eval_every,
        eval_fn=evaluate,
        device=device,
        live_plot=True,
        seed=0,
    )
    train_seconds = time.perf_counter() - start
    match_steps = history.eval_steps
    print(
        f"trained {cfg.steps} steps in {train_seconds:.0f} s; validation exact match "
        f"{match_valid[-1]:.1%}; {history.tokens_per_second:,.0f} source tokens/s"
    )

# %%
if course_utils.ready("teacher_forcing_batch"):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
    history.plot(ax=ax1, title="cross-entropy per character", log_y=True)
    plot_curves(
        {"validation": (match_steps, match_valid)},
        ax=ax2,
        xlabel="step",
        ylabel="exact match",
        title="dates entirely right (greedy)",
    )
    ax2.set_ylim(0, 1.02)
    plt.show()
    print(
        f"exact match at the first evaluation (step {match_steps[0]}): {match_valid[0]:.0%}; "
        f"at the last (step {match_steps[-1]}): {match_valid[-1]:.0%}"
    )

# %% [markdown]
# Exact match is a harsh score: a date is right only when all ten characters are, so it is
# roughly the per-character accuracy to the tenth power (0.9 per character gives about
# 0.35, 0.99 gives 0.90). It lags the loss and climbs steeply once the characters are
# nearly all right; with an evaluation only every few hundred steps, the first point may
# already sit high on that climb, as the line below says for this run.
#
# ## 7. Exercise: greedy decoding
#
# At inference time there is no correct output to feed. The decoder writes: start from
# `<bos>`, predict the next token, append the most likely one, and repeat, feeding its own
# output back in. The encoder runs **once**; only the decoder runs at every step.
#
# Do it for a whole batch at once, with two rules about stopping:
#
# - a sequence that has produced `<eos>` is finished: from then on it gets `pad_id`,
#   whatever the model says (sequences in a batch finish at different times);
# - stop as soon as **every** sequence has finished, or after `max_new_tokens` tokens.
#
# Use `model.encode(src_ids, src_padding_mask=...)` once, and `model.decode(tokens, memory,
# src_padding_mask=...)`, which returns logits (B, T, V) for all T positions so far; the
# next token comes from the last one. (The course's `model.greedy_decode` does the same,
# with a cache that saves recomputing the earlier positions. Section 9 runs your function
# under `torch.no_grad()`: decoding needs no gradients.)
#
# <details><summary>Hint</summary>
#
# Keep `out` (B, 1) full of `bos_id` and `done` (B,) all False. In the loop: `next_id =
# logits[:, -1].argmax(-1)`, then `next_id.masked_fill(done, pad_id)`, append with
# `torch.cat([out, next_id[:, None]], dim=1)`, update `done |= next_id == eos_id`, and
# `break` when `done.all()`.
# </details>


# %% exercise="greedy"
def greedy_decode(model, src_ids, src_padding_mask=None, *, max_new_tokens, bos_id, eos_id, pad_id):
    """src_ids (B, Ts), src_padding_mask (B, Ts) bool or None.

    Returns a long tensor (B, 1 + n), n <= max_new_tokens: bos_id, then the most likely next
    token at each step; pad_id after a sequence's eos_id. Stops when all have produced
    eos_id, or after max_new_tokens steps.
    """
    ### BEGIN SOLUTION
    memory = model.encode(src_ids, src_padding_mask=src_padding_mask)
    b = src_ids.size(0)
    out = torch.full((b, 1), bos_id, dtype=torch.long, device=src_ids.device)
    done = torch.zeros(b, dtype=torch.bool, device=src_ids.device)
    for _ in range(max_new_tokens):
        logits = model.decode(out, memory, src_padding_mask=src_padding_mask)
        next_id = logits[:, -1].argmax(dim=-1).masked_fill(done, pad_id)
        out = torch.cat([out, next_id[:, None]], dim=1)
        done = done | (next_id == eos_id)
        if bool(done.all()):
            break
    return out
    ### END SOLUTION


# %% [markdown]
# The tests use small **scripted** models, written in the test cell: each says a fixed
# sequence of tokens for each source, so that the right output is known exactly; and a
# random `EncoderDecoderModel`, against the course's `greedy_decode`. Token ids are
# integers: no tolerance. The visible test also counts the scripted model's calls: one
# encoder call, and no decoder call after every sequence has finished. The grader also
# checks outputs that never reach `<eos>`, `<eos>` first, three sources finishing at
# different steps, and a random model with source padding.

# %% test="greedy" points=3 hint="Encode once; each step decode all tokens so far, take logits[:, -1].argmax(-1), put pad_id where a sequence is done, append; stop when every sequence has produced eos." nudge="Greedy decoding picks the most likely next token at each step, and a finished sequence must stay finished."
import torch
from torch import nn

from course_utils.checks import check_equal, check_tensor


class Scripted(nn.Module):
    """Says scripts[s][t] at step t for source id s (the first source token), whatever came
    before; tokens after the script's end: filler. Counts its encode and decode calls."""

    def __init__(self, scripts, vocab_size=12, filler=11):
        super().__init__()
        self.scripts, self.vocab_size, self.filler = scripts, vocab_size, filler
        self.encodes = self.decodes = 0

    def encode(self, src_ids, src_padding_mask=None):
        self.encodes += 1
        return src_ids[:, :, None].float().repeat(1, 1, 4)  # memory (B, Ts, 4)

    def decode(self, tgt_ids, memory, src_padding_mask=None):
        self.decodes += 1
        b, t = tgt_ids.shape
        logits = torch.zeros(b, t, self.vocab_size)
        for i in range(b):
            script = self.scripts[int(memory[i, 0, 0])]
            for j in range(t):
                logits[i, j, script[j] if j < len(script) else self.filler] = 5.0
        return logits


# Source 0 ends after 2 tokens, source 1 after 4, then both would go on saying 11.
scripted = Scripted({0: [5, 2], 1: [6, 7, 8, 2]})
src = torch.tensor([[0, 9], [1, 9]])
expected = torch.tensor([[1, 5, 2, 0, 0], [1, 6, 7, 8, 2]])
out = greedy_decode(scripted, src.clone(), None, max_new_tokens=8, bos_id=1, eos_id=2, pad_id=0)
check_tensor(
    out[1, :5],
    expected[1],
    name="greedy_decode: the first 5 tokens of the source whose script is 6 7 8 eos",
    hint="Each step's token comes from the logits of the LAST position, logits[:, -1]: "
    "the prediction for the token after the ones written so far.",
)
check_tensor(
    out,
    expected,
    name="greedy_decode of two scripted sources (eos after 2 and after 4 tokens)",
    hint="Once a sequence has produced eos, give it pad_id at every later step, and stop "
    "when every sequence has produced eos.",
)
check_equal(
    scripted.decodes,
    4,
    name="decoder calls for outputs of 2 and 4 tokens",
    hint="Stop the loop as soon as every sequence has produced eos (done.all()).",
)
check_equal(
    scripted.encodes,
    1,
    name="encoder calls for one batch",
    hint="Encode the source once, before the loop; only the decoder runs at every step.",
)
print("✓ greedy: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.models import EncoderDecoderModel, ModelConfig

# Never produces eos: exactly max_new_tokens tokens.
scripted = Scripted({0: [5, 6, 7], 1: [8]})
out = greedy_decode(scripted, src, None, max_new_tokens=3, bos_id=1, eos_id=2, pad_id=0)
check_tensor(
    out,
    torch.tensor([[1, 5, 6, 7], [1, 8, 11, 11]]),
    name="greedy_decode without eos, max_new_tokens=3",
)
# eos first, other ids, a batch of one.
scripted = Scripted({3: [4, 6, 6]})
out = greedy_decode(
    scripted, torch.tensor([[3]]), None, max_new_tokens=5, bos_id=7, eos_id=4, pad_id=9
)
check_tensor(out, torch.tensor([[7, 4]]), name="greedy_decode when eos comes first (eos_id=4)")
# After eos a sequence gets pad_id, even while the model goes on.
scripted = Scripted({0: [2, 5, 5, 5], 1: [5, 5, 5, 2], 2: [5, 2]})
out = greedy_decode(
    scripted, torch.tensor([[0], [1], [2]]), None, max_new_tokens=9, bos_id=1, eos_id=2, pad_id=0
)
check_tensor(
    out,
    torch.tensor([[1, 2, 0, 0, 0], [1, 5, 5, 5, 2], [1, 5, 2, 0, 0]]),
    name="greedy_decode of three sources finishing at different steps",
    hint="Once a sequence has produced eos, give it pad_id at every later step.",
)
# A real model, with source padding, against the course's greedy_decode.
torch.manual_seed(0)
real = EncoderDecoderModel(
    ModelConfig(vocab_size=20, d_model=16, n_heads=2, n_layers=2, max_len=16, pad_id=0)
).eval()
src = torch.randint(3, 20, (4, 7))
src_pad = torch.zeros(4, 7, dtype=torch.bool)
src_pad[1, :3] = True
src_pad[3, :5] = True
src = src.masked_fill(src_pad, 0)
expected = real.greedy_decode(  # the reference first; the call gets copies
    src, src_padding_mask=src_pad, max_new_tokens=6, bos_id=1, eos_id=2, use_cache=False
)
out = greedy_decode(
    real, src.clone(), src_pad.clone(), max_new_tokens=6, bos_id=1, eos_id=2, pad_id=0
)
check_tensor(out, expected, name="greedy_decode of a random EncoderDecoderModel")
### END HIDDEN TESTS

# %% [markdown]
# ## 8. Exercise: beam search
#
# Greedy decoding commits to the most likely token at each step, and can never take it
# back. **Beam search** keeps the `beam_size` most likely partial outputs (the **beams**),
# scored by their total log-probability $\sum_t \log p(y_t \mid y_{<t}, x)$:
#
# 1. extend every live beam by every token of the vocabulary;
# 2. **re-rank all the candidates together**, by total log-probability, and walk down the
#    list: a candidate ending in `<eos>` is **finished** (keep it aside, with its score);
#    any other becomes a live beam, until there are `beam_size` live beams;
# 3. repeat for `max_new_tokens` steps; then the live beams count as finished too (scored
#    the same way);
# 4. return the finished hypothesis with the best **length-normalised** score,
#
# $$\text{score} = \frac{\sum_t \log p(y_t \mid y_{<t}, x)}{n^{\alpha}},$$
#
# with $n$ the number of tokens after `<bos>` (`<eos>` included) and $\alpha$ the
# `length_penalty`. Every token adds a negative log-probability, so without the division
# ($\alpha = 0$) short outputs win just for being short; $\alpha = 1$ compares the mean
# log-probability per token.
#
# (Real implementations also stop early, to save time. Hugging Face's `generate` by
# default (`early_stopping=False`) and the course's `model.beam_search` stop once the best
# live beam, scored as if it ended now, cannot beat the worst of the `beam_size` finished
# ones: a rule of thumb, since with `length_penalty` > 0 a longer output can still win.
# Running to the end, as you do here, corresponds to Hugging Face's
# `early_stopping="never"`. On the tests and on dates, whose outputs all have the same
# length, both find the same outputs.)
#
# Write it for **one source** (`src_ids` of shape (1, Ts)). For the live beams' next-token
# log-probabilities, stack them into one batch: `model.decode(seqs, memory.expand(n, -1,
# -1), src_padding_mask=...)` with `seqs` (n, t), then `torch.log_softmax(logits[:, -1],
# -1)`. Return `(tokens, score)`: `tokens` a list of ints starting with `bos_id`, `score` a
# float.
#
# <details><summary>Hint</summary>
#
# Keep `live = [([bos_id], 0.0)]` and `finished = []`. Each step, `total =
# torch.tensor(live_scores)[:, None] + logp` (n, V); `for index in
# total.flatten().argsort(descending=True).tolist(): beam, token = divmod(index, V)`;
# append `(tokens + [token], total[beam, token].item())` to `finished` (dividing by
# `step ** length_penalty`) or to the new live list, and stop the walk at `beam_size` live
# beams.
# </details>


# %% exercise="beam"
def beam_search(
    model,
    src_ids,
    src_padding_mask=None,
    *,
    beam_size,
    max_new_tokens,
    bos_id,
    eos_id,
    length_penalty=1.0,
):
    """src_ids (1, Ts), src_padding_mask (1, Ts) bool or None.

    Returns (tokens, score): tokens a list of ints (bos_id first, eos_id last if it
    finished), score = its total log-probability / (len(tokens) - 1) ** length_penalty.
    """
    ### BEGIN SOLUTION
    memory = model.encode(src_ids, src_padding_mask=src_padding_mask)
    live, finished = [([bos_id], 0.0)], []
    for step in range(1, max_new_tokens + 1):
        n = len(live)
        seqs = torch.tensor([tokens for tokens, _ in live], device=src_ids.device)
        mask = None if src_padding_mask is None else src_padding_mask.expand(n, -1)
        logits = model.decode(seqs, memory.expand(n, -1, -1), src_padding_mask=mask)
        logp = torch.log_softmax(logits[:, -1].float(), dim=-1)  # (n, V)
        total = torch.tensor([score for _, score in live], device=logp.device)[:, None] + logp
        vocab_size, new_live = logp.size(-1), []
        for index in total.flatten().argsort(descending=True).tolist():
            beam, token = divmod(index, vocab_size)
            candidate = (live[beam][0] + [token], total[beam, token].item())
            if token == eos_id:
                finished.append((candidate[0], candidate[1] / step**length_penalty))
            else:
                new_live.append(candidate)
                if len(new_live) == beam_size:
                    break
        live = new_live
    # max_new_tokens reached: the live beams compete as they are
    finished += [(tokens, score / max_new_tokens**length_penalty) for tokens, score in live]
    return max(finished, key=lambda pair: pair[1])
    ### END SOLUTION


# %% [markdown]
# The tests use models written in the cell whose next-token probabilities depend on the
# tokens so far (a table), so that the best output is known by hand, and a random
# `EncoderDecoderModel`, against the course's `beam_search`. Scores are compared with
# `rel_tol=1e-5`: float32 log-probabilities summed in another order. The visible test
# checks the example above and a case where the likeliest **last** token is on the worse
# path: candidates are ranked by their total log-probability. The grader also checks
# re-ranking across beams, length normalisation (`length_penalty` 1 and 0), `beam_size=1`,
# outputs that never reach `<eos>`, and random models, with and without a source padding
# mask, against the course's beam search.

# %% test="beam" points=3 hint="Re-rank the candidates of all beams together by total log-probability (not each beam on its own); a candidate ending in eos is finished with score total / n ** length_penalty; return the best finished one." nudge="Beam search keeps the best few partial translations overall, ranked by their whole score, not just their last token."
import math

import torch
from torch import nn

from course_utils.checks import check_equal, check_true


class Table(nn.Module):
    """Next-token probabilities from a table {tokens so far (after bos): {token: p}};
    missing tokens share what is left. Vocabulary: 0 pad, 1 bos, 2 eos, 3.. words."""

    def __init__(self, table, vocab_size=8):
        super().__init__()
        self.table, self.vocab_size = table, vocab_size

    def encode(self, src_ids, src_padding_mask=None):
        return torch.zeros(src_ids.size(0), src_ids.size(1), 4)

    def decode(self, tgt_ids, memory, src_padding_mask=None):
        b, t = tgt_ids.shape
        logits = torch.zeros(b, t, self.vocab_size)
        for i in range(b):
            probs = self.table.get(tuple(tgt_ids[i, 1:].tolist()), {})
            rest = (1 - sum(probs.values())) / (self.vocab_size - 1 - len(probs))
            p = torch.full((self.vocab_size,), max(rest, 1e-9))
            p[0] = 1e-9  # never pad
            for token, prob in probs.items():
                p[token] = prob
            logits[i, -1] = p.log()
        return logits


def close(a, b):
    return isinstance(a, float) and math.isclose(a, b, rel_tol=1e-5)


# Greedy takes 3 (0.55) then 5 (0.5) and ends weakly; the best output is 3 4 <eos>:
# 0.55 * 0.45 * 0.99, found only when the candidates of both beams are ranked together.
table = Table(
    {
        (): {3: 0.55, 4: 0.44},
        (3,): {5: 0.5, 4: 0.45},
        (4,): {6: 0.1, 7: 0.1},
        (3, 5): {2: 0.3},
        (3, 4): {2: 0.99},
    }
)
src = torch.tensor([[5, 6]])
tokens, score = beam_search(table, src, beam_size=2, max_new_tokens=4, bos_id=1, eos_id=2)
check_equal(tokens, [1, 3, 4, 2], name="beam_search(beam_size=2): the tokens")
expected = (math.log(0.55) + math.log(0.45) + math.log(0.99)) / 3
check_true(close(score, expected), f"beam_search's score: expected {expected:.5f}, got {score!r}")
# Ranked by total log-probability, not by the last token's: 4 7 has the likelier last token
# (0.55) but the smaller total (0.3 * 0.55 = 0.165 < 0.6 * 0.4 = 0.24 for 3 6).
table = Table(
    {
        (): {3: 0.6, 4: 0.3},
        (3,): {5: 0.5, 6: 0.4},
        (4,): {7: 0.55},
        (3, 6): {2: 0.95},
        (3, 5): {2: 0.3},
        (4, 7): {2: 0.95},
    }
)
tokens, score = beam_search(table, src, beam_size=2, max_new_tokens=3, bos_id=1, eos_id=2)
check_equal(
    tokens,
    [1, 3, 6, 2],
    name="beam_search ranking by total log-probability",
    hint="A candidate's score is its beam's total log-probability plus the new token's; "
    "rank by that, not by the new token's probability alone.",
)
expected = (math.log(0.6) + math.log(0.4) + math.log(0.95)) / 3
check_true(close(score, expected), f"score: expected {expected:.5f}, got {score!r}")
print("✓ beam: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.models import EncoderDecoderModel, ModelConfig

# Re-ranking across beams: after 3 (0.5) four words have 0.2 each, after 4 (0.45) comes 5
# (0.9). The best two candidates of step 2 are 4 5 (0.405) and one of 3 ? (0.1): taking the
# best continuations of the first beam, in beam order, loses 4 5 <eos>.
table = Table(
    {
        (): {3: 0.5, 4: 0.45},
        (3,): {3: 0.19, 4: 0.2, 5: 0.2, 6: 0.2, 7: 0.2},
        (4,): {5: 0.9},
        (4, 5): {2: 0.99},
    }
)
tokens, score = beam_search(table, src, beam_size=2, max_new_tokens=3, bos_id=1, eos_id=2)
check_equal(
    tokens,
    [1, 4, 5, 2],
    name="beam_search when the best candidates all extend the second beam",
    hint="Rank the candidates of all beams together, by total log-probability.",
)
# Length normalisation: <eos> at once has p = 0.4 (log -0.92, one token); 3 4 5 <eos> has
# p = 0.6 * 0.7 * 0.7 * 0.7 (log -1.58, four tokens: -0.40 per token).
table = Table({(): {2: 0.4, 3: 0.6}, (3,): {4: 0.7}, (3, 4): {5: 0.7}, (3, 4, 5): {2: 0.7}})
tokens, score = beam_search(table, src, beam_size=2, max_new_tokens=6, bos_id=1, eos_id=2)
check_equal(
    tokens,
    [1, 3, 4, 5, 2],
    name="beam_search with length_penalty=1",
    hint="Divide a finished hypothesis's total log-probability by its length (tokens after "
    "bos, eos included) ** length_penalty before comparing.",
)
expected = (math.log(0.6) + 3 * math.log(0.7)) / 4
check_true(close(score, expected), f"normalised score: expected {expected:.5f}, got {score!r}")
tokens, score = beam_search(
    table, src, beam_size=2, max_new_tokens=6, bos_id=1, eos_id=2, length_penalty=0.0
)
check_equal(tokens, [1, 2], name="beam_search with length_penalty=0 (no normalisation)")
check_true(close(score, math.log(0.4)), f"score with length_penalty=0: got {score!r}")
# beam_size=1 is greedy; max_new_tokens reached without eos: the live beam counts.
table = Table({(): {3: 0.6}, (3,): {4: 0.9}, (3, 4): {5: 0.5}})
tokens, score = beam_search(table, src, beam_size=1, max_new_tokens=3, bos_id=1, eos_id=2)
check_equal(tokens, [1, 3, 4, 5], name="beam_search(beam_size=1, max_new_tokens=3)")
expected = (math.log(0.6) + math.log(0.9) + math.log(0.5)) / 3
check_true(close(score, expected), f"score without eos: expected {expected:.5f}, got {score!r}")
# A random model, against the course's beam search. No output can end (eos has
# probability 0: its logit is pushed to -1e9), so both keep exactly the best beams of
# every step, ranked together: any other pruning finds another output.
for seed, k in [(0, 2), (1, 3), (2, 4)]:
    torch.manual_seed(seed)
    real = EncoderDecoderModel(
        ModelConfig(vocab_size=12, d_model=16, n_heads=2, n_layers=1, max_len=12, head_bias=True)
    ).eval()
    with torch.no_grad():
        real.lm_head.proj.bias.normal_(0, 2)  # a peaky, varied distribution
        real.lm_head.proj.bias[2] = -1e9
    src = torch.randint(3, 12, (1, 6))
    tokens, score = beam_search(real, src, beam_size=k, max_new_tokens=5, bos_id=1, eos_id=2)
    out, scores = real.beam_search(
        src, beam_size=k, max_new_tokens=5, bos_id=1, eos_id=2, return_scores=True
    )
    check_equal(
        tokens,
        out[0].tolist(),
        name=f"beam_search(beam_size={k}) of a random model against the course's",
        hint="Keep the beam_size best candidates over all beams together, by total "
        "log-probability.",
    )
    check_true(close(score, scores[0].item()), f"score of a random model: got {score!r}")
# A source with padding: the padded positions hold words, which only the mask hides from
# the encoder and from cross-attention.
torch.manual_seed(3)
real = EncoderDecoderModel(
    ModelConfig(vocab_size=12, d_model=16, n_heads=2, n_layers=1, max_len=12, head_bias=True)
).eval()
with torch.no_grad():
    for p in real.parameters():  # larger weights: the output depends more on the source
        if p.dim() >= 2:
            p.mul_(3)
    real.lm_head.proj.bias[2] = -1e9
src = torch.randint(3, 12, (1, 8))
src_pad = torch.tensor([[True, True, True, False, False, False, False, False]])
out, scores = real.beam_search(
    src.clone(), beam_size=3, max_new_tokens=5, bos_id=1, eos_id=2, return_scores=True,
    src_padding_mask=src_pad.clone(),
)  # fmt: skip
unmasked = real.beam_search(src.clone(), beam_size=3, max_new_tokens=5, bos_id=1, eos_id=2)
tokens, score = beam_search(real, src, src_pad, beam_size=3, max_new_tokens=5, bos_id=1, eos_id=2)
check_equal(
    tokens,
    out[0].tolist(),
    name="beam_search of a random model with a source padding mask, against the course's",
    hint="Pass src_padding_mask to model.encode, and to model.decode for every beam: "
    "src_padding_mask.expand(n, -1) for n live beams.",
)
check_true(close(score, scores[0].item()), f"score with a padding mask: got {score!r}")
check_true(
    not torch.equal(out, unmasked),
    "internal: the padding mask changes nothing here, so this test would not notice it ignored",
)
### END HIDDEN TESTS

# %% [markdown]
# ## 9. Greedy against beam: exact match and speed on the held-out test set
#
# Now the real measurement: every test example has a year or a format that training never
# showed. Your `greedy_decode` runs on the whole test set in batches; your `beam_search` on
# the first examples, one at a time; and the course's batched `model.beam_search` (the
# same algorithm, with a cache, all sources at once) on the whole set.

# %%
if course_utils.ready("greedy_decode", "beam_search"):
    model.eval()
    torch.set_grad_enabled(False)  # decoding only: no gradients to track
    targets = [e.target for e in test_examples]
    start = time.perf_counter()
    greedy_out = []
    for i in range(0, len(test_examples), 500):
        src, src_pad = sources(test_examples[i : i + 500])
        out = greedy_decode(
            model, src.to(device), src_pad.to(device), max_new_tokens=11,
            bos_id=BOS, eos_id=EOS, pad_id=PAD,
        )  # fmt: skip
        greedy_out += [vocab.decode(row[1:]) for row in out.cpu()]
    greedy_seconds = time.perf_counter() - start
    greedy_match = dates.exact_match(greedy_out, targets)

    start = time.perf_counter()
    src, src_pad = sources(test_examples)
    out = model.beam_search(
        src.to(device), src_padding_mask=src_pad.to(device), beam_size=cfg.beam_size,
        max_new_tokens=11,
    )  # fmt: skip
    beam_out = [vocab.decode(row[1:]) for row in out.cpu()]
    beam_seconds = time.perf_counter() - start
    beam_match = dates.exact_match(beam_out, targets)

    start = time.perf_counter()
    yours = []
    for example in test_examples[: cfg.n_beam]:
        src, src_pad = sources([example])
        tokens, _ = beam_search(
            model, src.to(device), src_pad.to(device), beam_size=cfg.beam_size,
            max_new_tokens=11, bos_id=BOS, eos_id=EOS,
        )  # fmt: skip
        yours.append(vocab.decode(tokens[1:]))
    your_seconds = time.perf_counter() - start
    agree = sum(a == b for a, b in zip(yours, beam_out))

    n = len(test_examples)
    print(f"held-out test set: {n} dates")
    print(f"  greedy (yours, batched):     {greedy_match:6.1%}   {n / greedy_seconds:7.0f} dates/s")
    print(
        f"  beam of {cfg.beam_size} (course, batched): {beam_match:6.1%}   "
        f"{n / beam_seconds:7.0f} dates/s"
    )
    print(
        f"  beam of {cfg.beam_size} (yours, one by one): {cfg.n_beam / your_seconds:5.0f} "
        f"dates/s; the same output as the course's on {agree} of {cfg.n_beam}"
    )
    changed = sum(g != b for g, b in zip(greedy_out, beam_out))
    print(f"beam search changed {changed} of {n} outputs")
    torch.set_grad_enabled(True)

# %% [markdown]
# On this task beam search has little to add (the lines above say how many outputs it
# changed and how both scored, on this run: in the `cpu` profile few outputs, if any, and
# the same score within a point): the model is nearly certain of almost every character,
# so the best beam is usually the greedy path. Beam search pays off when a model hesitates between
# continuations whose worth only shows later, as in translating real text; here it only
# costs time. It runs `beam_size` hypotheses per source, and bookkeeping in Python at every
# step: the course's batched version is no faster than greedy decoding, and yours, one source
# at a time, far slower (the speeds are above; on a busy machine they vary from run to run).
#
# ## 10. The errors that remain, by format
#
# Exact match per format, on the same test set (held-out formats in orange), and the
# errors themselves, beside the right answer.

# %%
if course_utils.ready("greedy_decode", "beam_search"):
    by_format = dates.accuracy_by_format(test_examples, greedy_out)
    ax = plot_bar(
        {name: accuracy for name, (accuracy, _) in by_format.items()},
        ylabel="exact match (greedy)",
        title="held-out test set, by format",
        fmt="{:.0%}",
    )
    for patch, name in zip(ax.patches, by_format):
        patch.set_color("C1" if dates.FORMATS[name].held_out else "C0")
    ax.legend(
        handles=[Patch(color="C0", label="training format"), Patch(color="C1", label="held-out format")],
        loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,  # beside the bars
    )  # fmt: skip
    ax.set_ylim(0, 1.1)
    ax.figure.set_size_inches(10, 3.6)
    plt.show()
    errors = [(e, p) for e, p in zip(test_examples, greedy_out) if p != e.target]
    print(f"{len(errors)} errors of {len(test_examples)}; the first 12:")
    for example, prediction in errors[:12]:
        print(f"  {example.source!r:32} -> {prediction!r:14} (right: {example.target})")
    held_out_errors = sum(dates.FORMATS[e.format].held_out for e, _ in errors)
    print(
        f"{held_out_errors} of the {len(errors)} errors are in held-out formats, "
        f"{len(errors) - held_out_errors} in training formats"
    )

    def fields_wrong(prediction, target):
        """How many of year, month, day differ; None when prediction is not a valid date."""
        try:
            datetime.date.fromisoformat(prediction)
        except ValueError:
            return None
        return sum(a != b for a, b in zip(prediction.split("-"), target.split("-")))

    kinds = Counter(fields_wrong(p, e.target) for e, p in errors)
    print(
        f"one field wrong: {kinds[1]}; two or three fields wrong: {kinds[2] + kinds[3]}; "
        f"not a valid date at all: {kinds[None]}"
    )

# %% [markdown]
# Look at where the errors are; the last lines of the printout count them for this run.
# In the `cpu` profile the training formats are nearly perfect, held-out years included:
# the model copies the digits of years it never saw. Most errors sit in the held-out
# formats, and most of them get one field wrong, the month above all, where an abbreviated
# month stands in a place where training only had full names: the model has learnt most
# of the combination, but not every month of it. That is generalisation from parts it has
# seen, and its limit. A few errors are not even valid dates (a day 00 or a month 19): the model
# writes digits, not dates, and nothing stops it from writing an impossible one.
#
# ## 11. Watching the decoder read the encoder's notes
#
# `model.decode(..., return_attention=True)` returns each decoder block's cross-attention
# weights, (B, H, Tt, Ts): for each output character, how much it reads each source
# character. Below: one row per output character, one column per source character (the
# padding, which gets no weight, is left out). The year's four digits, written first,
# should read the end of the source, and the day, written last, its beginning: the
# reordering, made visible.


# %%
def cross_attention_of(model, text):
    """(source characters, output characters, list of (H, Tout, Ts) weights per layer,
    the output as text)."""
    src, src_pad = vocab.batch([text], width=dates.SOURCE_LEN, pad_side="left")
    src, src_pad = src.to(device), src_pad.to(device)
    out = model.greedy_decode(src, src_padding_mask=src_pad, max_new_tokens=11)
    memory = model.encode(src, src_padding_mask=src_pad)
    with torch.no_grad():
        _, attention = model.decode(
            out[:, :-1], memory, src_padding_mask=src_pad, return_attention=True
        )
    real = ~src_pad[0]
    chars = [vocab.itos[i] for i in src[0, real].tolist()]
    written = [vocab.itos[i] for i in out[0, 1:].tolist()]
    layers = [a["cross"][0][:, :, real].cpu() for a in attention]
    return chars, written, layers, vocab.decode(out[0, 1:])


def year_attention(model, examples):
    """Per layer: the share of the year digits' cross-attention (mean over heads) that
    falls on the source's year, and the same share for the other output characters."""
    shares = []
    for example in examples:
        chars, _, layers, _ = cross_attention_of(model, example.source)
        digits = 2 if example.source[-3] in "./" else 4  # a short year after / or .
        for i, weights in enumerate(layers):
            on_year = weights.mean(0)[:, -digits:].sum(-1)  # (Tout,)
            if len(shares) <= i:
                shares.append([[], []])
            shares[i][0].append(on_year[:4].mean().item())
            shares[i][1].append(on_year[4:10].mean().item())
    return [(sum(a) / len(a), sum(b) / len(b)) for a, b in shares]


if course_utils.ready("teacher_forcing_batch"):  # the model is trained in section 6
    example = test_examples[1]
    chars, written, layers, _ = cross_attention_of(model, example.source)
    fig, axes = plt.subplots(1, len(layers), figsize=(5 * len(layers), 3.6), layout="constrained")
    axes = [axes] if len(layers) == 1 else list(axes)
    for i, ax in enumerate(axes):
        plot_heatmap(
            layers[i].mean(0),
            x_labels=chars,
            y_labels=written,
            ax=ax,
            title=f"decoder layer {i}, mean of heads",
            xlabel="source",
            ylabel="output",
            vmin=0.0,
            vmax=1.0,  # one scale for every layer: the share of the attention
            colorbar=False,
        )
    fig.colorbar(axes[0].images[0], ax=axes, label="attention weight")
    plt.show()
    for i, (year, rest) in enumerate(year_attention(model, test_examples[:200])):
        print(
            f"layer {i}: the year's digits put {year:.0%} of their attention on the source's "
            f"year; the month and day characters {rest:.0%}"
        )

# %% [markdown]
# The explorer below shows the same for any test example, or a date you type (any format,
# even one of your own invention: see what the model makes of it). Pick a layer and a head,
# or the mean of the heads. Heads specialise: in a trained model some follow the year,
# others the month's name or the day.

# %%
import ipywidgets as widgets
from IPython.display import display

from course_utils.plots import figure_image

choices = {}
for fmt in dates.FORMATS:
    found = next((e for e in test_examples if e.format == fmt), None)
    if found is not None:
        choices[f"{found.source}  ({fmt})"] = found.source
example_box = widgets.Dropdown(options=list(choices), description="input:")
text_box = widgets.Text(value="", placeholder="or type a date", description="date:")
layer_box = widgets.Dropdown(
    options=list(range(model_cfg.n_decoder_layers)), value=0, description="layer:"
)
head_box = widgets.Dropdown(
    options=["mean"] + list(range(model_cfg.n_heads)), value="mean", description="head:"
)
heat = widgets.Output(layout=widgets.Layout(border="1px solid #ccc", min_height="320px"))


def show_heat(_=None):
    text = text_box.value.strip() or choices[example_box.value]
    with heat:
        heat.clear_output(wait=True)
        if len(text) > dates.SOURCE_LEN:
            print(f"at most {dates.SOURCE_LEN} characters, please")
            return
        chars, written, layers, prediction = cross_attention_of(model, text)
        weights = layers[layer_box.value]
        weights = weights.mean(0) if head_box.value == "mean" else weights[head_box.value]
        fig, ax = plt.subplots(figsize=(7, 3.4), layout="constrained")
        plot_heatmap(
            weights,
            x_labels=chars,
            y_labels=written,
            ax=ax,
            title=f"{text!r} -> {prediction}",
            xlabel="source",
            ylabel="output",
            vmin=0.0,
            vmax=1.0,
        )
        display(figure_image(fig))


if course_utils.ready("teacher_forcing_batch"):  # the model is trained in section 6
    for box in (example_box, text_box, layer_box, head_box):
        box.observe(show_heat, names="value")
    display(
        widgets.VBox(
            [widgets.HBox([example_box, text_box]), widgets.HBox([layer_box, head_box]), heat]
        )
    )
    show_heat()

# %% [markdown]
# ## 12. Your block is the course's block
#
# The course's model is made of the same parts you wrote. Copy the weights of its first
# decoder block into your `DecoderBlock` and feed both the same states and memory: the
# outputs agree to float32 rounding.

# %%
if course_utils.ready("DecoderBlock", "CrossAttention"):
    theirs = model.decoder[0]
    mine = DecoderBlock(model_cfg.d_model, model_cfg.n_heads, model_cfg.d_ff).to(device).eval()
    with torch.no_grad():
        mine.self_attn.load_state_dict(theirs.self_attn.state_dict())
        for proj, w, b in zip(
            (mine.cross_attn.q_proj, mine.cross_attn.k_proj, mine.cross_attn.v_proj),
            theirs.cross_attn.in_proj.weight.chunk(3),
            theirs.cross_attn.in_proj.bias.chunk(3),
        ):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        mine.cross_attn.out_proj.load_state_dict(theirs.cross_attn.out_proj.state_dict())
        mine.ffn.load_state_dict(theirs.ffn.state_dict())
        for ours, course in [
            (mine.norm1, theirs.attn_norm),
            (mine.norm2, theirs.cross_norm),
            (mine.norm3, theirs.ffn_norm),
        ]:
            ours.load_state_dict(course.state_dict())
        src, src_pad = sources(test_examples[:8])
        src, src_pad = src.to(device), src_pad.to(device)
        memory = model.encode(src, src_padding_mask=src_pad)
        states = model.decoder_embeddings(torch.full((8, 5), BOS, device=device))
        a = mine(states, memory, src_pad)
        b = theirs(states, context=memory, is_causal=True, context_key_padding_mask=src_pad)
    print(f"largest difference, your block against the model's: {(a - b).abs().max().item():.2e}")

# %% [markdown]
# ## 13. Your encoder-decoder is BART
#
# BART (Lewis et al., 2019) is an encoder-decoder of exactly these parts, with a few
# switches set differently from ours: post-norm blocks (the LayerNorm after each residual
# sum, as in the 2017 paper), a LayerNorm right after the embeddings, learned positions
# that start at row 2 of their table, and a bias on the output layer. `ModelConfig` has a
# field for each, and `EncoderDecoderModel.from_bart` sets them and copies the weights of a
# Hugging Face `BartForConditionalGeneration`. Below, a small BART with random weights (no
# download) and ours give the same logits, with source padding.

# %%
try:
    import transformers
except ImportError:
    transformers = None
    print("transformers is not installed: skipping the BART check (pip install transformers).")

if transformers is not None:
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    bart_config = transformers.BartConfig(
        vocab_size=vocab.vocab_size,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=dates.SOURCE_LEN,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        decoder_start_token_id=BOS,
    )
    bart = transformers.BartForConditionalGeneration(bart_config).eval()
    ours = EncoderDecoderModel.from_bart(bart).eval()
    src, src_pad = vocab.batch([e.source for e in test_examples[:4]])  # right-padded
    tgt_in, _ = vocab.batch([e.target for e in test_examples[:4]], bos=True)
    with torch.no_grad():
        theirs = bart(
            input_ids=src, attention_mask=(~src_pad).long(), decoder_input_ids=tgt_in
        ).logits
        mine = ours(src, tgt_in, src_padding_mask=src_pad)
    diff = (mine - theirs).abs().max().item()
    print(f"BART logits {tuple(theirs.shape)}; largest difference from ours: {diff:.2e}")
    c = ours.config
    print(
        f"the switches: norm_first={c.norm_first}, embed_norm={c.embed_norm}, "
        f"position_offset={c.position_offset}, head_bias={c.head_bias}"
    )

# %% [markdown]
# ## What's next
#
# You have built the third family: an encoder that reads, a decoder that writes, and
# cross-attention between them, trained to translate dates it never saw. It needed more
# parts than the decoder-only model of lab 05 (two stacks, a third kind of attention, data
# split into inputs and outputs), and it is very good at what it was trained for. **Lab 07**
# puts the three families on equal terms, and asks whether one decoder-only model, given
# the same compute, can do this task, sentiment and free text at once.
