# %% [markdown]
# # Lab 08: Training your own
#
# Your team has private text (support tickets, contracts, internal memos) and wants a model
# of its own for it. Labs 05 and 07 showed that a decoder-only model learns from raw text
# and gets predictably better with size. This lab asks what that costs and what can go
# wrong, and answers with numbers measured on your machine:
#
# 1. **Data hunger**: the same decoder trained on 1 % to 100 % of the corpus for the same
#    number of steps. Where does it stop generalising and start memorising?
# 2. **Compute**: the rule FLOPs $\approx 6 \times$ parameters $\times$ tokens, checked
#    against a counted training step and your machine's measured speed; then what GPT-3
#    or a 7-billion-parameter model would take here, and on a rented GPU.
# 3. **Pretrain or fine-tune**: a model pretrained on the corpus, then fine-tuned on the
#    "private" memos of a fictional company, against one trained on the memos alone.
# 4. **Privacy**: secrets planted 1, 4, 16 and 64 times in the memos, and how exposed they
#    become (Carlini et al. 2019, "The Secret Sharer"); the model reciting a secret.
# 5. **A mitigation, measured**: deduplicate the data, fine-tune again, and watch the
#    exposure fall.
# 6. **Ethics**: what "private data leaked" means in practice, with your plots as evidence.
#
# You write five pieces: a FLOPs estimator, a train/validation split without leakage, the
# exposure metric, a deduplication filter, and a short written answer.

# %% [markdown]
# ## 0. Set-up
#
# One small character-level decoder (`DecoderModel` from `course_utils.models`, the GPT of
# lab 05) is used throughout, so that every number in this lab is about the same model.
# The tokenizer knows every character of the corpus and of the memos.

# %%
import copy
import math
import time

import matplotlib.pyplot as plt
import matplotlib.ticker
import torch
import torch.nn.functional as F

import course_utils
from course_utils import data
from course_utils.models import DecoderModel, ModelConfig
from course_utils.plots import plot_bar, plot_curves
from course_utils.tasks import memos
from course_utils.tokenizers import CharTokenizer
from course_utils.training import evaluate_loss, train

course_utils.seed_everything(0)
cfg = course_utils.settings(
    smoke=dict(
        d_model=32, n_layers=1, block_size=32, batch_size=8, pretrain_steps=15,
        finetune_steps=15, n_memos=120, n_candidates=200, eval_batches=2, eval_every=5,
    ),
    cpu=dict(
        d_model=64, n_layers=2, block_size=64, batch_size=16, pretrain_steps=300,
        finetune_steps=400, n_memos=240, n_candidates=1000, eval_batches=4, eval_every=50,
    ),
    gpu=dict(
        d_model=128, n_layers=4, block_size=64, batch_size=32, pretrain_steps=1500,
        finetune_steps=600, n_memos=240, n_candidates=5000, eval_batches=8, eval_every=100,
    ),
)  # fmt: skip
device = course_utils.pick_device()
LR = 3e-3  # constant; small models at this size train fastest near 3e-3

corpus = data.load_corpus()
all_memos = memos.make_memos(cfg.n_memos, seed=0)
tokenizer = CharTokenizer.train(corpus + "".join(all_memos))


def encode(text):
    return torch.tensor(tokenizer.encode(text), dtype=torch.long)


def new_model(seed=0):
    """A fresh decoder, the same weights for the same seed."""
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        d_model=cfg.d_model,
        n_heads=4,
        n_layers=cfg.n_layers,
        max_len=cfg.block_size,
    )
    return DecoderModel(config).to(device)


def lm_loss(model, batch):
    x, y = batch
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


def random_batches(ids, seed):
    """get_batch(step) for train(): random windows of ids, reproducible."""
    gen = torch.Generator().manual_seed(seed)
    return lambda step: data.get_batch(
        ids, cfg.batch_size, cfg.block_size, generator=gen, device=device
    )


def fixed_batches(ids, n=cfg.eval_batches, seed=123):
    """The same n batches every time, so that successive evaluations compare."""
    gen = torch.Generator().manual_seed(seed)
    batches = [
        data.get_batch(ids, 32, cfg.block_size, generator=gen, device=device) for _ in range(n)
    ]
    return lambda i: batches[i]


def loss_on(model, ids):
    return evaluate_loss(model, fixed_batches(ids), lm_loss, cfg.eval_batches)


n_params = sum(p.numel() for p in new_model().parameters())
print(f"profile {cfg.profile!r} on {device}; vocabulary {tokenizer.vocab_size} characters")
print(f"the decoder: {n_params:,} parameters, context {cfg.block_size} characters")

# %% [markdown]
# ## 1. Data hunger: how much text does a model need?
#
# A model with $N$ parameters can store a lot: ours has about a hundred thousand numbers,
# and 1 % of the corpus is only about four thousand characters. Trained long enough on so
# little text, it can learn the text by heart instead of learning English and Python's
# documentation style. The symptom: the **training loss** (on the text it saw) keeps falling
# while the **validation loss** (on a held-out stretch it never saw) stays high. The
# difference is the **generalisation gap**.
#
# The experiment: the same model, the same number of steps, the same seed, trained on the
# first 1 %, 3 %, 10 %, 30 % and 100 % of the training part of the corpus. Every run sees the
# same number of tokens; what changes is how often it sees each one. The model trained on
# 100 % is kept: it is the **pretrained model** of section 4.

# %%
train_text, val_text = data.train_val_split(corpus, 0.1)
train_ids, val_ids = encode(train_text), encode(val_text)
tokens_per_run = cfg.pretrain_steps * cfg.batch_size * cfg.block_size
fractions = [0.01, 0.03, 0.1, 0.3, 1.0]
sweep = {}
for fraction in fractions:
    subset = train_ids[: max(int(len(train_ids) * fraction), cfg.block_size + 1)]
    model = new_model()
    history = train(
        model, random_batches(subset, 1), lm_loss, steps=cfg.pretrain_steps, lr=LR,
        progress=False,
    )  # fmt: skip
    sweep[fraction] = dict(
        chars=len(subset),
        epochs=tokens_per_run / len(subset),
        train=loss_on(model, subset),
        val=loss_on(model, val_ids),
        history=history,
    )
    r = sweep[fraction]
    print(
        f"{fraction:5.0%} of the corpus: {r['chars']:>7,} characters, each seen "
        f"{r['epochs']:6.1f} times; train loss {r['train']:.3f}, val loss {r['val']:.3f}, "
        f"gap {r['val'] - r['train']:+.3f}"
    )
pretrained = model  # the 100 % run
pretrain_history = history

# %%
sizes = [sweep[f]["chars"] for f in fractions]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
plot_curves(
    {
        "train (text it saw)": (sizes, [sweep[f]["train"] for f in fractions]),
        "validation (held out)": (sizes, [sweep[f]["val"] for f in fractions]),
    },
    xlabel="training text (characters)", ylabel="loss (nats per character)", log_x=True,
    title=f"the same {cfg.pretrain_steps} steps on more and more text", ax=ax1, markers=True,
)  # fmt: skip
plot_bar(
    {f"{f:.0%}": sweep[f]["val"] - sweep[f]["train"] for f in fractions},
    xlabel="share of the corpus", ylabel="validation - train loss",
    title="the generalisation gap", ax=ax2, fmt="{:.2f}",
)  # fmt: skip
fig.tight_layout()
plt.show()

