# %% [markdown]
# # Lab 07: Why decoder-only won, measured on equal terms
#
# Labs 04 to 06 built the three families from the same parts: the **encoder** (Type C,
# BERT), the **decoder** (Type B, GPT) and the **encoder-decoder** (Type A, BART and T5).
# Today almost every large language model is a decoder. Four reasons are usually given:
#
# 1. **simplicity**: one stack, one mask, one loss;
# 2. **efficiency**: next-token prediction learns from every token of every sequence;
# 3. **versatility**: every task can be written as text, so one model does them all;
# 4. **scalability**: the loss falls as a smooth power law of the compute.
#
# A slogan is not evidence. In this lab you test each claim yourself, with the three
# families built from `course_utils`, on the same data and at the same training compute
# (FLOPs counted exactly), each comparison repeated with **several seeds** (three; two
# on a laptop for the costliest experiments, versatility and scaling) so that you can
# tell a difference from luck, and you read the numbers, including where a claim does
# **not** hold at laptop scale. Then you meet the strongest counter-evidence: T5's careful
# comparison, in which the encoder-decoder won.
#
# You will write four small tools the experiments need:
#
# 1. `supervised_tokens`: how many positions of a batch give the loss a target;
# 2. `format_prompt` and `parse_answer`: a task written as text, and its answer read back;
# 3. `flops_per_token`: the training compute of one token of a decoder;
# 4. `fit_power_law`: a straight line in log-log space.
#
# Every number about **our** models in this notebook is printed by the code when it runs;
# the prose never types one in. Figures from papers are marked as published, with their
# source.

# %% [markdown]
# ## 0. Set-up
#
# Imports, a fixed seed, and the settings of the current profile (tiny when grading, small
# on a laptop, bigger on a GPU). `seeds` repeats every experiment; a result is reported as
# the mean over seeds ± its standard error (the standard deviation over seeds divided by
# the square root of their number).

# %%
import ast
import functools
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import course_utils
from course_utils import experiments
from course_utils.data import load_corpus, train_val_split
from course_utils.models import DecoderModel, EncoderDecoderModel, EncoderModel, ModelConfig
from course_utils.tasks import dates, prompts, sentiment
from course_utils.training import train, warmup_cosine

course_utils.seed_everything(0)
cfg = course_utils.settings(
    smoke=dict(
        d_model=16, n_layers=1, block=32, batch_size=8, eff_steps=4, n_evals=2, seeds=(0, 1, 2),
        vers_steps=3, vers_lr=2e-3, vers_seeds=(0, 1, 2), n_lines=120, mix_text=120, n_test=16,
        iso_widths=((8, 12, 16, 24),) * 3, iso_ref=16, iso_layers=1, iso_batch=4,
        iso_steps=(3, 6, 12), iso_lr=3e-3, iso_seeds=(0, 1), n_boot=50, threads=1,
    ),
    cpu=dict(
        d_model=48, n_layers=2, block=64, batch_size=32, eff_steps=100, n_evals=5, seeds=(0, 1, 2),
        vers_steps=1000, vers_lr=2e-3, vers_seeds=(0, 1), n_lines=6000, mix_text=0, n_test=300,
        iso_widths=((4, 6, 8, 12), (4, 6, 8, 12), (8, 10, 12, 16)), iso_ref=8,
        iso_layers=2, iso_batch=32, iso_steps=(150, 300, 600), iso_lr=3e-3, iso_seeds=(0, 1),
        n_boot=1000, threads=1,
    ),
    gpu=dict(
        d_model=128, n_layers=4, block=128, batch_size=64, eff_steps=1000, n_evals=10,
        seeds=(0, 1, 2), vers_steps=2500, vers_lr=1e-3, vers_seeds=(0, 1, 2), n_lines=20000,
        mix_text=20000, n_test=500,
        iso_widths=((48, 64, 96, 128, 192),) * 3, iso_ref=96, iso_layers=4, iso_batch=32,
        iso_steps=(100, 300, 1000), iso_lr=2e-3, iso_seeds=(0, 1, 2), n_boot=1000,
    ),
)  # fmt: skip
device = course_utils.pick_device()
print(f"profile {cfg.profile!r} on {device}; seeds {cfg.seeds}")
start_time = time.perf_counter()
start_cpu = time.process_time()


def mean_se(values):
    """Mean over seeds and its standard error (NaN with one seed)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))


def judge(a, b, *, lower_is_better, what="loss", names=("A", "B")):
    """Compare seed-paired results a and b: the mean difference a - b, its standard error, and
    a verdict by the two-standard-error rule (a gap under two standard errors is a tie)."""
    gap, se = mean_se(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    if not abs(gap) > 2 * se:  # also a tie when se is NaN (one seed) or both are 0
        word = "ties with"
    elif (gap < 0) == lower_is_better:
        word = "beats"
    else:
        word = "trails"
    return f"{names[0]} {word} {names[1]}: {what} difference {gap:+.3f} ± {se:.3f} (± 1 s.e.)"


# %% [markdown]
# One character vocabulary serves every family in sections 1, 2 and 4, so that no model
# gets a better tokenizer than another: `<pad>`, `<bos>`, `<eos>`, `<mask>`, then the
# characters. The plain text is the course's offline corpus (Python's documentation); 10%
# is kept for validation.

# %%
vocab = prompts.CharVocab()
PAD, BOS, EOS, MASK = vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.mask_id
corpus = load_corpus("pydoc")
corpus_ids = torch.tensor(vocab.encode(corpus), dtype=torch.long)
train_ids, val_ids = train_val_split(corpus_ids, 0.1)
T = cfg.block


def model_config(d_model, n_layers, **overrides):
    """A ModelConfig of the lab's size and vocabulary (the same for the three families)."""
    settings = dict(vocab_size=len(vocab), n_heads=2 if d_model < 64 else 4, max_len=T + 2)
    settings.update(pad_id=PAD, bos_id=BOS, eos_id=EOS, **overrides)
    return ModelConfig(d_model=d_model, n_layers=n_layers, **settings)


base = model_config(cfg.d_model, cfg.n_layers)
print(f"{len(vocab)} characters; corpus {len(corpus_ids):,} tokens; models d_model={base.d_model}")

# %% [markdown]
# ## 1. Simplicity: what each family needs
#
# Build the three families at the same width and depth and count what goes into them: the
# distinct kinds of modules, the parameters, and the lines of model code in
# `course_utils.models` (docstrings, comments and blank lines left out; the shared parts of
# `course_utils.layers` are not counted for anyone). Then list what training and inference
# need beyond the model: that last column is a **description** of the code, not a
# measurement.


# %%
def code_lines(cls):
    """Lines of code of a class, without its docstrings, comments and blank lines."""
    source = inspect.getsource(cls)
    tree = ast.parse(source)
    skip = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                skip.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = source.splitlines()
    return sum(
        1
        for i, line in enumerate(lines, start=1)
        if i not in skip and line.strip() and not line.strip().startswith("#")
    )


families = {
    "decoder (B)": DecoderModel(base),
    "encoder (C)": EncoderModel(base),
    "encoder-decoder (A)": EncoderDecoderModel(base),
}
needs = {  # a description of the code, not a measurement
    "decoder (B)": ("causal", "next token", "sampling loop (KV cache)"),
    "encoder (C)": ("padding", "masked tokens (+ a new head per task)", "none: cannot write"),
    "encoder-decoder (A)": (
        "padding, causal, cross (3)",
        "target tokens",
        "encoder once, then decoder loop (two caches)",
    ),
}
measured = {}
print(f"{'family':<21}{'kinds':>6}{'params':>9}{'lines':>7}  described: masks / loss / decoding")
for name, model in families.items():
    kinds = {type(m).__name__ for m in model.modules()}
    n_params = sum(p.numel() for p in model.parameters())
    measured[name] = (len(kinds), n_params, code_lines(type(model)), kinds)
    mask, loss, decode = needs[name]
    print(
        f"{name:<21}{len(kinds):>6}{n_params:>9,}{code_lines(type(model)):>7}  "
        f"{mask} / {loss} / {decode}"
    )
fewest_lines = min(measured, key=lambda n: measured[n][2])
print(f"fewest lines of model code: {fewest_lines}")
kind_counts = {n: m[0] for n, m in measured.items()}
shared = set.intersection(*(m[3] for m in measured.values()))
print(
    f"module kinds: {kind_counts}; {len(shared)} kinds are shared by all three families; "
    f"kinds only some use: {sorted(set.union(*(m[3] for m in measured.values())) - shared)}"
)
ratio = measured["encoder-decoder (A)"][1] / measured["decoder (B)"][1]
print(f"at the same width and depth the encoder-decoder has {ratio:.2f} x the decoder's parameters")

# %% [markdown]
# Read the printed lines, not a slogan. The lines of code do not make the decoder the
# shortest class (the line above names the shortest): the encoder's count includes its
# masked-LM and classification heads, pooling and sentence embeddings, and the decoder's
# its sampling loop; the encoder-decoder's is the longest of the three by far.
# The count of module kinds says even less: all three are assembled from the same
# `course_utils.layers` parts, so the kinds are nearly the same set, and the count measures
# how this library was written, not how hard each idea is. (A cross-attention block is
# the same `TransformerBlock` class with a switch on, so it adds no new kind.) What does
# differ is the described column: the decoder needs one mask and one loss for everything;
# the encoder-decoder carries two stacks, cross-attention, three masks and a decoding loop
# that must run the encoder first; the encoder cannot write at all, so every new task
# needs a new head and fine-tuning. At the same width and depth the encoder-decoder has
# more parameters (printed ratio): "equal size" already needs a choice, which is why the
# rest of the lab compares at **equal compute**.
#
# ## 2. Efficiency: how much of each sequence teaches
#
# A loss is an average over positions that have a target; a label of `-100`
# (`ignore_index`) has none. Next-token prediction gives every position a target, masked
# language modelling only the 15% it masked, and a sequence-to-sequence model only its
# target side.
#
# ### Exercise 1: supervised tokens
#
# Count, for each sequence of a batch of labels, the positions that give the loss a target.


# %% exercise="supervised_tokens"
def supervised_tokens(labels, ignore_index=-100):
    """labels: (B, T) long tensor; ignore_index marks positions without a target.

    Returns a (B,) long tensor: per sequence, the number of positions whose label is not
    ignore_index (the positions cross_entropy(..., ignore_index=ignore_index) averages over).
    """
    ### BEGIN SOLUTION
    return (labels != ignore_index).sum(dim=1)
    ### END SOLUTION


