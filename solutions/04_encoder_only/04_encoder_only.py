# %% [markdown]
# # Lab 04: The encoder (Type C): a small BERT that understands
#
# Labs 01 to 03 built every part of a transformer. From here on the three families part
# ways, and this lab builds the first: the **encoder-only** model, BERT's family (Type C in
# this course). An encoder reads the whole text at once, every word seeing every other
# word, left and right. It does not write text; it *understands* it: it turns a text into
# vectors that a small head can classify, or that you can compare to find similar texts.
#
# You will build, test against PyTorch, and measure:
#
# 1. a task where word order matters: movie reviews with **negation** ("not bad at all"),
#    **contrast** ("good acting but a boring plot") and double negation, and a
#    **bag-of-words** baseline that cannot read order;
# 2. **masked language modelling**, BERT's pretraining: hide 15% of the words and learn to
#    fill them in, on the course corpus, with no labels at all;
# 3. **pooling** and a **classification head**, and **fine-tuning** the pretrained encoder
#    on labelled reviews;
# 4. the evidence: the fine-tuned encoder, the same encoder trained from scratch, and the
#    bag-of-words baseline, phenomenon by phenomenon, on reviews with word combinations
#    never seen in training;
# 5. **sentence embeddings** and nearest-neighbour search, with a search box to try;
# 6. the proof that your encoder *is* BERT: the same weights give Hugging Face's numbers.

# %% [markdown]
# ## 0. Set-up
#
# Imports, a fixed seed, and the settings of the current profile (tiny when grading, small
# on a laptop, bigger on a GPU).

# %%
import copy
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

import course_utils
from course_utils import data
from course_utils.models import EncoderModel, ModelConfig
from course_utils.plots import plot_heatmap
from course_utils.tasks import sentiment
from course_utils.training import train, warmup_cosine

course_utils.seed_everything(0)
cfg = course_utils.settings(
    smoke=dict(
        n_train=400, n_val=100, n_test=200, d_model=32, n_heads=2, n_layers=1,
        block_size=16, batch_size=16, pretrain_steps=8, finetune_steps=8, lr=2e-3,
    ),
    cpu=dict(
        n_train=20000, n_val=500, n_test=1000, d_model=64, n_heads=4, n_layers=2,
        block_size=32, batch_size=64, pretrain_steps=500, finetune_steps=600, lr=1e-3,
    ),
    gpu=dict(
        n_train=20000, n_val=500, n_test=1000, d_model=128, n_heads=4, n_layers=4,
        block_size=64, batch_size=128, pretrain_steps=3000, finetune_steps=1500, lr=5e-4,
    ),
)  # fmt: skip
device = course_utils.pick_device()
print(f"profile {cfg.profile!r} on {device}")

# %% [markdown]
# ## 1. A task where word order matters
#
# `course_utils.tasks.sentiment` writes movie reviews from a small grammar. Each review is
# one clause ("the plot was good") or two joined by "and" or "but", and each clause can be
# turned around by a negation. The label is 1 for a positive review and 0 for a negative
# one, and each review is tagged with the **phenomena** it contains:
#
# - **negation**: "the music was never boring", "the plot was not bad at all" (positive),
#   "it is not true that the cast was funny" (negative);
# - **double negation**: two negations cancel: "the ending was never not moving" is positive;
# - **contrast**: two clauses of opposite sentiment joined by "but"; the one after "but"
#   decides: "the acting was good but the plot was boring" is negative;
# - **intensifier**: "very", "truly", "extremely" before the adjective; they change nothing
#   here but add variety.
#
# The **test** set is harder than the training set in one precise way: some word
# combinations, such as "the plot" with "clever" or "never" with "dull", are kept out of
# training altogether, and every test review contains at least one of them. Each word is
# seen in training, just in other company. A model that learned the rules, rather than the
# sentences, still gets them right.

# %%
splits = sentiment.make_splits(cfg.n_train, cfg.n_val, cfg.n_test, seed=0)
print(splits)
for phenomenon in sentiment.PHENOMENA:
    alone = [r for r in splits.train if r.phenomena == (phenomenon,)]  # this one only
    example = (alone or [r for r in splits.train if r.has(phenomenon)])[0]
    print(f"{phenomenon:>16}: {'+' if example.label else '-'}  {example.text}")
print("\nkept out of training, for example:", sorted(splits.held_out)[:4])
print("a test review:", splits.test[0].text)

# %% [markdown]
# ### One vocabulary for the corpus and the reviews
#
# BERT is pretrained on one text and fine-tuned on another, with **one** vocabulary for
# both: the embedding of a word learned in pretraining is the one the classifier starts
# from. We use whole **words** as tokens here: a review is then about 12 tokens long (about
# 60 characters), which keeps the model fast enough for a laptop, and the reviews' words
# are whole units the model can reason about. The vocabulary holds every word that occurs
# at least three times in the course corpus (Python's language reference, lab 01), plus
# every review word, plus BERT's five special tokens:
#
# | id | token | what it is for |
# |---|---|---|
# | 0 | `[PAD]` | filler after short texts in a batch |
# | 1 | `[UNK]` | any word not in the vocabulary |
# | 2 | `[CLS]` | put before every text; its vector can stand for the whole text |
# | 3 | `[SEP]` | put after every text |
# | 4 | `[MASK]` | "a word was hidden here" (section 2) |
#
# One honest warning before we start: the corpus is about Python. It uses "not", "but",
# "never" and "is" constantly, but "boring", "charming" or "plot" never. Section 5 comes
# back to this.

# %%
corpus = data.load_corpus()
tokenizer = sentiment.WordTokenizer.train([corpus], min_count=3, always=sentiment.review_words())
N_SPECIAL = len(tokenizer.SPECIALS)
corpus_ids = torch.tensor(tokenizer.encode(corpus))
train_ids, val_ids = data.train_val_split(corpus_ids, 0.1)
unknown = (corpus_ids == tokenizer.unk_id).float().mean().item()
print(f"{tokenizer}, corpus: {len(corpus_ids):,} tokens ({unknown:.1%} of them [UNK])")
ids, padding = tokenizer.encode_batch(["the plot was not bad at all", "never boring"])
print(ids)
print(padding)
print(tokenizer.decode(ids[1]))

# %% [markdown]
# ### What we have to beat: a bag of words
#
# The simplest text classifier forgets the order: it counts how often each word occurs and
# gives each word a weight. That is **logistic regression on word counts**
# (`sentiment.train_bag_of_words`, a single `nn.Linear` over the counts). It learns that
# "good" is positive and "boring" negative, and it cannot do anything else: "not good"
# is to it "not" plus "good", wherever the "not" stands.


# %%
def encode_reviews(reviews):
    """Reviews -> (ids (N, T), padding (N, T), labels (N,))."""
    ids, padding = tokenizer.encode_batch([r.text for r in reviews])
    return ids, padding, torch.tensor([r.label for r in reviews])


train_x, train_pad, train_y = encode_reviews(splits.train)
test_x, test_pad, test_y = encode_reviews(splits.test)
bag_of_words = sentiment.train_bag_of_words(train_x, train_y, tokenizer.vocab_size)
bow_test = sentiment.accuracy_by_phenomenon(splits.test, bag_of_words.predict(test_x))
print("bag of words, test accuracy:")
for name, accuracy in bow_test.items():
    print(f"  {name:>16}: {accuracy:.1%}")

# %% [markdown]
# It is nearly perfect on plain reviews and far below a coin toss on negation: having
# learned that "boring" is negative, it calls "never boring" negative too. On contrast it
# is a coin toss: "good ... but ... boring" and "boring ... but ... good" have the same
# words. Reading the order is the encoder's job.
#
# ## 2. Masked language modelling
#
# Labelled reviews are expensive; plain text is free. BERT's idea is to **pretrain** on
# plain text with a task that needs no labels: hide some words and ask the model to fill
# them in. To fill "the value [MASK] not found" the model must use words on *both* sides,
# which is what a bidirectional encoder can do and a left-to-right model cannot.
#
# BERT's recipe (Devlin et al., 2019), per sequence:
#
# 1. choose each **real** token with probability $p = 0.15$, independently. Never choose
#    padding or the special tokens `[CLS]` and `[SEP]`: there is nothing to learn there;
# 2. of the chosen positions, replace **80%** by `[MASK]`, **10%** by a random word, and
#    leave **10%** unchanged. Each chosen position draws its own fate;
# 3. the model sees the changed sequence and predicts the original word **at the chosen
#    positions only**; the other positions give no loss.
#
# Why not always `[MASK]`? `[MASK]` never appears when the model is used, after
# pretraining. If the model learned to think only at `[MASK]` positions, it would have
# nothing useful to say about ordinary words. The random and unchanged 20% force it to
# check every word it sees, since any of them might be a chosen one.
#
# The targets follow PyTorch's convention: a target of `-100` means "no loss here"
# (`F.cross_entropy`'s default `ignore_index`).
#
# ## 3. Exercise: MLM masking
#
# Write `mask_tokens(ids, vocab_size, mask_id=..., n_special=..., p=0.15, generator=None)`.
#
# - `ids` is `(B, T)` long. In our tokenizer the ids below `n_special` (= 5) are the special
#   tokens, padding included: never choose those. Every id from `n_special` up is a word.
# - Return `(inputs, targets)`, both `(B, T)` long. `inputs` is a **copy** of `ids` with the
#   chosen positions changed; `targets` holds the original id at the chosen positions and
#   `-100` everywhere else.
# - Random replacements are word ids, drawn uniformly from `n_special` to `vocab_size - 1`.
# - Pass `generator=generator` to **every** random call (`torch.rand`, `torch.randint`), so
#   that a seeded generator gives the same masking every time.
#
# <details><summary>Hint</summary>
#
# Three random tensors of the shape of `ids`: `torch.rand(...) < p` (and `ids >= n_special`)
# picks the chosen positions; a second `torch.rand(...)` decides each one's fate (below 0.8:
# `[MASK]`, 0.8 to 0.9: random, above 0.9: unchanged); `torch.randint(n_special,
# vocab_size, ids.shape, generator=generator)` supplies the random words. Then
# `inputs = ids.clone()`, assign with boolean masks, and
# `targets = torch.where(chosen, ids, torch.full_like(ids, -100))`.
# </details>