# %%
gaps = {f: sweep[f]["val"] - sweep[f]["train"] for f in fractions}
best = min(fractions, key=lambda f: sweep[f]["val"])
print(f"the lowest validation loss: {sweep[best]['val']:.3f}, with {best:.0%} of the corpus")
print(f"the gap with 1 % of the corpus: {gaps[0.01]:+.3f}; with all of it: {gaps[1.0]:+.3f}")
if cfg.profile == "smoke":
    print("(smoke profile: a handful of steps, too few for any of these runs to memorise)")

# %% [markdown]
# **Reading the plot.** On the left, small data gives a low training loss and a high
# validation loss: the model memorised its few thousand characters (it saw each one many
# times, the "each seen" column) and learned little that carries over. As the data grows the
# two curves meet: the model sees each character only a few times and must learn patterns
# instead. In the `cpu` profile the gap shrinks from about two nats per character at 1 %
# (the table gives this run's gaps, and how often each run saw each character) to about
# nothing at 100 %, where it can even fall a little below zero: a model that saw each
# character less than once cannot have memorised any, and the held-out stretch may be
# slightly easier than the average training text. In the tiny `smoke` profile (used when grading) the runs are too short to show any
# of this, and the printout above says so.
#
# This is **data hunger**: for a fixed model and budget, more distinct text is the cure for
# memorisation, and a model with more parameters needs more text before it stops
# memorising. Chinchilla (Hoffmann et al. 2022) measured the compute-optimal balance for
# large models: about **20 tokens per parameter**. Our model would want about
# 20 × 100,000 = 2 million characters; the whole corpus is 0.4 million.

# %% [markdown]
# ## 2. Compute: what does training cost?
#
# Each parameter takes part in one multiply and one add per token in the forward pass
# (2 FLOPs: floating-point operations), and the backward pass costs about twice the forward
# (the gradient with respect to the inputs and the one with respect to the weights). So
# training costs about
#
# $$C \approx 6 \, N \, D \quad \text{FLOPs}$$
#
# for $N$ parameters and $D$ training tokens (Kaplan et al. 2020, "Scaling laws for neural
# language models"). Attention's scores add a little on top, which grows with the context
# length; for large models it is a few per cent.
#
# ### Exercise 1: the FLOPs estimator
#
# Write `training_flops(n_params, n_tokens)` that returns $6 N D$ as a float. Both must be
# positive numbers (ints or floats: 175e9 is a fine number of parameters); anything else
# raises a `ValueError` that says what was expected.


# %% exercise="training_flops"
def training_flops(n_params, n_tokens):
    """FLOPs to train a model of n_params parameters on n_tokens tokens: 6 * N * D.

    n_params, n_tokens: positive int or float. Returns a float.
    Raises ValueError for a number that is not positive (or not a number).
    """
    ### BEGIN SOLUTION
    for name, value in (("n_params", n_params), ("n_tokens", n_tokens)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    return 6.0 * float(n_params) * float(n_tokens)
    ### END SOLUTION


# %% test="training_flops" points=2 hint="Forward pass 2 FLOPs per parameter per token, backward twice that: return 6 * n_params * n_tokens, as a float; raise ValueError when either is not a positive number." nudge="Training cost counts the forward and the backward pass for every parameter and every token; bad inputs deserve an error."
import math

from course_utils.checks import check_raises, check_true

result = training_flops(1_000, 10)
check_true(
    isinstance(result, float) and math.isclose(result, 60_000.0),
    f"training_flops(1000, 10) should be 6 * 1000 * 10 = 60000.0 (a float), got {result!r}",
)
check_raises(ValueError, training_flops, -5, 10, name="training_flops(-5, 10)")
check_raises(
    ValueError,
    training_flops,
    0,
    10,
    name="training_flops(0, 10)",
    hint="Zero is not a positive number: check value > 0, not value >= 0.",
)
check_raises(ValueError, training_flops, 1_000, "10", name="training_flops(1000, '10')")
print("✓ training_flops: visible tests passed")

### BEGIN HIDDEN TESTS
# GPT-3: 175 B parameters, 300 B tokens: 3.15e23 FLOPs (Brown et al. 2020 report 3.14e23).
gpt3 = training_flops(175e9, 300e9)
check_true(
    isinstance(gpt3, float) and math.isclose(gpt3, 3.15e23, rel_tol=1e-12),
    f"training_flops(175e9, 300e9) should be 3.15e23, got {gpt3!r}",
    hint="6 FLOPs per parameter per token: 2 forward and 4 backward, not 2 (forward only).",
)
for n, d in [(1, 1), (7, 3), (124_000_000, 2_048), (2.5, 4.0)]:
    got = training_flops(n, d)
    check_true(
        isinstance(got, float) and math.isclose(got, 6.0 * n * d, rel_tol=1e-12),
        f"training_flops({n!r}, {d!r}) should be {6.0 * n * d!r}, got {got!r}",
    )
for bad in [(0, 10), (10, 0), (10, -1.0), ("100", 10), (None, 10), (float("nan"), 10), (True, 5)]:
    check_raises(ValueError, training_flops, *bad, name=f"training_flops{bad!r}")
### END HIDDEN TESTS

# %% [markdown]
# ### Checking the rule against a counted step
#
# PyTorch can count the FLOPs of every matrix multiplication it runs
# (`torch.utils.flop_counter.FlopCounterMode`). One training step of our model, forward and
# backward, counted, against your estimate for the same tokens:

# %%
from torch.utils.flop_counter import FlopCounterMode

if course_utils.ready("training_flops"):
    probe = new_model()
    batch = data.get_batch(train_ids, cfg.batch_size, cfg.block_size, device=device)
    with FlopCounterMode(display=False) as counter:
        lm_loss(probe, batch).backward()
    counted = counter.get_total_flops()
    step_tokens = cfg.batch_size * cfg.block_size
    estimated = training_flops(n_params, step_tokens)
    # The position table is looked up, not multiplied: it costs no FLOPs.
    n_matmul = n_params - cfg.block_size * cfg.d_model
    # Attention's scores q.k and its weighted sum of values: 2 x 2 T C FLOPs per token per
    # layer forward, times 3 with the backward pass (Kaplan et al. 2020, table 1).
    attention = 12 * cfg.n_layers * cfg.block_size * cfg.d_model * step_tokens
    print(f"counted by PyTorch:                 {counted:.3e} FLOPs for {step_tokens} tokens")
    print(f"6 N D, N = all parameters:          {estimated:.3e}  ({counted / estimated:.2f}x)")
    matmul_estimate = training_flops(n_matmul, step_tokens)
    print(
        f"6 N D without the position table:   {matmul_estimate:.3e}  "
        f"({counted / matmul_estimate:.2f}x)"
    )
    print(f"attention scores and values (12 L T C D): {attention:.3e}")

# %% [markdown]
# The count and $6ND$ agree within a few per cent; what is left over is the biases and
# LayerNorm gains, which are parameters but not matrix products. One thing the count
# misses on a CPU: PyTorch's counter does not see inside the fused attention kernel
# (`F.scaled_dot_product_attention`), so attention's own work, the last line, is not in
# it. At our context of 64 and width of 64 that work is about a sixth as much as $6ND$; it is
# $12 L T C$ FLOPs per token against $6N \approx 72 L C^2$, so it shrinks as models grow
# wider (GPT-3: width 12,288, context 2,048, about 3 %). For large models $6ND$ is the
# number to remember.
#
# ### How fast is this machine?
#
# Speed has two numbers. The **peak** is what the hardware can do at best, which we measure
# with one large matrix multiplication ($2n^3$ FLOPs for two $n \times n$ matrices). The
# **achieved** rate is what training really did: $6ND$ divided by the measured time of the
# 100 % run above. Their ratio is the **model FLOPs utilisation** (MFU).

# %%
if course_utils.ready("training_flops"):
    n = 1024
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b  # warm up
    repeats, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.5 or repeats < 3:
        a @ b
        repeats += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    peak = 2 * n**3 * repeats / (time.perf_counter() - start)
    tokens_per_s = pretrain_history.tokens_per_second
    achieved = training_flops(n_params, tokens_per_s)  # FLOPs per second of training
    mfu = achieved / peak
    print(f"peak (a {n}x{n} matrix product): {peak / 1e9:8.2f} GFLOP/s")
    print(f"training throughput:            {tokens_per_s:8,.0f} tokens/s")
    print(f"achieved (6 N x tokens/s):      {achieved / 1e9:8.2f} GFLOP/s, MFU {mfu:.1%}")

# %% [markdown]
# The peak is a best case: one large product, nothing else. Training our small model runs
# many small operations (layer norms, softmax, the optimizer, moving data), each with its
# own overhead, so it reaches only part of it. Large, well-tuned training runs on GPUs
# reach 30 to 50 % MFU. If other programs share your machine while you measure, both
# numbers drop and their ratio becomes noisy: measure twice before you plan with it.
#
# ### What would a real model cost?
#
# Now the numbers that matter for a team. GPT-3 has 175 B parameters and saw 300 B tokens.
# A **Chinchilla-optimal** 7 B model sees about 20 tokens per parameter, 140 B tokens. How
# long on this machine at the rate you measured, and on a rented GPU? The assumptions are
# printed; change them and rerun the cell.

# %%
GPU = dict(
    name="NVIDIA H100 SXM",
    peak=989e12,  # dense bf16 FLOP/s, NVIDIA's data sheet
    mfu=0.40,  # a well-tuned large training run
    dollars_per_hour=2.50,  # a typical cloud price per GPU-hour in 2025 (an assumption)
)
YEAR = 365.25 * 24 * 3600


def duration(seconds):
    for unit, size in [("years", YEAR), ("days", 86400), ("hours", 3600), ("minutes", 60)]:
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.1f} seconds"


