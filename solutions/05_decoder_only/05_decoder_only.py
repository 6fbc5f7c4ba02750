# %% [markdown]
# # Lab 05: Decoder-only models, a small GPT
#
# This is the architecture that took over. GPT-2, GPT-4, Llama, Mistral, Claude: under
# everything else, each is a stack of causal transformer blocks trained to do one thing,
# **predict the next token**, and then used by doing that thing again and again. In this lab
# you build every piece of that loop yourself, train a small GPT on the course corpus, and
# then show that your model is, digit for digit, GPT-2:
#
# 1. **next-token prediction**: inputs and their shifted targets, and the causal language
#    model loss, where *every* position of every text is a training example;
# 2. **training** the course's `DecoderModel` with nanoGPT's CPU recipe, printing a sample
#    from the same prompt as it learns;
# 3. **generation**: the loop that turns a next-token predictor into a writer, with the
#    context cropped to what the model can see;
# 4. **sampling**: temperature, top-k and top-p, and a widget that shows what each does to
#    the next-token distribution;
# 5. the **KV cache**: why recomputing the past is wasteful, the cached attention step, and
#    the speed-up, measured;
# 6. **"your model is GPT-2"**: Hugging Face's GPT-2 and the course's model give the same
#    logits with the same weights; online, you can load the real GPT-2 and generate with
#    your own code.
#
# Most of the notebook's time goes to training the model in section 4.

# %% [markdown]
# ## 0. Set-up
#
# Imports, a fixed seed, and the settings of the current profile: tiny when grading, the
# nanoGPT CPU recipe on a laptop (section 4 says where it is cut short), the full recipe
# on a GPU.

# %%
import math
import statistics
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import course_utils
from course_utils import data
from course_utils.layers import causal_mask, count_parameters
from course_utils.models import DecoderModel, ModelConfig
from course_utils.plots import plot_curves
from course_utils.tokenizers import CharTokenizer
from course_utils.training import evaluate_loss, train, warmup_cosine

course_utils.seed_everything(0)
cfg = course_utils.settings(
    smoke=dict(
        n_layers=2, n_heads=2, d_model=32, block_size=16, batch_size=4,
        steps=20, schedule_steps=20, warmup=5, sample_every=10, eval_batches=2,
        timing_lengths=[8, 16], timing_repeats=1, text_length=30,
    ),
    cpu=dict(
        n_layers=4, n_heads=4, d_model=128, block_size=64, batch_size=12,
        steps=1000, schedule_steps=2000, warmup=100, sample_every=250, eval_batches=40,
        timing_lengths=[32, 64, 128, 256], timing_repeats=3, text_length=150,
    ),
    gpu=dict(
        n_layers=4, n_heads=4, d_model=128, block_size=64, batch_size=12,
        steps=2000, schedule_steps=2000, warmup=100, sample_every=400, eval_batches=200,
        timing_lengths=[32, 64, 128, 256, 512], timing_repeats=3,
        text_length=150,
    ),
)  # fmt: skip
device = course_utils.pick_device()
print(f"profile {cfg.profile!r} on {device}")

text = data.load_corpus()
tokenizer = CharTokenizer.train(text)
ids = torch.tensor(tokenizer.encode(text))
train_ids, val_ids = data.train_val_split(ids, 0.1)
print(
    f"corpus: {len(text):,} characters, {tokenizer.vocab_size} distinct; "
    f"{len(train_ids):,} for training, {len(val_ids):,} held out"
)

# %% [markdown]
# ## 1. Next-token prediction: a text is its own label
#
# A decoder-only model reads a sequence of tokens $x_1, \dots, x_T$ and, at **every**
# position $t$, outputs a guess at the token that comes next, $x_{t+1}$: a probability for
# each of the $V$ tokens of the vocabulary. The causal mask of lab 02 makes this honest:
# position $t$ sees $x_1 \dots x_t$ and nothing after it, so it cannot copy the answer.
#
# So no one has to label anything. Take any window of $T + 1$ tokens from the corpus: the
# first $T$ are the **inputs**, and the same window moved one step to the left, the last
# $T$, are the **targets**. Here is one window of the course corpus, one character per
# token:

# %%
window = ids[1000:1009]
print("window :", repr(tokenizer.decode(window)))
print("inputs :", repr(tokenizer.decode(window[:-1])))
print("targets:", repr(tokenizer.decode(window[1:])))
print()
for t in range(len(window) - 1):
    seen = tokenizer.decode(window[: t + 1])
    print(
        f"position {t}: has seen {seen!r:<12} must predict {tokenizer.decode(window[t + 1 : t + 2])!r}"
    )

# %% [markdown]
# One window of $T + 1$ tokens gives $T$ training examples at once, one per position, each
# with a different amount of context. A training batch is $B$ such windows, starting at
# random places in the text.
#
# ## 2. Exercise: inputs and shifted targets
#
# Write `lm_batch(ids, starts, block_size)`: for each start offset `s` in `starts`, the
# input is `ids[s : s + block_size]` and the target is the same slice moved one token to
# the right, `ids[s + 1 : s + block_size + 1]`. Stack them into two `(B, T)` tensors.
#
# - `ids` is a 1-D tensor of token ids (the whole corpus); `starts` is a list or 1-D tensor
#   of `B` integers; `block_size` is $T$.
# - A window needs `block_size + 1` tokens. If some start leaves fewer than that before the
#   end of `ids` (or is negative), raise a `ValueError` that says which start and why.
#
# <details><summary>Hint</summary>
#
# ```python
# x = torch.stack([ids[s : s + block_size] for s in starts])
# y = torch.stack([ids[s + 1 : s + 1 + block_size] for s in starts])
# ```
# after checking `0 <= s` and `s + block_size + 1 <= len(ids)` for every `s` (turn a tensor of
# starts into plain ints first with `int(s)`).
# </details>


# %% exercise="lm_batch"
def lm_batch(ids, starts, block_size):
    """Inputs and next-token targets for windows of a token stream.

    ids: (N,) integer token ids. starts: B offsets (list of ints or (B,) tensor).
    block_size: T. Returns (x, y), both (B, T) with the dtype of ids, where
    x[b] = ids[s : s + T] and y[b] = ids[s + 1 : s + T + 1] for s = starts[b].
    Raises ValueError when a window would run past either end of ids.
    """
    ### BEGIN SOLUTION
    starts = [int(s) for s in starts]
    for s in starts:
        if s < 0 or s + block_size + 1 > len(ids):
            raise ValueError(
                f"start {s} needs tokens {s} .. {s + block_size} (block_size + 1 = "
                f"{block_size + 1} of them), but ids has only {len(ids)} tokens"
            )
    x = torch.stack([ids[s : s + block_size] for s in starts])
    y = torch.stack([ids[s + 1 : s + 1 + block_size] for s in starts])
    return x, y
    ### END SOLUTION


# %% test="lm_batch" points=2 hint="x[b] = ids[s : s + T] and y[b] = ids[s + 1 : s + T + 1]: the targets are the inputs moved one token to the right; raise ValueError when s + T + 1 > len(ids)." nudge="A language model learns to predict the next token: the targets are the inputs shifted by one."
import torch

from course_utils.checks import check_raises, check_tensor