# %% exercise="mask_tokens"
def mask_tokens(ids, vocab_size, mask_id=4, n_special=5, p=0.15, generator=None):
    """BERT's masking: choose real tokens with probability p; 80% [MASK], 10% random, 10% kept.

    ids: (B, T) long; ids < n_special are special tokens (padding too) and never chosen.
    Returns (inputs, targets), both (B, T) long: inputs is a changed copy of ids; targets is
    the original id at chosen positions and -100 elsewhere. Random replacements are drawn
    uniformly from n_special .. vocab_size - 1.
    """
    ### BEGIN SOLUTION
    real = ids >= n_special
    chosen = (torch.rand(ids.shape, generator=generator) < p) & real
    fate = torch.rand(ids.shape, generator=generator)
    random_words = torch.randint(n_special, vocab_size, ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[chosen & (fate < 0.8)] = mask_id
    swap = chosen & (fate >= 0.8) & (fate < 0.9)
    inputs[swap] = random_words[swap]
    targets = torch.where(chosen, ids, torch.full_like(ids, -100))
    return inputs, targets
    ### END SOLUTION


# %% [markdown]
# The tests cannot compare with a fixed answer (the choice is random), so they check the
# rules on a large batch of 600 rows of 100 positions (`[CLS]`, about 35,000 words in all,
# `[SEP]` and padding). The proportions have a statistical tolerance: with about 5,200
# chosen positions, the share of `[MASK]` varies from run to run by about 0.55 points and
# the shares of random and kept words by about 0.4, so the tests allow 3 points around 80%
# and 2 points around 10% and 15% (about five standard deviations or more: an honest
# solution fails about once in a few hundred thousand seeds; every planted mistake misses
# by far more). The visible test checks each rule of the exercise: only real tokens are
# chosen, the targets hold the original id at **every** chosen position (the random and
# unchanged ones too), the shares, random words that are never special tokens, and that
# generators seeded alike give the same masking. The grader also checks that each position
# draws its own choice and fate, that `p`, `mask_id` and `n_special` are used (the id
# `n_special` itself is a word), and a batch of padding only.
#
# A note on conventions: Hugging Face's `DataCollatorForLanguageModeling` draws its random
# replacements from the whole vocabulary, special tokens included. We draw only words: a
# `[PAD]` or `[SEP]` in the middle of a text teaches nothing. And when nothing is chosen,
# the loss of Hugging Face's `BertForMaskedLM` (a mean over no positions) is NaN; ours, in
# the next exercise, is 0.

# %% test="mask_tokens" points=3 hint="Choose each real token (id >= n_special) with probability p; of those, 80% become mask_id, 10% a random word id in [n_special, vocab_size), 10% stay; targets are the original ids at chosen positions, -100 elsewhere." nudge="Masked-language-model pretraining picks some real tokens to predict and corrupts them in three different ways; the targets record what was there."
import torch

from course_utils.checks import check_equal, check_tensor, check_true

gen = torch.Generator().manual_seed(0)
V, MASK, N_SPECIAL = 1000, 4, 5
ids = torch.randint(N_SPECIAL, V, (600, 100), generator=gen)
lengths = torch.randint(20, 99, (600,), generator=gen)
ids[:, 0] = 2  # [CLS]
ids[torch.arange(600), lengths] = 3  # [SEP]
ids[torch.arange(100)[None, :] > lengths[:, None]] = 0  # [PAD] after [SEP]
before = ids.clone()
inputs, targets = mask_tokens(ids, V, mask_id=MASK, n_special=N_SPECIAL, p=0.15, generator=gen)
check_equal(tuple(inputs.shape), (600, 100), name="mask_tokens(...)[0].shape")
check_equal(tuple(targets.shape), (600, 100), name="mask_tokens(...)[1].shape")
check_true(bool(torch.equal(ids, before)), "mask_tokens changed ids in place; clone it first")
real = ids >= N_SPECIAL
chosen = targets != -100
check_true(
    not bool((chosen & ~real).any()),
    "a padding or special token ([PAD], [CLS], [SEP]) was chosen for masking",
    hint="Only real tokens can be chosen: combine the random choice with ids >= n_special.",
)
check_tensor(targets[chosen], ids[chosen], name="targets at the chosen positions")
changed = inputs != ids
check_true(
    not bool((changed & ~chosen).any()),
    f"targets is -100 at {int((changed & ~chosen).sum())} positions whose input was changed: "
    "every chosen position needs its original id in targets, the ones that became a random "
    "word too, not only the [MASK] ones",
    hint="targets = torch.where(chosen, ids, -100) with chosen the positions picked with "
    "probability p, before deciding their fate.",
)
check_tensor(inputs[~chosen], ids[~chosen], name="inputs at the positions not chosen")
share = chosen.sum().item() / real.sum().item()
check_true(abs(share - 0.15) < 0.02, f"{share:.1%} of the real tokens were chosen, not about 15%")
masked = (inputs[chosen] == MASK).float().mean().item()
kept = (inputs[chosen] == ids[chosen]).float().mean().item()
swapped = 1 - masked - kept
check_true(
    abs(masked - 0.8) < 0.03 and abs(kept - 0.1) < 0.02 and abs(swapped - 0.1) < 0.02,
    f"of the chosen positions {masked:.1%} became [MASK], {swapped:.1%} a random word and "
    f"{kept:.1%} stayed the same; expected about 80%, 10%, 10%",
    hint="Draw a second torch.rand of the shape of ids: below 0.8 -> [MASK], 0.8-0.9 -> random, "
    "the rest unchanged.",
)
swapped_ids = inputs[chosen & (inputs != MASK) & (inputs != ids)]
check_true(
    bool((swapped_ids >= N_SPECIAL).all() & (swapped_ids < V).all()),
    "a random replacement was a special token ([PAD], [UNK], [CLS], [SEP], [MASK]) or out of "
    "the vocabulary: random words come from n_special .. vocab_size - 1",
    hint="torch.randint(n_special, vocab_size, ids.shape, generator=generator)",
)
# The generator decides everything: generators seeded alike give the same masking, whatever
# the global seed (fork_rng: the global seed is given back afterwards).
with torch.random.fork_rng():
    torch.manual_seed(1)
    a = mask_tokens(ids.clone(), V, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(2)
    b = mask_tokens(ids.clone(), V, generator=torch.Generator().manual_seed(7))
check_true(
    bool(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])),
    "two calls with generators seeded alike gave different masks",
    hint="Pass generator=generator to every torch.rand and torch.randint call.",
)
print("✓ mask_tokens: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_mask_tokens", gen)  # the course's secret, if any
# Each chosen position draws its own fate: a decision per batch or per sequence fails here.
# With about 15 chosen positions per row, all of them [MASK] happens in 0.8^15 = 4% of rows
# under the per-position rule, in 80% of rows under a per-row rule.
all_masked = [
    bool((inputs[i][chosen[i]] == MASK).all()) for i in range(600) if chosen[i].sum() >= 10
]
check_true(
    sum(all_masked) / len(all_masked) < 0.2,
    f"in {sum(all_masked) / len(all_masked):.0%} of the rows every chosen position became "
    "[MASK]: the 80/10/10 decision must be drawn for each position, not once per row or batch",
    hint="fate = torch.rand(ids.shape, generator=generator): one number per position.",
)
# The choice itself is per position too: rows with the same layout are chosen differently.
same_layout = torch.full((50, 40), 7)
_, t = mask_tokens(same_layout, V, mask_id=MASK, n_special=N_SPECIAL, generator=gen)
check_true(
    len({tuple((row != -100).tolist()) for row in t}) > 40,
    "rows with the same tokens got the same chosen positions: draw the choice per position",
)
# Random replacements are spread over the vocabulary.
check_true(
    len(set(swapped_ids.tolist())) > 300,
    f"the random replacements use only {len(set(swapped_ids.tolist()))} different words",
)
# p and mask_id are used, not fixed.
_, t = mask_tokens(ids, V, mask_id=MASK, n_special=N_SPECIAL, p=0.5, generator=gen)
share = (t != -100).sum().item() / real.sum().item()
check_true(abs(share - 0.5) < 0.02, f"with p=0.5, {share:.1%} of the real tokens were chosen")
x, t = mask_tokens(ids, V, mask_id=999, n_special=N_SPECIAL, p=0.15, generator=gen)
check_true(
    bool(((x == 999) & (t != -100)).sum() > 0.7 * (t != -100).sum()),
    "mask_id=999 was not used for the masked positions",
)
# n_special is used: with n_special=10, ids 5..9 are special too.
low = torch.randint(5, 10, (100, 30), generator=gen)
_, t = mask_tokens(low, V, mask_id=MASK, n_special=10, generator=gen)
check_true(not bool((t != -100).any()), "ids below n_special=10 were chosen")
# The first word id, n_special itself, is a word and can be chosen.
first_word = torch.full((200, 50), N_SPECIAL)
_, t = mask_tokens(first_word, V, mask_id=MASK, n_special=N_SPECIAL, generator=gen)
share = (t != -100).float().mean().item()
check_true(
    abs(share - 0.15) < 0.02,
    f"of tokens with id n_special = {N_SPECIAL} (the first word), {share:.1%} were chosen, not "
    "about 15%",
    hint="Every id from n_special up is a word: ids >= n_special.",
)
# All padding: nothing chosen.
_, t = mask_tokens(torch.zeros(3, 8, dtype=torch.long), V, generator=gen)
check_tensor(t, torch.full((3, 8), -100), name="targets for a batch of padding only")
check_equal(a[0].dtype, torch.long, name="dtype of inputs")
check_equal(a[1].dtype, torch.long, name="dtype of targets")
### END HIDDEN TESTS