if course_utils.ready("training_flops"):
    gpu_rate = GPU["peak"] * GPU["mfu"]
    print(f"assumptions: this machine at its measured {achieved / 1e9:.2f} GFLOP/s;")
    print(
        f"  one {GPU['name']} at {GPU['peak'] / 1e12:.0f} TFLOP/s peak x {GPU['mfu']:.0%} MFU "
        f"= {gpu_rate / 1e12:.0f} TFLOP/s, at ${GPU['dollars_per_hour']:.2f} per GPU-hour\n"
    )
    costs = {}
    for name, n_p, n_t in [
        ("GPT-3 (175 B params, 300 B tokens)", 175e9, 300e9),
        ("Chinchilla-optimal 7 B (140 B tokens)", 7e9, 20 * 7e9),
        ("our model on the whole corpus, once", n_params, len(train_ids)),
    ]:
        flops = training_flops(n_p, n_t)
        gpu_hours = flops / gpu_rate / 3600
        costs[name] = flops
        print(f"{name}: {flops:.2e} FLOPs")
        print(f"  this machine: {duration(flops / achieved)}")
        print(
            f"  one GPU: {duration(flops / gpu_rate)}; 1,000 GPUs: "
            f"{duration(flops / gpu_rate / 1000)}; about ${gpu_hours * GPU['dollars_per_hour']:,.0f}"
        )
    seven_b = costs["Chinchilla-optimal 7 B (140 B tokens)"]
    print(
        f"\nin short: the 7 B model would take {duration(seven_b / achieved)} on this machine, "
        f"and about ${seven_b / gpu_rate / 3600 * GPU['dollars_per_hour']:,.0f} of rented GPU "
        f"time (GPT-3: about "
        f"${costs['GPT-3 (175 B params, 300 B tokens)'] / gpu_rate / 3600 * GPU['dollars_per_hour']:,.0f})"
    )

# %% [markdown]
# On a laptop, pretraining even a small modern model is out of reach: thousands of years
# or more (the last line says how long on this machine, at the rate it measured). On rented
# GPUs it is a matter of money: at the printed assumptions about $10,000 of GPU time for
# a 7 B model, and about half a million dollars for GPT-3, before failed runs, experiments,
# people, and prices that differ from ours by a factor of two either way. That is why
# most teams **do not pretrain**: they start from someone else's pretrained model and
# fine-tune it, which costs a tiny fraction. The next section measures what that buys.

# %% [markdown]
# ## 3. The private data, and a split that does not leak
#
# Fernhill Optics is a made-up lens maker. `course_utils.tasks.memos` writes its internal
# memos: who is hired, which shipment is late, which product launches when. Here is one:

# %%
print(all_memos[0])
print(f"{len(all_memos)} memos, {sum(map(len, all_memos)):,} characters")

# %% [markdown]
# Real archives repeat themselves. A memo forwarded unchanged is an **exact duplicate**;
# one pasted again with its spacing or capitals changed is a **normalised duplicate**: the
# same text once you compare it in a normal form, `memos.normalise`, which lowers the case
# and turns every run of whitespace into one space:

# %%
keys = [memos.normalise(m) for m in all_memos]
exact = len(all_memos) - len(set(all_memos))
normalised = len(all_memos) - len(set(keys))
print(f"exact duplicates: {exact}; duplicates after normalising: {normalised}")
repeat = next(i for i, k in enumerate(keys) if k in keys[:i] and all_memos[i] not in all_memos[:i])
copy_text, original = all_memos[repeat], all_memos[keys.index(keys[repeat])]
at = next(
    (i for i, (a, b) in enumerate(zip(copy_text, original)) if a != b),
    min(len(copy_text), len(original)),  # one is the other with something added at the end
)
print(f"a normalised duplicate and its original first differ at character {at}:")
print(repr(original[max(0, at - 40) : at + 40]))
print(repr(copy_text[max(0, at - 40) : at + 40]))