stream = torch.arange(100, 120)  # token i has id 100 + i, easy to read
x, y = lm_batch(stream, [0, 5], 4)
check_tensor(
    x,
    torch.tensor([[100, 101, 102, 103], [105, 106, 107, 108]]),
    name="x of lm_batch(..., [0, 5], 4)",
)
check_tensor(
    y,
    torch.tensor([[101, 102, 103, 104], [106, 107, 108, 109]]),
    name="y of lm_batch(..., [0, 5], 4)",
    hint="The targets are the inputs moved one token to the right: ids[s + 1 : s + T + 1].",
)
check_raises(
    ValueError,
    lm_batch,
    stream,
    [0, 16],
    4,
    name="lm_batch(20 tokens, [0, 16], 4): the window at 16 needs tokens 16 .. 20",
    hint="A window needs block_size + 1 tokens: raise a ValueError when s + block_size + 1 "
    "> len(ids) or s < 0.",
)
check_raises(ValueError, lm_batch, stream, [-1], 4, name="lm_batch(..., [-1], 4): a negative start")
print("✓ lm_batch: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_lm_batch", 0)
stream = torch.randint(0, 50, (300,), generator=gen)
starts = torch.randint(0, 300 - 33, (7,), generator=gen)
expected_x = torch.stack([stream[int(s) : int(s) + 32] for s in starts])  # references first
expected_y = torch.stack([stream[int(s) + 1 : int(s) + 33] for s in starts])
x, y = lm_batch(stream.clone(), starts.clone(), 32)
check_tensor(x, expected_x, name="x of lm_batch with 7 random starts, T = 32")
check_tensor(
    y,
    expected_y,
    name="y of lm_batch with 7 random starts, T = 32",
    hint="y must be shifted: y[b, t] is the token after x[b, t], never x[b, t] itself.",
)
check_tensor(x[:, 1:], y[:, :-1], name="x[:, 1:] == y[:, :-1] (the targets are the shifted inputs)")
# One window, a window that ends exactly at the last token, length-1 windows.
x, y = lm_batch(stream.clone(), [300 - 11], 10)
check_tensor(y, stream[-10:].unsqueeze(0), name="y of the window that ends at the last token")
x, y = lm_batch(stream.clone(), [3, 4, 5], 1)
check_tensor(x, torch.tensor([[stream[3]], [stream[4]], [stream[5]]]), name="x with block_size 1")
check_tensor(y, torch.tensor([[stream[4]], [stream[5]], [stream[6]]]), name="y with block_size 1")
check_raises(
    ValueError,
    lm_batch,
    stream,
    [300 - 10],
    10,
    name="lm_batch(..., [N - 10], 10): one token short",
)
_ = check_raises(ValueError, lm_batch, stream, [-1], 10, name="lm_batch with a negative start")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Exercise: the causal language-model loss
#
# At each position the model outputs **logits**, one score per vocabulary token, shape
# `(B, T, V)`; a softmax turns them into probabilities. The loss at one position is the
# negative log-probability the model gave to the token that actually came next,
# $-\log p(x_{t+1} \mid x_1 \dots x_t)$, and the loss of the batch is the mean over **all**
# $B \cdot T$ positions:
#
# $$\mathcal{L} = -\frac{1}{B T} \sum_{b=1}^{B} \sum_{t=1}^{T}
#    \log \operatorname{softmax}(z_{b,t})_{y_{b,t}} .$$
#
# A model that knows nothing spreads its probability evenly and scores $\log V$ (4.6 nats for
# 100 characters); each nat less means the model is $e$ times less surprised on average.
#
# Write `lm_loss(logits, targets, ignore_index=-100)`:
#
# - use `torch.log_softmax(logits, dim=-1)`, which subtracts the largest logit first and so
#   never overflows (`torch.softmax(...).log()` turns tiny probabilities into `log(0) =
#   -inf`);
# - pick the log-probability of each target with `gather` (or indexing);
# - positions whose target is `ignore_index` (used for padding in later labs) do not count:
#   the mean is over the other positions only.
#
# Work out why the test compares with `F.cross_entropy(logits.flatten(0, 1),
# targets.flatten())`: PyTorch's cross-entropy wants the classes on axis 1, which is why
# every training loop flattens batch and time into one axis of $B \cdot T$ examples.
#
# <details><summary>Hint</summary>
#
# ```python
# log_probs = torch.log_softmax(logits, dim=-1)          # (B, T, V)
# keep = targets != ignore_index                         # (B, T)
# safe = targets.masked_fill(~keep, 0)                   # any valid index where ignored
# picked = log_probs.gather(-1, safe.unsqueeze(-1)).squeeze(-1)   # (B, T)
# return -(picked * keep).sum() / keep.sum()
# ```
# </details>


# %% exercise="lm_loss"
def lm_loss(logits, targets, ignore_index=-100):
    """Mean next-token cross-entropy over every position.

    logits: (B, T, V) floats. targets: (B, T) integer ids in [0, V), or ignore_index at
    positions that do not count. Returns a scalar tensor (shape ()), the mean of
    -log softmax(logits)[target] over the positions that count.
    """
    ### BEGIN SOLUTION
    log_probs = torch.log_softmax(logits, dim=-1)
    keep = targets != ignore_index
    safe = targets.masked_fill(~keep, 0)
    picked = log_probs.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return -(picked * keep).sum() / keep.sum()
    ### END SOLUTION


# %% [markdown]
# The tests compare with PyTorch's cross-entropy at `rtol=1e-5, atol=1e-6`: the same
# logarithms summed in a different order differ by a few units in the last float32 place.
# The visible test checks plain targets and targets with some `-100`; the grader also
# checks another `ignore_index`, large logits, a (1, 1, V) float64 batch and the gradient.
#
# A note on conventions: `lm_loss` takes targets that are **already shifted** (`y` from
# `lm_batch`). Hugging Face's causal models take `labels` equal to the **inputs** and shift
# them inside (`GPT2LMHeadModel(ids, labels=ids)` compares position `t` with token
# `t + 1`): give them shifted targets and they shift once more, silently.

# %% test="lm_loss" points=2 hint="log_softmax over the last axis, gather each target's log-probability, and average minus that over every (b, t) position whose target is not ignore_index." nudge="The loss is the average negative log-probability of the correct next token, over the positions that count."
import torch
import torch.nn.functional as F

from course_utils.checks import check_tensor

TOL = dict(rtol=1e-5, atol=1e-6)  # float32 sums in another order
gen = torch.Generator().manual_seed(0)
logits = torch.randn(2, 5, 11, generator=gen)
targets = torch.randint(0, 11, (2, 5), generator=gen)
expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
got = lm_loss(logits.clone(), targets.clone())
check_tensor(got, expected, name="lm_loss of logits (2, 5, 11)", **TOL)
# Positions whose target is ignore_index do not count: the mean is over the others.
ignored = targets.clone()
ignored[0, 3:] = -100
ignored[1, 0] = -100
expected = F.cross_entropy(logits.flatten(0, 1), ignored.flatten(), ignore_index=-100)
check_tensor(
    lm_loss(logits.clone(), ignored.clone()),
    expected,
    name="lm_loss with 3 of the 10 targets = -100",
    hint="Leave out positions whose target equals ignore_index and divide by how many are left.",
    **TOL,
)
print("✓ lm_loss: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_lm_loss", gen)  # the course's secret, if any
# Every position counts, not only the last one, and the mean is over B * T positions.
logits = torch.randn(3, 7, 13, generator=gen)
targets = torch.randint(0, 13, (3, 7), generator=gen)
# Each reference is computed first; lm_loss gets copies, so a change in place cannot reach it.
expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
check_tensor(
    lm_loss(logits.clone(), targets.clone()),
    expected,
    name="lm_loss of logits (3, 7, 13)",
    hint="Average over all B * T positions (not the sum, not only the last position).",
    **TOL,
)
# Ignored positions: the mean is over the rest.
targets[0, 4:] = -100
targets[2, 1] = -100
expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
check_tensor(
    lm_loss(logits.clone(), targets.clone()),
    expected,
    name="lm_loss with some targets = -100",
    hint="Leave out positions whose target equals ignore_index and divide by how many are left.",
    **TOL,
)
targets[targets == -100] = 0
targets[1, :3] = 7
expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=7)
check_tensor(
    lm_loss(logits.clone(), targets.clone(), ignore_index=7),
    expected,
    name="lm_loss with ignore_index=7",
    **TOL,
)
# Large logits: a stable log-softmax stays finite.
big = 80 * torch.randn(2, 4, 9, generator=gen)
t = torch.randint(0, 9, (2, 4), generator=gen)
expected = F.cross_entropy(big.flatten(0, 1), t.flatten())
check_tensor(
    lm_loss(big.clone(), t.clone()),
    expected,
    name="lm_loss of logits of size ~100",
    hint="Use torch.log_softmax: softmax(...).log() underflows to log(0) = -inf for large logits.",
    rtol=1e-5,
    atol=1e-4,  # the loss itself is ~100 here
)
# A batch of one, a sequence of length one, float64.
one = torch.randn(1, 1, 5, generator=gen, dtype=torch.float64)
expected = F.cross_entropy(one.flatten(0, 1), torch.tensor([3]))
check_tensor(
    lm_loss(one.clone(), torch.tensor([[3]])),
    expected,
    name="lm_loss of a (1, 1, 5) float64 batch",
    rtol=1e-10,
    atol=1e-12,
)
# Gradients flow to the logits.
logits = torch.randn(2, 3, 6, generator=gen, requires_grad=True)
targets = torch.randint(0, 6, (2, 3), generator=gen)
F.cross_entropy(logits.flatten(0, 1), targets.flatten()).backward()  # the reference first
expected = logits.grad.clone()
logits.grad = None
lm_loss(logits, targets.clone()).backward()
check_tensor(
    logits.grad, expected, name="the gradient of lm_loss with respect to the logits", **TOL
)
### END HIDDEN TESTS

# %% [markdown]
# ### Every position is a training signal
#
# Compare what one batch teaches each kind of model. A masked language model such as BERT
# (lab 04) hides 15% of the tokens and learns only from those; a decoder learns from
# every position. Same batch, same forward pass:

# %%
if course_utils.ready("lm_batch", "lm_loss"):
    starts = torch.randint(0, len(train_ids) - cfg.block_size - 1, (cfg.batch_size,))
    x, y = lm_batch(train_ids, starts, cfg.block_size)
    positions = x.numel()
    print(f"a batch of {cfg.batch_size} windows of {cfg.block_size} tokens = {positions} positions")
    print(f"  decoder (next token at every position): {positions} supervised predictions")
    print(
        f"  masked LM (15% of the positions):       {round(0.15 * positions)} supervised predictions"
    )
    untrained_logits = torch.zeros(*x.shape, tokenizer.vocab_size)  # a uniform guess
    print(
        f"loss of a uniform guess: {lm_loss(untrained_logits, y).item():.3f} nats "
        f"= log {tokenizer.vocab_size} = {math.log(tokenizer.vocab_size):.3f}"
    )

# %% [markdown]
# Per forward pass, the decoder gets about $1 / 0.15 \approx 6.7$ times as many answers to
# learn from. That is the **efficiency** argument for decoder-only models in a nutshell,
# and lab 07 measures what it buys at equal compute. (The comparison is not completely
# fair to BERT: each of its predictions sees context on both sides, which is why encoders
# are still good at understanding tasks.)

