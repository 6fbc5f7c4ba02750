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
# 4. **scalability**: the loss falls as a smooth power law of the model size.
#
# A slogan is not evidence. In this lab you test each claim yourself, with the three
# families built from `course_utils`, on the same data and at the same training compute,
# and you read the numbers, including where a claim does **not** hold at laptop scale.
# Then you meet the strongest counter-evidence: T5's careful comparison, in which the
# encoder-decoder won.
#
# You will write four small tools the experiments need:
#
# 1. `supervised_tokens`: how many positions of a batch give the loss a target;
# 2. `format_prompt` and `parse_answer`: a task written as text, and its answer read back;
# 3. `flops_per_token`: the training compute of one token of a decoder;
# 4. `fit_power_law`: a straight line in log-log space.
#
# Every number below is computed when the notebook runs; none is typed in. The whole
# notebook takes about 3 minutes on a 2-core laptop CPU.

# %% [markdown]
# ## 0. Set-up
#
# Imports, a fixed seed, and the settings of the current profile (tiny when grading, small
# on a laptop, bigger on a GPU).

# %%
import ast
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
from course_utils.training import evaluate_loss, train, warmup_cosine

course_utils.seed_everything(0)
cfg = course_utils.settings(
    smoke=dict(
        d_model=16, n_layers=1, block=32, batch_size=8, eff_steps=4, n_evals=2,
        vers_steps=4, vers_lr=1e-3, n_reviews=200, n_dates=200, n_test=20, scale_steps=3,
        sizes=((8, 1), (16, 1), (16, 2), (24, 2), (32, 2)), n_boot=200,
    ),
    cpu=dict(
        d_model=48, n_layers=2, block=64, batch_size=32, eff_steps=200, n_evals=5,
        vers_steps=1500, vers_lr=1e-3, n_reviews=10000, n_dates=10000, n_test=300,
        scale_steps=150, sizes=((16, 1), (24, 1), (32, 1), (48, 2), (64, 2)), n_boot=1000,
    ),
    gpu=dict(
        d_model=128, n_layers=4, block=128, batch_size=64, eff_steps=1500, n_evals=10,
        vers_steps=4000, vers_lr=1e-3, n_reviews=20000, n_dates=20000, n_test=500,
        scale_steps=1000, sizes=((32, 2), (64, 2), (96, 3), (128, 4), (192, 4), (256, 4)),
        n_boot=1000,
    ),
)  # fmt: skip
device = course_utils.pick_device()
print(f"profile {cfg.profile!r} on {device}")
start_time = time.perf_counter()

# %% [markdown]
# One character vocabulary serves every family and every task, so that no model gets a
# better tokenizer than another: `<pad>`, `<bos>`, `<eos>`, `<mask>`, then the characters.
# The plain text is the course's offline corpus (Python's documentation); 10% is kept for
# validation.

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
# need beyond the model.


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
needs = {
    "decoder (B)": ("causal", "next token", "sampling loop (KV cache)"),
    "encoder (C)": ("padding", "masked tokens (+ a new head per task)", "none: cannot write"),
    "encoder-decoder (A)": (
        "padding, causal, cross (3)",
        "target tokens",
        "encoder once, then decoder loop (two caches)",
    ),
}
print(f"{'family':<21}{'kinds':>6}{'params':>9}{'lines':>7}  masks / loss / decoding")
for name, model in families.items():
    kinds = {type(m).__name__ for m in model.modules()}
    n_params = sum(p.numel() for p in model.parameters())
    mask, loss, decode = needs[name]
    print(
        f"{name:<21}{len(kinds):>6}{n_params:>9,}{code_lines(type(model)):>7}  "
        f"{mask} / {loss} / {decode}"
    )