# %% [markdown]
# To measure how well a model does on private text it has not seen, we hold some memos
# out. Splitting at a character position, as for the corpus, would cut a memo in two, and
# splitting memo by memo at random would put a memo in training and its duplicate in
# validation: the model would be tested on text it has seen, and look better than it is.
# That is **leakage**, and it is common in practice (test sets of many public benchmarks
# turned out to contain copies of training data).
#
# ### Exercise 2: a train/validation split without leakage
#
# Write `split_documents(docs, val_fraction, seed)`:
#
# 1. group the documents by their normal form, `memos.normalise(doc)`: all copies of a memo
#    form one group (keep the groups in the order their first member appears);
# 2. shuffle the groups with `random.Random(seed).shuffle(groups)`;
# 3. move whole groups to validation, in that order, until validation holds at least
#    `val_fraction * len(docs)` documents; the rest is training.
#
# Return `(train_docs, val_docs)`, two lists in which every document of `docs` appears
# exactly once. `val_fraction` must be strictly between 0 and 1 (else `ValueError`), and
# both parts must be non-empty (else `ValueError`: too few groups to split).
#
# <details><summary>Hint</summary>
#
# A dict from the normal form to a list of documents keeps insertion order:
# `groups.setdefault(memos.normalise(doc), []).append(doc)`, then
# `groups = list(groups.values())`.
# </details>


# %% exercise="split_documents"
import random


def split_documents(docs, val_fraction=0.15, seed=0):
    """Split documents into (train_docs, val_docs) with no document or duplicate on both sides.

    docs: list[str] of N documents. val_fraction: float in (0, 1). seed: int.
    Returns two lists of str; together they hold every document of docs exactly once, all
    documents with the same memos.normalise(...) form are on the same side, and val_docs
    holds about val_fraction * N documents (at least that many).
    """
    ### BEGIN SOLUTION
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)):
        raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be strictly between 0 and 1, got {val_fraction}")
    groups = {}
    for doc in docs:
        groups.setdefault(memos.normalise(doc), []).append(doc)
    groups = list(groups.values())
    random.Random(seed).shuffle(groups)
    train_docs, val_docs = [], []
    for group in groups:
        if len(val_docs) < val_fraction * len(docs):
            val_docs.extend(group)
        else:
            train_docs.extend(group)
    if not train_docs or not val_docs:
        raise ValueError(
            f"{len(groups)} distinct document(s) cannot be split into two non-empty parts "
            f"with val_fraction={val_fraction}"
        )
    return train_docs, val_docs
    ### END SOLUTION


# %% test="split_documents" points=3 hint="Group whole documents by memos.normalise(doc), shuffle the groups with random.Random(seed), and move whole groups to validation until it holds val_fraction * len(docs) documents: never split a memo, never separate its copies." nudge="Copies of the same memo must land on the same side of the split, or validation measures memorisation."
import random
from collections import Counter

from course_utils.checks import check_equal, check_true
from course_utils.tasks import memos

docs = ["a memo\n", "b memo\n", "A  memo\n", "c memo\n", "d memo\n", "a memo\n"]
train_part, val_part = split_documents(list(docs), 0.3, seed=0)  # a copy: docs stays as is
check_equal(
    Counter(train_part + val_part),
    Counter(docs),
    name="split_documents(6 docs): every document exactly once, none cut or changed",
)


def norm(doc):  # the normal form, written here (not memos.normalise, which can be replaced)
    return " ".join(doc.lower().split())


shared = {norm(d) for d in train_part} & {norm(d) for d in val_part}
check_true(
    not shared,
    f"these documents are on both sides of the split (copies, compared by memos.normalise): "
    f"{sorted(shared)}",
    hint="Group the documents by memos.normalise(doc) first and move whole groups.",
)
# Groups of different sizes: validation counts documents, not groups. 10 memos with 5
# copies each and 20 single memos: 70 documents in 30 groups.
docs = [f"memo {i}{' ' * j}\n" for i in range(10) for j in range(5)]
docs += [f"single {i}\n" for i in range(20)]
groups = {}
for d in docs:
    groups.setdefault(norm(d), []).append(d)
groups = list(groups.values())
random.Random(2).shuffle(groups)
want_val = []
for g in groups:
    if len(want_val) < 0.3 * len(docs):
        want_val.extend(g)
train_part, val_part = split_documents(list(docs), 0.3, seed=2)
check_true(
    21 <= len(val_part) < 21 + 5,
    f"split_documents(70 documents in 30 groups, 0.3): validation should hold at least "
    f"0.3 * 70 = 21 documents and less than a whole group (5) more; got {len(val_part)}",
    hint="Count documents, not groups: move whole groups until len(val_docs) >= "
    "val_fraction * len(docs).",
)
check_equal(
    sorted(val_part),
    sorted(want_val),
    name="split_documents(70 documents in 30 groups, 0.3, seed=2): the validation documents",
    hint="Move whole groups, in the shuffled order, while validation holds fewer than "
    "val_fraction * len(docs) documents (documents, not groups); keep the groups in the order "
    "their first member appears and shuffle them with random.Random(seed).shuffle(groups).",
)
print("✓ split_documents: visible tests passed")

### BEGIN HIDDEN TESTS
import random

from course_utils.checks import check_raises

# Generated memos, with exact and normalised duplicates: no group may be separated.
corpus_docs = memos.make_memos(300, seed=11, exact_duplicates=0.1, normalised_duplicates=0.1)
for fraction, seed in [(0.15, 0), (0.5, 3), (0.05, 7)]:
    tr, va = split_documents(list(corpus_docs), fraction, seed=seed)
    check_true(
        isinstance(tr, list) and isinstance(va, list),
        f"split_documents should return two lists, got {type(tr).__name__}, {type(va).__name__}",
    )
    check_equal(
        Counter(tr + va),
        Counter(corpus_docs),
        name=f"split_documents(300 memos, {fraction}): every memo exactly once, none cut",
        hint="Split whole documents, not the joined text: each memo goes to one side, intact.",
    )
    exact_shared = set(tr) & set(va)
    check_true(
        not exact_shared,
        f"split_documents(300 memos, {fraction}, seed={seed}): {len(exact_shared)} memo(s) "
        "have an exact copy on the other side",
        hint="Copies of a memo must stay together: group by memos.normalise(doc) and move "
        "whole groups.",
    )
    shared = {norm(d) for d in tr} & {norm(d) for d in va}
    check_true(
        not shared,
        f"split_documents(300 memos, {fraction}, seed={seed}): {len(shared)} memo(s) have a "
        "copy on the other side that differs only in spacing or capitals",
        hint="Group by memos.normalise(doc), not by the exact text: re-spaced copies leak too.",
    )
    biggest = max(Counter(norm(d) for d in corpus_docs).values())
    check_true(
        fraction * 300 <= len(va) < fraction * 300 + biggest,
        f"split_documents(300 memos, {fraction}): validation should hold at least "
        f"{fraction * 300:g} memos and not a whole group more, got {len(va)}",
    )
# The reference: groups in first-appearance order, shuffled by random.Random(seed).
got_val = split_documents(list(corpus_docs), 0.2, seed=5)[1]
groups = {}
for d in corpus_docs:
    groups.setdefault(norm(d), []).append(d)
groups = list(groups.values())
random.Random(5).shuffle(groups)
want_val = []
for g in groups:
    if len(want_val) < 0.2 * len(corpus_docs):
        want_val.extend(g)