# %% [markdown]
# Here is one corpus window before and after masking. Count how few positions carry a
# target: only those can teach the model anything in this step.

# %%
if course_utils.ready("mask_tokens"):
    gen = torch.Generator().manual_seed(1)
    window = torch.cat([torch.tensor([tokenizer.cls_id]), corpus_ids[1000:1020]])[None]
    inputs, targets = mask_tokens(window, tokenizer.vocab_size, generator=gen, p=0.15)
    print("original:", tokenizer.decode(window[0]))
    print("input:   ", tokenizer.decode(inputs[0]))
    print("targets: ", " ".join(tokenizer.itos[t] if t != -100 else "·" for t in targets[0]))
    x, _ = data.get_batch(train_ids, 1000, cfg.block_size, generator=gen)
    _, t = mask_tokens(x, tokenizer.vocab_size, generator=gen)
    per_sequence = (t != -100).sum(1).float()
    print(
        f"\nover 1000 windows of {cfg.block_size} tokens: {per_sequence.mean():.1f} positions "
        f"with a target per window ({per_sequence.mean() / cfg.block_size:.0%}); a next-token "
        f"model (lab 05) gets a target at all {cfg.block_size}"
    )

# %% [markdown]
# Only about 15% of the positions give a training signal. A decoder-only model (lab 05),
# which predicts the next token everywhere, learns from every position of the same text.
# Per sequence seen, BERT gets about one seventh of the supervision. Keep this number:
# lab 07 measures what it costs.
#
# ## 4. Exercise: the masked-LM loss
#
# The encoder's masked-LM head gives, at every position, a score for every word of the
# vocabulary: logits of shape `(B, T, V)`. Write `masked_lm_loss(logits, targets)`: the
# mean cross-entropy over the **chosen** positions only (`targets != -100`), a scalar.
# The mean is over the chosen positions, not over all `B * T`: a batch with fewer chosen
# positions must not count for less. When no position is chosen, return a zero that is
# still connected to `logits` (`logits.sum() * 0.0`), so that `backward()` works.
#
# <details><summary>Hint</summary>
#
# `chosen = targets != -100`; `logits[chosen]` is `(N, V)` and `targets[chosen]` is `(N,)`;
# `F.cross_entropy` of those two. (`F.cross_entropy(logits.flatten(0, 1), targets.flatten(),
# ignore_index=-100)` computes the same, except when nothing is chosen.)
# </details>


# %% exercise="masked_lm_loss"
def masked_lm_loss(logits, targets):
    """Mean cross-entropy over the chosen positions.

    logits: (B, T, V) floats. targets: (B, T) long, -100 where no loss is wanted.
    Returns a scalar tensor; 0 (connected to logits) when no position is chosen.
    """
    ### BEGIN SOLUTION
    chosen = targets != -100
    if not chosen.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[chosen], targets[chosen])
    ### END SOLUTION


# %% [markdown]
# The reference is PyTorch's `F.cross_entropy` with `ignore_index=-100`, which sums the same
# terms in another order: `rtol=1e-5, atol=1e-6`. The test also checks a batch with nothing
# chosen (zero, and `backward()` works); the grader also checks a batch with one chosen
# position among a hundred, and that the positions not chosen get no gradient.

# %% test="masked_lm_loss" points=2 hint="Keep only the positions where targets != -100, then F.cross_entropy(logits[chosen], targets[chosen]): the mean over the chosen positions." nudge="The loss should be averaged only over the positions the model was asked to predict."
import torch
import torch.nn.functional as F

from course_utils.checks import check_equal, check_tensor, check_true

TOL = dict(rtol=1e-5, atol=1e-6)  # float32 sums in another order
gen = torch.Generator().manual_seed(0)
logits = torch.randn(4, 9, 30, generator=gen)
targets = torch.randint(0, 30, (4, 9), generator=gen)
targets[torch.rand(4, 9, generator=gen) > 0.3] = -100
expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
loss = masked_lm_loss(logits.clone(), targets.clone())
check_tensor(loss, expected, name="masked_lm_loss(logits (4, 9, 30), targets)", **TOL)
# Nothing chosen: a zero that backward() can go through (PyTorch's mean would be NaN).
nothing = torch.randn(2, 4, 5, generator=gen, requires_grad=True)
zero = masked_lm_loss(nothing, torch.full((2, 4), -100))
check_tensor(
    zero.detach(),
    torch.tensor(0.0),
    name="masked_lm_loss with nothing chosen (every target -100)",
    hint="When no target is chosen, return logits.sum() * 0.0: a zero still connected to logits.",
)
check_true(zero.requires_grad, "the zero for nothing chosen must be connected to logits")
zero.backward()
check_tensor(nothing.grad, torch.zeros(2, 4, 5), name="gradient when nothing is chosen")
print(f"✓ masked_lm_loss: visible tests passed (loss {loss.item():.3f})")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_masked_lm_loss", gen)  # the course's secret, if any
# One chosen position among many: the mean is over chosen positions, not over B * T.
targets = torch.full((2, 50), -100)
targets[1, 7] = 3
long_logits = logits[:2].repeat(1, 6, 1)[:, :50]
expected = F.cross_entropy(long_logits[1, 7][None], torch.tensor([3]))
check_tensor(
    masked_lm_loss(long_logits.clone(), targets.clone()),
    expected,
    name="masked_lm_loss with one chosen position in 100",
    hint="Average over the chosen positions only, not over every position.",
    **TOL,
)
# The unchosen positions give no loss and no gradient.
x = torch.randn(3, 6, 12, generator=gen, requires_grad=True)
targets = torch.randint(0, 12, (3, 6), generator=gen)
targets[:, ::2] = -100
expected = F.cross_entropy(x.detach()[:, 1::2].flatten(0, 1), targets[:, 1::2].flatten())
masked_lm_loss(x, targets.clone()).backward()
check_true(
    bool((x.grad[:, ::2] == 0).all()),
    "positions whose target is -100 received a gradient: they must not enter the loss",
)
check_tensor(
    masked_lm_loss(x.detach().clone(), targets.clone()),
    expected,
    name="masked_lm_loss on every other position",
    **TOL,
)
check_equal(tuple(masked_lm_loss(logits, targets.new_zeros(4, 9)).shape), (), name="loss shape")
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Pretraining on the corpus
#
# The encoder comes from `course_utils.models`: `EncoderModel` is the stack of labs 01 to
# 03, token and position embeddings, `n_layers` bidirectional transformer blocks (no
# causal mask: every token sees every other, only padding is hidden), a final LayerNorm,
# and a masked-LM head that maps each hidden vector back to a score per word (sharing its
# weight matrix with the token embedding). We use pre-norm blocks, which train more easily
# at this size; section 11 builds BERT's own post-norm layout from the same parts.
#
# What to pretrain on? The course corpus is Python documentation: it has "not", "but",
# "never" and the shape of English sentences, but not one review adjective ("boring",
# "charming") and not one aspect ("plot", "acting"). So, as people who use BERT on their
# own data do, we pretrain on the corpus **and on the training reviews without their
# labels**: every other batch is corpus windows (`[CLS] ... [SEP]`, 30 words of the
# language reference), the others are reviews, padded. Both are masked by your
# `mask_tokens`, and the loss is your `masked_lm_loss`. No label is used: this is text any
# review site has by the million. Set `PRETRAIN_ON_REVIEWS = False` to pretrain on the
# corpus alone and compare (section 8 says what we measured).
#
# Before training, a probe: fill the blank in a few sentences, in the style of the corpus
# and of the reviews. An untrained model guesses at random.