# %% [markdown]
# ## 4. Training a small GPT
#
# The model is the course's `DecoderModel`: token and position embeddings, a stack of
# pre-norm causal blocks from `course_utils.layers` (the block of lab 03 with the causal
# mask of lab 02), a final LayerNorm and an output layer that shares its weights with the
# token embedding, all as in GPT-2. Its `forward(ids)` returns logits `(B, T, V)`.
#
# The training recipe is the one nanoGPT uses on a CPU (its `shakespeare_char` example):
# 4 layers, 4 heads, width 128, a context of 64 characters, batches of 12, AdamW with
# learning rate $10^{-3}$ warmed up over 100 steps and decayed along a cosine to
# $10^{-4}$, $\beta_2 = 0.99$, weight decay 0.1 on the weight matrices, gradients clipped
# to norm 1, no dropout. Its full length is 2,000 steps. In the `cpu` profile this lab
# runs the **first half** of that run, 1,000 steps of the same 2,000-step schedule, to stay
# within the lab's time; on a GPU it runs all 2,000. The course's benchmark
# `benchmarks/decoder_quality.py` runs the whole recipe on a CPU and checks its target: a
# validation loss of at most **1.45 nats per character** after 2,000 steps.
#
# The batches are sampled exactly as in your `lm_batch`, at random starts; the validation
# loss is measured on the same fixed windows of the held-out text every time, so that
# successive measurements compare. Every few hundred steps the model also writes 150
# characters from the same prompt, so you can watch it learn to spell, then to write
# Python's documentation.


# %%
def make_model(block_size=None, seed=0):
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        n_layers=cfg.n_layers,
        d_ff=4 * cfg.d_model,
        max_len=block_size or cfg.block_size,
        dropout=0.0,
    )
    return DecoderModel(config)


def next_token_loss(model, batch):
    x, y = batch
    logits = model(x)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())  # your lm_loss, in PyTorch


def random_batch(source, generator):
    starts = torch.randint(
        0, len(source) - cfg.block_size - 1, (cfg.batch_size,), generator=generator
    )
    x = torch.stack([source[s : s + cfg.block_size] for s in starts.tolist()])
    y = torch.stack([source[s + 1 : s + 1 + cfg.block_size] for s in starts.tolist()])
    return x, y


train_gen = torch.Generator().manual_seed(1)
val_batches = [
    random_batch(val_ids, torch.Generator().manual_seed(1000 + i)) for i in range(cfg.eval_batches)
]
prompt = "The for statement"


def sample(model):
    context = torch.tensor([tokenizer.encode(prompt)], device=next(model.parameters()).device)
    out = model.generate(context, cfg.text_length, temperature=0.8, seed=0)
    return tokenizer.decode(out[0].tolist())


def validate(model):
    loss = evaluate_loss(model, lambda i: val_batches[i], next_token_loss, len(val_batches))
    print(f"\n--- after step {validate.step}: validation loss {loss:.3f} ---\n{sample(model)!r}")
    validate.step = min(validate.step + cfg.sample_every, cfg.steps)
    return loss


model = make_model().to(device)
decay = [p for p in model.parameters() if p.dim() >= 2]
no_decay = [p for p in model.parameters() if p.dim() < 2]
optimizer = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
    lr=1e-3,
    betas=(0.9, 0.99),
)
print(f"DecoderModel: {count_parameters(model):,} parameters")
validate.step = 0
print(f"before training: {sample(model)!r}")
validate.step = cfg.sample_every
history = train(
    model,
    lambda step: random_batch(train_ids, train_gen),
    next_token_loss,
    steps=cfg.steps,
    optimizer=optimizer,
    scheduler=warmup_cosine(cfg.schedule_steps, warmup=cfg.warmup, min_factor=0.1),
    grad_clip=1.0,
    eval_every=cfg.sample_every,
    eval_fn=validate,
    log_every=10,
    seed=0,
)
model = model.cpu().eval()
print(history)

# %% [markdown]
# The loss curves, with two reference lines: a uniform guess over the characters, and a
# model that knows only how often each character occurs (the entropy of the character
# frequencies). Everything below that second line the model learned from context.

# %%
frequencies = torch.bincount(train_ids, minlength=tokenizer.vocab_size).float() / len(train_ids)
unigram = -(frequencies[frequencies > 0] * frequencies[frequencies > 0].log()).sum().item()
ax = history.plot(title=f"{cfg.steps} of the {cfg.schedule_steps} steps of the nanoGPT CPU recipe")
ax.axhline(math.log(tokenizer.vocab_size), color="gray", linestyle="--", label="uniform guess")
ax.axhline(unigram, color="gray", linestyle=":", label="character frequencies only")
ax.axhline(1.45, color="C2", linestyle="-.", label="target after 2,000 steps")
ax.legend()
plt.show()
final_val = history.final_eval_loss
print(
    f"validation loss after {cfg.steps} steps: {final_val:.3f} nats per character "
    f"({math.exp(final_val):.1f}-way uncertainty per character, down from {tokenizer.vocab_size})"
)
print(f"training throughput: {history.tokens_per_second:,.0f} tokens/s on {device}")
print(
    f"character frequencies alone: {unigram:.3f}; the full 2,000-step recipe "
    f"(benchmarks/decoder_quality.py): 1.419; the target: 1.45"
)

# %% [markdown]
# What the full recipe reaches, measured by `benchmarks/decoder_quality.py` (2,000 steps,
# the validation loss averaged over 200 held-out batches): **1.419** nats per character,
# under the 1.45 target (a plain nanoGPT-style implementation reached 1.42 on this corpus).
# Halfway, at step 1,000, the same run stood at 1.66, where the `cpu` profile stops (its
# own number above is measured on 40 of those 200 batches, so it differs a little). The
# second half, with the learning rate decaying to a tenth, takes off another quarter of a
# nat, and the samples show what that half would add: after 1,000 steps the model spells
# common words and knows the layout of the documentation, but its sentences do not yet
# mean much.
#
# ### Which positions learn most?
#
# The loss averages over all positions, but they are not equally hard. Position 0 sees one
# character and must guess the next; position 63 sees 64. Here is the validation loss at
# each position of the window:

# %%
with torch.no_grad():
    per_position = torch.zeros(cfg.block_size)
    for x, y in val_batches:
        logits = model(x)
        per_position += F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(0)
    per_position /= len(val_batches)