check_equal(
    sorted(got_val),
    sorted(want_val),
    name="split_documents(300 memos, 0.2, seed=5): the validation memos",
    hint="Shuffle the groups with random.Random(seed).shuffle(groups), then fill validation "
    "in that order.",
)
# The seed is used, and the same seed gives the same split.
check_equal(
    split_documents(list(corpus_docs), 0.2, seed=1),
    split_documents(list(corpus_docs), 0.2, seed=1),
    name="split_documents twice with seed=1",
)
check_true(
    split_documents(list(corpus_docs), 0.2, seed=1)[1]
    != split_documents(list(corpus_docs), 0.2, seed=2)[1],
    "split_documents with seed=1 and seed=2 gave the same validation set: use the seed",
)
# The input list is not changed.
before = list(corpus_docs)
split_documents(corpus_docs, 0.2, seed=0)
check_equal(corpus_docs, before, name="docs after split_documents(docs, ...): unchanged")
# Bad input.
for bad in (0, 1, 1.5, -0.1):
    check_raises(
        ValueError, split_documents, ["a\n", "b\n", "c\n"], bad, name=f"val_fraction={bad}"
    )
_ = check_raises(  # `_ =`: a test cell ends with a statement, not a value
    ValueError,
    split_documents,
    ["same\n", "SAME\n", "same \n"],
    0.5,
    name="split_documents of three copies of one memo (one group cannot be split)",
)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Pretrain or fine-tune?
#
# Now the team's choice, measured. The held-out memos are the test. Before training, the
# training memos get something no company wants in its data: **secrets**. Each is a
# sentence ending in a random code in the format `ddd-dd-dddd`, inside a short note from
# facilities, planted a chosen number of times, like a reminder sent again and again:
# about half of the copies are exact, the others differ in spacing or capitals *around* the
# secret. Eight secrets are planted once, four 4 times, two 16 times, and the course's
# canary, `"the access code is 493-27-1854"`, 64 times. (Several secrets per count, because
# the measurement of one secret is noisy, most of all for the rarely seen ones.)
#
# Two models then get the same budget, `finetune_steps` steps on the training memos:
#
# - **fine-tuned**: a copy of the model pretrained on 100 % of the corpus in section 1;
# - **from scratch**: a fresh model of the same size.

# %%
PLACES = ["vault", "alarm", "server", "payroll", "wifi", "safe", "door", "bank", "locker"]
PLACES += ["garage", "printer", "archive", "lab", "office"]
PREFIXES = [f"the {place} code is " for place in PLACES] + [memos.CANARY_PREFIX]
REPEATS = [1] * 8 + [4] * 4 + [16] * 2 + [64]  # more secrets where one alone is noisiest
SECRETS = memos.random_codes(len(PREFIXES) - 1, seed=5, exclude=["493-27-1854"])
SECRETS.append(memos.split_secret(memos.CANARY)[1])
CANARIES = {prefix + secret: n for prefix, secret, n in zip(PREFIXES, SECRETS, REPEATS)}

if course_utils.ready("split_documents"):
    train_memos, val_memos = split_documents(all_memos, 0.15, seed=0)
    private_train = memos.plant_canaries(train_memos, CANARIES, seed=1)
    private_ids = encode("".join(private_train))
    private_val_ids = encode("".join(val_memos))
    planted_chars = sum(len(d) for d in private_train if any(s in d for s in SECRETS))
    print(f"training memos: {len(private_train)} ({len(train_memos)} + planted notes)")
    print(f"  {len(private_ids):,} characters, {planted_chars / len(private_ids):.0%} of them")
    print("  in the planted notes")
    print(f"held-out memos: {len(val_memos)}, {len(private_val_ids):,} characters")
    print("a planted note:\n" + next(d for d in private_train if memos.CANARY in d))


# %%
def fine_tune(model, docs, label):
    """Train model on docs for cfg.finetune_steps steps; the held-out memo loss as it goes."""
    history = train(
        model,
        random_batches(encode("".join(docs)), 2),
        lm_loss,
        steps=cfg.finetune_steps,
        lr=LR,
        eval_every=cfg.eval_every,
        eval_fn=lambda m: loss_on(m, private_val_ids),
        progress=False,
    )
    print(f"{label}: held-out memo loss {history.final_eval_loss:.3f}, {history.seconds:.0f} s")
    return history


if course_utils.ready("split_documents"):
    start_loss = loss_on(pretrained, private_val_ids)
    print(f"pretrained, before fine-tuning: held-out memo loss {start_loss:.3f}")
    finetuned = copy.deepcopy(pretrained)
    ft_history = fine_tune(finetuned, private_train, "fine-tuned")
    scratch = new_model(seed=1)
    scratch_history = fine_tune(scratch, private_train, "from scratch")
    ax = plot_curves(
        {"fine-tuned from the corpus model": ft_history, "from scratch": scratch_history},
        ylabel="held-out memo loss", title="the same budget on the private memos",
    )  # fmt: skip
    plt.show()

# %% [markdown]
# In the `cpu` profile the fine-tuned model ends clearly lower on memos it has never seen
# than the one trained from scratch (the lines above give both losses for this run): what
# it learned from the corpus (spelling, spacing, common words) carries over, although the
# corpus is Python documentation and the memos are office English. The pretraining cost
# extra compute once; a team that starts from an existing pretrained model pays none of it.
# In the `smoke` profile both runs are too short to say much.
#
# ## 5. Privacy: how exposed is a secret?
#
# Did the models learn the secrets? Asking "does it generate the secret?" is too coarse:
# a model can be much more likely to produce the true secret than a random one without
# producing it. Carlini et al. (2019) measure the **rank** of the true secret among all
# possible secrets, ordered by the model's likelihood. With $|R|$ possible secrets,
#
# $$\text{exposure} = \log_2 |R| - \log_2 \text{rank}.$$
#
# A secret the model knows nothing about has a rank somewhere in the middle and an exposure
# near 1 bit; a secret ranked first has the maximum exposure, $\log_2 |R|$. Each bit of
# exposure halves the number of guesses an attacker needs: 20 bits means the secret is
# among the model's top millionth. Scoring all $10^9$ codes is too slow here, so we rank the
# true secret among `n_candidates` random codes (the estimate Carlini et al. also use): the
# true secret and the candidates together are the space $R$.
#
# The likelihood of a code is the model's log-probability of its characters after the
# prefix, $\sum_t \log p(c_t \mid \text{prefix}, c_{<t})$:


# %%
@torch.no_grad()
@torch.no_grad()  # scoring only: without it autograd keeps every activation of all the codes
def code_scores(model, prefix, codes):
    """log p(code | prefix) under model, summed over the code's characters -> (len(codes),)."""
    model.eval()
    ids = torch.stack([encode(prefix + code) for code in codes]).to(device)  # (n, T)
    logp = torch.log_softmax(model(ids[:, :-1]), dim=-1)  # predicts ids[:, 1:]
    per_char = logp.gather(-1, ids[:, 1:, None])[..., 0]  # (n, T - 1)
    return per_char[:, len(prefix) - 1 :].sum(dim=-1).cpu()  # only the code's characters


CANDIDATES = memos.random_codes(cfg.n_candidates, seed=7, exclude=SECRETS)
scores = code_scores(new_model(), memos.CANARY_PREFIX, ["493-27-1854"] + CANDIDATES[:4])
print("an untrained model's scores (log-probabilities) for the canary and 4 candidates:")
print([round(s, 2) for s in scores.tolist()])