# %%
PRETRAIN_ON_REVIEWS = True

model_cfg = ModelConfig(
    vocab_size=tokenizer.vocab_size,
    d_model=cfg.d_model,
    n_heads=cfg.n_heads,
    n_layers=cfg.n_layers,
    max_len=max(cfg.block_size, 32),  # reviews are up to 26 tokens long
    dropout=0.1,
    norm_first=True,
    pad_id=tokenizer.pad_id,
)
course_utils.seed_everything(0)
encoder = EncoderModel(model_cfg).to(device)
initial_state = copy.deepcopy(encoder.state_dict())  # for the from-scratch run of section 8
print(f"encoder: {sum(p.numel() for p in encoder.parameters()):,} parameters")

PROBES = {  # a sentence with a blank, and the word that belongs there
    "otherwise , a [MASK] is raised .": "typeerror",
    "the default value is [MASK] .": "none",
    "the plot was not bad at [MASK]": "all",
    "it is not [MASK] that the cast was funny": "true",
}


def encode_probe(text):
    """A sentence with [MASK] in it -> ids (1, T) with [CLS] ... [SEP]."""
    ids = [tokenizer.cls_id]
    for i, part in enumerate(text.split("[MASK]")):
        if i:
            ids.append(tokenizer.mask_id)
        ids += tokenizer.encode(part)
    return torch.tensor([ids + [tokenizer.sep_id]])


@torch.no_grad()
def fill_blank(model, text, answer, k=3):
    """(the model's k best words for the [MASK] of text, the probability it gives answer)."""
    was_training = model.training
    model.eval()
    ids = encode_probe(text).to(device)
    logits = model.masked_lm_logits(ids)[0, (ids[0] == tokenizer.mask_id).nonzero()[0, 0]]
    logits[:N_SPECIAL] = -math.inf  # only words
    model.train(was_training)
    probability = logits.softmax(-1)[tokenizer.stoi[answer]].item()
    return [tokenizer.itos[i] for i in logits.topk(k).indices.tolist()], probability


def probe_all(model):
    return [fill_blank(model, text, answer) for text, answer in PROBES.items()]


fills = {0: probe_all(encoder)}
for (text, answer), (guess, probability) in zip(PROBES.items(), fills[0]):
    print(f"{text:<45} -> {', '.join(guess):<35} p({answer}) = {probability:.3%}")

# %% [markdown]
# Now the pretraining run: the shared training loop of the course (`train`) with a warm-up
# and a cosine schedule, a live loss plot, and an evaluation every few steps on held-out
# text (a stretch of the corpus and the validation reviews), where it also records what
# the probe sentences get filled with.