plot_curves(
    {"validation loss": (range(cfg.block_size), per_position)},
    xlabel="position in the window (characters of context - 1)",
    ylabel="loss (nats)",
    title="every position is a prediction; later ones see more context",
)
plt.show()
print(
    f"position 0: {per_position[0]:.2f} nats; position {cfg.block_size - 1}: "
    f"{per_position[-1]:.2f} nats"
)
tail = per_position[cfg.block_size // 2 :].mean().item()  # the flat end, averaged
flat = next(t for t in range(cfg.block_size) if per_position[t] < tail + 0.1)
print(
    f"from position {flat} ({flat + 1} characters of context) the loss is within 0.1 nats of "
    f"its average over the second half of the window, {tail:.2f}"
)

# %% [markdown]
# The first few positions are much harder (with one character of context, the best one can
# do is a bigram guess); after a few characters of context the curve flattens (the printout
# says where, on this run: the model gains little from context beyond a word or so). Every
# one of those positions contributed to training, and the trained model can continue a
# text from any point.
#
# ## 5. Exercise: the generation loop
#
# A next-token predictor becomes a writer with a loop:
#
# 1. feed the sequence so far to the model; keep only the logits of the **last**
#    position, `(B, V)`: the prediction for the token after the end;
# 2. divide the logits by the **temperature** $\tau$, *before* the softmax: $\tau < 1$
#    sharpens the distribution, $\tau > 1$ flattens it. $\tau = 0$ means "always the most
#    likely token" (greedy decoding, `argmax`);
# 3. optionally filter the logits (top-k, top-p: the next section), then softmax them into
#    probabilities and **sample** one token per row with `torch.multinomial`;
# 4. append it and repeat.
#
# One detail matters: the model has learned position embeddings for `block_size`
# positions only, so it cannot read a longer sequence (the course's model refuses with an
# error). Once the text is longer than that, feed only its **last `block_size` tokens**:
# the model forgets the beginning, but keeps writing.
#
# Write `generate(model, ids, max_new_tokens, block_size=..., temperature=1.0,
# filter_fn=None, generator=None)`:
#
# - run under `torch.no_grad()` (nothing is trained here; it saves memory and time);
# - `filter_fn`, when given, is a function `logits (B, V) -> logits (B, V)`, applied after
#   the temperature and before the softmax;
# - draw with `torch.multinomial(probs, num_samples=1, generator=generator)`, so that a
#   seeded generator repeats a sample exactly;
# - raise a `ValueError` for a negative temperature;
# - do not change `ids` in place: return a new `(B, T + max_new_tokens)` tensor.
#
# <details><summary>Hint</summary>
#
# ```python
# for _ in range(max_new_tokens):
#     logits = model(ids[:, -block_size:])[:, -1, :]          # (B, V)
#     if temperature == 0:
#         next_id = logits.argmax(dim=-1, keepdim=True)       # (B, 1)
#     else:
#         logits = logits / temperature
#         ...  # filter_fn, softmax, multinomial
#     ids = torch.cat([ids, next_id], dim=1)
# ```
# </details>


# %% exercise="generate"
def generate(
    model, ids, max_new_tokens, block_size, temperature=1.0, filter_fn=None, generator=None
):
    """Continue each row of ids by max_new_tokens sampled tokens.

    model: ids (B, t) with t <= block_size -> logits (B, t, V). ids: (B, T) integer ids.
    temperature: > 0 divides the last position's logits before the softmax; 0 picks the
    argmax (greedy). filter_fn: None or logits (B, V) -> logits (B, V), after the
    temperature. generator: a torch.Generator for torch.multinomial, or None.
    Returns a new (B, T + max_new_tokens) tensor that starts with ids.
    """
    ### BEGIN SOLUTION
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(ids[:, -block_size:])[:, -1, :]
            if temperature == 0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if filter_fn is not None:
                    logits = filter_fn(logits)
                probs = torch.softmax(logits, dim=-1)
                next_id = torch.multinomial(probs, num_samples=1, generator=generator)
            ids = torch.cat([ids, next_id], dim=1)
    return ids
    ### END SOLUTION


# %% [markdown]
# The tests use small stand-in models written in the test cell, whose logits you can work
# out by hand, so that they check the loop itself: which positions the model is given,
# which logits are used, and what the temperature does. The sampling test draws 20,000
# tokens at once and compares their frequencies with the softmax of the tempered logits;
# the tolerance, 0.02, is about six standard deviations of a frequency estimated from
# 20,000 draws, and a temperature applied in the wrong place moves the frequencies by 0.2.
# The grader also checks the context given to the model at every step, that the model runs
# without gradients, `max_new_tokens=0`, that `ids` is not changed, the generator, what
# `filter_fn` receives, and the `ValueError`.

# %% test="generate" points=3 hint="Feed ids[:, -block_size:], take logits[:, -1, :], divide by the temperature before the softmax, sample with torch.multinomial(probs, 1, generator=generator), append with torch.cat along dim=1." nudge="Generation repeats one step: look at the recent context, turn the last position's scores into probabilities, draw a token, append it."
import torch
from torch import nn

from course_utils.checks import check_equal, check_raises, check_tensor, check_true


class CountingModel(nn.Module):
    """Greedy next token = (sum of the context so far) mod V; refuses contexts > block_size."""

    def __init__(self, vocab_size, block_size):
        super().__init__()
        self.vocab_size, self.block_size, self.seen, self.grad = vocab_size, block_size, [], []

    def forward(self, ids):
        if ids.size(1) > self.block_size:
            raise ValueError(
                f"the model was given {ids.size(1)} tokens, more than its block_size="
                f"{self.block_size}: crop the context to ids[:, -block_size:]"
            )
        self.seen.append(ids.clone())
        self.grad.append(torch.is_grad_enabled())
        target = ids.cumsum(dim=1) % self.vocab_size  # a different answer at each position
        return 10.0 * nn.functional.one_hot(target, self.vocab_size).float()


def counting_reference(ids, n, vocab_size, block_size):
    ids = ids.clone()
    for _ in range(n):
        nxt = ids[:, -block_size:].sum(dim=1, keepdim=True) % vocab_size
        ids = torch.cat([ids, nxt], dim=1)
    return ids


start = torch.tensor([[1, 2, 3], [4, 0, 6]])
stand_in = CountingModel(7, block_size=4)
expected = counting_reference(start, 5, 7, 4)  # references first, the call on a copy
out = generate(stand_in, start.clone(), 5, block_size=4, temperature=0)
check_tensor(
    out,
    expected,
    name="generate(..., 5 new tokens, block_size=4, temperature=0) with a model of context 4",
    hint="Crop the context to the last block_size tokens, ids[:, -block_size:], and use the "
    "logits of the last position, logits[:, -1, :].",
)


class FixedModel(nn.Module):
    """The same logits at every position, whatever the input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, ids):
        return self.logits.expand(ids.size(0), ids.size(1), -1)


# Temperature divides the logits before the softmax.
logits = torch.tensor([2.0, 1.0, 0.0, -1.0, -3.0])
for temperature in (0.5, 2.0):
    expected = torch.softmax(logits.double() / temperature, dim=-1)
    gen = torch.Generator().manual_seed(1)
    out = generate(FixedModel(logits.clone()), torch.zeros(20_000, 1, dtype=torch.long), 1,
                   block_size=4, temperature=temperature, generator=gen)  # fmt: skip
    check_equal(tuple(out.shape), (20_000, 2), name="shape of 20,000 rows continued by 1 token")
    freq = torch.bincount(out[:, 1], minlength=5).double() / 20_000
    check_tensor(
        freq,
        expected,
        name=f"frequencies of sampled tokens at temperature {temperature}",
        hint="Divide the logits by the temperature BEFORE the softmax: softmax(logits / T). "
        "Dividing the probabilities afterwards changes nothing once multinomial renormalises.",
        rtol=0,
        atol=0.02,  # ~6 standard deviations of a frequency from 20,000 draws
    )
print("✓ generate: visible tests passed")

### BEGIN HIDDEN TESTS
# Cropping: every call sees exactly the last block_size tokens (or all, while shorter).
stand_in = CountingModel(11, block_size=3)
start = torch.tensor([[5], [2]])
expected = counting_reference(start, 6, 11, 3)
out = generate(stand_in, start.clone(), 6, block_size=3, temperature=0)
check_tensor(out, expected, name="generate from a 1-token prompt with block_size=3")
check_equal(len(stand_in.seen), 6, name="number of model calls for 6 new tokens")
for i, seen in enumerate(stand_in.seen):
    t = start.size(1) + i
    check_tensor(
        seen,
        expected[:, max(0, t - 3) : t],
        name=f"the context given to the model at step {i + 1}",
        hint="Give the model the last block_size tokens of the sequence so far, ids[:, -block_size:].",
    )
check_true(
    not any(stand_in.grad),
    "generate ran the model with gradients enabled",
    hint="Wrap the loop in torch.no_grad().",
)
# max_new_tokens = 0 returns the prompt; ids are not changed in place.
start = torch.tensor([[1, 2, 3]])
before = start.clone()
out = generate(CountingModel(7, 8), start, 0, block_size=8)
check_tensor(out, before, name="generate with max_new_tokens=0")
generate(CountingModel(7, 8), start, 3, block_size=8, temperature=0)
check_tensor(start, before, name="ids after generate (must not change in place)")


# A seeded generator repeats the sample; it is the one passed in.
runs = [
    generate(FixedModel(logits), torch.zeros(50, 1, dtype=torch.long), 3, block_size=4,
             generator=torch.Generator().manual_seed(7))
    for _ in range(2)
]  # fmt: skip
check_tensor(
    runs[0],
    runs[1],
    name="two samples with generators seeded alike",
    hint="Pass generator=generator to torch.multinomial.",
)
# filter_fn gets the tempered logits of the last position and its output is sampled from.
received = []


def only_token_3(x):
    received.append(x.clone())
    return torch.where(torch.arange(x.size(-1)) == 3, x, torch.full_like(x, float("-inf")))


out = generate(FixedModel(logits), torch.zeros(4, 2, dtype=torch.long), 2, block_size=4,
               temperature=0.5, filter_fn=only_token_3, generator=torch.Generator().manual_seed(0))  # fmt: skip
check_tensor(
    out[:, 2:], torch.full((4, 2), 3), name="tokens sampled after a filter that keeps only token 3"
)
check_tensor(
    received[0],
    (logits / 0.5).expand(4, 5),
    name="what filter_fn received at temperature 0.5",
    hint="Apply the temperature first, then filter_fn, then the softmax.",
)
_ = check_raises(
    ValueError,
    generate,
    FixedModel(logits),
    start,
    1,
    block_size=4,
    temperature=-1.0,
    name="generate with temperature -1",
)
### END HIDDEN TESTS

# %% [markdown]
# Your loop with the trained model, from the prompt used during training, at three
# temperatures. Greedy decoding (temperature 0) is the most likely continuation one token
# at a time, and it tends to get stuck repeating itself; high temperatures make up words.

# %%
if course_utils.ready("generate"):
    context = torch.tensor([tokenizer.encode(prompt)])
    for temperature in (0.0, 0.8, 1.5):
        out = generate(model, context, cfg.text_length, block_size=cfg.block_size, temperature=temperature,
                       generator=torch.Generator().manual_seed(0))  # fmt: skip
        print(f"temperature {temperature}:\n{tokenizer.decode(out[0].tolist())!r}\n")

# %% [markdown]
# ## 6. Sampling: top-k and top-p
#
# Even a well-trained model gives every token a little probability, and over a long text
# the unlikely ones add up: sample 200 characters, each with a 2% chance of something
# absurd, and about four absurd characters get in. Two filters cut off the tail of the
# distribution before sampling:
#
# - **top-k** keeps the $k$ most likely tokens and drops the rest ($k = 1$ is greedy);
# - **top-p** ("nucleus sampling", Holtzman et al. 2019) keeps the **smallest** set of most
#   likely tokens whose probabilities add up to at least $p$. When the model is sure, that
#   is one or two tokens; when it hesitates, many. It adapts where top-k cannot.
#
# Both work on logits: a dropped token's logit becomes $-\infty$, so the softmax gives it
# probability exactly 0, and the kept tokens share the probability in the same proportions
# as before.
#
# ## 7. Exercise: top-k filtering
#
# Write `top_k_filter(logits, k)`: along the last axis, keep the `k` largest logits and set
# every other one to `-inf`. Tokens tied with the k-th largest are kept too (so a row can
# keep more than `k` when there are ties; nanoGPT and Hugging Face do the same). A `k`
# larger than the vocabulary keeps everything; a `k` below 1 is a `ValueError`. Do not
# change `logits` in place.
#
# The visible test checks one row and a batch of rows; the grader also checks ties, `k`
# larger than the vocabulary, a row that already holds `-inf`, other shapes, that `logits`
# is unchanged, and the `ValueError`.
#
# <details><summary>Hint</summary>
#
# `torch.topk(logits, k, dim=-1).values[..., -1:]` is the k-th largest logit of each row,
# with a last axis of size 1 that broadcasts; `torch.where(logits < kth, -inf, logits)`
# does the rest. Use `min(k, logits.size(-1))`.
# </details>


# %% exercise="top_k_filter"
def top_k_filter(logits, k):
    """Keep the k largest logits of each row (and ties); the rest become -inf.

    logits: (..., V) floats. k: int >= 1. Returns a new (..., V) tensor.
    """
    ### BEGIN SOLUTION
    if k < 1:
        raise ValueError(f"top-k needs k >= 1, got {k}")
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return torch.where(logits < kth, torch.full_like(logits, float("-inf")), logits)
    ### END SOLUTION


# %% test="top_k_filter" points=2 hint="kth = torch.topk(logits, k, dim=-1).values[..., -1:]; set logits below kth to -inf with torch.where; clamp k to the vocabulary size; ValueError for k < 1." nudge="Top-k keeps the k highest scores of each row and rules out every other token."
import torch

from course_utils.checks import check_raises, check_tensor

INF = float("inf")
row = torch.tensor([[1.0, 5.0, 3.0, 2.0, 4.0]])
check_tensor(
    top_k_filter(row, 2),
    torch.tensor([[-INF, 5.0, -INF, -INF, 4.0]]),
    name="top_k_filter([[1, 5, 3, 2, 4]], 2)",
    hint="Keep the k largest logits of the row; every other logit becomes -inf.",
)
# Several rows: each row keeps its own k largest.
rows = torch.tensor([[1.0, 5.0, 3.0, 2.0], [9.0, 0.0, 8.0, 7.0], [0.5, 0.25, 1.0, 2.0]])
expected = torch.tensor([[-INF, 5.0, 3.0, -INF], [9.0, -INF, 8.0, -INF], [-INF, -INF, 1.0, 2.0]])
check_tensor(
    top_k_filter(rows.clone(), 2),
    expected,
    name="top_k_filter of 3 rows with k=2",
    hint="Each row has its own k-th largest value: take torch.topk(..., dim=-1) along the last "
    "axis and keep its last column with [..., -1:], so that it broadcasts row by row.",
)
print("✓ top_k_filter: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_top_k_filter", 0)
for shape, k in [((4, 20), 5), ((2, 3, 17), 1), ((9,), 4), ((3, 10), 10), ((3, 10), 50)]:
    logits = torch.randn(shape, generator=gen)
    before = logits.clone()
    kk = min(k, shape[-1])
    kth = torch.topk(logits, kk, dim=-1).values[..., -1:]
    expected = logits.masked_fill(logits < kth, -INF)  # the reference first
    got = top_k_filter(logits, k)
    check_tensor(got, expected, name=f"top_k_filter of shape {shape} with k={k}")
    check_tensor(logits, before, name="logits after top_k_filter (must not change in place)")
# Ties with the k-th largest are kept; -inf already in the row stays -inf.
check_tensor(
    top_k_filter(torch.tensor([3.0, 1.0, 3.0, 2.0, 3.0]), 2),
    torch.tensor([3.0, -INF, 3.0, -INF, 3.0]),
    name="top_k_filter([3, 1, 3, 2, 3], 2): ties with the 2nd largest are kept",
)
check_tensor(
    top_k_filter(torch.tensor([[0.0, -INF, 2.0, 1.0]]), 2),
    torch.tensor([[-INF, -INF, 2.0, 1.0]]),
    name="top_k_filter of a row with -inf",
)
_ = check_raises(ValueError, top_k_filter, row, 0, name="top_k_filter(..., k=0)")
### END HIDDEN TESTS

# %% [markdown]
# ## 8. Exercise: top-p (nucleus) filtering
#
# Write `top_p_filter(logits, p)`. For each row (last axis):
#
# 1. sort the tokens from most to least likely and compute their probabilities (softmax);
# 2. walk down the sorted list adding up probability; a token is **kept** when the total
#    *before* it is still below `p`. So the most likely token is always kept (nothing
#    comes before it), and so is the token that carries the total past `p`;
# 3. every other token's logit becomes `-inf`, in the original order of the tokens.
#
# Worked example: probabilities $(0.5, 0.3, 0.2)$ and $p = 0.7$. The totals before each
# token are $0, 0.5, 0.8$; the first two are below 0.7, so the first two tokens are kept
# (together they hold 0.8 $\ge$ 0.7). With $p = 0.3$ only the first is kept: it alone has
# more than 0.3. Two classic mistakes: comparing the running total *including* the token
# with $p$ keeps one token too few (and with $p = 0.3$ keeps nothing at all, which makes
# every probability NaN).
#
# `p` must be in $(0, 1]$ (`ValueError` otherwise); `p = 1` keeps every token (the test
# checks it on a row with probabilities $1$ and $2 \cdot 10^{-9}$). Do not change `logits`
# in place.
#
# **Mind float32.** Adding probabilities from the top, the total before the last tokens
# rounds to 1.0 or just above: `before >= p` then drops real tokens at `p = 1` (on
# `8 * randn(1000, 50)` logits, about a third of all tokens). Hugging Face's
# `TopPLogitsWarper` adds up from the *bottom* instead, which never rounds that way: with the
# tokens sorted from least to most likely, a token is dropped when it and every less likely
# token together hold at most $1 - p$ (the same rule: the tokens above it then hold at least
# $p$), and the most likely token is never dropped.
#
# <details><summary>Hint</summary>
#
# ```python
# sorted_logits, order = torch.sort(logits, dim=-1)      # least likely first
# total = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)  # it and all below it
# drop_sorted = total <= 1 - p                            # the tokens above hold >= p
# drop_sorted[..., -1] = False                            # the most likely always stays
# drop = drop_sorted.scatter(-1, order, drop_sorted)      # back to the original order
# return logits.masked_fill(drop, float("-inf"))
# ```
# </details>


# %% exercise="top_p_filter"
def top_p_filter(logits, p):
    """Keep the smallest set of most likely tokens whose probabilities sum to >= p.

    logits: (..., V) floats. p: float in (0, 1]. A token is kept when the total probability
    of the tokens more likely than it is < p; the others become -inf. Returns a new
    (..., V) tensor.
    """
    ### BEGIN SOLUTION
    if not 0 < p <= 1:
        raise ValueError(f"top-p needs 0 < p <= 1, got {p}")
    # Hugging Face's form (TopPLogitsWarper): summed from the least likely token up, the
    # total never rounds past 1 in float32, so p = 1 keeps every token.
    sorted_logits, order = torch.sort(logits, dim=-1)
    total = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    drop_sorted = total <= 1 - p
    drop_sorted[..., -1] = False
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))
    ### END SOLUTION


# %% test="top_p_filter" points=3 hint="Sort ascending, softmax, cumsum: drop a token when that total (it and every less likely token) is <= 1 - p, never the last (most likely) one; scatter the mask back to the original order. Summing from the top (cumsum - probs >= p) rounds past 1 in float32." nudge="Top-p keeps the smallest set of most likely tokens whose probabilities together reach p, and always the most likely one."
import math

import torch

from course_utils.checks import check_raises, check_tensor

INF = float("inf")
gen_p = torch.Generator().manual_seed(5)
logits = torch.tensor([[math.log(0.2), math.log(0.5), math.log(0.3)]])  # probabilities .2 .5 .3
check_tensor(
    top_p_filter(logits, 0.7),
    torch.tensor([[-INF, math.log(0.5), math.log(0.3)]]),
    name="top_p_filter(probabilities (0.2, 0.5, 0.3), p=0.7)",
    hint="0.5 + 0.3 = 0.8 >= 0.7: keep the tokens with 0.5 and 0.3. Keep a token while the "
    "total BEFORE it is < p.",
)
# At the boundary: four equally likely tokens (exactly 0.25 each in float32) and p = 0.5. The
# two tokens above the third hold exactly 0.5 >= p, so two are kept, not three.
same = torch.zeros(3, 4)
kept = torch.isfinite(top_p_filter(same, 0.5)).sum(dim=-1)
check_tensor(
    kept,
    torch.tensor([2, 2, 2]),
    name="tokens kept by top_p_filter(4 equal logits, p=0.5), per row",
    hint="A token whose more likely tokens hold exactly p is dropped: keep it only while "
    "the total before it is < p (not <= p).",
)
# p = 1 keeps every token, also in float32 where a running total from the top rounds to 1.
tiny = torch.tensor([[0.0, -20.0]])  # probabilities 1 - 2e-9 and 2e-9
check_tensor(top_p_filter(tiny.clone(), 1.0), tiny, name="top_p_filter([[0.0, -20.0]], p=1.0)")
wide = 8 * torch.randn(1000, 50, generator=torch.Generator().manual_seed(0))
check_tensor(
    torch.isinf(top_p_filter(wide, 1.0)).sum(),
    torch.tensor(0),
    name="tokens dropped by top_p_filter(8 * randn(1000, 50), p=1.0)",
    hint="p = 1 keeps every token. Summing probabilities from the most likely token down "
    "rounds to 1.0 early in float32; sum from the least likely up and compare with 1 - p.",
)
print("✓ top_p_filter: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

# The most likely token is kept even when it alone is more than p.
check_tensor(
    top_p_filter(logits, 0.3),
    torch.tensor([[-INF, math.log(0.5), -INF]]),
    name="top_p_filter(probabilities (0.2, 0.5, 0.3), p=0.3)",
    hint="The most likely token is always kept: the total before it is 0 < p.",
)
check_tensor(
    top_p_filter(logits.clone(), 1.0), logits, name="top_p_filter(..., p=1.0) keeps every token"
)
# The boundary again, with other sizes: 8 equal tokens and p = 0.75 keep 6; p = 0.25 keeps 2;
# a batch with a leading axis; a tiny p keeps the most likely token only.
for n, p, expected in [(8, 0.75, 6), (8, 0.25, 2), (4, 0.25, 1), (16, 0.5, 8)]:
    kept = torch.isfinite(top_p_filter(torch.zeros(2, 3, n), p)).sum(dim=-1)
    check_tensor(
        kept,
        torch.full((2, 3), expected),
        name=f"tokens kept by top_p_filter({n} equal logits, p={p}), per row",
    )
check_tensor(
    torch.isfinite(top_p_filter(3 * torch.randn(50, 20, generator=gen_p), 1e-9)).sum(-1),
    torch.ones(50, dtype=torch.long),
    name="tokens kept by top_p_filter(..., p=1e-9): the most likely only",
)
check_tensor(
    top_p_filter(10 * torch.randn(200, 64, generator=gen_p), 1.0).isinf().sum(),
    torch.tensor(0),
    name="tokens dropped by top_p_filter(10 * randn(200, 64), p=1.0)",
)


def reference_top_p(x, p):
    out = x.clone()
    flat = out.reshape(-1, x.size(-1))
    for row in flat:
        probs = torch.softmax(row.double(), dim=-1)
        total = 0.0
        for i in torch.argsort(probs, descending=True).tolist():
            if total >= p:
                row[i] = -INF
            total += probs[i].item()
    return flat.reshape(x.shape)


gen = hidden_generator("test_top_p_filter", 0)
for shape, p, scale in [
    ((6, 30), 0.9, 2.0),
    ((2, 3, 12), 0.5, 1.0),
    ((40,), 0.95, 3.0),
    ((5, 8), 0.05, 1.0),
    ((4, 50), 0.99, 0.5),
]:
    x = scale * torch.randn(shape, generator=gen)
    before = x.clone()
    expected = reference_top_p(x, p)  # the reference first
    check_tensor(
        top_p_filter(x, p),
        expected,
        name=f"top_p_filter of shape {shape} with p={p}",
        hint="Keep exactly the tokens whose preceding (more likely) tokens hold less than p.",
    )
    check_tensor(x, before, name="logits after top_p_filter (must not change in place)")
# Kept logits keep their values; a row already filtered by top-k stays filtered.
x = torch.tensor([[0.5, -INF, 2.0, 1.0, -INF]])
expected = reference_top_p(x, 0.9)
check_tensor(
    top_p_filter(x.clone(), 0.9), expected, name="top_p_filter after top-k (-inf in the row)"
)
for bad in (0.0, -0.1, 1.5):
    check_raises(ValueError, top_p_filter, logits, bad, name=f"top_p_filter(..., p={bad})")
### END HIDDEN TESTS

# %% [markdown]
# ## 9. The sampling explorer
#
# The explorer shows the trained model's distribution over the next character after your
# prompt, in three steps: after the temperature, after top-k, and after top-p (which
# applies to what top-k left, as in Hugging Face's `generate`). Below the bars is a text
# sampled with those settings by your `generate`. Try:
#
# - the prompt `The for stat` with top-p = 0.9: one character is by far the likeliest
#   next (the line under the explorer says which, and how likely), and top-p keeps only a
#   few characters; top-k = 10 keeps ten whatever happens;
# - a prompt that ends in a space: many words could start here, so top-p keeps many;
# - temperature 0.3, then 2.0, with both filters off (top-k = the vocabulary size,
#   top-p = 1): watch the bars sharpen and flatten, and the text go from repetitive to
#   garbled;
# - temperature 2.0 with top-p = 0.8: the filter cuts the tail the high temperature raised.

# %%
if course_utils.ready("generate", "top_k_filter", "top_p_filter"):
    import ipywidgets as widgets
    from IPython.display import display

    from course_utils.plots import figure_image

    def shown(char):
        return {" ": "␣", "\n": "⏎", "\t": "⇥"}.get(char, char)

    def explore(_=None):
        context = torch.tensor([tokenizer.encode(prompt_box.value or " ")])[:, -cfg.block_size :]
        temperature, k, p = temperature_slider.value, top_k_slider.value, top_p_slider.value
        with torch.no_grad():
            logits = model(context)[0, -1] / temperature
        steps = {"after temperature": logits}
        steps["then top-k"] = top_k_filter(logits, k)
        steps["then top-p"] = top_p_filter(steps["then top-k"], p)
        probs = {name: torch.softmax(x, dim=-1) for name, x in steps.items()}
        order = torch.argsort(probs["after temperature"], descending=True)[:15]
        labels = [shown(tokenizer.decode([int(i)])) for i in order]
        fig, axes = plt.subplots(1, 3, figsize=(12, 2.8), sharey=True)
        for i, (ax, (name, q)) in enumerate(zip(axes, probs.items())):
            ax.bar(range(len(order)), q[order].numpy(), color="C0" if i == 0 else "C1")
            ax.set_xticks(range(len(order)), labels)
            ax.set_title(f"{name}: {int((q > 0).sum())} kept")
        axes[0].set_ylabel("probability")
        fig.tight_layout()
        out = generate(
            model,
            context,
            cfg.text_length,
            block_size=cfg.block_size,
            temperature=temperature,
            filter_fn=lambda x: top_p_filter(top_k_filter(x, k), p),
            generator=torch.Generator().manual_seed(seed_box.value),
        )
        with explorer:
            explorer.clear_output(wait=True)
            display(figure_image(fig))
            print(tokenizer.decode(out[0].tolist()))

    def resample(_):
        seed_box.value += 1  # a new sample; the observer redraws

    wide = {"description_width": "initial"}
    prompt_box = widgets.Text(
        value="The for stat",
        description="prompt:",
        continuous_update=False,  # redraw on Enter, not on every key
        layout=widgets.Layout(width="60%"),
    )
    temperature_slider = widgets.FloatSlider(
        value=1.0, min=0.1, max=2.0, step=0.1, description="temperature:", style=wide
    )
    top_k_slider = widgets.IntSlider(
        value=tokenizer.vocab_size, min=1, max=tokenizer.vocab_size, description="top-k:",
        style=wide,
    )  # fmt: skip
    top_p_slider = widgets.FloatSlider(
        value=1.0, min=0.05, max=1.0, step=0.05, description="top-p:", style=wide
    )
    seed_box = widgets.IntText(value=0, description="seed:", layout=widgets.Layout(width="140px"))
    sample_button = widgets.Button(description="Sample", button_style="primary")
    explorer = widgets.Output(layout=widgets.Layout(border="1px solid #ccc", min_height="320px"))
    sample_button.on_click(resample)
    for box in (prompt_box, temperature_slider, top_k_slider, top_p_slider, seed_box):
        box.observe(explore, names="value")
    display(
        widgets.VBox(
            [
                widgets.HBox([prompt_box, seed_box, sample_button]),
                widgets.HBox([temperature_slider, top_k_slider, top_p_slider]),
                explorer,
            ]
        )
    )
    explore()
    with torch.no_grad():
        after = torch.softmax(model(torch.tensor([tokenizer.encode("The for stat")]))[0, -1], -1)
    best = int(after.argmax())
    kept = int((top_p_filter(after.log(), 0.9) > float("-inf")).sum())
    print(
        f"after 'The for stat' this model gives {shown(tokenizer.decode([best]))!r} probability "
        f"{after[best]:.2f}; top-p = 0.9 keeps {kept} of the {tokenizer.vocab_size} characters"
    )

# %% [markdown]
# ## 10. The KV cache: stop recomputing the past
#
# Look at what your `generate` does at step $n$: it runs the model over the whole context,
# all $n$ tokens, to use the logits of the last one. But with a causal mask, position $t$'s
# result depends only on tokens $1 \dots t$, none of which has changed since the previous
# step. Everything except the newest position is recomputed, identically, every step.
#
# Where does the newest position need the past at all? Only in attention: its query must
# meet the **keys** and **values** of every earlier position, in every layer. Everything
# else (embeddings, LayerNorms, the feed-forward network) works on one position at a time.
# So a decoder can keep each layer's keys and values, the **KV cache**, and at each step
# run only the new token through the model:
#
# ```text
#   step n, without a cache: tokens 1..n  -> all layers -> keep the last logits    (n positions)
#   step n, with a cache:    token n only -> all layers -> logits                  (1 position)
#                            each attention: q_n against [cached k_1..k_{n-1}, k_n]
#                                            append k_n, v_n to the cache
# ```
#
# Generating $N$ tokens then costs $N$ one-position steps instead of
# $1 + 2 + \dots + N \approx N^2 / 2$ positions; the price is memory, two vectors per layer
# per position (for GPT-2 small in float32: 12 layers x 2 x 768 numbers x 4 bytes, 72 KB
# per token).
#
# ## 11. Exercise: one attention step with a cache
#
# Write `kv_cache_step(q, k_new, v_new, cache=None)`, the attention of the new tokens of
# one layer, after the projections and the split into heads:
#
# - `q`, `k_new`, `v_new`: `(B, H, T_new, D)`, the queries, keys and values of the new
#   tokens only (`T_new = 1` while generating; the whole prompt on the first call);
# - `cache`: `None` at the start, else the tuple `(k_past, v_past)` returned by the previous
#   call, each `(B, H, T_past, D)`;
# - append the new keys and values to the cached ones along the **time** axis, then attend:
#   `softmax(q kᵀ / √D + mask) v` over all `T_past + T_new` keys, with a causal mask: new
#   token $i$ sits at position `T_past + i` and sees keys `0 .. T_past + i`;
# - return `(out, (k, v))`: `out` is `(B, H, T_new, D)` and `(k, v)`, each
#   `(B, H, T_past + T_new, D)`, is the cache for the next call.
#
# Careful with the mask: PyTorch's `is_causal=True` lines the diagonal up with the
# **top-left** corner, which is only right when there is no past. Use
# `causal_mask(T_new, T_total)` (lab 02's mask, lined up with the end; imported from
# `course_utils.layers` in the set-up cell) as `attn_mask`, or build the same thing with `torch.tril(..., diagonal=T_past)`.
#
# <details><summary>Hint</summary>
#
# ```python
# if cache is not None:
#     k = torch.cat([cache[0], k_new], dim=2)        # (B, H, T_past + T_new, D)
#     ...
# mask = causal_mask(q.size(-2), k.size(-2), device=q.device)
# out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
# ```
# </details>


# %% exercise="kv_cache_step"
def kv_cache_step(q, k_new, v_new, cache=None):
    """Causal attention of T_new new queries over cached and new keys/values.

    q, k_new, v_new: (B, H, T_new, D). cache: None or (k_past, v_past), each
    (B, H, T_past, D). Returns (out (B, H, T_new, D), (k, v)) with k, v of shape
    (B, H, T_past + T_new, D): the past followed by the new keys and values.
    """
    ### BEGIN SOLUTION
    k, v = k_new, v_new
    if cache is not None:
        k = torch.cat([cache[0], k_new], dim=2)
        v = torch.cat([cache[1], v_new], dim=2)
    mask = causal_mask(q.size(-2), k.size(-2), device=q.device)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out, (k, v)
    ### END SOLUTION


# %% [markdown]
# The tests run one sequence token by token through your step and compare every output
# with plain causal attention over the whole sequence at once, computed in the test cell
# from PyTorch's `F.scaled_dot_product_attention`. Tolerance `rtol=1e-5, atol=1e-6`: the
# same sums in another order.

# %% test="kv_cache_step" points=3 hint="k = torch.cat([cache[0], k_new], dim=2) (the time axis of (B, H, T, D)), the same for v; attend with an end-aligned causal mask, course_utils.layers.causal_mask(T_new, T_total); return (out, (k, v))." nudge="A KV cache keeps the keys and values of earlier tokens, so a step only computes them for the new tokens."
import torch
import torch.nn.functional as F

from course_utils.checks import check_equal, check_tensor, check_true

TOL = dict(rtol=1e-5, atol=1e-6)  # float32 sums in another order
gen = torch.Generator().manual_seed(0)
B, H, T, D = 2, 3, 6, 4
q, k, v = (torch.randn(B, H, T, D, generator=gen) for _ in range(3))
full = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # every position at once
cache = None
for t in range(T):  # each step gets copies: a change in place cannot reach q, k, v
    step = [x[:, :, t : t + 1].clone() for x in (q, k, v)]
    out, cache = kv_cache_step(*step, cache)
    check_tensor(
        out, full[:, :, t : t + 1], name=f"output for token {t} with a cache of {t} tokens", **TOL
    )
check_tensor(cache[0], k, name="the cached keys after 6 steps, (B, H, T, D)")
check_tensor(cache[1], v, name="the cached values after 6 steps, (B, H, T, D)")
print("✓ kv_cache_step: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

# The cache grows along the time axis (dim 2), step by step.
gen = hidden_generator("test_kv_cache_step", 1)
B, H, T, D = 3, 2, 7, 8
q, k, v = (torch.randn(B, H, T, D, generator=gen) for _ in range(3))
full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
cache = None
for t in range(T):
    out, cache = kv_cache_step(q[:, :, t : t + 1], k[:, :, t : t + 1], v[:, :, t : t + 1], cache)
    check_equal(
        tuple(cache[0].shape),
        (B, H, t + 1, D),
        name=f"shape of the cached keys after {t + 1} steps",
        hint="Append along the time axis: torch.cat([k_past, k_new], dim=2).",
    )
    check_tensor(out, full[:, :, t : t + 1], name=f"output for token {t} (B=3, H=2)", **TOL)
# A prompt of 4 tokens at once, then one token, then a chunk of 2: the mask must be aligned
# to the end (PyTorch's is_causal=True is not).
out, cache = kv_cache_step(q[:, :, :4], k[:, :, :4], v[:, :, :4])
check_tensor(out, full[:, :, :4], name="output for a 4-token prompt with no cache", **TOL)
out, cache = kv_cache_step(q[:, :, 4:5], k[:, :, 4:5], v[:, :, 4:5], cache)
check_tensor(out, full[:, :, 4:5], name="output for token 4 after a 4-token prompt", **TOL)
out, cache = kv_cache_step(q[:, :, 5:7], k[:, :, 5:7], v[:, :, 5:7], cache)
check_tensor(
    out,
    full[:, :, 5:7],
    name="outputs for 2 new tokens after a cache of 5",
    hint="New token i sits at position T_past + i and sees keys 0 .. T_past + i: use an "
    "end-aligned mask, causal_mask(T_new, T_total), not is_causal=True.",
    **TOL,
)
check_tensor(cache[1], v, name="the cached values after 4 + 1 + 2 tokens")
# The output uses what is in the cache, and only that: a cache of keys and values that no
# input produced (the past tokens are not given to the step at all).
k_past, v_past = torch.randn(1, 2, 5, 8, generator=gen), torch.randn(1, 2, 5, 8, generator=gen)
qn, kn, vn = (torch.randn(1, 2, 1, 8, generator=gen) for _ in range(3))
saved = (k_past.clone(), v_past.clone())
expected = F.scaled_dot_product_attention(  # the reference first
    qn, torch.cat([k_past, kn], 2), torch.cat([v_past, vn], 2)
)
new_k = kn.clone()
out, (k2, v2) = kv_cache_step(qn.clone(), kn.clone(), vn.clone(), (k_past, v_past))
check_tensor(
    out,
    expected,
    name="output of one new token over a given cache of 5",
    hint="The new query must attend to the cached keys and values as well as its own.",
    **TOL,
)
check_tensor(k2[:, :, :5], saved[0], name="the past part of the returned keys")
check_tensor(k2[:, :, 5:], new_k, name="the new part of the returned keys (after the past)")
check_true(
    bool(torch.equal(k_past, saved[0]) and torch.equal(v_past, saved[1])),
    "kv_cache_step changed the cache it was given in place",
)
# One head, D = 1, a batch of one.
q1, k1, v1 = (torch.randn(1, 1, 3, 1, generator=gen) for _ in range(3))
full1 = F.scaled_dot_product_attention(q1, k1, v1, is_causal=True)
out, c = kv_cache_step(q1[:, :, :1], k1[:, :, :1], v1[:, :, :1])
out, c = kv_cache_step(q1[:, :, 1:], k1[:, :, 1:], v1[:, :, 1:], c)
check_tensor(out, full1[:, :, 1:], name="one head, D = 1: a 2-token chunk after 1 cached", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# ### Your step inside the trained GPT
#
# Each block of the `DecoderModel` is pre-norm: `x + attention(norm(x))`, then
# `x + ffn(norm(x))`. The function below runs the trained model one step at a time with
# **your** `kv_cache_step` in place of its attention: the new tokens' queries, keys and
# values come from the block's own projections (`q_proj`, `k_proj`, `v_proj`, split into
# heads), and only the new tokens go in. It then checks, at every step, that the logits
# equal those of the whole model run on the whole sequence, and that greedy decoding with
# your cache writes the same text as the model's own `generate`.

# %%
if course_utils.ready("kv_cache_step"):
    from course_utils.layers import merge_heads, split_heads

    @torch.no_grad()
    def step_with_your_cache(model, new_ids, caches):
        """new_ids (B, T_new) after the cached tokens -> logits (B, T_new, V); caches grow."""
        start = 0 if caches[0] is None else caches[0][0].size(2)
        x = model.embeddings(new_ids, start_pos=start)
        for i, block in enumerate(model.blocks):
            attn, h = block.self_attn, block.attn_norm(x)
            q, k, v = (
                split_heads(p(h), attn.n_heads) for p in (attn.q_proj, attn.k_proj, attn.v_proj)
            )
            y, caches[i] = kv_cache_step(q, k, v, caches[i])
            x = x + attn.out_proj(merge_heads(y))
            x = x + block.ffn(block.ffn_norm(x))
        return model.lm_head(model.final_norm(x))

    sequence = torch.tensor([tokenizer.encode(prompt)])[:, : cfg.block_size // 2]
    prompt_length = sequence.size(1)
    n_new = cfg.block_size - prompt_length
    caches = [None] * len(model.blocks)
    logits = step_with_your_cache(model, sequence, caches)  # the prompt, all at once
    largest = 0.0
    with torch.no_grad():
        for _ in range(n_new):
            next_id = logits[:, -1].argmax(dim=-1, keepdim=True)
            sequence = torch.cat([sequence, next_id], dim=1)
            logits = step_with_your_cache(model, next_id, caches)  # one token in
            full = model(sequence)[:, -1:]  # the whole sequence, recomputed
            largest = max(largest, (logits - full).abs().max().item())
    theirs = model.generate(sequence[:, :prompt_length], n_new, temperature=0)
    print(
        f"{n_new} steps with your cache; largest logit difference from recomputing: {largest:.1e}"
    )
    print("same greedy text as DecoderModel.generate:", torch.equal(sequence, theirs))
    print(f"cache: {len(caches)} layers x (keys, values) of shape {tuple(caches[0][0].shape)}")

# %% [markdown]
# ### Your cache, measured
#
# The course's `DecoderModel.generate` keeps a cache in every layer exactly as your step
# does (`use_cache=True`, the default) or recomputes everything (`use_cache=False`). Both
# must give the same text; the question is the time. The model below has the width and
# depth of the trained one but a longer context, so that the sequences can grow; timing
# does not depend on the weights, so it is not trained. Each length is timed three times
# after a warm-up call, with and without the cache in turn, so that both meet the same
# disturbances from whatever else this machine is doing, and the median of each is kept;
# expect some noise all the same.

# %%
timing_model = make_model(block_size=16 + max(cfg.timing_lengths), seed=1).eval()
start_ids = torch.randint(
    0, tokenizer.vocab_size, (1, 16), generator=torch.Generator().manual_seed(0)
)
timing_model.generate(start_ids, 4, use_cache=True, seed=0)  # warm-up: first calls are slow
timing_model.generate(start_ids, 4, use_cache=False, seed=0)
seconds = {"without cache": [], "with cache": []}
same_text = True
for n in cfg.timing_lengths:
    runs, outputs = {name: [] for name in seconds}, {}
    for _ in range(cfg.timing_repeats):  # interleaved: both meet the same disturbances
        for name, use_cache in (("without cache", False), ("with cache", True)):
            tick = time.perf_counter()
            outputs[name] = timing_model.generate(start_ids, n, use_cache=use_cache, seed=0)
            runs[name].append(time.perf_counter() - tick)
    for name in seconds:
        seconds[name].append(statistics.median(runs[name]))
    same_text = same_text and torch.equal(outputs["without cache"], outputs["with cache"])
speedup = [a / b for a, b in zip(seconds["without cache"], seconds["with cache"])]
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.6))
plot_curves(
    {name: (cfg.timing_lengths, s) for name, s in seconds.items()},
    ax=left,
    markers=True,
    xlabel="tokens generated after a 16-token prompt",
    ylabel="seconds",
    title="generation time",
)
plot_curves(
    {"speed-up": (cfg.timing_lengths, speedup)},
    ax=right,
    markers=True,
    xlabel="tokens generated",
    ylabel="time without / time with the cache",
    title="what the cache saves",
)
right.axhline(1.0, color="gray", linestyle=":")
fig.tight_layout()
plt.show()
print(f"same tokens with and without the cache: {same_text}")
for n, a, b, s in zip(cfg.timing_lengths, seconds["without cache"], seconds["with cache"], speedup):
    verdict = f"{s:4.1f}x faster" if s >= 1 else f"{1 / s:4.1f}x slower"
    print(f"{n:4d} tokens: {a:6.3f} s without, {b:6.3f} s with the cache: {verdict}")
grows = all(later > earlier for earlier, later in zip(speedup, speedup[1:]))
print(
    f"on this run the speed-up {'grew with every length' if grows else 'did not grow steadily'}"
    f" (median of {cfg.timing_repeats} run(s) each)"
    + ("" if grows else ": other work on this machine disturbs timings; run the cell again")
)

# %% [markdown]
# Without the cache the time grows faster than the number of tokens (each step processes
# a longer context); with it, roughly in proportion. The speed-up therefore grows with the
# length of the text, on a quiet machine; the last line of the printout says whether it did
# on this run. It is smaller than the ratio of positions computed, $N / 2$, because
# at this tiny size much of a step's time is fixed overhead (launching a few dozen small
# operations) that a one-token step pays as well; for a large model on long texts, where
# the arithmetic dominates, the cache is what makes chat-length generation affordable at
# all.
#
# ## 12. Your model is GPT-2
#
# The course's `DecoderModel` is built from the parts of labs 02 and 03 only. Is it really
# GPT-2's architecture, or merely something like it? With Hugging Face's `transformers`
# installed, the cell below builds a small GPT-2 with **random** weights (no download),
# copies its weights into a `DecoderModel` with `DecoderModel.from_gpt2`, and compares the
# logits on the same input. Same architecture means the same numbers, up to float32
# rounding; a single misplaced LayerNorm or a missing bias would change them by 0.01 or
# more. Then your own `generate`, run greedily on the copy, is compared with Hugging Face's
# `generate`.
#
# Two of Hugging Face's conventions differ from ours when you call its `generate`
# yourself. With `do_sample=True` it also applies top-k with $k = 50$ by default (pass
# `top_k=0` to sample from the whole distribution, as your `generate` does without a
# filter). And give it an `attention_mask`: without one it guesses the padding from the
# pad id, and a prompt that contains that id (GPT-2 is usually given its end-of-text token
# as pad id) is partly masked. The cell below passes `do_sample=False` and a mask of ones.

# %%
try:
    import transformers
except ImportError:
    transformers = None
    print("transformers is not installed: `pip install transformers` to run this comparison.")

if transformers is not None:
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    hf_config = transformers.GPT2Config(
        vocab_size=tokenizer.vocab_size, n_positions=64, n_embd=64, n_layer=2, n_head=4,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    hf_model = transformers.GPT2LMHeadModel(hf_config).eval()
    with torch.no_grad():  # random biases and gains: nothing left at its default
        for parameter in hf_model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    ours = DecoderModel.from_gpt2(hf_model).eval()
    test_ids = torch.tensor([tokenizer.encode("The while statement is used for repeated")])
    with torch.no_grad():
        theirs_logits = hf_model(test_ids).logits
        ours_logits = ours(test_ids)
    difference = (ours_logits - theirs_logits).abs().max().item()
    scale = theirs_logits.abs().max().item()
    print(f"GPT-2 (random, {count_parameters(hf_model):,} parameters) vs DecoderModel.from_gpt2:")
    print(
        f"  largest logit difference {difference:.2e}, {difference / scale:.1e} of the largest logit"
    )

# %%
if transformers is not None and course_utils.ready("generate"):
    mine = generate(ours, test_ids, 20, block_size=64, temperature=0)
    hf_out = hf_model.generate(
        test_ids,
        max_new_tokens=20,
        do_sample=False,
        pad_token_id=0,
        attention_mask=torch.ones_like(test_ids),
    )
    print("your generate, greedy, on the copy:", mine[0, test_ids.size(1) :].tolist())
    print("Hugging Face generate, greedy:     ", hf_out[0, test_ids.size(1) :].tolist())
    print("the same tokens:", torch.equal(mine, hf_out))

# %% [markdown]
# ### Optional: the real GPT-2
#
# If you are online and have about 550 MB of disk and a few minutes (the weights of GPT-2
# small, 124 million parameters, are a 548 MB download from the Hugging Face Hub, cached
# after the first time), set `LOAD_REAL_GPT2 = True` below and run the cell: it loads
# OpenAI's trained GPT-2 into the course's `DecoderModel` and writes with **your**
# `generate`, `top_k_filter` and `top_p_filter`. Without `transformers`, or offline, it
# says so and does nothing. It is off by default, and grading never runs it.

# %%
LOAD_REAL_GPT2 = False  # set to True to download GPT-2 small (548 MB) and write with it

if not LOAD_REAL_GPT2:
    print("Skipped: set LOAD_REAL_GPT2 = True to download GPT-2 small (548 MB) and try it.")
elif transformers is None:
    print("Skipped: this needs `pip install transformers`.")
elif course_utils.ready("generate", "top_k_filter", "top_p_filter"):
    try:
        gpt2_tokenizer = transformers.AutoTokenizer.from_pretrained("gpt2")
        gpt2 = DecoderModel.from_gpt2(transformers.GPT2LMHeadModel.from_pretrained("gpt2")).eval()
    except OSError as error:  # no network, no cache, or the Hub is unreachable
        print(f"Could not download GPT-2 ({type(error).__name__}); are you offline? {error}")
    else:
        real_ids = torch.tensor([gpt2_tokenizer.encode("The key idea of a language model is")])
        out = generate(
            gpt2, real_ids, 40, block_size=1024, temperature=0.8,
            filter_fn=lambda x: top_p_filter(top_k_filter(x, 50), 0.9),
            generator=torch.Generator().manual_seed(0),
        )  # fmt: skip
        print(gpt2_tokenizer.decode(out[0].tolist()))

# %% [markdown]
# ## What's next
#
# You have built the whole decoder-only loop: shifted targets, the loss at every position,
# a trained model, the generation loop with its filters, and the cache that makes it fast,
# and you have seen that the result is GPT-2's architecture to the last digit. Lab 06 puts
# an encoder in front of the decoder and joins them with cross-attention, the original
# Transformer's design for translation; lab 07 then measures the three families against
# each other on equal terms, to see which of the claims for decoder-only models hold at our
# scale.