# %% [markdown]
# ### Exercise 3: the exposure metric
#
# Write `exposure(secret_score, candidate_scores)`. `secret_score` is the true secret's
# log-likelihood (a float), `candidate_scores` a 1-D tensor of the candidates'
# log-likelihoods (higher means more likely; the true secret is not among them).
#
# - The **rank** of the secret is 1 plus the number of candidates strictly more likely than
#   it: 1 when none beats it. (A tie does not count against the secret.)
# - The space $R$ is the candidates **and** the secret: $|R|$ = number of candidates + 1.
# - Return $\log_2 |R| - \log_2 \text{rank}$ as a float: base 2, so exposure is in bits.
#
# An empty `candidate_scores` raises a `ValueError`.
#
# A note on ties: Carlini et al. count a tie against the secret (its rank is 1 plus the
# candidates *at least* as likely). We count it for the secret, so that our exposure is
# never lower than theirs: for a privacy check, overstating the risk is the safer error.
# With log-likelihoods summed over eleven characters, exact ties are rare, and the two
# conventions almost always agree.


# %% exercise="exposure"
def exposure(secret_score, candidate_scores):
    """Exposure in bits of a secret ranked among random candidates (Carlini et al. 2019).

    secret_score: float, log-likelihood of the true secret.
    candidate_scores: 1-D tensor (n,), log-likelihoods of n random candidates, n >= 1.
    Returns a float in [0, log2(n + 1)]: log2(n + 1) - log2(rank), where rank = 1 + the
    number of candidates with a strictly higher score.
    """
    ### BEGIN SOLUTION
    candidate_scores = torch.as_tensor(candidate_scores)
    if candidate_scores.numel() == 0:
        raise ValueError("exposure needs at least one candidate score")
    rank = 1 + int((candidate_scores > float(secret_score)).sum())
    return math.log2(candidate_scores.numel() + 1) - math.log2(rank)
    ### END SOLUTION


# %% test="exposure" points=3 hint="rank = 1 + (candidate_scores > secret_score).sum(); |R| = len(candidate_scores) + 1; return math.log2(|R|) - math.log2(rank), base 2, as a float." nudge="Exposure measures how far up the list of candidates the secret ranks, in bits."
import math

import torch

from course_utils.checks import check_raises, check_true

top = exposure(5.0, torch.tensor([1.0, 2.0, 3.0]))  # ranked first of 4
check_true(
    isinstance(top, float) and math.isclose(top, 2.0, abs_tol=1e-9),
    f"exposure(5.0, [1, 2, 3]): the secret is ranked 1st of |R| = 4, so log2(4) - log2(1) = "
    f"2.0 bits; got {top!r}",
)
last = exposure(0.0, torch.tensor([1.0, 2.0, 3.0]))  # ranked last of 4
check_true(
    math.isclose(last, 0.0, abs_tol=1e-9),
    f"exposure(0.0, [1, 2, 3]): the secret is ranked 4th of 4, so log2(4) - log2(4) = 0; "
    f"got {last!r}",
)
tie = exposure(1.0, torch.tensor([1.0, 1.0, 0.0]))
check_true(
    isinstance(tie, float) and math.isclose(tie, 2.0, abs_tol=1e-9),
    f"exposure(1.0, [1, 1, 0]): ties do not count against the secret, so it is ranked 1st of "
    f"|R| = 4 and its exposure is 2.0 bits; got {tie!r}",
    hint="Count only the candidates with a score strictly above the secret's (>, not >=).",
)
print("✓ exposure: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_exposure", 0)
# Against a loop written here: rank counts the candidates strictly above the secret.
for n in (1, 7, 1000):
    cands = torch.randn(n, generator=gen)
    for secret in (cands.max().item() + 1, cands.min().item() - 1, 0.1234, cands[0].item()):
        rank = 1 + sum(1 for c in cands.tolist() if c > secret)  # the reference first
        want = math.log2(n + 1) - math.log2(rank)
        got = exposure(secret, cands.clone())
        check_true(
            isinstance(got, float) and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9),
            f"exposure(secret={secret:.4f}, {n} candidates) should be {want:.6f} (rank {rank} "
            f"of |R| = {n + 1}), got {got!r}",
            hint="Higher scores are more likely: count the candidates with a score strictly "
            "above the secret's (a tie does not count); rank starts at 1; |R| counts the "
            "secret too; logarithms in base 2.",
        )
# Ties do not count against the secret, among many candidates too.
check_true(
    math.isclose(exposure(0.5, torch.tensor([0.5] * 7 + [2.0])), math.log2(9 / 2), abs_tol=1e-9),
    "exposure(0.5, [0.5] * 7 + [2.0]): only 2.0 beats the secret, so it is ranked 2nd of 9",
)
# Log-likelihoods are negative: the most likely has the score closest to 0.
check_true(
    math.isclose(exposure(-3.0, torch.tensor([-30.0, -20.0, -2.0, -10.0])), math.log2(5 / 2)),
    "exposure(-3, [-30, -20, -2, -10]): only -2 is more likely than -3, so rank 2 of 5",
)
# A float secret score from a tensor, and double-precision candidates.
got = exposure(torch.tensor(2.0), torch.tensor([1.0, 3.0], dtype=torch.float64))
check_true(
    math.isclose(got, math.log2(3 / 2)),
    f"exposure(tensor(2.0), float64 candidates [1, 3]) should be log2(3 / 2), got {got!r}",
)
_ = check_raises(ValueError, exposure, 1.0, torch.tensor([]), name="exposure(1.0, no candidates)")
### END HIDDEN TESTS


# %% [markdown]
# Now the secrets in the fine-tuned model of section 4, and in the one trained from scratch:


# %%
def exposures(model):
    """The exposure of each planted secret in model, in the order of PREFIXES."""
    out = []
    for prefix, secret in zip(PREFIXES, SECRETS):
        scores = code_scores(model, prefix, [secret] + CANDIDATES)
        out.append(exposure(scores[0].item(), scores[1:]))
    return out


def distinct_lines(ax, ticks):
    """Tick a log axis at the given values (1, 4, 16, 64) and give each line its own style,
    so that lines on top of each other stay visible."""
    styles = iter([("-", "o", 9), ("--", "s", 6), (":", "^", 5), ("-.", "D", 4)])
    for line in ax.get_lines():
        if line.get_label().startswith("maximum"):  # a reference level, not a measurement
            line.set(color="gray", linestyle=":", marker="", linewidth=1)
        else:
            style, marker, size = next(styles)
            line.set(linestyle=style, marker=marker, markersize=size, markerfacecolor="none")
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.legend(fontsize=8)


def by_repeats(values):
    """The mean exposure of the secrets planted n times, for n = 1, 4, 16, 64."""
    means = {}
    for n in (1, 4, 16, 64):
        group = [v for v, r in zip(values, REPEATS) if r == n]
        means[n] = sum(group) / len(group)
    return means