# %%
if course_utils.ready("mask_tokens", "masked_lm_loss"):
    val_x, val_pad, _ = encode_reviews(splits.val)

    def masked_batch(step, corpus_part, reviews_x, reviews_pad, generator):
        """Even steps (or every step without reviews): corpus windows; odd steps: reviews."""
        if PRETRAIN_ON_REVIEWS and step % 2:
            rows = torch.randint(len(reviews_x), (cfg.batch_size,), generator=generator)
            width = int((~reviews_pad[rows]).sum(1).max())
            ids, pad = reviews_x[rows, :width], reviews_pad[rows, :width]
        else:
            x, _ = data.get_batch(
                corpus_part, cfg.batch_size, cfg.block_size - 2, generator=generator
            )
            cls = torch.full((len(x), 1), tokenizer.cls_id)
            sep = torch.full((len(x), 1), tokenizer.sep_id)
            ids = torch.cat([cls, x, sep], 1)
            pad = torch.zeros_like(ids, dtype=torch.bool)
        inputs, targets = mask_tokens(ids, tokenizer.vocab_size, generator=generator)
        return inputs, targets, pad

    def mlm_loss(model, batch):
        inputs, targets, pad = batch
        return masked_lm_loss(model.masked_lm_logits(inputs, key_padding_mask=pad), targets)

    batch_gen = torch.Generator().manual_seed(0)
    val_batches = [
        masked_batch(i, val_ids, val_x, val_pad, torch.Generator().manual_seed(i)) for i in range(8)
    ]
    eval_every = max(1, cfg.pretrain_steps // 5)

    def evaluate(model):
        fills[len(fills) * eval_every] = probe_all(model)
        batches = [tuple(t.to(device) for t in b) for b in val_batches]
        return sum(mlm_loss(model, b).item() for b in batches) / len(batches)

    pretrain_history = train(
        encoder,
        lambda step: masked_batch(step, train_ids, train_x, train_pad, batch_gen),
        mlm_loss,
        steps=cfg.pretrain_steps,
        lr=cfg.lr,
        weight_decay=0.01,
        scheduler=warmup_cosine(cfg.pretrain_steps, cfg.pretrain_steps // 10),
        eval_every=eval_every,
        eval_fn=evaluate,
        live_plot=True,
        seed=0,
    )
    print(pretrain_history)

# %% [markdown]
# The probes, as pretraining went on: at each evaluation, the probability the model gives
# the right word, and its three best guesses.

# %%
if course_utils.ready("mask_tokens", "masked_lm_loss"):
    for i, (text, answer) in enumerate(PROBES.items()):
        print(f"{text}   (right word: {answer})")
        for step, results in fills.items():
            guess, probability = results[i]
            print(f"  step {step:>4}: p({answer}) = {probability:7.3%}   best: {', '.join(guess)}")
    print()
    for i, answer in enumerate(PROBES.values()):
        first, last = fills[0][i][1], fills[max(fills)][i][1]
        print(
            f"p({answer}) changed {last / first:.2g}-fold over pretraining: from 1 in "
            f"{1 / first:,.0f} to 1 in {1 / last:,.0f}"
        )
    print(
        f"held-out masked-LM loss {pretrain_history.final_eval_loss:.2f}, against "
        f"ln V = {math.log(tokenizer.vocab_size):.2f} for guessing uniformly"
    )

# %% [markdown]
# Be honest about what this shows; the printout gives this run's numbers. The held-out
# loss falls far below guessing. In the `cpu` profile the right word of the review probes
# ("all", "true") becomes twenty times as likely or more, from about the odds of a uniform
# guess to one or two in a hundred: the model learned the shape of the reviews. The corpus
# probes barely move in 500 steps (one can even become less likely), and the best guesses
# are mostly frequent words that fit many blanks ("that", "not", "the"). The model has learned which words are common and roughly
# where they stand, and the reviews' few patterns, but not yet which word each blank of
# the language reference needs. BERT trained for a million steps on three billion words;
# this is 500 steps on a hundred thousand. What the encoder did learn, from text alone and
# no labels, shows better in section 8, where it is put to work.
#
# ## 6. Exercise: pooling that ignores padding
#
# The encoder gives one vector per token, `(B, T, C)`. A classifier needs one vector per
# **text**, `(B, C)`. Two common choices:
#
# - **`[CLS]` pooling** (BERT): take the vector of the first token, `hidden[:, 0]`. Since
#   every token attends to every other, `[CLS]` can gather what the text says; training
#   teaches it to.
# - **mean pooling** (Sentence-BERT and most embedding models): average the vectors of the
#   **real** tokens. Padding must not take part: the same review must give the same vector
#   whether its batch is padded to 12 or to 26 tokens.
#
# Write `mean_pool(hidden, key_padding_mask)`: the mean over the positions where
# `key_padding_mask` is False (it is True at padding, the course's convention), or over all
# positions when the mask is `None`. A row that is all padding gives zeros (divide by at
# least 1). The padding positions may hold any numbers, even huge ones.
#
# <details><summary>Hint</summary>
#
# `real = (~key_padding_mask).unsqueeze(-1).to(hidden.dtype)` is `(B, T, 1)`, 1 at real
# tokens. Sum `hidden.masked_fill(key_padding_mask.unsqueeze(-1), 0.0)` over `dim=1` and
# divide by `real.sum(dim=1).clamp(min=1)`.
# </details>


# %% exercise="mean_pool"
def mean_pool(hidden, key_padding_mask=None):
    """Mean of the hidden vectors over the real tokens.

    hidden: (B, T, C). key_padding_mask: (B, T) bool, True at padding, or None (no padding).
    Returns (B, C); a row with no real token gives zeros.
    """
    ### BEGIN SOLUTION
    if key_padding_mask is None:
        return hidden.mean(dim=1)
    pad = key_padding_mask.unsqueeze(-1)  # (B, T, 1)
    total = hidden.masked_fill(pad, 0.0).sum(dim=1)  # (B, C)
    count = (~pad).sum(dim=1).clamp(min=1).to(hidden.dtype)  # (B, 1)
    return total / count
    ### END SOLUTION


# %% test="mean_pool" points=2 hint="Average only where key_padding_mask is False: zero the padded vectors (masked_fill), sum over dim=1, divide by the number of real tokens (at least 1)." nudge="Mean pooling averages the real tokens only: padding must not pull the average."
import torch

from course_utils.checks import check_tensor

TOL = dict(rtol=1e-5, atol=1e-6)  # float32 sums in another order
gen = torch.Generator().manual_seed(0)
hidden = torch.randn(3, 5, 4, generator=gen)
pad = torch.tensor([[False] * 5, [False, False, False, True, True], [False] + [True] * 4])
expected = torch.stack([hidden[0].mean(0), hidden[1, :3].mean(0), hidden[2, 0]])
pooled = mean_pool(hidden.clone(), pad.clone())
check_tensor(pooled, expected, name="mean_pool(hidden (3, 5, 4), mask with 0, 2 and 4 pads)", **TOL)
# A row that is all padding gives zeros, not NaN (0 / 0).
all_padding = torch.randn(2, 3, 4, generator=gen)
check_tensor(
    mean_pool(all_padding, torch.ones(2, 3, dtype=torch.bool)),
    torch.zeros(2, 4),
    name="mean_pool of rows that are all padding",
    hint="Divide by the number of real tokens clamped to at least 1: 0 / 1 = 0, not 0 / 0.",
)
print("✓ mean_pool: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_mean_pool", gen)  # the course's secret, if any
# Huge values at padding must not leak in.
noisy = hidden.clone()
noisy[pad] = 1e6
check_tensor(
    mean_pool(noisy.clone(), pad.clone()),
    expected,
    name="mean_pool with 1e6 at the padded positions",
    hint="The padded vectors must not enter the sum: zero them before summing.",
    **TOL,
)
# Padding does not change a text's vector.
x = torch.randn(1, 7, 6, generator=gen)
longer = torch.cat([x, torch.randn(1, 5, 6, generator=gen)], 1)
mask = torch.tensor([[False] * 7 + [True] * 5])
expected = x.mean(1)  # the reference first; every call gets copies
check_tensor(
    mean_pool(longer.clone(), mask.clone()),
    expected,
    name="mean_pool of a text padded by 5 equals the unpadded mean",
    **TOL,
)
check_tensor(mean_pool(x.clone(), None), expected, name="mean_pool(hidden, None)", **TOL)
check_tensor(
    mean_pool(x.clone(), torch.zeros(1, 7, dtype=torch.bool)),
    expected,
    name="mean_pool with an all-False mask",
    **TOL,
)
# Other shapes, a length-1 sequence, float64.
for b, t, c in [(1, 1, 8), (4, 9, 1), (2, 26, 64)]:
    h = torch.randn(b, t, c, generator=gen, dtype=torch.float64)
    lengths = torch.randint(1, t + 1, (b,), generator=gen)
    m = torch.arange(t)[None, :] >= lengths[:, None]
    exp = torch.stack([h[i, : lengths[i]].mean(0) for i in range(b)])
    check_tensor(
        mean_pool(h.clone(), m.clone()), exp, name=f"mean_pool of float64 ({b}, {t}, {c})", **TOL
    )
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Exercises: the classification head and one fine-tuning step
#
# A classifier on top of an encoder is small: pool the hidden vectors, apply dropout, and
# one `nn.Linear(C, n_classes)` gives a score per class. **Fine-tuning** trains all of it,
# encoder included, on labelled examples with the cross-entropy loss.
#
# Write the module `SentimentClassifier(encoder, n_classes=2, pooling="mean", dropout=0.1)`:
#
# - keep `encoder` as `self.encoder`, an `nn.Dropout(dropout)` as `self.dropout`, and an
#   `nn.Linear(encoder.config.d_model, n_classes)` as `self.head`;
# - `forward(ids, key_padding_mask=None)` runs `self.encoder(ids,
#   key_padding_mask=key_padding_mask)` to get `(B, T, C)`, pools it (`"mean"`: your
#   `mean_pool`; `"cls"`: the first token), applies dropout and the head: logits `(B,
#   n_classes)`;
# - any other `pooling` raises a `ValueError` when the module is made.
#
# Then, in the next exercise, `fine_tune_step(model, optimizer, ids, key_padding_mask,
# labels)`: one update.
# Put the model in training mode, clear the old gradients, compute the logits and the
# cross-entropy with `labels`, back-propagate, step the optimizer, and return the loss as a
# Python `float`.
#
# <details><summary>Hint</summary>
#
# `optimizer.zero_grad()` first: PyTorch *adds* each new gradient to the old one.
# `loss = F.cross_entropy(model(ids, key_padding_mask=key_padding_mask), labels)`, then
# `loss.backward()`, `optimizer.step()`, `return loss.item()`.
# </details>


# %% exercise="classifier"
class SentimentClassifier(nn.Module):
    """An encoder, pooling, dropout and a linear head: ids (B, T) -> logits (B, n_classes)."""

    def __init__(self, encoder, n_classes=2, pooling="mean", dropout=0.1):
        super().__init__()
        ### BEGIN SOLUTION
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        self.pooling = pooling
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.d_model, n_classes)
        ### END SOLUTION

    def forward(self, ids, key_padding_mask=None):
        """ids (B, T) long, key_padding_mask (B, T) bool (True = padding) -> (B, n_classes)."""
        ### BEGIN SOLUTION
        hidden = self.encoder(ids, key_padding_mask=key_padding_mask)  # (B, T, C)
        if self.pooling == "mean":
            pooled = mean_pool(hidden, key_padding_mask)
        else:
            pooled = hidden[:, 0]
        return self.head(self.dropout(pooled))
        ### END SOLUTION


# %% [markdown]
# The test builds a small encoder and compares your classifier's logits with the same
# computation written out in the test (in eval mode, so dropout is off).

# %% test="classifier" points=2 hint="self.head = nn.Linear(encoder.config.d_model, n_classes); forward: hidden = self.encoder(ids, key_padding_mask=...), pool (mean over real tokens, or hidden[:, 0]), dropout, head." nudge="A classifier is the pretrained encoder, a pooling step, and a small head that maps one vector to class scores."
import torch
from torch import nn

from course_utils.checks import check_equal, check_raises, check_tensor, check_true
from course_utils.models import EncoderModel, ModelConfig

TOL = dict(rtol=1e-5, atol=1e-6)  # float32 sums in another order
torch.manual_seed(0)
gen = torch.Generator().manual_seed(0)
enc = EncoderModel(ModelConfig(vocab_size=50, d_model=16, n_heads=2, n_layers=1, max_len=12))
clf = SentimentClassifier(enc, n_classes=3, pooling="mean", dropout=0.1).eval()
check_true(isinstance(clf.head, nn.Linear), "self.head must be an nn.Linear")
check_equal(tuple(clf.head.weight.shape), (3, 16), name="head.weight.shape for C=16, 3 classes")
check_true(clf.encoder is enc, "self.encoder must be the encoder passed in")
ids = torch.randint(5, 50, (4, 10), generator=gen)
pad = torch.arange(10)[None, :] >= torch.tensor([10, 7, 3, 1])[:, None]
# The references first, from the weights as they are now; the calls get copies of the inputs.
with torch.no_grad():
    hidden = enc(ids, key_padding_mask=pad)
    real = (~pad).float()[..., None]
    pooled = (hidden * real).sum(1) / real.sum(1)
    expected = pooled @ clf.head.weight.T + clf.head.bias
logits = clf(ids.clone(), key_padding_mask=pad.clone())
check_tensor(logits.detach(), expected, name="SentimentClassifier(pooling='mean') logits", **TOL)
# [CLS] pooling uses the first position.
cls_clf = SentimentClassifier(enc, n_classes=2, pooling="cls", dropout=0.0).eval()
with torch.no_grad():
    hidden = enc(ids, key_padding_mask=pad)
    expected = hidden[:, 0] @ cls_clf.head.weight.T + cls_clf.head.bias
check_tensor(
    cls_clf(ids.clone(), key_padding_mask=pad.clone()).detach(),
    expected,
    name="pooling='cls' logits",
    **TOL,
)
check_raises(
    ValueError,
    lambda: SentimentClassifier(enc, pooling="max"),
    name="SentimentClassifier(pooling='max')",
    hint="Check pooling in __init__: anything but 'mean' or 'cls' raises a ValueError.",
)
print("✓ classifier: visible tests passed")

### BEGIN HIDDEN TESTS
# Padding does not change a review's logits (the mask reaches the encoder and the pooling).
short = ids[2:3, :3]
check_tensor(
    clf(ids[2:3].clone(), key_padding_mask=pad[2:3].clone()).detach(),
    clf(short.clone(), key_padding_mask=torch.zeros(1, 3, dtype=torch.bool)).detach(),
    name="logits of a padded review vs the same review unpadded",
    hint="Pass key_padding_mask to the encoder and to mean_pool.",
    rtol=1e-4,
    atol=1e-5,
)
check_tensor(
    clf(ids.clone()).detach(),
    clf(ids.clone(), key_padding_mask=torch.zeros(4, 10, dtype=torch.bool)).detach(),
    name="key_padding_mask=None equals an all-False mask",
    **TOL,
)
# Dropout is there, before the head: in training mode two calls differ.
train_clf = SentimentClassifier(enc, n_classes=2, dropout=0.5).train()
check_true(
    not torch.equal(train_clf(ids, key_padding_mask=pad), train_clf(ids, key_padding_mask=pad)),
    "in training mode, dropout(0.5) should make two calls differ",
)
check_true(
    any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in train_clf.modules()),
    "no nn.Dropout with the given p",
)
check_raises(
    ValueError,
    lambda: SentimentClassifier(enc, pooling="average"),
    name="SentimentClassifier(pooling='average')",
)
check_equal(
    {n for n, _ in clf.named_parameters()} >= {"head.weight", "head.bias"},
    True,
    name="the head's parameters are registered",
)
### END HIDDEN TESTS