# %% [markdown]
# The decoder is the smallest class and needs one mask and one loss for everything; the
# encoder-decoder carries two stacks, cross-attention, three masks and a decoding loop that
# must run the encoder first. The encoder is short too, but it cannot write at all: every
# new task needs a new head and fine-tuning. (The encoder's line count includes its
# masked-LM and classification heads, pooling and sentence embeddings.) At the same width
# and depth the encoder-decoder has about twice the parameters: "equal size" already
# needs a choice, which is why the rest of the lab compares at **equal compute**.
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
# ### Learning curves at equal compute
#
# Each family now trains on the same corpus for the **same number of FLOPs** (what the
# decoder spends in `eff_steps` steps), with `experiments.train_for_flops`. How to compare
# their losses? The decoder and the encoder-decoder can be put to exactly the same test:
# *given the first half of a validation window, predict the second half*. For the decoder
# that is its next-token loss on the second half; for the encoder-decoder its target loss.
# The encoder cannot write a continuation; its curve shows its own masked-token loss, on a
# different, easier question (it sees both sides of each gap), so do not read it against
# the other two.

# %%
val_gen = torch.Generator().manual_seed(1)
val_windows = [windows(val_ids, cfg.batch_size, val_gen) for _ in range(4)]
val_masks = torch.Generator().manual_seed(2)
val_batches = {f: [family_batch(f, w, val_masks) for w in val_windows] for f in FAMILIES}