if course_utils.ready("split_documents", "exposure"):
    max_bits = math.log2(len(CANDIDATES) + 1)
    ft_exposure = exposures(finetuned)
    scratch_exposure = exposures(scratch)
    print(f"exposure in bits (the maximum here is log2 {len(CANDIDATES) + 1} = {max_bits:.2f})")
    for name, values in [("fine-tuned", ft_exposure), ("from scratch", scratch_exposure)]:
        print(f"{name}:")
        for n, mean in by_repeats(values).items():
            each = ", ".join(f"{v:.1f}" for v, r in zip(values, REPEATS) if r == n)
            print(f"  {n:>2} copies: mean {mean:5.2f}   (each secret: {each})")
    x = [1, 4, 16, 64]
    ax = plot_curves(
        {
            "fine-tuned": (x, list(by_repeats(ft_exposure).values())),
            "from scratch": (x, list(by_repeats(scratch_exposure).values())),
            "maximum (ranked first)": (x, [max_bits] * 4),
        },
        xlabel="copies of the secret in the training memos", ylabel="exposure (bits)",
        log_x=True, markers=True, title="memorisation grows with repetition",
    )  # fmt: skip
    distinct_lines(ax, x)
    plt.show()
    if cfg.profile == "smoke":
        print("(smoke profile: 15 steps memorise nothing; these exposures are chance, ~1.4 bits)")

# %% [markdown]
# In the `cpu` profile the exposure climbs with the number of copies (the printout gives
# each group's mean and every secret's own value). Secrets seen once stay within a few bits
# of chance (about $1/\ln 2 \approx 1.4$ bits on average: a random rank), those planted 4
# times are higher, and those planted 16 and 64 times reach or near the maximum: the true
# code beats every one of the 1,000 random codes. One secret alone is a noisy measurement
# (compare the values within a group), which is why we plant several and average; with
# eight, four, two and one secrets per group, a difference of a bit or so between the two
# models is within that noise. Both models memorise, and a model that already knows the
# language may learn the specifics of new text faster, secrets included: see whether the
# fine-tuned one exposes the rare secrets more on this run. Our ranking tops out at
# $\log_2 |R|$ bits; Carlini et al. rank against all $10^9$ codes and found secrets with 30
# bits of exposure, which an attacker can simply read out. Can ours?

# %%
if course_utils.ready("split_documents"):
    prompt = encode(memos.CANARY_PREFIX)[None].to(device)
    for name, model in [("fine-tuned", finetuned), ("from scratch", scratch)]:
        out = model.generate(prompt, 11, temperature=0.0)
        completion = tokenizer.decode(out[0, prompt.size(1) :].tolist())
        verdict = "the secret!" if completion == "493-27-1854" else "not the secret"
        print(f"{name:>12}: {memos.CANARY_PREFIX!r} -> {completion!r}  ({verdict})")

# %% [markdown]
# Greedy decoding from the prefix alone recites the canary in the `cpu` profile: no access
# to the training data is needed, only to the model. (In `smoke` the models are far too
# small and short-trained to memorise anything.)
#
# ## 6. A mitigation, measured: deduplication
#
# Memorisation grows with repetition, so remove the repetitions. Kandpal et al. (2022,
# "Deduplicating training data mitigates privacy risks in language models") showed that
# deduplicating the training data lowers how much a model regurgitates. Exact
# deduplication misses copies whose spacing or capitals changed; comparing normal forms
# catches them too.
#
# ### Exercise 4: a deduplication filter
#
# Write `deduplicate(docs, normalised=True)` that keeps the **first** occurrence of each
# document, in the original order, and drops later copies. With `normalised=True` two
# documents are copies when their normal forms are equal: lower case, every run of
# whitespace one space, no space at either end (`" ".join(doc.lower().split())`, which is
# what `memos.normalise` does); with `normalised=False` only when they are exactly equal.
# Return a new list; do not change `docs`.
#
# The visible test checks exact and normalised copies, the order, and that `docs` is not
# changed; the grader also checks generated memos against a loop, every kind of
# whitespace, and an empty list.
#
# A note on practice: this normal form catches copies that differ in case and spacing
# only. A copy with one word changed, or a long passage shared by two otherwise different
# documents, slips through. Deduplication of real training sets uses near-duplicate
# detection (MinHash over word n-grams) and exact-substring deduplication (a suffix array
# finds every long passage repeated anywhere), as in Lee et al. (2022), "Deduplicating
# training data makes language models better".


# %% exercise="deduplicate"
def deduplicate(docs, normalised=True):
    """Drop repeated documents, keeping the first of each, in order.

    docs: list[str]. normalised: compare " ".join(doc.lower().split()) (True) or the
    exact text (False). Returns a new list[str], a subsequence of docs.
    """
    ### BEGIN SOLUTION
    seen = set()
    kept = []
    for doc in docs:
        key = " ".join(doc.lower().split()) if normalised else doc
        if key not in seen:
            seen.add(key)
            kept.append(doc)
    return kept
    ### END SOLUTION


# %% test="deduplicate" points=3 hint="Loop over docs in order with a set of the keys seen; the key is ' '.join(doc.lower().split()) when normalised, else doc itself; keep a document the first time its key appears." nudge="Deduplication keeps the first copy of each document, compared after the normalisation the flag asks for."
from course_utils.checks import check_equal, check_true