# %% [markdown]
# Now `fine_tune_step`, described above: clear, forward, loss, backward, step.


# %% exercise="fine_tune_step"


def fine_tune_step(model, optimizer, ids, key_padding_mask, labels):
    """One training update on a batch: ids (B, T), key_padding_mask (B, T), labels (B,).

    Returns the batch's cross-entropy loss (before the update) as a float.
    """
    ### BEGIN SOLUTION
    model.train()
    optimizer.zero_grad()
    logits = model(ids, key_padding_mask=key_padding_mask)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% [markdown]
# The test runs your step on a small stand-in model and the same step by hand on a copy;
# the parameters afterwards must agree (the same float32 operations: `rtol=1e-5`).

# %% test="fine_tune_step" points=2 hint="fine_tune_step: model.train(); optimizer.zero_grad(); loss = F.cross_entropy(model(ids, key_padding_mask=key_padding_mask), labels); loss.backward(); optimizer.step(); return loss.item()." nudge="One training step: put the model in training mode, compute the loss on the batch, and update the weights once."
import copy

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.checks import check_tensor, check_true

TOL = dict(rtol=1e-5, atol=1e-6)  # the same float32 operations in the same order


class TinyClassifier(nn.Module):  # a stand-in model, so this test does not depend on yours
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, ids, key_padding_mask=None):
        h = self.emb(ids)
        if key_padding_mask is not None:
            h = h.masked_fill(key_padding_mask[..., None], 0.0)
        return self.out(h.sum(1))


torch.manual_seed(0)
gen = torch.Generator().manual_seed(1)
model = TinyClassifier()
reference = copy.deepcopy(model)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
ids = torch.randint(0, 20, (6, 5), generator=gen)
pad = torch.rand(6, 5, generator=gen) > 0.7
labels = torch.randint(0, 2, (6,), generator=gen)
for p in model.parameters():  # stale gradients from an earlier step
    p.grad = torch.ones_like(p)
model.eval()
loss = fine_tune_step(model, opt, ids, pad, labels)
ref_opt.zero_grad()
ref_loss = F.cross_entropy(reference(ids, key_padding_mask=pad), labels)
ref_loss.backward()
ref_opt.step()
check_true(isinstance(loss, float), f"fine_tune_step returned {type(loss).__name__}, not a float")
check_tensor(torch.tensor(loss), ref_loss.detach(), name="the loss fine_tune_step returned", **TOL)
for (name, p), q in zip(model.named_parameters(), reference.parameters()):
    check_tensor(
        p.detach(),
        q.detach(),
        name=f"parameter {name} after one fine_tune_step",
        hint="Clear old gradients first (optimizer.zero_grad()), then backward and step.",
        **TOL,
    )
check_true(model.training, "fine_tune_step should put the model in training mode (model.train())")
print("✓ fine_tune_step: visible tests passed")

### BEGIN HIDDEN TESTS
# A second step from there, with Adam: still the same as by hand.
opt = torch.optim.Adam(model.parameters(), lr=0.01)
ref_opt = torch.optim.Adam(reference.parameters(), lr=0.01)
for _ in range(2):
    fine_tune_step(model, opt, ids, None, labels)
    ref_opt.zero_grad()
    F.cross_entropy(reference(ids), labels).backward()
    ref_opt.step()
for (name, p), q in zip(model.named_parameters(), reference.parameters()):
    check_tensor(p.detach(), q.detach(), name=f"{name} after two Adam steps", **TOL)
### END HIDDEN TESTS

# %% [markdown]
# ## 8. Fine-tuning, and the evidence
#
# Now three models on the same reviews:
#
# - **pretrained + fine-tuned**: the encoder of section 5, with a new head;
# - **from scratch**: the same architecture from the same random start as section 5, fine-
#   tuned on the labelled reviews alone, with the same steps and learning rate;
# - **bag of words**: section 1.
#
# The fine-tuning loop below is just your `fine_tune_step` on random batches, with a
# warm-up and cosine learning-rate schedule. Each batch is cut to its longest review, so
# no time is spent on padding columns that are padding in every row.


# %%
@torch.no_grad()
def predict(model, reviews, batch_size=500):
    """Predicted labels (N,) of a classifier for a list of reviews."""
    model.eval()
    out = []
    for i in range(0, len(reviews), batch_size):
        ids, pad, _ = encode_reviews(reviews[i : i + batch_size])
        out.append(model(ids.to(device), key_padding_mask=pad.to(device)).argmax(-1).cpu())
    return torch.cat(out)


def fine_tune(classifier, steps, label, seed=0):
    """Train a classifier on splits.train with fine_tune_step; returns the losses."""
    classifier.to(device)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=cfg.lr, weight_decay=0.01)
    factor = warmup_cosine(steps, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: factor(i + 1))
    gen = torch.Generator().manual_seed(seed)
    losses = []
    with tqdm(range(steps), desc=label) as bar:
        for _ in bar:
            rows = torch.randint(len(train_y), (cfg.batch_size,), generator=gen)
            width = int((~train_pad[rows]).sum(1).max())  # the longest review in the batch
            ids, pad = train_x[rows, :width], train_pad[rows, :width]
            loss = fine_tune_step(
                classifier, optimizer, ids.to(device), pad.to(device), train_y[rows].to(device)
            )
            schedule.step()
            losses.append(loss)
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    return losses