# %% test="supervised_tokens" points=2 hint="Compare labels with ignore_index (not with 0 or pad_id) and sum over the time axis, dim=1: one count per sequence." nudge="Only the positions that carry a real label count as supervised tokens, one count per sequence."
import torch

from course_utils.checks import check_tensor

labels = torch.tensor([[5, -100, 7, -100], [-100, -100, -100, 2]])
check_tensor(
    supervised_tokens(labels),
    torch.tensor([2, 1]),
    name="supervised_tokens([[5, -100, 7, -100], [-100, -100, -100, 2]])",
)
print("✓ supervised_tokens: visible tests passed")

### BEGIN HIDDEN TESTS
import torch.nn.functional as F

from course_utils.checks import check_equal, hidden_generator

# A label 0 is a real target (the id of <pad> may still be a target): only ignore_index counts.
check_tensor(supervised_tokens(torch.tensor([[0, 0, -100]])), torch.tensor([2]), name="zeros")
check_tensor(
    supervised_tokens(torch.tensor([[3, -1, -1], [-1, -1, -1]]), ignore_index=-1),
    torch.tensor([1, 0]),
    name="ignore_index=-1 and an empty row",
)
# Random labels: the counts add up to what cross_entropy's sum / mean ratio implies.
gen = hidden_generator("test_supervised_tokens", 0)
labels = torch.randint(0, 9, (6, 17), generator=gen)
labels[torch.rand(6, 17, generator=gen) < 0.7] = -100
logits = torch.randn(6, 17, 9, generator=gen)
total = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="sum")
mean = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
counts = supervised_tokens(labels)
check_equal(tuple(counts.shape), (6,), name="shape of the counts for (6, 17) labels")
check_equal(int(counts.sum()), round((total / mean).item()), name="total supervised positions")
check_tensor(counts, (labels != -100).sum(1), name="counts for random labels")
### END HIDDEN TESTS

# %% [markdown]
# Now real batches. All three families read the same windows of the corpus, `T` characters
# each: the decoder predicts each next character; the encoder sees the window with 15% of
# its characters replaced by `<mask>` (BERT's 80/10/10 rule left out) and predicts those;
# the encoder-decoder reads the first half and writes the second half.

# %%
batch_gen = torch.Generator().manual_seed(0)


def windows(data, n, generator):
    starts = torch.randint(0, len(data) - T - 1, (n,), generator=generator)
    return torch.stack([data[s : s + T + 1] for s in starts.tolist()])


def family_batch(family, x, generator):
    """(inputs, labels) of one family from windows x (B, T + 1); labels -100 = no target."""
    if family == "decoder":
        return (x[:, :T],), x[:, 1:]
    if family == "encoder":
        ids = x[:, :T].clone()
        masked = torch.rand(ids.shape, generator=generator) < 0.15
        labels = torch.where(masked, ids, torch.full_like(ids, -100))
        ids[masked] = MASK
        return (ids,), labels
    half = T // 2
    src, tgt = x[:, :half], x[:, half:T]
    tgt_in = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], dim=1)
    return (src, tgt_in), tgt


def family_logits(family, model, inputs):
    if family == "encoder":
        return model.masked_lm_logits(*inputs)
    return model(*inputs)


def family_loss(family):
    def loss_fn(model, batch):
        inputs, labels = batch
        logits = family_logits(family, model, inputs)
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)

    return loss_fn


FAMILIES = ("decoder", "encoder", "encoder-decoder")
x = windows(train_ids, cfg.batch_size, batch_gen)
if course_utils.ready("supervised_tokens"):
    print(f"{'family':<16}{'supervised per sequence':>24}{'share':>8}")
    for family in FAMILIES:
        _, labels = family_batch(family, x, batch_gen)
        per_seq = supervised_tokens(labels).float().mean().item()
        print(f"{family:<16}{per_seq:>24.1f}{per_seq / T:>8.0%}")

# %% [markdown]
# Per sequence the decoder learns from every character, the encoder from about one in
# seven and the encoder-decoder from half. But a sequence is not the unit that costs
# money: **compute** is. To compare at equal compute we need to count it.
#
# ### Exercise 2: FLOPs per token
#
# A weight matrix of shape `(n_in, n_out)` costs `2 * n_in * n_out` floating-point
# operations per token (a multiply and an add for each weight). A decoder block has four
# `d_model x d_model` attention projections (queries, keys, values, output) and two
# feed-forward matrices (`d_model x d_ff` and `d_ff x d_model`). Attention itself adds two
# matrix products per layer: scores `q @ k.T` and the weighted sum `weights @ v`, each
# `2 * context * d_model` FLOPs for one token attending to `context` keys (we count the
# full square, as the code computes it, even where the causal mask zeroes it). The output
# head is a `d_model x vocab_size` matrix. Embedding look-ups, biases, LayerNorms and the
# softmax are left out (they are small). The backward pass costs about twice the forward,
# so a training step costs 3x the forward pass (Kaplan et al., 2020).


# %% exercise="flops_per_token"
def flops_per_token(n_layers, d_model, d_ff, vocab_size, context, backward=True):
    """Matrix-product FLOPs for one token of a decoder-only model.

    Forward: per layer 2 * (4 * d_model**2 + 2 * d_model * d_ff) for the weights plus
    2 * 2 * context * d_model for attention's two products; plus 2 * d_model * vocab_size
    for the head. backward=True: a training step, 3 times the forward FLOPs.
    Returns a float.
    """
    ### BEGIN SOLUTION
    weights = 4 * d_model * d_model + 2 * d_model * d_ff
    per_layer = 2 * weights + 2 * 2 * context * d_model
    forward = n_layers * per_layer + 2 * d_model * vocab_size
    return float(3 * forward if backward else forward)
    ### END SOLUTION


# %% test="flops_per_token" points=3 hint="Forward = n_layers * (2 * (4 d^2 + 2 d d_ff) + 4 * context * d) + 2 * d * vocab_size; the head counts once, not per layer; backward=True multiplies the whole forward by 3." nudge="Count the multiply-adds of every layer of one forward pass per token, then how much the backward pass adds."
import torch

from course_utils.checks import check_tensor


def _f64(x):
    return torch.tensor(float(x), dtype=torch.float64)


check_tensor(
    _f64(flops_per_token(1, 4, 16, 10, 8, backward=False)),
    _f64(2 * (4 * 16 + 2 * 4 * 16) + 4 * 8 * 4 + 2 * 4 * 10),
    name="flops_per_token(1 layer, d_model=4, d_ff=16, vocab=10, context=8, forward only)",
)
print("✓ flops_per_token: visible tests passed")

### BEGIN HIDDEN TESTS
import torch
from torch.utils.flop_counter import FlopCounterMode

from course_utils.checks import check_equal, check_tensor
from course_utils.models import DecoderModel, ModelConfig