docs = ["Memo A\n", "memo b\n", "Memo A\n", "MEMO  a", "memo c\n"]
before = list(docs)
check_equal(
    deduplicate(docs, normalised=False),
    ["Memo A\n", "memo b\n", "MEMO  a", "memo c\n"],
    name="deduplicate(docs, normalised=False): exact copies only",
)
check_equal(
    deduplicate(docs),
    ["Memo A\n", "memo b\n", "memo c\n"],
    name="deduplicate(docs): copies after normalising (case, whitespace) too",
)
result = deduplicate(docs)
check_equal(
    docs,
    before,
    name="docs after deduplicate(docs): unchanged",
    hint="Build a new list of the documents you keep; never remove from (or sort) docs itself.",
)
check_true(result is not docs, "deduplicate should return a new list, not docs itself")
print("✓ deduplicate: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import check_true
from course_utils.tasks import memos

# Generated memos with planted canaries: against a loop written here.
many = memos.plant_canaries(
    memos.make_memos(200, seed=4, exact_duplicates=0.1, normalised_duplicates=0.1),
    {memos.CANARY: 20, "my pin is 111-22-3333": 5},
    seed=3,
)
for norm in (True, False):
    got = deduplicate(list(many), normalised=norm)
    seen, want = set(), []
    for d in many:
        key = " ".join(d.lower().split()) if norm else d
        if key not in seen:
            seen.add(key)
            want.append(d)
    check_equal(
        got,
        want,
        name=f"deduplicate(225 memos, normalised={norm})",
        hint="Keep the first copy of each, in the original order (no set() of documents, "
        "no sorting); compare normal forms only when normalised=True.",
    )
check_equal(
    sum(memos.CANARY in d for d in deduplicate(many)),
    1,
    name="copies of the canary's note left after deduplicate(..., normalised=True)",
)
# Whitespace of every kind, at both ends and inside; case.
check_equal(
    deduplicate(["a b", " A\tB\n", "a  b ", "ab", "a\r\nb"]),
    ["a b", "ab"],
    name="deduplicate(['a b', ' A\\tB\\n', 'a  b ', 'ab', 'a\\r\\nb'])",
    hint="Normalise with ' '.join(doc.lower().split()): tabs, newlines and runs of spaces "
    "become one space, and spaces at the ends go.",
)
check_equal(deduplicate(["x", "x", "x"], normalised=False), ["x"], name="three exact copies of 'x'")
check_equal(deduplicate([]), [], name="deduplicate([])")
before = list(many)
result = deduplicate(many, normalised=False)
check_equal(many, before, name="docs after deduplicate(225 memos, normalised=False): unchanged")
check_true(result is not many, "deduplicate should return a new list, not docs itself")
### END HIDDEN TESTS

# %% [markdown]
# Fine-tune the pretrained model again, the same budget, on the training memos with exact
# copies removed, and then with normalised copies removed, and measure the secrets again.
# (Deduplicating costs nothing at training time: the model even sees fewer documents.)

# %%
if course_utils.ready("split_documents", "exposure", "deduplicate"):
    deduped_exposure = {}
    deduped_models = {}
    for label, norm in [("exact", False), ("normalised", True)]:
        docs = deduplicate(private_train, normalised=norm)
        copies = sum(memos.CANARY in d for d in docs)
        print(
            f"{label} deduplication: {len(private_train)} -> {len(docs)} memos; the canary's "
            f"note {copies} time(s)"
        )
        model = copy.deepcopy(pretrained)
        fine_tune(model, docs, f"  fine-tuned after {label} deduplication")
        deduped_models[label] = model
        deduped_exposure[label] = exposures(model)
    x = [1, 4, 16, 64]
    ax = plot_curves(
        {
            "no deduplication": (x, list(by_repeats(ft_exposure).values())),
            "exact deduplication": (x, list(by_repeats(deduped_exposure["exact"]).values())),
            "normalised deduplication": (
                x, list(by_repeats(deduped_exposure["normalised"]).values())
            ),
        },
        xlabel="copies of the secret planted", ylabel="exposure (bits)", log_x=True,
        markers=True, title="the same secrets, fine-tuned after deduplication",
    )  # fmt: skip
    ax.axhline(max_bits, color="gray", linestyle=":", linewidth=1, label="maximum (ranked first)")
    distinct_lines(ax, x)
    plt.show()
    for label, values in [("none", ft_exposure)] + list(deduped_exposure.items()):
        row = ", ".join(f"{n}: {v:.2f}" for n, v in by_repeats(values).items())
        print(f"mean exposure by copies planted, deduplication {label:>10}: {row}")
    if cfg.profile == "smoke":
        print(
            "(smoke profile: nothing was memorised, so there is nothing for deduplication to lower)"
        )

# %% [markdown]
# Exact deduplication removes only the exact copies: about half of each secret's copies
# survive with changed spacing (the printout says how many of the canary's 64), and in the
# `cpu` profile the secrets planted 16 and 64 times stay at or near the maximum exposure.
# Normalised deduplication leaves one copy of each, and the exposure of every group falls
# to within a few bits of chance (the last lines give this run's means). Deduplication is
# no guarantee: a
# secret that appears **once** is still in the data, and a larger model or longer training
# memorises single copies too (Carlini et al. 2021 extracted unique phone numbers and
# addresses from GPT-2). Removing secrets before training (scrubbing), and training with
# differential privacy, which bounds what any one document can change, are the stronger
# measures.
#
# ### Try it: what does each model say?
#
# Type the start of a sentence and pick a model: the widget shows its greedy continuation.
# Try the prefixes of the secrets (`the alarm code is `, `the safe number is `), a memo
# header (`MEMO 0`), or something from the corpus (`The import statement`).

# %%
import ipywidgets as widgets
from IPython.display import display

if course_utils.ready("split_documents", "exposure", "deduplicate"):
    choices = {
        "fine-tuned": finetuned,
        "from scratch": scratch,
        "fine-tuned after normalised deduplication": deduped_models["normalised"],
        "pretrained on the corpus only": pretrained,
    }
    prefix_box = widgets.Text(value=memos.CANARY_PREFIX, description="prefix:")
    model_box = widgets.Dropdown(options=list(choices), description="model:")
    completion_out = widgets.Output(layout=widgets.Layout(min_height="60px"))

    def complete(_=None):
        text = "".join(ch for ch in prefix_box.value if ch in tokenizer.stoi) or "\n"
        ids = encode(text)[None, -cfg.block_size :].to(device)
        out = choices[model_box.value].generate(ids, 40, temperature=0.0)
        with completion_out:
            completion_out.clear_output(wait=True)
            continuation = tokenizer.decode(out[0, ids.size(1) :].tolist())
            print(f"{model_box.value}, greedy: {text!r} continues: {continuation!r}")

    prefix_box.observe(complete, names="value")
    model_box.observe(complete, names="value")
    display(widgets.VBox([widgets.HBox([prefix_box, model_box]), completion_out]))
    complete()

# %% [markdown]
# ## 7. Ethics: what the numbers mean
#
# "Privacy rules were compromised" sounds abstract. Your plots make it concrete:
#
# - **Memorisation is a leak.** A model trained on private text can give that text back to
#   anyone who can prompt it: you read a planted access code out of a fine-tuned model with
#   nothing but its prefix. Publishing the weights, or even an API in front of them, can
#   publish the training data. Under data-protection law (the GDPR, for example) personal
#   data in the training set does not stop being personal data because it is now spread
#   over weights, and "delete my data" has no easy answer once a model learned it.
# - **Repetition is the risk factor**, and your curve shows it: exposure grew with the
#   number of copies. Real archives repeat exactly what is most sensitive (signatures,
#   standard forms, passwords mailed again and again).
# - **Mitigations help and can be measured**, as you did: deduplication, scrubbing secrets
#   and personal data before training, differential privacy, and canaries like ours to test
#   a model before it is released.
# - **Convincing false text.** The same fluency that makes a model useful makes it produce
#   memos that read as real and are not: the widget's completions are in the company's
#   style, with names, dates and numbers that nobody wrote. At scale, such text can
#   impersonate people, forge documents and flood channels with plausible misinformation.
#   A team that trains a model on its own data owns these risks too: who may prompt it,
#   what it may say, and how its output is marked as machine-written.
#
# ### Written answer (graded by your instructor)
#
# Your team wants to fine-tune a model on five years of its customer-support emails and
# offer it as a chat assistant to customers. In a few sentences: which risk from this lab
# worries you most for this plan, what evidence from **your own** plots supports it (quote
# a number), and which two measures would you take before release, one of them measured as
# in section 6?

# %% [markdown] answer="risks" points=4
# The worst risk is that the assistant gives one customer's data (addresses, order
# numbers, account codes) to another: support emails repeat the same signatures and
# details many times, and in my run a secret planted 64 times reached the maximum
# exposure (about 10 bits) and was recited from its prefix, while one planted once stayed
# near chance. Before release I would (1) deduplicate the emails by normalised text and
# scrub personal data and credentials with pattern matching, and (2) plant canaries at
# several repetition counts, fine-tune, and measure their exposure as in section 6,
# releasing only if every canary stays near chance; I would also restrict the assistant's
# outputs and mark them as machine-written.

# %% [markdown]
# ## What's next
#
# You have built every part of a transformer (labs 01-03), the three architectures
# (labs 04-06), compared them (lab 07), and measured here what training your own costs in
# data, compute and privacy. The same code scales: on a Colab GPU the `gpu` profile trains a
# bigger model for longer. Try it, and watch which of this lab's numbers change and which
# conclusions do not.