if course_utils.ready(
    "mask_tokens", "masked_lm_loss", "mean_pool", "SentimentClassifier", "fine_tune_step"
):
    course_utils.seed_everything(0)
    pretrained_clf = SentimentClassifier(copy.deepcopy(encoder))
    pretrained_losses = fine_tune(pretrained_clf, cfg.finetune_steps, "pretrained + fine-tuned")
    scratch_encoder = EncoderModel(model_cfg)
    scratch_encoder.load_state_dict(initial_state)  # the same start as the pretraining run
    course_utils.seed_everything(0)
    scratch_clf = SentimentClassifier(scratch_encoder)
    scratch_losses = fine_tune(scratch_clf, cfg.finetune_steps, "from scratch")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    window = max(1, cfg.finetune_steps // 30)
    for losses, name in ((pretrained_losses, "pretrained"), (scratch_losses, "from scratch")):
        smooth = torch.tensor(losses).unfold(0, window, 1).mean(1) if len(losses) >= window else []
        ax.plot(range(window, len(losses) + 1), smooth, label=name)
    ax.set(xlabel="fine-tuning step", ylabel="training loss (smoothed)", yscale="log")
    ax.legend()
    plt.show()

# %% [markdown]
# The evidence: accuracy on the test set, overall and for each phenomenon, as one table and
# one chart. Remember what the test set is: reviews with word combinations never seen in
# training.

# %%
if course_utils.ready(
    "mask_tokens", "masked_lm_loss", "mean_pool", "SentimentClassifier", "fine_tune_step"
):
    predictions = {
        "encoder, pretrained + fine-tuned": predict(pretrained_clf, splits.test),
        "encoder, from scratch": predict(scratch_clf, splits.test),
        "bag of words": bag_of_words.predict(test_x),
    }
    results = {
        name: sentiment.accuracy_by_phenomenon(splits.test, p) for name, p in predictions.items()
    }
    columns = ["all", "negation", "double_negation", "contrast", "intensifier", "plain"]
    counts = {
        c: sum(r.has(c) for r in splits.test) if c != "all" else len(splits.test) for c in columns
    }
    print(f"{'test accuracy':<34}" + "".join(f"{c:>17}" for c in columns))
    print(f"{'(reviews)':<34}" + "".join(f"{counts[c]:>17}" for c in columns))
    for name, acc in results.items():
        print(f"{name:<34}" + "".join(f"{acc.get(c, float('nan')):>17.1%}" for c in columns))

    fig, ax = plt.subplots(figsize=(10, 3.5), layout="constrained")
    width = 0.8 / len(results)
    for i, (name, acc) in enumerate(results.items()):
        xs = [j + (i - 1) * width for j in range(len(columns))]
        bars = ax.bar(xs, [acc.get(c, 0) for c in columns], width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(range(len(columns)), columns)
    ax.axhline(0.5, color="gray", linestyle=":", linewidth=1)
    ax.set(ylabel="test accuracy", ylim=(0, 1.12), title="unseen word combinations")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside the bars
    plt.show()

# %% [markdown]
# Read the chart phenomenon by phenomenon:
#
# - **plain** reviews: everyone is right. One adjective decides, and counting words is
#   enough;
# - **negation** and **contrast**: the bag of words collapses (below chance on negation,
#   where it reads "never boring" as "boring"), and the encoders hold. Attention lets the
#   "not" change the vector of the adjective it stands before, and lets the clause after
#   "but" outweigh the one before;
# - **double negation** is the hardest for the encoders: it is rarer, and two negations
#   far apart ("it is not true that ... was not ...") must be counted. The bag of words
#   does better here than on single negation, for a bad reason: two negations cancel, so
#   the adjective alone happens to be right again.
#
# And pretraining? The printout below compares the two encoders on this run. Here is what
# we measured in the `cpu` profile, once with each setting of `PRETRAIN_ON_REVIEWS`
# (section 5); one seed each, so a difference of a point or two is noise:
#
# | pretraining text | pretrained + fine-tuned: all (double negation) | from scratch: all (double negation) |
# |---|---|---|
# | corpus and unlabelled training reviews (`True`, the default) | 96.3% (86.6%) | 87.3% (55.1%) |
# | corpus alone (`False`) | 86.1% (44.9%) | 87.3% (55.1%) |
#
# Pretraining on Python documentation alone **does not help** at this scale: it teaches
# "not", "but" and the shape of English sentences, but not one review word, and after 500
# steps its fill-in guesses are little more than the most frequent words ("the", "."). The
# same 500 steps on text that also holds the reviews (without their labels) **help a
# lot**, most of all on double negation: to fill in a hidden "not" or "never" the model
# must learn where negations stand and what they attach to, which is the structure the
# classifier then needs. That is how BERT is used in practice: pretraining pays off when
# its text covers the words and the structures of the task. One caveat in fairness: the
# pretrained encoder has also had 500 more steps of training in all.

# %%
if course_utils.ready(
    "mask_tokens", "masked_lm_loss", "mean_pool", "SentimentClassifier", "fine_tune_step"
):
    gap = (
        results["encoder, pretrained + fine-tuned"]["all"] - results["encoder, from scratch"]["all"]
    )
    verdict = "helped" if gap > 0.01 else "hurt" if gap < -0.01 else "made no clear difference"
    print(
        f"pretraining {verdict} on this run: {100 * gap:+.1f} points of test accuracy "
        f"({results['encoder, pretrained + fine-tuned']['all']:.1%} pretrained vs "
        f"{results['encoder, from scratch']['all']:.1%} from scratch)."
    )
    negation = results["encoder, pretrained + fine-tuned"]["negation"]
    bow_negation = results["bag of words"]["negation"]
    print(
        f"on negation, the fine-tuned encoder gets {negation:.1%} and the bag of words "
        f"{bow_negation:.1%}: {100 * (negation - bow_negation):+.1f} points."
    )

# %% [markdown]
# Where do the mistakes go? The confusion matrix of the fine-tuned encoder counts, for each
# true label (rows), what it predicted (columns); then the test reviews where the bag of
# words is wrong and the encoder right, side by side.

# %%
if course_utils.ready(
    "mask_tokens", "masked_lm_loss", "mean_pool", "SentimentClassifier", "fine_tune_step"
):
    pred = predictions["encoder, pretrained + fine-tuned"]
    confusion = torch.zeros(2, 2, dtype=torch.long)
    for truth, guess in zip(test_y.tolist(), pred.tolist()):
        confusion[truth, guess] += 1
    fig, ax = plt.subplots(figsize=(3.6, 3))
    plot_heatmap(
        confusion,
        x_labels=["negative", "positive"],
        y_labels=["negative", "positive"],
        xlabel="predicted",
        ylabel="true",
        annotate=True,
        fmt="{:.0f}",
        ax=ax,
        cmap="Blues",
        title="fine-tuned encoder, test set",
    )
    plt.show()
    bow_pred = predictions["bag of words"]
    wins = [i for i in range(len(splits.test)) if bow_pred[i] != test_y[i] and pred[i] == test_y[i]]
    print(f"{len(wins)} test reviews the bag of words gets wrong and the encoder right, e.g.:\n")
    print(f"{'review':<78} {'truth':>8} {'bag':>8} {'encoder':>8}")
    names = {0: "neg", 1: "pos"}
    for i in wins[:10]:
        r = splits.test[i]
        print(
            f"{r.text:<78} {names[r.label]:>8} {names[int(bow_pred[i])]:>8} {names[int(pred[i])]:>8}"
        )

# %% [markdown]
# ## 9. Sentence embeddings and search
#
# An encoder turns any text into a vector. Texts the model treats alike get vectors that
# point the same way, which is how search, recommendation and duplicate detection work:
# embed every document once, embed the query, and return the documents whose vectors are
# closest. "Closest" is measured by **cosine similarity**, the cosine of the angle
# between two vectors:
#
# $$\cos(u, v) = \frac{u \cdot v}{\lVert u \rVert \, \lVert v \rVert} \in [-1, 1].$$
#
# It ignores length: a vector and twice that vector have similarity 1. A plain dot product
# would rank long vectors first, whatever their direction.
#
# ## 10. Exercise: cosine-similarity top-k search
#
# Write `top_k_cosine(queries, keys, k, exclude=None)`:
#
# - `queries` is `(Q, C)`, `keys` is `(N, C)`;
# - return `(scores, indices)`, both `(Q, k)`: for each query, the `k` keys with the
#   highest cosine similarity, best first, their similarities and their row numbers in
#   `keys`;
# - `exclude`, when given, is a `(Q,)` long tensor: for query `q`, key `exclude[q]` must not
#   be returned (used when the queries are themselves among the keys, so that a text is not
#   its own nearest neighbour);
# - `k` larger than the number of keys that can be returned raises a `ValueError`.
#
# <details><summary>Hint</summary>
#
# Normalise both with `F.normalize(x, dim=-1)`; then `scores = q @ k.T` is `(Q, N)`. To
# exclude, set `scores[torch.arange(Q), exclude] = -inf` (on a copy). Then
# `scores.topk(k, dim=-1)` gives values and indices, best first.
# </details>


# %% exercise="top_k_cosine"
def top_k_cosine(queries, keys, k, exclude=None):
    """The k keys most cosine-similar to each query.

    queries: (Q, C); keys: (N, C); exclude: (Q,) long or None, a key index to skip per query.
    Returns (scores (Q, k), indices (Q, k)), best first.
    """
    ### BEGIN SOLUTION
    available = keys.size(0) - (exclude is not None)
    if not 1 <= k <= available:
        raise ValueError(f"k must be between 1 and {available}, got {k}")
    scores = F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T  # (Q, N)
    if exclude is not None:
        scores = scores.clone()
        scores[torch.arange(queries.size(0)), exclude] = -math.inf
    top = scores.topk(k, dim=-1)
    return top.values, top.indices
    ### END SOLUTION


# %% [markdown]
# The reference is PyTorch's `F.cosine_similarity`, which divides by the norms in another
# order: `rtol=1e-5, atol=1e-6`.

# %% test="top_k_cosine" points=3 hint="Cosine similarity is the dot product of unit vectors: F.normalize both queries and keys (dim=-1), then scores = q @ k.T and scores.topk(k, dim=-1); set excluded entries to -inf first." nudge="Cosine similarity compares directions, not lengths; exclusions must stop a document from being chosen at all."
import torch
import torch.nn.functional as F

from course_utils.checks import check_raises, check_tensor, check_true

TOL = dict(rtol=1e-5, atol=1e-6)  # float32 divisions in another order
gen = torch.Generator().manual_seed(0)
queries = torch.randn(3, 8, generator=gen)
keys = torch.randn(20, 8, generator=gen) * torch.rand(20, 1, generator=gen) * 5  # varied lengths
similarity = F.cosine_similarity(queries[:, None, :], keys[None, :, :], dim=-1)  # (3, 20)
expected = similarity.topk(4, dim=-1)  # the reference first; the call gets copies
scores, indices = top_k_cosine(queries.clone(), keys.clone(), 4)
check_tensor(indices, expected.indices, name="top_k_cosine(3 queries, 20 keys, k=4) indices")
check_tensor(scores, expected.values, name="top_k_cosine(...) scores", **TOL)
# exclude: the queries are rows 3, 0, 7, 12 and 20 of the bank, and none may find itself.
bank = torch.randn(30, 6, generator=gen)
rows = torch.tensor([3, 0, 7, 12, 20])
sim = F.cosine_similarity(bank[rows, None].clone(), bank[None].clone(), dim=-1)  # (5, 30)
sim[torch.arange(5), rows] = -float("inf")
ref = sim.topk(3, dim=-1)
s, i = top_k_cosine(bank[rows], bank.clone(), 3, exclude=rows.clone())
check_tensor(
    i,
    ref.indices,
    name="top_k_cosine(bank[[3, 0, 7, 12, 20]], bank, 3, exclude=[3, 0, 7, 12, 20]) indices",
    hint="Set scores[torch.arange(Q), exclude] = -inf (query q skips key exclude[q]) before topk.",
)
check_tensor(s, ref.values, name="top_k_cosine with exclude: scores", **TOL)
check_raises(
    ValueError,
    lambda: top_k_cosine(bank[:1], bank, 30, exclude=torch.tensor([0])),
    name="top_k_cosine(1 query, 30 keys, k=30, exclude=[0]): only 29 keys can be returned",
    hint="Raise a ValueError when k is larger than the keys left: N, or N - 1 with exclude.",
)
print("✓ top_k_cosine: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

gen = hidden_generator("test_top_k_cosine", gen)  # the course's secret, if any
# Length must not matter: a long key pointing elsewhere loses to a short one pointing the same way.
q = torch.tensor([[1.0, 0.0]])
k2 = torch.tensor([[10.0, 10.0], [0.1, 0.0], [-5.0, 1.0]])
s, i = top_k_cosine(q, k2, 1)
check_tensor(
    i,
    torch.tensor([[1]]),
    name="top_k_cosine: a short key in the query's direction beats a long one at 45°",
    hint="Normalise both queries and keys to unit length before the dot product.",
)
check_tensor(s, torch.tensor([[1.0]]), name="its score is 1", **TOL)
# Excluding other indices than the query's own.
far = torch.tensor([3, 0, 7, 7, 29])
sim = F.cosine_similarity(bank[:5, None].clone(), bank[None].clone(), dim=-1)
sim[torch.arange(5), far] = -float("inf")
ref = sim.topk(4, dim=-1)
s, i = top_k_cosine(bank[:5], bank.clone(), 4, exclude=far.clone())
check_tensor(i, ref.indices, name="top_k_cosine with exclude=[3, 0, 7, 7, 29]: indices")
# Without exclude, a query in the bank is its own best match, with score 1.
s, i = top_k_cosine(bank[:5], bank, 1)
check_tensor(i[:, 0], torch.arange(5), name="without exclude, each query finds itself")
# k = all that can be returned; one query; scores sorted best first.
s, i = top_k_cosine(bank[:1], bank, 29, exclude=torch.tensor([0]))
check_true(bool((s[:, :-1] >= s[:, 1:]).all()), "scores are not sorted best first")
check_true(0 not in i[0].tolist(), "excluded key returned when k = N - 1")
check_raises(
    ValueError,
    lambda: top_k_cosine(bank[:1], bank, 30, exclude=torch.tensor([0])),
    name="top_k_cosine with k larger than the keys left after exclude",
)
check_raises(ValueError, lambda: top_k_cosine(bank[:1], bank, 31), name="top_k_cosine with k > N")
# The inputs are not changed.
before = bank.clone()
top_k_cosine(bank[:2], bank, 2, exclude=torch.tensor([0, 1]))
check_true(bool(torch.equal(bank, before)), "top_k_cosine changed its inputs")
### END HIDDEN TESTS

# %% [markdown]
# The search box below embeds your sentence with the fine-tuned encoder (mean pooling over
# its hidden vectors) and shows the training reviews closest to it. The embeddings were
# shaped by sentiment training, so neighbours tend to agree in sentiment *and* in
# structure. Try:
#
# - "the plot was not boring" and "the plot was boring": are their neighbours positive
#   or negative?
# - a contrast, "the music was great but the script was weak";
# - words the reviews never use ("the compiler was slow"): words of the corpus are in the
#   vocabulary but were never seen in a review, and a word outside the vocabulary becomes
#   `[UNK]` (the box lists those), so the vector has little to go on;
# - switch the encoder to "pretrained only": its vectors come from filling blanks, in the
#   corpus and in the unlabelled reviews, and no label has shaped them. Do its neighbours
#   still agree in sentiment? The lines under the box count it for two queries and both
#   encoders, on this run.

# %%
import ipywidgets as widgets
from IPython.display import display

if course_utils.ready(
    "mask_tokens",
    "masked_lm_loss",
    "mean_pool",
    "SentimentClassifier",
    "fine_tune_step",
    "top_k_cosine",
):
    bank_reviews = list({r.text: r for r in splits.train}.values())[:3000]

    @torch.no_grad()
    def embed(model_encoder, texts):
        model_encoder.eval()
        ids, pad = tokenizer.encode_batch(texts)
        hidden = model_encoder(ids.to(device), key_padding_mask=pad.to(device))
        return mean_pool(hidden, pad.to(device)).cpu()

    encoders = {"fine-tuned": pretrained_clf.encoder, "pretrained only": encoder}
    banks = {name: embed(e, [r.text for r in bank_reviews]) for name, e in encoders.items()}
    query_box = widgets.Text(
        value="the plot was not boring",
        description="sentence:",
        continuous_update=False,
        layout=widgets.Layout(width="70%"),
    )
    encoder_box = widgets.Dropdown(options=list(encoders), description="encoder:")
    k_slider = widgets.IntSlider(value=5, min=1, max=10, description="neighbours:")
    results_box = widgets.Output(layout=widgets.Layout(border="1px solid #ccc", min_height="200px"))

    def search(_=None):
        text = query_box.value.strip()
        with results_box:
            results_box.clear_output(wait=True)
            if not sentiment.words(text):
                print("Type a sentence.")
                return
            query = embed(encoders[encoder_box.value], [text])
            scores, indices = top_k_cosine(query, banks[encoder_box.value], k_slider.value)
            unknown = [w for w in sentiment.words(text) if w not in tokenizer.stoi]
            if unknown:
                print(f"not in the vocabulary (read as [UNK]): {', '.join(unknown)}")
            clf = pretrained_clf.eval()
            ids, pad = tokenizer.encode_batch([text])
            p = clf(ids.to(device), key_padding_mask=pad.to(device)).softmax(-1)[0, 1].item()
            print(f"the fine-tuned classifier says: {p:.0%} positive\n")
            for score, index in zip(scores[0].tolist(), indices[0].tolist()):
                r = bank_reviews[index]
                print(f"{score:6.3f}  {'+' if r.label else '-'}  {r.text}")

    for box in (query_box, encoder_box, k_slider):
        box.observe(search, names="value")
    display(widgets.VBox([query_box, widgets.HBox([encoder_box, k_slider]), results_box]))
    search()
    for text, label in [("the plot was not boring", 1), ("the plot was boring", 0)]:
        for name in encoders:
            _, indices = top_k_cosine(embed(encoders[name], [text]), banks[name], 5)
            agree = sum(bank_reviews[i].label == label for i in indices[0].tolist())
            print(
                f"{text!r} ({'positive' if label else 'negative'}), {name} encoder: "
                f"{agree} of its 5 nearest reviews share its sentiment"
            )

# %% [markdown]
# ## 11. Your encoder is BERT
#
# `EncoderModel` is not "BERT-like" in a loose sense: with BERT's switches (post-norm
# blocks, a token-type embedding, a LayerNorm after the embeddings, and BERT's small
# transform before the masked-LM head), it is exactly BERT's architecture.
# `EncoderModel.from_bert` copies the weights of a Hugging Face `BertForMaskedLM` into it.
# The cell below builds a small **random** BERT (nothing is downloaded), copies it, and
# compares the masked-LM logits on a padded batch. If the `transformers` library is not
# installed, it says so and skips.

# %%
try:
    from transformers import BertConfig, BertForMaskedLM
except ImportError:
    print("transformers is not installed: skipping the comparison (pip install transformers).")
else:
    torch.manual_seed(0)
    bert_config = BertConfig(
        vocab_size=120,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=40,
    )
    bert = BertForMaskedLM(bert_config).eval()
    with torch.no_grad():  # random weights everywhere, biases and norms included
        for p in bert.parameters():
            p.add_(0.02 * torch.randn_like(p))
    ours = EncoderModel.from_bert(bert).eval()
    ids = torch.randint(5, 120, (3, 16))
    pad = torch.arange(16)[None, :] >= torch.tensor([16, 11, 4])[:, None]
    with torch.no_grad():
        theirs = bert(input_ids=ids, attention_mask=(~pad).long()).logits
        mine = ours.masked_lm_logits(ids, key_padding_mask=pad)
    difference = (theirs - mine)[~pad].abs().max().item()
    print(f"largest difference on the real tokens: {difference:.2e} (logits up to "
          f"{theirs.abs().max().item():.1f})")  # fmt: skip
    print("the same architecture" if difference < 1e-4 else "the models DIFFER")

# %% [markdown]
# ## What's next
#
# You built BERT's two stages: masked-language-model pretraining, which gets a training
# signal from only about 15% of the positions, and fine-tuning with a pooled head. You saw
# that an encoder reads order where counting words cannot, and that pretraining pays off
# when its text is close to the task (and buys nothing when it is not). **Lab 05** builds the
# other half of the family tree: a decoder-only GPT that predicts the next token at
# *every* position and generates text. **Lab 07** comes back to the 15% and asks what it
# costs.