# Against PyTorch's own FLOP counter on a real decoder, forward and forward + backward.
# On CPU the counter does not see the fused attention kernel, so attention's two products
# are measured separately, by running them as plain matmuls.
for n_layers, d, d_ff, n_vocab, t in [(2, 32, 64, 50, 12), (3, 24, 96, 37, 20)]:
    model = DecoderModel(
        ModelConfig(
            vocab_size=n_vocab, d_model=d, n_heads=2, n_layers=n_layers, d_ff=d_ff, max_len=t
        )
    )
    ids = torch.randint(0, n_vocab, (2, t))
    q = torch.randn(2, 2, t, d // 2, requires_grad=True)
    k = torch.randn(2, 2, t, d // 2, requires_grad=True)
    for backward in (False, True):
        with FlopCounterMode(display=False) as counter:
            out = model(ids)
            scores = q @ k.transpose(-2, -1)
            mixed = scores @ k
            if backward:
                (out.sum() + mixed.sum()).backward()
        # The attention products ran once here; the model runs them in every layer.
        attention = 2 * 2 * 2 * t * t * (d // 2) * 2 * (3 if backward else 1)
        measured = counter.get_total_flops() + (n_layers - 1) * attention
        check_tensor(
            _f64(flops_per_token(n_layers, d, d_ff, n_vocab, t, backward=backward) * 2 * t),
            _f64(measured),
            rtol=1e-6,
            name=f"FLOPs of 2 x {t} tokens, {n_layers} layers, d={d}, backward={backward}",
            hint="Count every matrix once per layer, attention's two products (4 * context * d "
            "per layer), the head once; training is 3 x forward.",
        )
check_equal(type(flops_per_token(1, 8, 32, 10, 4)), float, name="the type of the result")
### END HIDDEN TESTS

# %% [markdown]
# `course_utils.experiments.flops_per_token` does the same for the three families (the
# encoder-decoder's source and target tokens cost differently: a target token also
# attends over the source). Your function and the library agree on the decoder:

# %%
if course_utils.ready("flops_per_token"):
    mine = flops_per_token(base.n_layers, base.d_model, base.d_ff, base.vocab_size, T)
    theirs = experiments.flops_per_token(base, "decoder", context=T)
    print(f"one training token of our decoder: {mine:,.0f} FLOPs (library: {theirs:,.0f})")

flops_per_step = {
    "decoder": cfg.batch_size * experiments.flops_per_example(base, "decoder", length=T),
    "encoder": cfg.batch_size * experiments.flops_per_example(base, "encoder", length=T),
    "encoder-decoder": cfg.batch_size
    * experiments.flops_per_example(base, "encoder-decoder", length=T // 2, target_len=T // 2),
}
for family, flops in flops_per_step.items():
    print(f"{family:<16} {flops / 1e9:6.2f} GFLOPs per training step")


# %% [markdown]
# ### Learning curves at equal compute, three seeds
#
# Which variant learns most per FLOP? Every variant answers **the same question**: *given
# the first half of a validation window, predict the second half*. Four variants, each
# trained for the **same number of FLOPs** (what the decoder spends in `eff_steps` steps),
# with `experiments.train_for_flops`, a learning rate warmed up and decayed to the end of
# the budget, and three seeds (the same batches for every variant within a seed, so the
# comparison is paired):
#
# - **decoder, every token**: next-token loss on the whole window (the efficiency claim);
# - **decoder, second half**: the same model and data, the loss on the second half only,
#   the targets the encoder-decoder gets: it isolates what the *extra targets* buy;
# - **prefix LM**: the decoder with the mask switched by `DecoderModel(...)(ids,
#   prefix_len=T // 2)`: the first half sees itself in both directions, as an encoder's
#   input does, the second half is causal; the loss on the second half. It is T5's third
#   architecture: one stack, an encoder's view of the input;
# - **encoder-decoder**: reads the first half, writes the second.
#
# The encoder is left out here: it cannot write a continuation, and its masked-token loss
# answers an easier question (it sees both sides of each gap), so its number could not be
# read against these. The prefix mask costs no extra FLOPs (we count the full square of
# attention scores either way), so the three decoder variants take the same number of
# steps. (With a single layer the prefix LM and the second-half decoder are the same
# model on this loss: the prefix's two-way view reaches the second half only through a
# second layer. The `smoke` profile has one layer; look at `cpu` for the difference.)

# %%
val_gen = torch.Generator().manual_seed(1)
val_windows = [windows(val_ids, cfg.batch_size, val_gen) for _ in range(4)]
HALF = T // 2
VARIANTS = ("decoder, every token", "decoder, second half", "prefix LM", "encoder-decoder")


def variant_batch(variant, x, generator):
    """(inputs, labels) of a variant from windows x (B, T + 1)."""
    if variant == "encoder-decoder":
        return family_batch("encoder-decoder", x, generator)
    ids, labels = x[:, :T], x[:, 1:].clone()
    if variant != "decoder, every token":  # targets x[HALF:T], as the encoder-decoder's
        labels[:, : HALF - 1] = -100
        labels[:, T - 1 :] = -100
    return (ids,), labels


def variant_logits(variant, model, inputs):
    if variant == "prefix LM":
        return model(inputs[0], prefix_len=HALF)
    return family_logits(
        "encoder-decoder" if variant == "encoder-decoder" else "decoder", model, inputs
    )


def variant_loss(variant):
    def loss_fn(model, batch):
        inputs, labels = batch
        logits = variant_logits(variant, model, inputs)
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)

    return loss_fn


def continuation_loss(variant, model, batch):
    """Loss on the second half of a window given the first half (the same test for all)."""
    inputs, labels = batch
    logits = variant_logits(variant, model, inputs)
    if variant != "encoder-decoder":
        logits, labels = logits[:, HALF - 1 : T - 1], inputs[0][:, HALF:]
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


val_batches = {v: [variant_batch(v, w, None) for w in val_windows] for v in VARIANTS}


def eval_fn_for(variant):
    def eval_fn(model):
        batches = val_batches[variant]
        return float(np.mean([continuation_loss(variant, model, b).item() for b in batches]))

    return eval_fn


variant_step_flops = {
    v: flops_per_step["encoder-decoder" if v == "encoder-decoder" else "decoder"] for v in VARIANTS
}
budget = cfg.eff_steps * flops_per_step["decoder"]
runs = {v: [] for v in VARIANTS}
for seed in cfg.seeds:
    for variant in VARIANTS:
        torch.manual_seed(seed)
        cls = EncoderDecoderModel if variant == "encoder-decoder" else DecoderModel
        model = cls(base).to(device)
        gen = torch.Generator().manual_seed(100 + seed)  # the same batches for every variant
        steps = experiments.steps_for_budget(budget, variant_step_flops[variant])
        run = experiments.train_for_flops(
            model,
            lambda step, variant=variant, gen=gen: variant_batch(
                variant, windows(train_ids, cfg.batch_size, gen), gen
            ),
            variant_loss(variant),
            budget=budget,
            flops_per_step=variant_step_flops[variant],
            n_evals=cfg.n_evals,
            eval_fn=eval_fn_for(variant),
            lr=2e-3,
            scheduler=warmup_cosine(steps, warmup=max(1, steps // 10)),
            progress=False,
        )
        run.model = model
        runs[variant].append(run)

final = {v: [r.history.final_eval_loss for r in runs[v]] for v in VARIANTS}
print(f"budget {budget:.3e} FLOPs per run; second-half validation loss (nats per character)")
print(f"{'variant':<22}{'steps':>6}{'params':>9}{'non-emb.':>10}{'loss, mean ± s.e.':>20}   seeds")
for variant in VARIANTS:
    model_params = sum(
        p.numel()
        for p in (EncoderDecoderModel if variant == "encoder-decoder" else DecoderModel)(
            base
        ).parameters()
    )
    family = "encoder-decoder" if variant == "encoder-decoder" else "decoder"
    mean, se = mean_se(final[variant])
    print(
        f"{variant:<22}{runs[variant][0].steps:>6}{model_params:>9,}"
        f"{experiments.family_params(base, family):>10,}{mean:>13.3f} ± {se:.3f}   "
        + " ".join(f"{x:.3f}" for x in final[variant])
    )
for variant in VARIANTS[1:]:
    print(judge(final[variant], final[VARIANTS[0]], lower_is_better=True,
                names=(variant, VARIANTS[0])))  # fmt: skip
for a, b in [("prefix LM", "decoder, second half"), ("prefix LM", "encoder-decoder")]:
    print(judge(final[a], final[b], lower_is_better=True, names=(a, b)))  # the same targets

fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
for variant in VARIANTS:
    curves = np.array([r.history.eval_loss for r in runs[variant]])
    ax.errorbar(
        runs[variant][0].eval_flops, curves.mean(0), yerr=curves.std(0, ddof=1) / np.sqrt(len(curves)) if len(curves) > 1 else None,
        marker="o", capsize=3, label=variant,
    )  # fmt: skip
ax.set(xlabel="training FLOPs", ylabel="second-half validation loss", xscale="log")
ax.set_title(f"equal compute: {budget:.2e} FLOPs each, mean ± s.e. over {len(cfg.seeds)} seeds")
ax.legend()
plt.show()

# %% [markdown]
# Read the verdict lines: each compares the seed-paired losses with the two-standard-error
# rule (a gap under two standard errors is a tie, not a win). Three things to look for.
# First, **decoder, every token** against **decoder, second half**: the same model, with
# twice the targets per step. If the extra targets bought signal per FLOP on this test,
# the every-token decoder would beat it. Second, the **prefix LM** against the
# second-half decoder: the same targets, and the only change is the mask over the input;
# T5's Table 2 (section 5) puts much of the decoder's gap exactly there. A tie here says
# that the two-way view of the input did not lower this loss at this size and training
# length; it does not contradict T5, whose gap is in fine-tuned task scores. Third, the
# **encoder-decoder**: at equal FLOPs it carries more non-embedding parameters (printed),
# since each target token pays for its own stack while the source is read once.
#
# Whatever your run printed, it is one small model, one corpus, one learning rate for
# every variant (not tuned per family) and a short run (the steps are printed): the
# efficiency claim is about signal per FLOP over long training, so a win here is one
# small piece of evidence for it, and a tie a statement about this scale. What the
# batches above do show without any training is the encoder's handicap: it supervises
# only 15% of what it reads.
#
# ## 3. Versatility: one model, many tasks
#
# A decoder does every task by continuing text, if the task is written as text:
#
# ```text
# review: the plot was not good => negative
# date: 26 novembre 2026 => 2026-11-26
# ```
#
# ### Exercise 3: prompts and answers
#
# Write `format_prompt(task, text, answer=None)`: `"review: <text> =>"` for the task
# `"sentiment"`, `"date: <text> =>"` for `"dates"`, and, when an answer is given, a space
# and the answer after the arrow. Raise a `ValueError` for another task. Then
# `parse_answer(task, generated)`: from the text a model wrote after the arrow, skip
# leading spaces and return the answer (`"positive"` or `"negative"` as a whole word; a
# date `YYYY-MM-DD` of ten characters), or `None` when the text does not start with one.


# %% exercise="prompts"
def format_prompt(task, text, answer=None):
    """task: "sentiment" or "dates"; text: the input; answer: str or None -> the prompt str."""
    ### BEGIN SOLUTION
    prefixes = {"sentiment": "review", "dates": "date"}
    if task not in prefixes:
        raise ValueError(f"task must be 'sentiment' or 'dates', got {task!r}")
    prompt = f"{prefixes[task]}: {text} =>"
    return prompt if answer is None else f"{prompt} {answer}"
    ### END SOLUTION


def parse_answer(task, generated):
    """The answer at the start of generated (after leading spaces), or None."""
    ### BEGIN SOLUTION
    import re

    text = generated.lstrip(" ")
    if task == "sentiment":
        match = re.match(r"(positive|negative)(?![a-z])", text)
    elif task == "dates":
        match = re.match(r"\d{4}-\d{2}-\d{2}", text)
    else:
        raise ValueError(f"task must be 'sentiment' or 'dates', got {task!r}")
    return match.group(0) if match else None
    ### END SOLUTION


# %% test="prompts" points=3 hint="format_prompt: f'review: {text} =>' (or 'date: ...'), then ' ' + answer if given. parse_answer: skip leading spaces, match 'positive'/'negative' as a whole word, or a date YYYY-MM-DD (digits and dashes) at the start; otherwise None." nudge="A prompt and its parser must agree on one exact format; the parser must refuse anything else."
from course_utils.checks import check_equal

check_equal(
    format_prompt("sentiment", "the plot was good"),
    "review: the plot was good =>",
    name='format_prompt("sentiment", "the plot was good")',
)
check_equal(
    format_prompt("dates", "26 novembre 2026", "2026-11-26"),
    "date: 26 novembre 2026 => 2026-11-26",
    name='format_prompt("dates", "26 novembre 2026", "2026-11-26")',
)
check_equal(parse_answer("sentiment", " positive\n"), "positive", name="parse ' positive\\n'")
check_equal(parse_answer("dates", " 2026-11-26\nrev"), "2026-11-26", name="parse a date")
check_equal(parse_answer("sentiment", " not positive"), None, name="a label not at the start")
print("✓ prompts: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import check_raises
from course_utils.tasks import prompts as _prompts

for task, text, answer in [
    ("sentiment", "the acting was never dull", "positive"),
    ("dates", "11/26/26", None),
    ("dates", "Thursday, 26 Nov. 2026", "2026-11-26"),
]:
    check_equal(
        format_prompt(task, text, answer),
        _prompts.format_prompt(task, text, answer),
        name=f"format_prompt({task!r}, {text!r}, {answer!r})",
    )
check_raises(ValueError, lambda: format_prompt("translation", "hello"), name="an unknown task")
for task, generated, expected in [
    ("sentiment", "negative", "negative"),
    ("sentiment", "   positive review: the", "positive"),
    ("sentiment", " positively", None),  # not the whole word
    ("sentiment", " pos", None),
    ("sentiment", " the plot", None),
    ("sentiment", " the plot was negative", None),  # not at the start
    ("sentiment", "", None),
    ("dates", "2026-11-2", None),  # too short
    ("dates", " 26-11-2026", None),  # not ISO
    ("dates", " 1999-01-01 => x", "1999-01-01"),
    ("dates", " review 2026-11-26", None),  # not at the start
]:
    check_equal(
        parse_answer(task, generated), expected, name=f"parse_answer({task!r}, {generated!r})"
    )
    check_equal(expected, _prompts.parse_answer(task, generated), name="the library agrees")
### END HIDDEN TESTS

# %% [markdown]
# ### The experiment, made fair
#
# One decoder trains on a **mixture**: sentiment reviews (lab 04's task) and dates (lab 06's
# task) written as prompts with their answers, in **equal numbers of lines** (balanced task
# shares), and, on a GPU, plain corpus lines as well (`mix_text` of them; none on a laptop,
# where every step the budget buys is needed for the two tasks; the counts and each kind's
# share of the supervised tokens are printed). Against it, two **specialists**: an encoder with a
# classification head trained on the reviews only, and an encoder-decoder trained on the
# dates only. A naive version of this race is unfair to the decoder in three ways, and we
# remove each:
#
# 1. **Where the loss goes.** A specialist's whole loss is its task's answer. If the
#    decoder's loss covers every token of a task line, the one answer token of a review is
#    a tiny share of what it learns from. So on task lines the decoder's loss is on the
#    **answer** (and the end of the line) only, as in instruction tuning; free text keeps
#    the next-token loss on every token. And each line weighs the same in the loss (the
#    mean over its own targets), so a task's share of the learning is its share of the
#    lines, not of the tokens: a review's two targets (the label and the end of the line)
#    count as much as a corpus line's dozens.
# 2. **Padding.** Lines differ in length; a batch padded to its longest line spends FLOPs
#    on padding. We batch lines of the **same length** together (length bucketing) and
#    count the FLOPs of every batch exactly, padding included; the padding share is
#    printed. (Packing several lines into one row would also avoid padding, but a line
#    would then attend to unrelated lines and start at positions the test never uses.)
# 3. **A control.** A **decoder trained on the sentiment prompts only**, at the encoder's
#    budget, separates "a decoder cannot learn this" from "this decoder split its budget".
#
# Budgets: each specialist and the control get the same FLOPs (what `vers_steps` steps of
# the encoder-decoder cost on a reference batch of dates; each model's own steps are
# printed); the mixture decoder gets the **sum** of the two specialists' budgets,
# since it learns both tasks in one model. A batch holds `batch_size` lines, except the
# encoder's: a review alone is shorter than the decoder's prompt line of it, so the encoder
# takes as many reviews as fill the sentiment-only decoder's batch with tokens (printed as
# its lines per batch); its steps then cost about what the control's do, and it does not get
# more updates for the same FLOPs. Every model is trained with each of the seeds
# `vers_seeds` (two on a laptop, three on a GPU): the section's cost is many training runs,
# and two seeds is what fits in the laptop's budget, so its standard errors rest on two
# runs each (a rough measure: read a verdict near two standard errors as a hint).
#
# All models read the same tokens: characters, plus every word the reviews use, the month
# and day names of the dates, and the answer words, each a single token (alone and with the
# space before it, as GPT-2's vocabulary writes words: `prompts.WordVocab`). With
# characters alone a model of this size spends its budget learning to spell before it can
# learn what `not` does to `good`; real models read subword tokens for the same reason.
# Digits, signs and other words are still spelled out, so an ISO date is written digit by
# digit.

# %%
splits = sentiment.make_splits(n_train=cfg.n_lines, n_val=50, n_test=cfg.n_test, seed=0)
date_train = dates.make_examples("train", cfg.n_lines, seed=0)
date_test = dates.make_examples("test", cfg.n_test, seed=0)
corpus_lines = [line for line in corpus.splitlines() if 20 <= len(line) <= 60]
corpus_lines = corpus_lines[:: max(1, len(corpus_lines) // max(cfg.mix_text, 1))][: cfg.mix_text]
date_words = {w for e in date_train for w in prompts.WORD.findall(e.source)}
task_vocab = prompts.WordVocab(
    [*sentiment.review_words(), *date_words, *prompts.TASKS.values(), *prompts.LABELS]
)
LABEL_IDS = [task_vocab.stoi[f" {label}"] for label in prompts.LABELS]  # one token each
print(
    f"{len(task_vocab)} tokens; for example",
    [task_vocab.itos[i] for i in task_vocab.encode("review: the plot was not good => negative")],
)
print(
    f"lines: {len(splits.train)} reviews, {len(date_train)} dates, {len(corpus_lines)} corpus "
    f"lines; test: {len(splits.test)} reviews, {len(date_test)} dates"
)


def pad_rows(rows, width, value):
    """One tensor of the rows, each cut or padded with `value` to `width`."""
    return torch.tensor(
        [[*row[:width], *[value] * (width - len(row[:width]))] for row in rows], dtype=torch.long
    )


@functools.cache
def encoded(text):
    """task_vocab's ids of a text, worked out once (batching asks for the same lines often)."""
    return tuple(task_vocab.encode(text))


def task_example(task, text, answer):
    """(ids, first target): BOS, the prompt, the answer, EOS; the loss on the answer + EOS."""
    prompt = [BOS, *task_vocab.encode(format_prompt(task, text))]
    return [*prompt, *task_vocab.encode(f" {answer}"), EOS], len(prompt)


def text_example(line):
    """(ids, first target) of free text: every token is a target."""
    return [BOS, *task_vocab.encode(line), EOS], 1


def lm_batch(examples):
    """Decoder rows: inputs ids[:-1], labels ids[1:] from each row's first target on; rows of
    a bucket's edge may differ in length, so shorter ones are padded (no target there)."""
    width = max(len(e[0]) for e in examples)
    ids = pad_rows([e[0] for e in examples], width, PAD)
    labels = ids[:, 1:].clone()
    for row, (tokens, first) in enumerate(examples):
        labels[row, : first - 1] = -100
        labels[row, len(tokens) - 1 :] = -100
    return (ids[:, :-1],), labels


def review_batch(reviews):
    rows = [[BOS, *encoded(r.text)] for r in reviews]
    ids = pad_rows(rows, max(len(r) for r in rows), PAD)
    return ids, torch.tensor([r.label for r in reviews])


def date_batch(examples):
    src = pad_rows([encoded(e.source) for e in examples], dates.SOURCE_LEN, PAD)
    src = src[:, : max(len(encoded(e.source)) for e in examples)]
    tgt = [encoded(e.target) for e in examples]
    tgt_in = pad_rows([[BOS, *t] for t in tgt], 11, PAD)
    labels = pad_rows([[*t, EOS] for t in tgt], 11, -100)
    return src, tgt_in, labels


def classify_loss(model, batch):
    ids, y = batch
    return F.cross_entropy(model.classify(ids, key_padding_mask=ids == PAD), y)


def seq2seq_loss(model, batch):
    src, tgt_in, labels = batch
    logits = model(src, tgt_in, src_padding_mask=src == PAD, tgt_padding_mask=tgt_in == PAD)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


def lm_loss(model, batch):
    """Each row (one line) weighs the same: the mean over its targets, then over rows."""
    (ids,), labels = batch
    per_token = F.cross_entropy(
        model(ids).transpose(1, 2), labels, ignore_index=-100, reduction="none"
    )
    return (per_token.sum(1) / (labels != -100).sum(1).clamp(min=1)).mean()


# %% [markdown]
# The FLOPs of every batch come from its shape, with `experiments.flops_per_example`: a
# decoder row of width `w` costs `w` decoder tokens; an encoder-decoder batch its source
# width plus 11 target tokens; the classifying encoder the encoder's blocks over its width
# plus a 2-way head on the pooled vector (its unused masked-LM head is not run, so it is
# not counted). A run takes batches in a shuffled order of length buckets until its budget
# is spent.


# %%
def bucketed(items, length, rng, rows=None):
    """Batches of `rows` items (default cfg.batch_size) of equal (or near) length, in a
    shuffled order, forever."""
    rows = rows or cfg.batch_size
    lengths = [length(item) for item in items]
    while True:
        order = sorted(range(len(items)), key=lambda i: (lengths[i], rng.random()))
        batches = [order[i : i + rows] for i in range(0, len(order), rows)]
        rng.shuffle(batches)
        yield from ([items[i] for i in b] for b in batches)


def batch_flops(kind, batch, model_cfg):
    if kind == "encoder":
        ids, _ = batch
        per_row = experiments.flops_per_example(model_cfg, "encoder", length=ids.shape[1])
        head = 3 * 2 * model_cfg.d_model * model_cfg.vocab_size * ids.shape[1]
        return ids.shape[0] * (per_row - head + 3 * 2 * model_cfg.d_model * 2)
    if kind == "encoder-decoder":
        src, tgt_in, _ = batch
        return src.shape[0] * experiments.flops_per_example(
            model_cfg, "encoder-decoder", length=src.shape[1], target_len=tgt_in.shape[1]
        )
    (ids,), _ = batch
    return ids.shape[0] * experiments.flops_per_example(model_cfg, "decoder", length=ids.shape[1])


def plan_batches(kind, stream, make, model_cfg, budget):
    """Batches from the stream until the budget is spent: (batches, FLOPs spent, padding)."""
    plan, spent, pad, total = [], 0.0, 0, 0
    for items in stream:
        batch = make(items)
        flops = batch_flops(kind, batch, model_cfg)
        if spent + flops > budget:
            break
        plan.append(batch)
        spent += flops
        ids = batch[0][0] if kind == "decoder" else batch[0]
        pad += int((ids == PAD).sum())
        total += ids.numel()
    return plan, spent, pad / max(total, 1)


def train_plan(model, plan, loss_fn, seed):
    steps = len(plan)
    train(
        model, lambda step: plan[step - 1], loss_fn, steps=steps, lr=cfg.vers_lr, seed=seed,
        scheduler=warmup_cosine(steps, warmup=max(1, steps // 10)), progress=False,
    )  # fmt: skip
    return model.eval()


# %%
@torch.no_grad()
def complete(model, texts, n_new):
    """Greedy continuations of each text (grouped by length, so no padding is needed)."""
    rows = [[BOS, *task_vocab.encode(text)] for text in texts]
    out = [None] * len(texts)
    groups = {}
    for i, row in enumerate(rows):
        groups.setdefault(len(row), []).append(i)
    for indices in groups.values():
        ids = torch.tensor([rows[i] for i in indices], device=device)
        new = model.generate(ids, n_new, temperature=0)[:, ids.shape[1] :]
        for i, row in zip(indices, new.tolist()):
            out[i] = task_vocab.decode(row[: row.index(EOS)] if EOS in row else row)
    return out


@torch.no_grad()
def label_choice(model, reviews, template=None):
    """The label whose token is more likely right after the prompt (no generation). The
    prompt is format_prompt's, or template.format(text=...); prompts of the same length run
    as one batch (no padding needed)."""
    texts = [
        format_prompt("sentiment", r.text) if template is None else template.format(text=r.text)
        for r in reviews
    ]
    rows = [[BOS, *task_vocab.encode(text)] for text in texts]
    choice = np.zeros(len(rows), dtype=int)
    groups = {}
    for i, row in enumerate(rows):
        groups.setdefault(len(row), []).append(i)
    for indices in groups.values():
        ids = torch.tensor([rows[i] for i in indices], device=device)
        choice[indices] = model(ids)[:, -1, LABEL_IDS].argmax(-1).cpu().numpy()
    return choice


def decoder_scores(model, reviews, examples):
    """Sentiment by label probability and by greedy generation; dates by generation."""
    truth = np.array([r.label for r in reviews])
    by_prob = float((label_choice(model, reviews) == truth).mean())
    said = complete(model, [format_prompt("sentiment", r.text) for r in reviews], 3)
    labels = [parse_answer("sentiment", s) for s in said]
    by_gen = float(np.mean([a == prompts.LABELS[r.label] for a, r in zip(labels, reviews)]))
    if not examples:
        return by_prob, by_gen, None
    said = complete(model, [format_prompt("dates", e.source) for e in examples], 12)
    iso = [parse_answer("dates", s) for s in said]
    return by_prob, by_gen, float(np.mean([a == e.target for a, e in zip(iso, examples)]))


# %%
if course_utils.ready("format_prompt", "parse_answer"):
    mix_examples = [
        task_example("sentiment", r.text, prompts.LABELS[r.label]) for r in splits.train
    ]
    mix_examples += [task_example("dates", e.source, e.target) for e in date_train]
    mix_examples += [text_example(line) for line in corpus_lines]
    sent_examples = mix_examples[: len(splits.train)]
    longest = max(len(e[0]) for e in mix_examples)
    spec_cfg = model_config(
        cfg.d_model, cfg.n_layers, vocab_size=len(task_vocab), max_len=max(longest, 40),
        n_classes=2, pooling="mean",
    )  # fmt: skip
    ref = date_batch(date_train[: cfg.batch_size])
    spec_budget = cfg.vers_steps * batch_flops("encoder-decoder", ref, spec_cfg)
    # A review alone is shorter than the decoder's prompt row of it, so the encoder takes
    # more reviews per batch: as many tokens per batch as the sentiment-only decoder's.
    review_len = np.mean([1 + len(encoded(r.text)) for r in splits.train])
    enc_rows = round(cfg.batch_size * np.mean([len(e[0]) for e in sent_examples]) / review_len)
    plan = {  # name: (class, kind, items, length, rows per batch, make batch, loss, budget)
        "encoder (sentiment)": (EncoderModel, "encoder", splits.train, lambda r: len(encoded(r.text)), enc_rows, review_batch, classify_loss, spec_budget),
        "encoder-decoder (dates)": (EncoderDecoderModel, "encoder-decoder", date_train, lambda e: len(encoded(e.source)), cfg.batch_size, date_batch, seq2seq_loss, spec_budget),
        "decoder (sentiment only)": (DecoderModel, "decoder", sent_examples, lambda e: len(e[0]), cfg.batch_size, lm_batch, lm_loss, spec_budget),
        "decoder (mixture)": (DecoderModel, "decoder", mix_examples, lambda e: len(e[0]), cfg.batch_size, lm_batch, lm_loss, 2 * spec_budget),
    }  # fmt: skip
    results = {name: [] for name in plan}
    versatile, trained = {}, {}
    for seed in cfg.vers_seeds:
        for name, (cls, kind, items, length, rows, make, loss_fn, flops) in plan.items():
            rng = np.random.default_rng(1000 + seed)
            batches, spent, pad = plan_batches(
                kind, bucketed(items, length, rng, rows), make, spec_cfg, flops
            )
            torch.manual_seed(seed)
            model = train_plan(cls(spec_cfg).to(device), batches, loss_fn, seed)
            versatile[name] = model  # the last seed's model, for the demos below
            trained.setdefault(name, []).append(model)
            if seed == cfg.vers_seeds[0]:
                print(f"{name:<25}{len(batches):>6} steps of {rows:>3} lines, {spent:.3e} FLOPs, "
                      f"padding {pad:.1%}")  # fmt: skip
            if kind == "encoder":
                ids, y = review_batch(splits.test)
                with torch.no_grad():
                    logits = model.classify(
                        ids.to(device), key_padding_mask=(ids == PAD).to(device)
                    )
                results[name].append(
                    (float((logits.argmax(-1).cpu() == y).float().mean()), None, None)
                )
            elif kind == "encoder-decoder":
                src, _, _ = date_batch(date_test)
                src = src.to(device)
                with torch.no_grad():
                    out = model.greedy_decode(src, src_padding_mask=src == PAD, max_new_tokens=11)
                acc = np.mean(
                    [task_vocab.decode(o) == e.target for o, e in zip(out[:, 1:], date_test)]
                )
                results[name].append((None, None, float(acc)))
            else:
                tests = date_test if name == "decoder (mixture)" else []
                results[name].append(decoder_scores(model, splits.test, tests))  # fmt: skip
    mix_batches, _, _ = plan_batches("decoder", bucketed(mix_examples, lambda e: len(e[0]), np.random.default_rng(0)), lm_batch, spec_cfg, 2 * spec_budget)  # fmt: skip
    kinds_of = {"sentiment": 0, "dates": 0, "text": 0}
    for (ids,), labels in mix_batches:
        for row_ids, row_labels in zip(ids, labels):
            first = task_vocab.itos[int(row_ids[1])] if len(row_ids) > 1 else ""
            kind = {"review": "sentiment", "date": "dates"}.get(first, "text")
            kinds_of[kind] += int((row_labels != -100).sum())
    total = sum(kinds_of.values())
    print(
        "the mixture decoder's supervised tokens: "
        + ", ".join(f"{k} {v / total:.0%}" for k, v in kinds_of.items())
    )

# %% [markdown]
# Now each model on each task, on test sets of unseen combinations (lab 04's held-out word
# pairs, lab 06's held-out years and formats). The decoders answer sentiment two ways:
# by **label probability** (is the token ` positive` or ` negative` more likely right
# after the prompt? the way the encoder's head decides, and how benchmarks often score a
# language model) and by **greedy generation** read with `parse_answer` (an answer that
# is not well-formed counts as wrong). Dates can only be generated. Each cell is the mean
# over seeds ± its standard error; the seeds share one test set, so the error is that of
# training, not of the test sample (an accuracy on `n` examples adds about
# `sqrt(p * (1 - p) / n)`).

# %%
if course_utils.ready("format_prompt", "parse_answer"):
    columns = ("sentiment (label prob.)", "sentiment (generated)", "dates exact")
    print(f"{'model':<26}" + "".join(f"{c:>25}" for c in columns))
    for name, rows in results.items():
        cells = []
        for j in range(3):
            values = [row[j] for row in rows]
            if j == 0 and values[0] is None and rows[0][2] is None:
                values = None
            if values is None or values[0] is None:
                cells.append("cannot")
            else:
                mean, se = mean_se(values)
                cells.append(f"{mean:.1%} ± {se:.1%}")
        print(f"{name:<26}" + "".join(f"{c:>25}" for c in cells))
    enc = [r[0] for r in results["encoder (sentiment)"]]
    ed = [r[2] for r in results["encoder-decoder (dates)"]]
    mix = results["decoder (mixture)"]
    ctl = results["decoder (sentiment only)"]
    print(judge([r[0] for r in mix], enc, lower_is_better=False, what="sentiment accuracy",
                names=("mixture decoder (label prob.)", "encoder")))  # fmt: skip
    print(judge([r[1] for r in mix], enc, lower_is_better=False, what="sentiment accuracy",
                names=("mixture decoder (generated)", "encoder")))  # fmt: skip
    print(judge([r[0] for r in ctl], enc, lower_is_better=False, what="sentiment accuracy",
                names=("sentiment-only decoder (label prob.)", "encoder")))  # fmt: skip
    print(judge([r[2] for r in mix], ed, lower_is_better=False, what="dates exact",
                names=("mixture decoder", "encoder-decoder")))  # fmt: skip
    truth = np.array([r.label for r in splits.test])
    majority = max(truth.mean(), 1 - truth.mean())  # always answering the commoner label
    for name, rows in (("sentiment-only decoder", ctl), ("mixture decoder", mix)):
        acc = [r[0] for r in rows]
        print(judge(acc, [majority] * len(rows), lower_is_better=False,
                    what="sentiment accuracy", names=(f"{name} (label prob.)",
                    f"the commoner label always ({majority:.1%})")))  # fmt: skip
        # One seed learned the task if it beats the commoner label by two standard errors
        # of an accuracy on this test set (the test sample's noise, not training's).
        floor = majority + 2 * np.sqrt(majority * (1 - majority) / len(truth))
        learned = sum(a > floor for a in acc)
        per_seed = ", ".join(f"{a:.1%}" for a in acc)
        print(f"  the {name} learned sentiment (above {floor:.1%}) with {learned} of "
              f"{len(acc)} seeds; per seed: {per_seed}")  # fmt: skip
        if learned == 0:
            print(f"  -> the {name} did NOT learn sentiment at this budget: its scores "
                  "compare nothing but noise")  # fmt: skip
        elif learned < len(acc):
            print(f"  -> whether the {name} learns sentiment at this budget depends on the "
                  "seed: its mean averages runs that learned and runs that did not")  # fmt: skip

# %% [markdown]
# The decoder is the only model with a number in every column: that versatility holds by
# construction. Whether it is *as good* as each specialist at equal compute is a
# different claim, and the verdict lines settle it for this run, by two standard errors.
# Read them with the control: the **sentiment-only decoder** had exactly the encoder's
# budget. If it matches the encoder, a decoder *can* learn this task at this compute, and
# any gap of the mixture decoder is the price of sharing one budget between tasks (or of
# how it is scored: compare its two sentiment columns). If the control trails too, the
# gap belongs to the decoder at this size and budget. The lines against the commoner
# label ask a plainer question: did each decoder learn the task at all, or does it do no
# better than always answering the commoner label? They count it **seed by seed**,
# because a small decoder learns sentiment suddenly, if at all: its accuracy sits at the
# commoner label's for many steps, then climbs quickly (a plateau, then an escape), and
# when the escape comes depends on the seed. So at a budget near that point one seed may
# end near the encoder and another at the floor, and a mean "± s.e." over the two averages a
# success and a failure: it describes neither run, and a verdict of "ties" drawn from it
# means "too uncertain to say". Read the per-seed values first. A control at the floor
# while the mixture decoder learned is worth a thought: the mixture decoder took more
# steps (twice the budget) and read other lines too; more updates, or transfer from the
# other lines, could each explain it, and this notebook does not separate the two. A
# decoder that learned in no seed (a line marked NOT says so) has sentiment columns that
# compare nothing but noise; then the dates column alone measures what the shared model
# learned against its specialist (with the compute of both specialists together). Your
# printed lines say which of these holds in your run (the `gpu` profile trains longer,
# with three seeds).
#
# What happens with a prompt the decoder never saw written that way? Below, three inputs
# in formats that were never in its training text. Read what it writes honestly: a model
# this small has learned the surface of its training format, not the idea of a question.

# %%
if course_utils.ready("format_prompt", "parse_answer"):
    unseen = [
        "is this review positive? the plot was good. answer:",
        "ISO date of 26 novembre 2026:",
        "review: the plot was good ->",
    ]
    for text, said in zip(unseen, complete(versatile["decoder (mixture)"], unseen, 24)):
        line = said.split("\n")[0]
        if not line.strip():
            what = "no answer: it ended the line"
        elif "=>" in line:
            what = "it repairs the format: writes '=>' first"
        elif parse_answer("sentiment", line) or parse_answer("dates", line):
            what = "a well-formed answer"
        else:
            what = "text, but no well-formed answer"
        print(f"{text!r:<56} -> {said!r}\n{'':<56}    ({what})")

# %% [markdown]
# ### A held-out prompt template, and examples in the prompt
#
# The decoders were trained with one template per task. Do they answer a template they
# never saw? Below, the same test reviews written as `opinion: <text> =>` and as
# `<text> => sentiment:`, scored by label probability, for every seed of the two
# decoders. (A real model would have been trained on many templates and many tasks, so
# that a new template is one more variation; ours is the smallest honest version.) A
# decoder that did not learn the training template (section above) has nothing to carry
# over: read its other columns as noise.
#
# In-context learning is an answer improved by examples placed before the question. The
# second cell below puts one worked example (a training review with its label) before each
# test question and compares the accuracy with none. Expect nothing from it, and read it
# as a check of that expectation: our decoders only ever saw **one line per context**
# (each batch holds whole lines, never several), their context holds one example at most
# for most questions (printed), and the published evidence for in-context learning (Brown
# et al. 2020, GPT-3) comes from models of 125 million parameters and more, with the
# few-shot gain growing with size; ours are far smaller (their parameters are printed in
# section 2). Our models are too small, and trained the wrong way, to show it: whatever
# the line says, it does not test the claim about large models.


# %%
def template_accuracy(model, reviews, template):
    truth = np.array([r.label for r in reviews])
    return float((label_choice(model, reviews, template) == truth).mean())


if course_utils.ready("format_prompt", "parse_answer"):
    templates = ("review: {text} =>", "opinion: {text} =>", "{text} => sentiment:")
    print(f"{'decoder':<26}" + "".join(f"{t:>24}" for t in templates))
    for name in ("decoder (sentiment only)", "decoder (mixture)"):
        cells = []
        for template in templates:
            mean, se = mean_se([template_accuracy(m, splits.test, template) for m in trained[name]])
            cells.append(f"{mean:.1%} ± {se:.1%}")
        print(f"{name:<26}" + "".join(f"{c:>24}" for c in cells))
    print(f"(first column: the training template; always answering the commoner label "
          f"scores {majority:.1%})")  # fmt: skip


# %%
@torch.no_grad()
def with_examples(model, reviews, shots):
    """Label-probability answers with `shots` worked examples (training reviews with their
    labels, each line ending in EOS as in training) before each question. Returns (right or
    wrong per question, which questions fit in the model's context); the rest are skipped."""
    rows = []
    for i, r in enumerate(reviews):
        row = [BOS]
        for j in range(shots):
            e = splits.train[(i * shots + j) % len(splits.train)]
            row += task_example("sentiment", e.text, prompts.LABELS[e.label])[0][1:]
        rows.append(row + list(encoded(format_prompt("sentiment", r.text))))
    fits = np.array([len(row) <= spec_cfg.max_len for row in rows])
    truth = np.array([r.label for r in reviews])
    right = np.zeros(len(rows), dtype=bool)
    groups = {}
    for i in np.flatnonzero(fits):
        groups.setdefault(len(rows[i]), []).append(i)
    for indices in groups.values():
        ids = torch.tensor([rows[i] for i in indices], device=device)
        said = model(ids)[:, -1, LABEL_IDS].argmax(-1).cpu().numpy()
        right[indices] = said == truth[indices]
    return right, fits


if course_utils.ready("format_prompt", "parse_answer"):
    one_fits = with_examples(trained["decoder (mixture)"][0], splits.test, 1)[1]
    two_fits = with_examples(trained["decoder (mixture)"][0], splits.test, 2)[1]
    print(
        f"context of these decoders: {spec_cfg.max_len} tokens; one worked example fits "
        f"before {one_fits.mean():.0%} of the test questions, two before {two_fits.mean():.0%}"
    )
    print(f"on the {one_fits.sum()} questions where one fits, label-probability accuracy:")
    print(f"{'decoder':<26}{'no example':>16}{'one example':>16}")
    for name in ("decoder (sentiment only)", "decoder (mixture)"):
        cells = []
        for shots in (0, 1):
            acc = [with_examples(m, splits.test, shots)[0][one_fits].mean() for m in trained[name]]
            mean, se = mean_se(acc)
            cells.append(f"{mean:.1%} ± {se:.1%}")
        print(f"{name:<26}" + "".join(f"{c:>16}" for c in cells))

# %% [markdown]
# Try it yourself: type a prompt and the mixture-trained decoder continues it (greedy,
# 40 tokens). Start with `review: the acting was not funny =>` or
# `date: 3/6/2026 =>`, then break the format.

# %%
import ipywidgets as widgets
from IPython.display import display

prompt_box = widgets.Text(
    value="review: the plot was good =>", description="prompt:", continuous_update=False
)
completion = widgets.Output()


def show_completion(change=None):
    completion.clear_output()
    with completion:
        if not course_utils.ready("format_prompt", "parse_answer"):
            return
        said = complete(versatile["decoder (mixture)"], [prompt_box.value], 40)[0]
        print(prompt_box.value + said.split("\n")[0])


prompt_box.observe(show_completion, names="value")
show_completion()
display(widgets.VBox([prompt_box, completion]))

# %% [markdown]
# ## 4. Scalability: a power law?
#
# Kaplan et al. (2020) trained decoders from 768 to 1.5 billion non-embedding parameters
# and found the loss to fall as a power law, `loss = a * N ** (-alpha_N)`, with
# `alpha_N` about 0.076, when data and compute are not the limit. On log-log axes a power
# law is a straight line with slope `-alpha`.
#
# ### Exercise 4: fit a power law
#
# Fit `log(loss) = log(a) - alpha * log(n)` by least squares and return `(a, alpha)`.
# Raise a `ValueError` when a value is not positive (a logarithm needs it).


# %% exercise="fit_power_law"
def fit_power_law(n, loss):
    """n, loss: sequences of positive numbers of the same length (>= 2 distinct n).

    Returns (a, alpha) as floats, with loss ~ a * n ** (-alpha), fitted by least squares on
    the logarithms of both.
    """
    ### BEGIN SOLUTION
    n = np.asarray(n, dtype=float)
    loss = np.asarray(loss, dtype=float)
    if np.any(n <= 0) or np.any(loss <= 0):
        raise ValueError("n and loss must be positive: a power law is fitted on logarithms")
    slope, intercept = np.polyfit(np.log(n), np.log(loss), 1)
    return float(np.exp(intercept)), float(-slope)
    ### END SOLUTION


# %% test="fit_power_law" points=3 hint="Fit a line to (log n, log loss) with np.polyfit(np.log(n), np.log(loss), 1); alpha is MINUS the slope, a is exp(intercept). Check that every value is > 0 first." nudge="A power law is a straight line on log-log axes."
import numpy as np
import torch

from course_utils.checks import check_tensor


def _f64(x):
    return torch.tensor(float(x), dtype=torch.float64)


n = np.array([1e3, 1e4, 1e5])
a, alpha = fit_power_law(n, 5.0 * n**-0.1)
check_tensor(_f64(alpha), _f64(0.1), name="alpha of an exact power law 5 * n ** -0.1")
check_tensor(_f64(a), _f64(5.0), name="a of an exact power law 5 * n ** -0.1")
print("✓ fit_power_law: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import check_raises, check_true

# Noisy points: the least-squares answer in log space, from numpy directly.
rng = np.random.default_rng(0)
n = np.geomspace(100, 1e6, 7)
loss = 3.0 * n**-0.07 * np.exp(rng.normal(0, 0.02, 7))
slope, intercept = np.polyfit(np.log(n), np.log(loss), 1)
a, alpha = fit_power_law(list(n), list(loss))
check_tensor(
    _f64(alpha), _f64(-slope), rtol=1e-9, name="alpha on noisy points", hint="alpha = -slope"
)
check_tensor(
    _f64(a), _f64(np.exp(intercept)), rtol=1e-9, name="a on noisy points", hint="a = exp(intercept)"
)
# A rising curve has a negative alpha (not its absolute value).
a, alpha = fit_power_law([1, 10], [1.0, 2.0])
check_tensor(_f64(alpha), _f64(-np.log10(2.0)), name="alpha when the loss rises")
check_raises(ValueError, lambda: fit_power_law([1, 10, 100], [1.0, 0.0, 0.5]), name="a zero loss")
check_raises(ValueError, lambda: fit_power_law([-1, 10], [1.0, 0.5]), name="a negative n")
# A size of 0 has no logarithm either: the check is n <= 0, not n < 0. (Without the check,
# numpy fails on log(0) = -inf with its own LinAlgError, a subclass of ValueError: that is
# not the clear message a caller needs, so it does not count.)
error = check_raises(
    ValueError,
    lambda: fit_power_law([0, 10, 100], [1.0, 0.5, 0.25]),
    name="a size n of 0",
    hint="log(0) is -inf: reject every n <= 0 (not only n < 0)",
)
check_true(
    not isinstance(error, np.linalg.LinAlgError),
    "fit_power_law([0, 10, 100], ...) raised numpy's LinAlgError from the fit itself, "
    "not your own ValueError",
    hint="log(0) is -inf: reject every n <= 0 (not only n < 0) before fitting",
)
### END HIDDEN TESTS

# %% [markdown]
# ### Scaling at fixed compute: IsoFLOP curves
#
# Kaplan's law is about models trained to convergence. A lab has a compute budget instead,
# so we ask the question Hoffmann et al. (2022, "Training Compute-Optimal Large Language
# Models", the Chinchilla paper) asked: **for a fixed budget of FLOPs, which model size
# gives the lowest loss, and how do that size and that loss move as the budget grows?**
#
# For each of several budgets `C` (named by the steps it buys a model of width `iso_ref`),
# decoders of at least four widths at a **fixed depth** train for exactly as many steps as
# `C` buys. The widths tried move with the budget, as in Hoffmann et al.'s IsoFLOP
# curves: a small budget needs the narrowest models to show where its loss turns up
# again, a large one the wider ones, and a model far from every optimum only costs time
# (the narrowest take the most steps). FLOPs are counted exactly with
# `experiments.flops_per_example`, attention and head included: at this size `6 N D`
# would be far off, since the head and attention are a large share of the FLOPs. A
# narrow model takes many steps, a wide one few. Each run warms its learning rate up and
# decays it to the **end of its own run**, and the learning rate is set **per width**
# (smaller for wider models, as `iso_lr * sqrt(32 / d_model)`); each run is repeated with
# the seeds `iso_seeds` (two on a laptop, three on a GPU; the loss of each is printed).
#
# Per budget we fit a parabola to the loss against `log N` (Chinchilla's second approach)
# and read off its minimum: `N_opt(C)` and the loss there. With your `fit_power_law` we
# then fit `N_opt = a * C ** (-alpha)` (so `-alpha` is the exponent of growth) and
# `loss_opt = a * C ** (-alpha)`; the uncertainty comes from a bootstrap that draws one
# seed per width, refits, and repeats.


# %%
def lm_window_loss(model, batch):
    x_in, y = batch
    return F.cross_entropy(model(x_in).flatten(0, 1), y.flatten())


iso_val = [(w[:, :T], w[:, 1:]) for w in val_windows]
all_widths = sorted({cfg.iso_ref, *(d for widths in cfg.iso_widths for d in widths)})
iso_step = {d: cfg.iso_batch * experiments.flops_per_example(model_config(d, cfg.iso_layers), "decoder", length=T) for d in all_widths}  # fmt: skip
iso_budgets = [s * iso_step[cfg.iso_ref] for s in cfg.iso_steps]
iso = {}  # (budget index, width) -> list of validation losses, one per seed
iso_n = {d: experiments.non_embedding_params(model_config(d, cfg.iso_layers)) for d in all_widths}
print(f"{'budget':>10}{'d_model':>8}{'N':>8}{'6N share':>9}{'steps':>7}{'tokens/N':>9}   validation loss per seed")  # fmt: skip
for b, C in enumerate(iso_budgets):
    for d in cfg.iso_widths[b]:
        size_cfg = model_config(d, cfg.iso_layers)
        steps = experiments.steps_for_budget(C, iso_step[d])
        losses = []
        for seed in cfg.iso_seeds:
            torch.manual_seed(seed)
            model = DecoderModel(size_cfg).to(device)
            gen = torch.Generator().manual_seed(200 + seed)
            train(
                model,
                lambda step, gen=gen: (lambda w: (w[:, :T], w[:, 1:]))(windows(train_ids, cfg.iso_batch, gen)),
                lm_window_loss, steps=steps, lr=cfg.iso_lr * (32 / d) ** 0.5,
                scheduler=warmup_cosine(steps, warmup=max(1, steps // 10)), progress=False,
            )  # fmt: skip
            model.eval()
            with torch.no_grad():
                losses.append(float(np.mean([lm_window_loss(model, v).item() for v in iso_val])))
        iso[b, d] = losses
        tokens = steps * cfg.iso_batch * T
        share = 6 * iso_n[d] / (iso_step[d] / (cfg.iso_batch * T))  # what 6 N counts of a token
        print(
            f"{C:>10.2e}{d:>8}{iso_n[d]:>8,}{share:>9.0%}{steps:>7}{tokens / iso_n[d]:>9.1f}   "
            + " ".join(f"{x:.3f}" for x in losses)
        )


def parabola_optimum(log_n, loss):
    """Minimum of a parabola fitted to loss against log N: (log N_opt, loss there, inside?)."""
    c2, c1, c0 = np.polyfit(log_n, loss, 2)
    if c2 <= 0:  # no minimum: the best measured point
        i = int(np.argmin(loss))
        return log_n[i], loss[i], False
    x = -c1 / (2 * c2)
    inside = log_n.min() <= x <= log_n.max()
    x = float(np.clip(x, log_n.min(), log_n.max()))
    return x, float(np.polyval([c2, c1, c0], x)), inside


log_n = [np.log([iso_n[d] for d in widths]) for widths in cfg.iso_widths]  # per budget
rng = np.random.default_rng(0)
optima = []  # per budget: (N_opt, loss_opt, inside) of the seed means
boot = []  # per resample: per budget (N_opt, loss_opt)
for b in range(len(iso_budgets)):
    means = np.array([np.mean(iso[b, d]) for d in cfg.iso_widths[b]])
    x, loss_opt, inside = parabola_optimum(log_n[b], means)
    optima.append((float(np.exp(x)), loss_opt, inside))
for _ in range(cfg.n_boot):
    sample = []
    for b in range(len(iso_budgets)):
        draw = np.array([iso[b, d][rng.integers(len(iso[b, d]))] for d in cfg.iso_widths[b]])
        x, loss_opt, _ = parabola_optimum(log_n[b], draw)
        sample.append((np.exp(x), loss_opt))
    boot.append(sample)
boot = np.array(boot)  # (n_boot, budgets, 2)
for b, C in enumerate(iso_budgets):
    n_opt, loss_opt, inside = optima[b]
    low, high = np.quantile(boot[:, b, 0], [0.16, 0.84])
    where = (
        "inside the widths tried"
        if inside
        else "AT THE EDGE of the widths tried (not a real minimum)"
    )
    print(
        f"C = {C:.2e}: N_opt = {n_opt:,.0f} (68% bootstrap range {low:,.0f} .. {high:,.0f}), loss there {loss_opt:.3f}; {where}"
    )

fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
for b, C in enumerate(iso_budgets):
    means = [np.mean(iso[b, d]) for d in cfg.iso_widths[b]]
    ax.plot([iso_n[d] for d in cfg.iso_widths[b]], means, "o-", label=f"C = {C:.1e} FLOPs")
    ax.plot(optima[b][0], optima[b][1], "k*", markersize=10)
ax.set(
    xscale="log", xlabel="non-embedding parameters N", ylabel="validation loss (nats per character)"
)
ax.set_title("IsoFLOP curves: each line one budget, * its fitted minimum")
ax.legend()
plt.show()

# %%
if course_utils.ready("fit_power_law"):
    C = np.array(iso_budgets)
    n_opt = np.array([o[0] for o in optima])
    loss_opt = np.array([o[1] for o in optima])
    _, alpha_n = fit_power_law(C, n_opt)
    _, alpha_l = fit_power_law(C, loss_opt)
    boot_n = [-fit_power_law(C, s[:, 0])[1] for s in boot]
    boot_l = [fit_power_law(C, s[:, 1])[1] for s in boot]
    print(
        f"N_opt grows as C^{-alpha_n:.2f} (bootstrap s.d. {np.std(boot_n, ddof=1):.2f}) over a {C.max() / C.min():.0f}x range of C, {len(C)} budgets"
    )
    print(
        f"the loss at the optimum falls as C^-{alpha_l:.3f} (bootstrap s.d. {np.std(boot_l, ddof=1):.3f})"
    )
    at_edge = sum(not o[2] for o in optima)
    print(f"optima at the edge of the widths tried: {at_edge} of {len(optima)}")
    if at_edge:
        print("  -> so the exponents above are NOT a measurement of how N_opt grows: an edge "
              "point is where the sweep stopped, not a minimum")  # fmt: skip
    print("published, for comparison (not our run): N_opt ~ C^0.50 (Hoffmann et al. 2022); "
          "N_opt ~ C^0.73 and loss ~ C^-0.050 (Kaplan et al. 2020)")  # fmt: skip

# %% [markdown]
# How far can these numbers be compared with the published ones? The **exponent of
# `N_opt`** is a ratio of logarithms of two counts (parameters, FLOPs), so its units
# allow a comparison, with caveats: our budgets span a small range, three or four points
# fix a slope loosely (the bootstrap redraws only the seeds, so with two seeds its spread
# is a floor on the uncertainty, not all of it), an optimum at the edge of the widths
# tried is no optimum at all (the line above counts them), and Kaplan counts non-embedding
# parameters as we do while Hoffmann counts all of them. One more difference weighs more
# at our size: Chinchilla's `C = 6 N D` holds when the blocks' weights are nearly all the
# compute, but in our models the output head and attention are a large part of it, most
# of it for the narrow ones (the column `6N share` above: the part of a token's FLOPs
# that `6 N` counts), so a token's cost grows more slowly than `N` as the width grows: a
# budget that doubles buys a wider model more cheaply than `6 N D` says, and `N_opt` can
# grow faster with `C` than 0.5. The **loss exponent** cannot be
# compared: our loss is in nats per *character* of Python's documentation, theirs per
# BPE token of web text, and a pure power law leaves out the irreducible entropy of the
# text, which at our losses is a large part of what is left (Hoffmann fit `E + A / N^a +
# B / D^b` for this reason). Kaplan's faster `N_opt` growth came partly from learning
# rate schedules not decayed to the end of each run, which is why we decay ours. A
# laptop can run this *method*; the *numbers* of a frontier lab it cannot reproduce.

# %% [markdown]
# ## 5. The counter-evidence: T5
#
# Raffel et al. (2020, "Exploring the Limits of Transfer Learning with a Unified
# Text-to-Text Transformer", section 3.2, Table 2) compared architectures at comparable
# compute, each **pretrained and then fine-tuned on each task separately**: these are
# fine-tuned scores, not prompting. Every architecture was pretrained with two objectives:
# T5's **denoising** (corrupted spans of the input, predicted by the model) and a
# **language-modelling** objective (the encoder-decoder and the prefix LM read a span of
# text up to a random split point and predict the rest; the plain language model predicts
# the whole span). `L` and `P` are the layers and parameters of a BERT-base-sized stack
# (12 layers); `M` is the FLOPs an encoder-decoder with `L + L` layers, or a decoder with
# `L`, spends on one input-target pair. The prefix LM is a decoder whose input part is
# seen in both directions, the `prefix_len` switch of section 2. The figures below are
# **published figures, not measured here**: all 70 scores, and the parameter and cost
# columns, were checked one by one against Table 2 of the arXiv version
# (arXiv:1910.10683, as rendered at https://ar5iv.labs.arxiv.org/html/1910.10683).

# %%
T5_COLUMNS = ("GLUE", "CNNDM", "SQuAD", "SGLUE", "EnDe", "EnFr", "EnRo")
T5_TABLE_2 = [  # (architecture, objective, params, cost, scores): published, fine-tuned
    ("Encoder-decoder", "denoising", "2P", "M", (83.28, 19.24, 80.88, 71.36, 26.98, 39.82, 27.65)),
    ("Enc-dec, shared", "denoising", "P", "M", (82.81, 18.78, 80.63, 70.73, 26.72, 39.03, 27.46)),
    ("Enc-dec, 6 layers", "denoising", "P", "M/2", (80.88, 18.97, 77.59, 68.42, 26.38, 38.40, 26.95)),
    ("Language model", "denoising", "P", "M", (74.70, 17.93, 61.14, 55.02, 25.09, 35.28, 25.86)),
    ("Prefix LM", "denoising", "P", "M", (81.82, 18.61, 78.94, 68.11, 26.43, 37.98, 27.39)),
    ("Encoder-decoder", "LM", "2P", "M", (79.56, 18.59, 76.02, 64.29, 26.27, 39.17, 26.86)),
    ("Enc-dec, shared", "LM", "P", "M", (79.60, 18.13, 76.35, 63.50, 26.62, 39.17, 27.05)),
    ("Enc-dec, 6 layers", "LM", "P", "M/2", (78.67, 18.26, 75.32, 64.06, 26.13, 38.42, 26.89)),
    ("Language model", "LM", "P", "M", (73.78, 17.54, 53.81, 56.51, 25.23, 34.31, 25.38)),
    ("Prefix LM", "LM", "P", "M", (79.68, 17.84, 76.87, 64.86, 26.28, 37.51, 26.76)),
]  # fmt: skip
print("Raffel et al. 2020, Table 2 (published; fine-tuned on each task; higher is better)")
print(
    f"{'architecture':<19}{'objective':<11}{'params':>7}{'cost':>5}"
    + "".join(f"{c:>7}" for c in T5_COLUMNS)
)
for arch, objective, params, cost, scores in T5_TABLE_2:
    print(f"{arch:<19}{objective:<11}{params:>7}{cost:>5}" + "".join(f"{s:>7.2f}" for s in scores))
by_name = {(a, o): s for a, o, _, _, s in T5_TABLE_2}
for objective in ("denoising", "LM"):
    ed, lm, prefix = (
        by_name[a, objective] for a in ("Encoder-decoder", "Language model", "Prefix LM")
    )
    share = (prefix[0] - lm[0]) / (ed[0] - lm[0])
    print(f"{objective}: of the GLUE gap between the language model and the encoder-decoder, "
          f"the prefix LM (same size and cost as the language model) closes {share:.0%}")  # fmt: skip
wins = sum(
    d > m
    for a in {r[0] for r in T5_TABLE_2}
    for d, m in zip(by_name[a, "denoising"], by_name[a, "LM"])
)
print(
    f"denoising beats the LM objective in {wins} of {len(by_name) // 2 * len(T5_COLUMNS)} (architecture, task) pairs"
)
for objective in ("denoising", "LM"):
    above = sum(
        a > b
        for a, b in zip(by_name["Enc-dec, shared", objective], by_name["Prefix LM", objective])
    )
    print(f"{objective}: the shared encoder-decoder (P, M, as the prefix LM) scores above the "
          f"prefix LM on {above} of {len(T5_COLUMNS)} tasks")  # fmt: skip

print(f"\n{'this notebook, equal compute (section 2)':<42}{'second-half loss, mean ± s.e.':>30}")
for variant in VARIANTS:
    mean, se = mean_se(final[variant])
    print(f"{variant:<42}{mean:>23.3f} ± {se:.3f}")
print(f"\nwhole notebook so far: {time.perf_counter() - start_time:.0f} s wall, "
      f"{time.process_time() - start_cpu:.0f} s CPU")  # fmt: skip

# %% [markdown]
# Why were decoders built and used, then? One practical reason can be measured here: the
# cost of **generating** a token. With a KV cache, a decoder pays for one new token per
# step (its matrices, plus attention over what it has written); an encoder-decoder the
# same on its decoder side plus cross-attention over the source (the encoder runs once);
# an encoder has no causal order, so it has no cache: to write, it must rerun its whole
# input for every new token. The forward FLOPs below come from
# `experiments.flops_per_token` at the size of section 2; the times are measured.

# %%
prompt_len, new_tokens = HALF, HALF
per_token = {
    "decoder (KV cache)": np.mean([experiments.flops_per_token(base, "decoder", context=prompt_len + i + 1, backward=False) for i in range(new_tokens)]),
    "encoder-decoder (KV cache)": np.mean([experiments.flops_per_token(base, "encoder-decoder", context=i + 1, backward=False, part="target", source_len=prompt_len) for i in range(new_tokens)]),
    "encoder (no cache: rerun)": np.mean([(prompt_len + i + 1) * experiments.flops_per_token(base, "encoder", context=prompt_len + i + 1, backward=False) for i in range(new_tokens)]),
}  # fmt: skip
src = val_windows[0][:8, :prompt_len].to(device)
gen_model = runs["decoder, every token"][-1].model.eval()
ed_model = EncoderDecoderModel(base).to(device).eval()
timings = {}
for label, fn in {
    "decoder (KV cache)": lambda: gen_model.generate(src, new_tokens, temperature=0),
    "decoder (no cache)": lambda: gen_model.generate(
        src, new_tokens, temperature=0, use_cache=False
    ),
    "encoder-decoder (KV cache)": lambda: ed_model.greedy_decode(src, max_new_tokens=new_tokens),
}.items():
    fn()  # warm up
    start = time.perf_counter()
    for _ in range(3):
        fn()
    timings[label] = (time.perf_counter() - start) / 3 / new_tokens
print(f"writing {new_tokens} tokens after a {prompt_len}-token prompt, batch of 8")
print(f"{'family':<28}{'forward FLOPs per new token':>28}")
for label, flops in per_token.items():
    print(f"{label:<28}{flops:>28,.0f}")
for label, seconds in timings.items():
    print(f"{label:<28}{seconds * 1e3:>22.2f} ms per token (measured)")

# %% [markdown]
# Read the table by its pairs. At equal cost `M`, the causal **language model** is far
# behind on every task; the **prefix LM**, with the same parameters and cost, closes most
# or all of that GLUE gap (the printed shares): much of the decoder's handicap in T5's comparison is
# the causal mask over the *input*, not the lack of a second stack. Not all of it: with
# the denoising objective the shared encoder-decoder, which has the prefix LM's
# parameters and cost, scores above it on every task (printed), which the authors read as
# a benefit of cross-attention itself; with the language-modelling objective the two
# split the tasks between them (printed). And the denoising objective beats language
# modelling in most (architecture, task) pairs (printed). Our section 2 ran a miniature of
# the same rows (decoder, prefix LM, encoder-decoder) on one task; compare their order
# with T5's, and remember ours is a loss after a short run (its steps are printed there),
# theirs a fine-tuned benchmark score.
#
# Two things T5's table does not say. It measures **fine-tuning** on each task. Wang et
# al. (2022, "What Language Model Architecture and Pretraining Objective Work Best for
# Zero-Shot Generalization?", published) trained models of over 5 billion parameters and
# found that the ranking depends on how the model is used: **causal decoders trained
# with a language-modelling objective generalize best zero-shot after pretraining alone**,
# while non-causal models (encoder-decoders and prefix LMs) trained with masked language
# modelling and then multitask-finetuned did best in their experiments; they also adapted
# one kind into the other cheaply. So why did decoders "win"? Not because they beat
# encoder-decoders on every benchmark at equal compute: T5 says they did not. The reasons
# that carried the field were others: one stack and one loss that scale without
# re-engineering; pretraining on raw text with no task design; one model that does every
# task through prompts, zero-shot, which is Wang et al.'s setting where the causal decoder
# was best; a KV cache that makes each generated token cheap; and, at very large scale,
# abilities that showed up in decoders first (GPT-3's few-shot prompting). "Won" is a
# statement about what was built and used, not a theorem about every measurement.
#
# ## 6. Your verdict
#
# ### Written answer (graded by your instructor)
#
# In 150 to 250 words: which of the four claims (simplicity, efficiency, versatility,
# scalability) does **your** evidence from this notebook support, which does it not, and
# where is it weakest (scale, budgets, metrics, seeds)? Quote at least two numbers your
# run printed, each with its standard error, and say what experiment would settle the
# weakest point.

# %% [markdown] answer="verdict" points=4
# A model answer for graders (the learner's numbers differ by run; check that each number
# quoted appears in the learner's printed output and carries its standard error).
#
# Simplicity holds as a description: one mask, one loss and one decoding loop, though the
# line and module-kind counts barely separate the classes, because all three share the
# same parts. Efficiency is decided by the verdict lines of section 2, by two standard
# errors: if the every-token decoder beats the second-half decoder, the extra targets
# bought a lower loss on the same continuation test at equal FLOPs (support, at this
# scale); a tie would mean they did not in so short a run. The encoder-decoder's and the
# prefix LM's lines say how the three architectures ordered on that test. Versatility:
# the decoder is the only model that answers both tasks; whether it matches the
# specialists is read from the verdict lines, the sentiment-only control at the
# encoder's budget shows whether a gap is the decoder or the shared budget, and the lines
# against always answering the commoner label show whether a decoder learned the task at
# all (a large standard error across seeds is itself a finding: training this short is
# unstable). Scalability: the IsoFLOP
# fits give an exponent for `N_opt` with a bootstrap spread over few budgets; any optimum
# at the edge of the widths tried makes it unreliable. The weakest point is scale: two or
# three seeds, a few budgets over a small range, and models far from convergence (a
# decoder that learned sentiment with one seed and not another is the plainest sign). A wider
# IsoFLOP sweep (more budgets over two or more decades, more widths, the gpu profile)
# and a fine-tuned benchmark comparison like T5's would settle it.