def continuation_loss(family, model, batch):
    """Loss on the second half of a window given the first half (decoder, encoder-decoder)."""
    inputs, labels = batch
    logits = family_logits(family, model, inputs)
    if family == "decoder":
        logits, labels = logits[:, T // 2 - 1 : T - 1], inputs[0][:, T // 2 :]
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


def eval_fn_for(family):
    loss = family_loss("encoder") if family == "encoder" else None

    def eval_fn(model):
        batches = val_batches[family]
        if family == "encoder":
            return evaluate_loss(model, lambda i: batches[i], loss, len(batches))
        return float(np.mean([continuation_loss(family, model, b).item() for b in batches]))

    return eval_fn


budget = cfg.eff_steps * flops_per_step["decoder"]
runs = {}
for family, cls in zip(FAMILIES, (DecoderModel, EncoderModel, EncoderDecoderModel)):
    torch.manual_seed(0)
    model = cls(base).to(device)
    gen = torch.Generator().manual_seed(3)
    runs[family] = experiments.train_for_flops(
        model,
        lambda step, family=family, gen=gen: family_batch(
            family, windows(train_ids, cfg.batch_size, gen), gen
        ),
        family_loss(family),
        budget=budget,
        flops_per_step=flops_per_step[family],
        n_evals=cfg.n_evals,
        eval_fn=eval_fn_for(family),
        lr=2e-3,
        progress=False,
    )
    runs[family].model = model
    print(
        f"{family:<16} {runs[family].steps:4d} steps, final validation loss "
        f"{runs[family].history.final_eval_loss:.3f}"
    )

fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
for family, run in runs.items():
    style = ":" if family == "encoder" else "-"
    label = family + (" (masked-token loss)" if family == "encoder" else " (second half)")
    ax.plot(run.eval_flops, run.history.eval_loss, style, marker="o", label=label)
ax.set(xlabel="training FLOPs", ylabel="validation loss", xscale="log")
ax.set_title(f"equal compute: {budget:.2e} FLOPs each")
ax.legend()
plt.show()

# %% [markdown]
# Read the two solid curves. Per training step the decoder gets twice the targets of the
# encoder-decoder (a whole window instead of half), at about the same FLOPs per step. Yet
# on the same question, predicting the second half from the first, the two final losses
# printed above are close at our scale (in our cpu run: 2.299 for the decoder, 2.298 for
# the encoder-decoder): twice the supervised tokens did not buy a lower loss on this test.
# The efficiency claim is about **signal per FLOP** over long training; a few hundred steps
# of a tiny model cannot show it, and this lab says so. What the batches do show is the
# encoder's handicap: it supervises only 15% of what it reads.
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
# ### The experiment
#
# One decoder trains on a **mixture**: sentiment reviews (lab 04's task) and dates (lab 06's
# task) written as prompts with their answers, and plain corpus lines, shuffled together;
# the loss is next-character prediction on all of it. Against it, two **specialists**: an
# encoder with a classification head trained on the reviews only, and an encoder-decoder
# trained on the dates only. Each specialist gets a budget of `vers_steps` steps of the
# encoder-decoder; the decoder gets the **sum** of the two budgets, since it must learn
# both tasks (and the plain text) in one model.
#
# All three read the same tokens: the characters of the rest of this lab, plus every word
# the reviews use, the month and day names of the dates, and the answer words, each a
# single token (alone and with the space before it, as GPT-2's vocabulary writes words:
# `prompts.WordVocab`). With characters alone a model of this size spends its budget
# learning to spell before it can learn what `not` does to `good` (in our tries the
# sentiment encoder stayed between 50% and 64% after 2,000 steps); real models read
# subword tokens for the same reason. Digits, signs and other words are still spelled out,
# so an ISO date is written digit by digit.

# %%
splits = sentiment.make_splits(n_train=cfg.n_reviews, n_val=50, n_test=cfg.n_test, seed=0)
date_train = dates.make_examples("train", cfg.n_dates, seed=0)
date_test = dates.make_examples("test", cfg.n_test, seed=0)
corpus_lines = [line for line in corpus.splitlines() if 20 <= len(line) <= 60]
corpus_lines = corpus_lines[:: max(1, len(corpus_lines) // cfg.n_reviews)]
date_words = {w for e in date_train for w in prompts.WORD.findall(e.source)}
task_vocab = prompts.WordVocab(
    [*sentiment.review_words(), *date_words, *prompts.TASKS.values(), *prompts.LABELS]
)
print(
    f"{len(task_vocab)} tokens; for example",
    [task_vocab.itos[i] for i in task_vocab.encode("review: the plot was not good => negative")],
)
if course_utils.ready("format_prompt"):
    mixture = prompts.make_mixture(splits.train, date_train, corpus_lines, seed=0)
    print(f"{len(mixture)} lines in the mixture, for example:")
    for line in mixture[:4]:
        print("   ", line)
    # Whole lines, never cut: a review's deciding clause (after "but") and the answer come
    # last, and a line cut at the context length would teach the decoder to stop before
    # the answer. So these models get a context as long as the longest line.
    V_T = max(len(task_vocab.encode(line)) for line in mixture) + 2
    print(f"longest line {V_T - 2} tokens: the versatility models get a context of {V_T}")


def pad_rows(rows, width, value):
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row[:width], dtype=torch.long)
    return out


def mixture_batch(lines):
    rows = [[BOS, *task_vocab.encode(line), EOS] for line in lines]
    width = max(len(r) for r in rows)
    ids = pad_rows(rows, width, PAD)
    labels = ids[:, 1:].clone()
    labels[labels == PAD] = -100
    return (ids[:, :-1],), labels


def review_batch(reviews):
    rows = [[BOS, *task_vocab.encode(r.text)] for r in reviews]
    ids = pad_rows(rows, max(len(r) for r in rows), PAD)
    return ids, torch.tensor([r.label for r in reviews])


def date_batch(examples):
    src = pad_rows([task_vocab.encode(e.source) for e in examples], dates.SOURCE_LEN, PAD)
    tgt = [task_vocab.encode(e.target) for e in examples]
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


def mixture_loss(model, batch):
    (ids,), labels = batch
    return F.cross_entropy(model(ids).flatten(0, 1), labels.flatten(), ignore_index=-100)


def sampler(items, make, seed):
    rng = np.random.default_rng(seed)
    return lambda step: make([items[i] for i in rng.integers(0, len(items), cfg.batch_size)])


# %% [markdown]
# The FLOPs of a step come from the sequence lengths of the data: a review is about 10
# tokens, a date source at most 32 (padded) with an 11-token target, a mixture line up to
# the longest line. We measure the mean padded width of a few batches of each.

# %%
if course_utils.ready("format_prompt"):
    spec_cfg = model_config(
        cfg.d_model,
        cfg.n_layers,
        vocab_size=len(task_vocab),
        max_len=V_T,
        n_classes=2,
        pooling="mean",
    )
    enc_sample = sampler(splits.train, review_batch, 10)
    ed_sample = sampler(date_train, date_batch, 11)
    dec_sample = sampler(mixture, mixture_batch, 12)
    review_len = np.mean([enc_sample(0)[0].shape[1] for _ in range(5)])
    mixture_len = np.mean([dec_sample(0)[0][0].shape[1] for _ in range(5)])
    step_flops = {
        "encoder": cfg.batch_size
        * experiments.flops_per_example(spec_cfg, "encoder", length=int(review_len)),
        "encoder-decoder": cfg.batch_size
        * experiments.flops_per_example(
            spec_cfg, "encoder-decoder", length=dates.SOURCE_LEN, target_len=11
        ),
        "decoder": cfg.batch_size
        * experiments.flops_per_example(spec_cfg, "decoder", length=int(mixture_len)),
    }
    spec_budget = cfg.vers_steps * step_flops["encoder-decoder"]
    plan = {
        "encoder (sentiment)": (EncoderModel, "encoder", enc_sample, classify_loss, spec_budget),
        "encoder-decoder (dates)": (
            EncoderDecoderModel,
            "encoder-decoder",
            ed_sample,
            seq2seq_loss,
            spec_budget,
        ),
        "decoder (mixture)": (DecoderModel, "decoder", dec_sample, mixture_loss, 2 * spec_budget),
    }
    versatile = {}
    for name, (cls, family, sample, loss_fn, flops) in plan.items():
        torch.manual_seed(0)
        model = cls(spec_cfg).to(device)
        steps = experiments.steps_for_budget(flops, step_flops[family])
        run = experiments.train_for_flops(
            model,
            sample,
            loss_fn,
            budget=flops,
            flops_per_step=step_flops[family],
            lr=cfg.vers_lr,
            scheduler=warmup_cosine(steps, warmup=steps // 10),
            progress=False,
        )
        versatile[name] = model.eval()
        print(
            f"{name:<24} {run.steps:4d} steps, {flops:.2e} FLOPs, last loss {run.history.final_train_loss:.3f}"
        )

# %% [markdown]
# Now each model on each task, on test sets of unseen combinations (lab 04's held-out word
# pairs, lab 06's held-out years and formats). The decoder answers by greedy generation
# after the prompt, and `parse_answer` reads what it wrote; an answer that is not
# well-formed counts as wrong.


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


def decoder_scores(model, reviews, examples):
    said = complete(model, [format_prompt("sentiment", r.text) for r in reviews], 10)
    labels = [parse_answer("sentiment", s) for s in said]
    sentiment_acc = np.mean([a == prompts.LABELS[r.label] for a, r in zip(labels, reviews)])
    said = complete(model, [format_prompt("dates", e.source) for e in examples], 12)
    iso = [parse_answer("dates", s) for s in said]
    well_formed = np.mean([a is not None for a in labels + iso])
    return sentiment_acc, np.mean([a == e.target for a, e in zip(iso, examples)]), well_formed


if course_utils.ready("format_prompt", "parse_answer"):
    with torch.no_grad():
        ids, y = review_batch(splits.test)
        ids, y = ids.to(device), y.to(device)
        logits = versatile["encoder (sentiment)"].classify(ids, key_padding_mask=ids == PAD)
        enc_acc = (logits.argmax(-1) == y).float().mean().item()
        src, _, _ = date_batch(date_test)
        src = src.to(device)
        out = versatile["encoder-decoder (dates)"].greedy_decode(
            src, src_padding_mask=src == PAD, max_new_tokens=11
        )
        ed_acc = np.mean([task_vocab.decode(o) == e.target for o, e in zip(out[:, 1:], date_test)])
    dec_sent, dec_dates, dec_formed = decoder_scores(
        versatile["decoder (mixture)"], splits.test, date_test
    )
    table = {
        "encoder (sentiment)": (enc_acc, None),
        "encoder-decoder (dates)": (None, ed_acc),
        "decoder (mixture)": (dec_sent, dec_dates),
    }
    print(f"{'model':<25}{'sentiment acc.':>15}{'dates exact':>13}")
    for name, (a, b) in table.items():
        cells = ["cannot" if v is None else f"{v:.0%}" for v in (a, b)]
        print(f"{name:<25}{cells[0]:>15}{cells[1]:>13}")
    print(f"(chance on sentiment: 50%; the decoder's answers were well-formed {dec_formed:.0%})")

# %% [markdown]
# Is a gap real, or the luck of a test set of `n_test` examples? An accuracy measured on
# `n` examples has a standard error of about `sqrt(p * (1 - p) / n)`, and a difference of
# two independent ones the root of the sum of their squares. We call a gap of less than
# two standard errors a tie.

# %%
if course_utils.ready("format_prompt", "parse_answer"):
    n = cfg.n_test
    for task, decoder_acc, specialist, specialist_acc in [
        ("sentiment", dec_sent, "the encoder", enc_acc),
        ("dates", dec_dates, "the encoder-decoder", ed_acc),
    ]:
        gap = decoder_acc - specialist_acc
        se = np.sqrt((decoder_acc * (1 - decoder_acc) + specialist_acc * (1 - specialist_acc)) / n)
        if abs(gap) < 2 * se:
            verdict = f"ties with {specialist}"
        else:
            verdict = f"{'beats' if gap > 0 else 'trails'} {specialist}"
        print(
            f"{task:>9}: the decoder {verdict}: {decoder_acc:.0%} against {specialist_acc:.0%}"
            f" ({gap:+.0%}, two standard errors = {2 * se:.0%})"
        )
    if abs(dec_sent - 0.5) < 2 * np.sqrt(0.25 / n):
        print("(on sentiment the decoder is no better than a coin: 50% is within two errors)")

# %% [markdown]
# The decoder is the only model in the table with a number in both columns: that is the
# versatility claim, and it holds by construction. Whether it is *as good* as each
# specialist at equal compute is a different claim, and the lines above settle it for this
# run. In our cpu runs the specialists won both tasks. On dates the decoder learned a good
# part of the task; on sentiment it wrote well-formed answers that were no better than a
# coin, while the encoder was nearly perfect. A model that must learn plain text, two
# prompt formats and two tasks in one budget pays for all of them, and the decoder learns
# sentiment from one answer token at the end of each review line, where the encoder's
# whole loss is the label. (An answer that is not
# well-formed counts as wrong, so the well-formed rate caps the decoder's scores.) The
# claim that one model does everything *well* is a claim about scale, which a laptop
# cannot test; what it can show is that one model, one loss and one decoding loop already
# do both tasks at all.
#
# What happens with a prompt the decoder never saw written that way? Below, three inputs
# in formats that were never in its training text. Read what it writes honestly: a model
# this small has learned the surface of its training format, not the idea of a question.
# It tends to stop at once, or to repair the text toward the format it knows (writing the
# `=>` it expects) before it answers.

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
from course_utils.checks import check_raises

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
_ = check_raises(ValueError, lambda: fit_power_law([-1, 10], [1.0, 0.5]), name="a negative n")
### END HIDDEN TESTS

# %% [markdown]
# ### The sweep
#
# Five decoders, from one narrow layer to two wider ones, train on **the same tokens** (the
# same batches in the same order, `scale_steps` steps each). We record the final validation
# loss against the non-embedding parameters `N` (the blocks' weight matrices, as Kaplan
# counts them). The uncertainty of the exponent comes from a bootstrap: refit on the
# sizes resampled with replacement, many times, and look at the spread of the exponents.

# %%
scale_val = [(w[:, :T], w[:, 1:]) for w in val_windows]


def lm_loss(model, batch):
    x_in, y = batch
    return F.cross_entropy(model(x_in).flatten(0, 1), y.flatten())


sweep = []
for d, n_layers in cfg.sizes:
    size_cfg = model_config(d, n_layers)
    torch.manual_seed(0)
    model = DecoderModel(size_cfg).to(device)
    gen = torch.Generator().manual_seed(4)
    batches = (windows(train_ids, cfg.batch_size, gen) for _ in range(cfg.scale_steps))
    train(
        model,
        lambda step, batches=batches: (lambda w: (w[:, :T], w[:, 1:]))(next(batches)),
        lm_loss,
        steps=cfg.scale_steps,
        lr=3e-3,
        progress=False,
    )
    val = evaluate_loss(model, lambda i: scale_val[i], lm_loss, len(scale_val))
    sweep.append((experiments.non_embedding_params(size_cfg), val))
    print(f"d_model={d:3d} x {n_layers} layers: N = {sweep[-1][0]:7,d}, validation loss {val:.3f}")

N = np.array([s[0] for s in sweep], dtype=float)
L = np.array([s[1] for s in sweep])
law = experiments.bootstrap_power_law(N, L, n_boot=cfg.n_boot, seed=0)
print(f"N spans {N.max() / N.min():.0f}x; fit: {law}")

# %%
if course_utils.ready("fit_power_law"):
    a, alpha = fit_power_law(N, L)
    print(f"your fit: alpha = {alpha:.3f} (library {law.alpha:.3f}); Kaplan et al.: 0.076")
    fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
    ax.loglog(N, L, "o", label="our decoders")
    grid = np.geomspace(N.min(), N.max(), 50)
    ax.loglog(grid, a * grid**-alpha, "-", label=f"fit: alpha = {alpha:.3f} ± {law.alpha_std:.3f}")
    ax.set(xlabel="non-embedding parameters N", ylabel="validation loss (nats per character)")
    ax.legend()
    plt.show()

# %% [markdown]
# Compare your exponent and its uncertainty with Kaplan's 0.076. Several things make a
# laptop sweep differ: our models train for a few hundred steps, far from converged, so
# the bigger models are limited by **compute and data**, not by their size (Kaplan's
# `alpha_N` is for models trained to convergence); our learning rate is the same for every
# size; a character vocabulary has a floor (the entropy of text) close to where we stop;
# and five points over a few decades give a wide interval. (In our cpu run: alpha = 0.038
# ± 0.010 over a 32x range of N, about half of Kaplan's value.) The straight line is a
# hypothesis your five points can support or not: look at the residuals in the plot.
#
# ## 5. The counter-evidence: T5
#
# Raffel et al. (2020, "Exploring the Limits of Transfer Learning with a Unified
# Text-to-Text Transformer", Table 2) compared architectures at **equal compute**, each
# pretrained and then fine-tuned on the same tasks. The encoder-decoder with a denoising
# objective came first on every benchmark; the causal decoder (a "language model") was
# behind:

# %%
t5 = {
    "encoder-decoder, denoising": {"GLUE": 83.28, "EnDe (BLEU)": 26.98},
    "decoder-only (language model)": {"GLUE": 74.70, "EnDe (BLEU)": 25.09},
}
print(f"{'T5, Table 2':<34}{'GLUE':>8}{'EnDe':>8}")
for name, row in t5.items():
    print(f"{name:<34}{row['GLUE']:>8.2f}{row['EnDe (BLEU)']:>8.2f}")

print(f"\n{'this notebook, equal compute':<34}{'second-half loss':>18}{'dates exact':>13}")
ours = {
    "encoder-decoder": (runs["encoder-decoder"].history.final_eval_loss, None),
    "decoder-only": (runs["decoder"].history.final_eval_loss, None),
}
if course_utils.ready("format_prompt", "parse_answer"):
    ours = {
        "encoder-decoder": (ours["encoder-decoder"][0], ed_acc),
        "decoder-only": (ours["decoder-only"][0], dec_dates),
    }
for name, (loss, acc) in ours.items():
    acc_text = "-" if acc is None else f"{acc:.0%}"
    print(f"{name:<34}{loss:>18.3f}{acc_text:>13}")
print(f"\nwhole notebook so far: {time.perf_counter() - start_time:.0f} s")

# %% [markdown]
# (Lower loss is better; the dates column compares a specialist encoder-decoder with a
# decoder that split its budget over three kinds of text, so it favours the
# encoder-decoder by design.) So why did decoders "win"? Not because they beat
# encoder-decoders on every benchmark at equal compute: T5 says they did not. The reasons
# that carried the field were others: one stack and one loss that scale without
# re-engineering; pretraining on raw text with no task design; one model that does every
# task through prompts, including tasks nobody planned; and, at very large scale, abilities
# that showed up in decoders first (GPT-3's few-shot prompting). "Won" is a statement about
# what was built and used, not a theorem about every measurement.
#
# ## 6. Your verdict

# %% [markdown] answer="verdict" points=4
# In 150 to 250 words: which of the four claims (simplicity, efficiency, versatility,
# scalability) does **your** evidence from this notebook support, which does it not, and
# where is it weakest (scale, budgets, metrics, seeds)? Quote at least two numbers you
# measured, and say what experiment would settle the weakest point.
#
# YOUR ANSWER HERE
