# %% [markdown]
# # Lab 01: Tokens and embeddings
#
# A transformer never sees text. It sees a list of whole numbers, the **token ids**, looks
# each one up in a table of vectors, and adds a second vector that says *where* in the
# sequence the token stands. Everything the model ever learns about language passes through
# these three steps:
#
# ```
# "the cat"  ->  tokens  ->  ids [17, 4, 92]  ->  vectors (3, d_model)  ->  + positions
# ```
#
# In this lab you build each step yourself:
#
# 1. a **character tokenizer** (encode and decode);
# 2. **byte-pair encoding** (BPE), the tokenizer of GPT-2 and most models since: you write
#    the two functions that train it and the one that uses it;
# 3. **embeddings**, and why `nn.Embedding` is nothing but a one-hot vector times a matrix;
# 4. the **sinusoidal position table** of the original Transformer, compared with positions
#    a model learns by itself.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import course_utils
from course_utils import data

course_utils.seed_everything(0)

# Everything that costs time is sized here, once per profile (see lab 00): `smoke` is what
# the grader runs, `cpu` a laptop, `gpu` a Colab GPU.
cfg = course_utils.settings(
    smoke=dict(
        own_chars=4_000,
        own_merges=12,
        bpe_chars=60_000,
        vocab_sizes=[256, 300, 512],
        pos_len=16,
        pos_dim=16,
        pos_steps=5,
    ),
    cpu=dict(
        own_chars=40_000,
        own_merges=100,
        bpe_chars=None,
        vocab_sizes=[256, 300, 512, 1024, 2048, 4096],
        pos_len=32,
        pos_dim=32,
        pos_steps=200,
    ),
    gpu=dict(
        own_chars=40_000,
        own_merges=100,
        bpe_chars=None,
        vocab_sizes=[256, 300, 512, 1024, 2048, 4096],
        pos_len=64,
        pos_dim=64,
        pos_steps=600,
    ),
)
print("profile:", cfg.profile)

# %% [markdown]
# ## 1. The corpus
#
# The course trains its models on real English prose that ships with every Python
# installation: the language reference that Python's `help()` shows. `data.load_corpus()`
# returns it as one string, the same on every machine, with no download.

# %%
text = data.load_corpus()
print(f"{len(text):,} characters, {len(set(text))} of them different")
print("-" * 60)
print(text[20_000:20_600])

# %% [markdown]
# ## 2. Characters as tokens
#
# The simplest tokenizer makes every character a token. Its **vocabulary** is the set of
# characters that occur in the training text. We give each one an id by sorting them
# (`sorted` orders characters by their Unicode number), so the same text always gives the
# same ids, and keep two tables:
#
# - `stoi` ("string to int"), a `dict` from character to id, for **encoding**;
# - `itos` ("int to string"), a `list` whose entry `i` is the character with id `i`, for
#   **decoding**.
#
# For the text `"hello"` the sorted characters are `e h l o`, so
# `stoi == {"e": 0, "h": 1, "l": 2, "o": 3}`, `itos == ["e", "h", "l", "o"]`, and `"hello"`
# encodes to `[1, 0, 2, 2, 3]`.
#
# A character the tokenizer has never seen has no id. Silently skipping it would corrupt the
# data, and Python's own `KeyError: '€'` says little. So `encode` raises a **`ValueError`
# whose message contains the unknown character**, for example
# `ValueError: character '€' is not in the vocabulary`.
#
# ### Exercise 1: a character tokenizer (3 points)
#
# Write the three functions below. `decode(encode(s, stoi), itos)` must give back `s` for
# every string made of known characters, the empty string included.
#
# <details><summary>Hint</summary>
#
# `sorted(set(text))` gives the vocabulary as a sorted list, which already *is* `itos`;
# `enumerate` then builds `stoi`. In `encode`, check `if ch not in stoi` before you look it
# up, and raise `ValueError(f"character {ch!r} is not in the vocabulary")`.
# `"".join(...)` glues characters back into a string.
# </details>


# %% exercise="char_tokenizer"
def build_vocab(text):
    """The vocabulary of `text`: its distinct characters, sorted.

    text: str -> (stoi, itos) where stoi: dict[str, int] maps each character to its id and
    itos: list[str] of length V (the number of distinct characters) with itos[stoi[c]] == c.
    """
    ### BEGIN SOLUTION
    itos = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(itos)}
    return stoi, itos
    ### END SOLUTION


def encode(text, stoi):
    """text: str of length N -> list[int] of length N, the id of each character.

    Raises ValueError naming the first character of `text` that is not in `stoi`.
    """
    ### BEGIN SOLUTION
    ids = []
    for ch in text:
        if ch not in stoi:
            raise ValueError(f"character {ch!r} is not in the vocabulary")
        ids.append(stoi[ch])
    return ids
    ### END SOLUTION


def decode(ids, itos):
    """ids: list[int] of length N -> str of length N, the character of each id."""
    ### BEGIN SOLUTION
    return "".join(itos[i] for i in ids)
    ### END SOLUTION


# %% test="char_tokenizer" points=2 hint="itos = sorted(set(text)); stoi maps itos[i] to i; encode looks each character up in order; decode joins itos[i] for each id." nudge="The vocabulary is every distinct character, in a fixed order; encode and decode are two lookups that undo each other."
from course_utils.checks import check_equal

stoi, itos = build_vocab("hello")
check_equal(stoi, {"e": 0, "h": 1, "l": 2, "o": 3}, name='build_vocab("hello") stoi')
check_equal(itos, ["e", "h", "l", "o"], name='build_vocab("hello") itos')
check_equal(encode("hello", stoi), [1, 0, 2, 2, 3], name='encode("hello")')
check_equal(decode([3, 2, 0], itos), "ole", name="decode([3, 2, 0])")
sample_text = "the cat sat on the mat"
s2i, i2s = build_vocab(sample_text)
check_equal(decode(encode(sample_text, s2i), i2s), sample_text, name="decode(encode(text))")
print("✓ char_tokenizer: visible tests passed")

### BEGIN HIDDEN TESTS
for case in ["", "a", "aaaa", "naïve café 🙂🙂", "Hello, World!\n\tTabs and 123", "zyx"]:
    stoi, itos = build_vocab(case)
    chars = sorted(set(case))
    check_equal(itos, chars, name=f"build_vocab({case!r}) itos")
    check_equal(stoi, {c: i for i, c in enumerate(chars)}, name=f"build_vocab({case!r}) stoi")
    ids = encode(case, stoi)
    check_equal(ids, [chars.index(c) for c in case], name=f"encode({case!r})")
    check_equal(decode(ids, itos), case, name=f"decode(encode({case!r}))")
stoi, itos = build_vocab("abc")
check_equal(encode("", stoi), [], name='encode("") of the empty text')
check_equal(decode([], itos), "", name="decode([]) of no ids")
check_equal(encode("cab", stoi), [2, 0, 1], name='encode("cab") with vocabulary "abc"')
### END HIDDEN TESTS

# %% test="char_tokenizer" points=1 hint="Before looking a character up, check `if ch not in stoi:` and raise ValueError(f'character {ch!r} is not in the vocabulary')." nudge="An unknown character should stop encode with a clear error rather than a KeyError."
from course_utils.checks import check_raises, check_true

stoi, itos = build_vocab("hello")
error = check_raises(
    ValueError, encode, "he€llo", stoi, name='encode("he€llo"), where "€" is unknown'
)
check_true(
    "€" in str(error),
    f"the ValueError should name the unknown character '€'; its message was {str(error)!r}",
)
print("✓ char_tokenizer: unknown characters raise a clear ValueError")

### BEGIN HIDDEN TESTS
stoi, itos = build_vocab("abc ")
for bad, unknown in [("ab€c", "€"), ("🙂", "🙂"), ("abc\n", "\n"), ("aßc", "ß"), ("€🙂", "€")]:
    error = check_raises(
        ValueError, encode, bad, stoi, name=f"encode({bad!r}) with vocabulary 'abc '"
    )
    check_true(
        unknown in str(error) or repr(unknown) in str(error),
        f"encode({bad!r}): the ValueError should name {unknown!r}; its message was {str(error)!r}",
    )
### END HIDDEN TESTS

# %% [markdown]
# Your tokenizer on the whole corpus: every character becomes exactly one id.

# %%
if course_utils.ready("build_vocab", "encode", "decode"):
    stoi, itos = build_vocab(text)
    ids = encode(text, stoi)
    print(f"vocabulary: {len(itos)} characters")
    print("".join(itos))
    print(f"{len(text):,} characters -> {len(ids):,} ids; the first 12: {ids[:12]}")
    print("round trip exact:", decode(ids, itos) == text)
    try:
        encode("A cost of 5 €", stoi)
    except ValueError as error:
        print("as designed:", error)

# %% [markdown]
# Two problems show already. The vocabulary is **closed**: the corpus has no `€`, so the
# tokenizer cannot even represent a price, let alone an emoji or a word in Greek. And every
# character costs one step of the sequence, so a model that reads 256 tokens at a time
# sees about 40 words. Both problems have the same fix: start from bytes, then merge.
#
# ## 3. Bytes: a vocabulary that covers every text
#
# Computers store text as bytes, with the **UTF-8** encoding: the 128 ASCII characters take
# one byte each, other characters two to four. A byte is a number from 0 to 255, so 256
# token ids can spell *any* text in any language. Nothing is ever unknown.

# %%
for s in ["a", "é", "€", "🙂", "日本"]:
    b = s.encode("utf-8")
    print(f"{s!r:6} {len(s)} character(s) -> {len(b)} bytes {list(b)}")
print("\nand back:", bytes([226, 130, 172]).decode("utf-8"))

# %% [markdown]
# The price: non-English text gets *longer* (a Japanese character costs three tokens), and
# English text is still one token per letter. Byte-pair encoding keeps the 256 bytes as its
# base and then adds tokens for the byte sequences that occur often.
#
# ## 4. Byte-pair encoding: learning merges
#
# BPE training is a simple loop. Start from the bytes of the text. Then, again and again:
#
# 1. count every **adjacent pair** of ids;
# 2. take the **most frequent pair** and give it a new id: 256, then 257, and so on;
# 3. **merge**: replace each occurrence of that pair by the new id.
#
# Each round adds one token to the vocabulary and makes the sequence shorter. Here are the
# first three rounds on the text `"aaabdaaabac"` (bytes: `a`=97, `b`=98, `c`=99, `d`=100):
#
# | round | ids | most frequent pair (count) | new id |
# |---|---|---|---|
# | 1 | `97 97 97 98 100 97 97 97 98 97 99` | `(97, 97)` "aa" (4) | 256 |
# | 2 | `256 97 98 100 256 97 98 97 99` | `(97, 98)` "ab" (2), tied with `(256, 97)` (2) | 257 |
# | 3 | `256 257 100 256 257 97 99` | `(256, 257)` "aaab" (2) | 258 |
# | | `258 100 258 97 99` | | |
#
# Three details make the result exact, and the tests check each:
#
# - **Counting overlaps.** Pairs are counted at every position, overlapping ones too: in
#   `[97, 97, 97]` the pair `(97, 97)` occurs twice (positions 0 and 1). That is why "aa"
#   counts 4 in round 1.
# - **Ties.** When several pairs share the highest count, take the **smallest pair**, comparing
#   tuples as Python does (first ids first, then second ids): in round 2, `(97, 98)` beats
#   `(256, 97)`. Any rule would do; a fixed one makes training repeatable.
# - **Merging left to right, without overlap.** Scan from the left; where the pair starts,
#   emit the new id and jump *past both* ids. So merging `(1, 1)` in `[1, 1, 1]` gives
#   `[new, 1]`, not `[new, new]`: the middle `1` cannot be used twice.
#
# ### Exercise 2: the most frequent pair (2 points)
#
# Write `most_frequent_pair(ids)`: count the adjacent pairs (overlaps included), and return
# the most frequent one, ties going to the smallest pair. A list of fewer than two ids has
# no pairs: return `None`.
#
# <details><summary>Hint</summary>
#
# `zip(ids, ids[1:])` walks over all adjacent pairs, overlapping ones included. Count them
# in a `dict` (or a `collections.Counter`). Then `best = max(counts.values())` and
# `min(pair for pair, n in counts.items() if n == best)` applies the tie rule. Careful:
# `Counter.most_common(1)` breaks ties by first appearance, which is not the rule here.
# </details>


# %% exercise="most_frequent_pair"
def most_frequent_pair(ids):
    """The adjacent pair of ids that occurs most often in `ids`.

    ids: list[int] -> tuple[int, int], or None when ids has fewer than 2 elements.
    Overlapping pairs all count. Ties go to the smallest pair (Python tuple order).
    """
    ### BEGIN SOLUTION
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    if not counts:
        return None
    best = max(counts.values())
    return min(pair for pair, n in counts.items() if n == best)
    ### END SOLUTION


# %% test="most_frequent_pair" points=2 hint="Count every (ids[i], ids[i+1]) with zip(ids, ids[1:]); among the pairs with the highest count return min(...), the smallest tuple; return None for fewer than 2 ids." nudge="Count each pair of neighbours once per occurrence; when several pairs tie, the rule for choosing one is in the docstring."
import random

from course_utils.checks import check_equal

check_equal(most_frequent_pair([1, 2, 3, 1, 2]), (1, 2), name="most_frequent_pair([1, 2, 3, 1, 2])")
check_equal(
    most_frequent_pair(list(b"aaabdaaabac")), (97, 97), name='most_frequent_pair of "aaabdaaabac"'
)
check_equal(
    most_frequent_pair([5, 6, 1, 2]),
    (1, 2),
    name="most_frequent_pair([5, 6, 1, 2]), a four-way tie",
)
print("✓ most_frequent_pair: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_seed

check_equal(most_frequent_pair([]), None, name="most_frequent_pair([]) of no ids")
check_equal(most_frequent_pair([7]), None, name="most_frequent_pair([7]) of one id")
check_equal(most_frequent_pair([4, 9]), (4, 9), name="most_frequent_pair([4, 9])")
check_equal(most_frequent_pair([1, 1, 1]), (1, 1), name="most_frequent_pair([1, 1, 1])")
# (1, 1) occurs twice only when overlaps count; (2, 3) occurs twice either way; the tie
# then goes to (1, 1), the smaller pair.
check_equal(
    most_frequent_pair([2, 3, 2, 3, 1, 1, 1]),
    (1, 1),
    name="most_frequent_pair([2, 3, 2, 3, 1, 1, 1]): overlapping (1, 1) counts twice",
)
check_equal(
    most_frequent_pair([256, 97, 98, 100, 256, 97, 98, 97, 99]),
    (97, 98),
    name="most_frequent_pair of round 2 of the worked example (a tie)",
)
check_equal(most_frequent_pair([9, 9, 3, 3]), (3, 3), name="most_frequent_pair([9, 9, 3, 3]) tie")
rng = random.Random(hidden_seed("test_most_frequent_pair", 0))
for n, v in [(200, 5), (1000, 30), (50, 300)]:
    ids = [rng.randrange(v) for _ in range(n)]
    counts = {}
    for i in range(len(ids) - 1):
        counts[(ids[i], ids[i + 1])] = counts.get((ids[i], ids[i + 1]), 0) + 1
    best = max(counts.values())
    expected = sorted(p for p, c in counts.items() if c == best)[0]
    check_equal(
        most_frequent_pair(ids), expected, name=f"most_frequent_pair of {n} random ids below {v}"
    )
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3: one merge (2 points)
#
# Write `merge(ids, pair, new_id)`: a **new** list in which every occurrence of `pair` is
# replaced by `new_id`, scanning left to right without overlap, as described above. Leave the
# list you were given unchanged: a caller may still need it (to compare the text before and
# after a merge, say), and changing an argument behind its owner's back is a classic bug.
# The visible test checks that too.
#
# <details><summary>Hint</summary>
#
# Use an index `i` and a `while i < len(ids)` loop. If `ids[i]` and `ids[i + 1]` (check that
# `i + 1` exists!) form the pair, append `new_id` and move `i` on by 2; otherwise append
# `ids[i]` and move on by 1. A `for` loop cannot skip ahead, which is why `while` is easier.
# </details>


# %% exercise="merge"
def merge(ids, pair, new_id):
    """Replace each occurrence of `pair` in `ids` by `new_id`, left to right, no overlap.

    ids: list[int] of length N, pair: tuple[int, int], new_id: int -> a new list[int] of
    length N minus the number of replacements. `ids` itself is not changed.
    """
    ### BEGIN SOLUTION
    out = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    ### END SOLUTION


# %% test="merge" points=2 hint="Walk with `while i < len(ids)`: on a match (ids[i], ids[i+1]) == pair append new_id and add 2 to i, else append ids[i] and add 1; build a new list." nudge="Merging replaces a matching pair by one id, and a merged pair cannot take part in another match."
import random

from course_utils.checks import check_equal, check_true

check_equal(
    merge([5, 6, 5, 6, 7], (5, 6), 256), [256, 256, 7], name="merge([5, 6, 5, 6, 7], (5, 6), 256)"
)
check_equal(merge([1, 2, 3], (2, 3), 99), [1, 99], name="merge([1, 2, 3], (2, 3), 99)")
check_equal(
    merge(list(b"aaabdaaabac"), (97, 97), 256),
    [256, 97, 98, 100, 256, 97, 98, 97, 99],
    name='merge of (97, 97) in "aaabdaaabac"',
)
given = [4, 4, 7, 4, 4]
merged = merge(given, (4, 4), 300)
check_equal(
    given,
    [4, 4, 7, 4, 4],
    name="the list passed to merge([4, 4, 7, 4, 4], (4, 4), 300), afterwards",
    hint="Build a new list (out = [] and out.append(...)); never change or pop from ids.",
)
check_equal(merged, [300, 7, 300], name="merge([4, 4, 7, 4, 4], (4, 4), 300)")
print("✓ merge: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_seed

check_equal(merge([1, 1, 1], (1, 1), 9), [9, 1], name="merge([1, 1, 1], (1, 1), 9): no overlap")
check_equal(merge([1, 1, 1, 1], (1, 1), 9), [9, 9], name="merge([1, 1, 1, 1], (1, 1), 9)")
check_equal(merge([1, 1, 1, 1, 1], (1, 1), 9), [9, 9, 1], name="merge([1, 1, 1, 1, 1], (1, 1), 9)")
check_equal(merge([], (1, 2), 9), [], name="merge([]) of no ids")
check_equal(merge([1], (1, 2), 9), [1], name="merge([1], (1, 2), 9)")
check_equal(merge([1, 2], (1, 2), 9), [9], name="merge([1, 2], (1, 2), 9)")
check_equal(merge([2, 1], (1, 2), 9), [2, 1], name="merge([2, 1], (1, 2), 9): order matters")
check_equal(merge([3, 4, 5], (1, 2), 9), [3, 4, 5], name="merge([3, 4, 5], (1, 2), 9): pair absent")
check_equal(merge([1, 2, 1], (1, 2), 9), [9, 1], name="merge([1, 2, 1], (1, 2), 9): last id alone")
check_equal(
    merge([3, 1, 2], (1, 2), 9), [3, 9], name="merge([3, 1, 2], (1, 2), 9): pair at the end"
)
original = [4, 4, 7, 4, 4]
kept = list(original)
result = merge(original, (4, 4), 300)
check_equal(original, kept, name="the ids passed to merge, afterwards (merge must not change them)")
check_true(result is not original, "merge must return a new list, not the list it was given")
check_equal(result, [300, 7, 300], name="merge([4, 4, 7, 4, 4], (4, 4), 300)")
rng = random.Random(hidden_seed("test_merge", 1))
for n, v in [(300, 3), (300, 2), (100, 10)]:
    ids = [rng.randrange(v) for _ in range(n)]
    pair = (ids[0], ids[0]) if v == 2 else (ids[0], ids[1])
    expected, i = [], 0
    while i < len(ids):
        if ids[i : i + 2] == list(pair):
            expected.append(1000)
            i += 2
        else:
            expected.append(ids[i])
            i += 1
    check_equal(
        merge(ids, pair, 1000), expected, name=f"merge of {pair} in {n} random ids below {v}"
    )
### END HIDDEN TESTS

# %% [markdown]
# ### Train your own BPE
#
# Your two functions are all that training needs. The loop below runs them on a slice of
# the corpus (its size depends on the profile) and records each merge in a `dict`
# `{pair: new_id}`, in the order the merges were learned. The vocabulary follows from the
# merges: token 256 stands for the bytes of its two parts, joined.


# %%
def train_bpe(text, num_merges):
    """Learn `num_merges` merges from `text`. Returns (merges, ids after the last merge)."""
    ids = list(text.encode("utf-8"))
    merges = {}
    for k in range(num_merges):
        pair = most_frequent_pair(ids)
        if pair is None:  # nothing left to merge
            break
        new_id = 256 + k
        ids = merge(ids, pair, new_id)
        merges[pair] = new_id
    return merges, ids


def vocab_of(merges):
    """id -> the bytes it stands for: the 256 single bytes, then one entry per merge."""
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in merges.items():
        vocab[new_id] = vocab[a] + vocab[b]
    return vocab


train_text, val_text = data.train_val_split(text, 0.1)
sample = train_text[: cfg.own_chars]
if course_utils.ready("most_frequent_pair", "merge"):
    my_merges, my_ids = train_bpe(sample, cfg.own_merges)
    my_vocab = vocab_of(my_merges)
    print(
        f"{len(sample):,} characters = {len(sample.encode('utf-8')):,} bytes "
        f"-> {len(my_ids):,} tokens after {len(my_merges)} merges"
    )
    learned = [my_vocab[i].decode("utf-8", "replace") for i in my_merges.values()]
    print("the first merges:", learned[:20])
    print("the last merges: ", learned[-10:])

# %% [markdown]
# The first merges are the commonest pairs of letters and spaces (`"e "`, `"th"`,
# `" a"`, ...); soon merges of merges join them into pieces of words (in the `cpu` profile
# `" the "` and `"ion"` are among the first twenty), and the last merges above are rarer
# pieces such as `"ing "`. Every merge shortens the text, but by less and less, because
# rarer pairs are merged later.
#
# ## 5. Encoding new text with the merges
#
# A trained tokenizer is just its ordered `merges`. To encode a new text, start from its
# UTF-8 bytes and apply the merges **in the order they were learned**: among the adjacent
# pairs that have a merge, take the one learned first (the **smallest new id**), merge it
# everywhere, and repeat until no pair of the sequence has a merge.
#
# Order matters, because a merge can only apply to tokens made by earlier merges. Take the
# merges `{(98, 99): 256, (97, 98): 257}` ("bc" first, then "ab") and the text `"abc"`,
# bytes `[97, 98, 99]`. Both pairs have a merge; "bc" was learned first, so the answer is
# `[97, 256]` ("a", "bc"). Merging "ab" first, because it comes first in the text or occurs
# more often there, gives `[257, 99]`, a tokenization training never produced.
#
# ### Exercise 4: BPE encode (3 points)
#
# <details><summary>Hint</summary>
#
# Start with `ids = list(text.encode("utf-8"))`. In a `while len(ids) >= 2` loop, collect the
# adjacent pairs that are keys of `merges`; if there are none, stop; otherwise take
# `pair = min(candidates, key=lambda p: merges[p])` and `ids = merge(ids, pair, merges[pair])`
# with your function from exercise 3.
# </details>


# %% exercise="bpe_encode"
def bpe_encode(text, merges):
    """Encode `text` with byte-level BPE.

    text: str; merges: dict[tuple[int, int], int], pair -> new id, in the order learned
    (new ids 256, 257, ...). Returns list[int]: the ids after applying, again and again, the
    applicable merge with the smallest new id to the UTF-8 bytes of `text`.
    """
    ### BEGIN SOLUTION
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        candidates = [pair for pair in zip(ids, ids[1:]) if pair in merges]
        if not candidates:
            break
        pair = min(candidates, key=lambda p: merges[p])
        ids = merge(ids, pair, merges[pair])
    return ids
    ### END SOLUTION


# %% test="bpe_encode" points=3 hint="Start from list(text.encode('utf-8')); while some adjacent pair is in merges, merge the one with the smallest merges[pair] (min with key=) everywhere; stop when none is left." nudge="Byte-pair encoding starts from bytes and applies the learned merges in the order they were learned."
from course_utils.checks import check_equal
from course_utils.tokenizers import BPETokenizer

merges = {(97, 98): 256, (256, 99): 257}
check_equal(
    bpe_encode("abcab", merges), [257, 256], name='bpe_encode("abcab", {ab: 256, (256, c): 257})'
)
check_equal(
    bpe_encode("abc", {(98, 99): 256, (97, 98): 257}),
    [97, 256],
    name='bpe_encode("abc", {bc: 256, ab: 257}): the merge learned first wins',
)
# The reference: the course's tokenizer with no pre-splitting (one chunk = the whole text).
training = "the theme of the thesis: the three thin threads then thawed"
reference = BPETokenizer.train(training, 256 + 20, pattern=r"[\s\S]+")
for s in ["the thesis", "three themes", "other"]:
    check_equal(
        bpe_encode(s, dict(reference.merges)),
        reference.encode(s),
        name=f"bpe_encode({s!r}) with 20 merges",
    )
print("✓ bpe_encode: visible tests passed")

### BEGIN HIDDEN TESTS
check_equal(bpe_encode("", merges), [], name='bpe_encode("") of the empty text')
check_equal(bpe_encode("a", merges), [97], name='bpe_encode("a"), one character')
check_equal(bpe_encode("xyz", merges), [120, 121, 122], name='bpe_encode("xyz"), no merge applies')
check_equal(bpe_encode("ab", {}), [97, 98], name='bpe_encode("ab", {}) without merges')
check_equal(
    bpe_encode("é€", {}), [195, 169, 226, 130, 172], name='bpe_encode("é€", {}): UTF-8 bytes'
)
check_equal(
    bpe_encode("ababc", {(98, 99): 256, (97, 98): 257}),
    [257, 97, 256],
    name='bpe_encode("ababc", {bc: 256, ab: 257}): learned order, not frequency',
)
check_equal(bpe_encode("aaaa", {(97, 97): 256, (256, 256): 257}), [257], name='bpe_encode("aaaa")')
check_equal(
    bpe_encode("aaa", {(97, 97): 256, (256, 256): 257}), [256, 97], name='bpe_encode("aaa")'
)
for training, tests in [
    ("🙂🙂 smile 🙂 and 日本語 日本 ok 🙂🙂🙂", ["🙂", "🙂🙂 日本", "smile 🙂", "語🙂"]),
    ("aaaaaaaabbbbbbababababaaabbb", ["aaaaaaa", "abababab", "bbbbaaaa", "b"]),
]:
    reference = BPETokenizer.train(training, 256 + 15, pattern=r"[\s\S]+")
    for s in tests:
        check_equal(
            bpe_encode(s, dict(reference.merges)),
            reference.encode(s),
            name=f"bpe_encode({s!r}) with merges trained on {training[:20]!r}...",
        )
reference = BPETokenizer.train(
    "the quick brown fox jumps over the lazy dog " * 5, 256 + 40, pattern=r"[\s\S]+"
)
s = "the lazy fox jumps over the quick brown dog, twice"
check_equal(
    bpe_encode(s, dict(reference.merges)),
    reference.encode(s),
    name=f"bpe_encode({s!r}) with 40 merges",
)
### END HIDDEN TESTS

# %% [markdown]
# Your encoder, with the merges you trained in section 4, on a sentence from outside the
# training slice. Each token is shown between bars, and decoding (join the bytes of the
# tokens, then UTF-8) gives back the text exactly, emoji included.

# %%
if course_utils.ready("most_frequent_pair", "merge", "bpe_encode"):
    sentence = "The interpreter evaluates the expression, then returns 🙂."
    my_tokens = bpe_encode(sentence, my_merges)
    pieces = [my_vocab[i].decode("utf-8", "replace") for i in my_tokens]
    print(f"{len(sentence)} characters -> {len(my_tokens)} tokens")
    print("|" + "|".join(pieces) + "|")
    print("decoded:", b"".join(my_vocab[i] for i in my_tokens).decode("utf-8"))

# %% [markdown]
# (The `�` are the single bytes of the emoji: a token may hold part of a character. Decoding
# the whole sequence joins the bytes first, so the emoji comes back whole.)
#
# ## 6. Real tokenizers: words first, then merges
#
# Look at the merges you learned: several cross a word boundary, such as `"e "` or
# `" the "`. Then `"the"` followed by a space, by a comma or by a full stop get different
# tokens, and the vocabulary fills up with near-duplicates. GPT-2 avoids this by first
# cutting the text into chunks with a regular expression (words with their leading space,
# numbers, punctuation, runs of spaces) and only merging *inside* a chunk.
#
# The course's reference tokenizer, `course_utils.tokenizers.BPETokenizer`, does exactly
# that, with the same merge and encode steps you just wrote. Counting each distinct chunk once
# also makes it fast enough to train on the whole corpus in about a second. From here on the
# lab uses it. We train it on the training part of the corpus at several vocabulary sizes and
# measure on the held-out validation part: **how many tokens does a character of new text
# cost?**

# %%
import time

from course_utils.tokenizers import BPETokenizer, CharTokenizer

chars = CharTokenizer.train(text)
tokenizers = {}
start = time.perf_counter()
for size in cfg.vocab_sizes:
    tokenizers[size] = BPETokenizer.train(train_text[: cfg.bpe_chars], size)
print(f"trained {len(tokenizers)} tokenizers in {time.perf_counter() - start:.1f} s")

tokens_per_char = {}
for size, tok in tokenizers.items():
    tokens_per_char[size] = len(tok.encode(val_text)) / len(val_text)
    print(
        f"vocabulary {size:5}: {tokens_per_char[size]:.3f} tokens per character "
        f"({1 / tokens_per_char[size]:.2f} characters per token)"
    )

# %%
from course_utils.plots import plot_curves

sizes = list(tokens_per_char)
ax = plot_curves(
    {
        "byte-pair encoding": (sizes, [tokens_per_char[s] for s in sizes]),
        "characters": ([chars.vocab_size], [1.0]),
    },
    log_x=True,
    markers=True,
    xlabel="vocabulary size (log scale)",
    ylabel="tokens per character",
    title="Cost of the validation text in tokens",
)
ax.set_ylim(0, 1.1)
plt.show()

# %% [markdown]
# The first few hundred merges pay off most; after that each doubling of the vocabulary
# saves less. (The point at 256 is the plain byte tokenizer: no merges yet.) A bigger
# vocabulary is not free: the embedding table grows by one row per token, and each extra
# token is rarer, so the model sees fewer examples of it. GPT-2 uses 50,257 tokens, Llama 3
# 128,256; our small models use a few hundred to a few thousand.
#
# What did the tokenizer learn? Its first merges, and its longest tokens:

# %%
largest = tokenizers[max(tokenizers)]


def show(token_bytes):
    return repr(token_bytes.decode("utf-8", "replace"))


print("first merges:")
print(
    "  ".join(
        f"{show(largest.vocab[a])}+{show(largest.vocab[b])}" for (a, b) in list(largest.merges)[:24]
    )
)
by_length = sorted(largest.vocab.values(), key=len, reverse=True)
words = [t for t in by_length if t.strip().isalpha()][:12]
print("\nlongest tokens that are words:", ", ".join(show(t) for t in words))
print("longest tokens of all:")
for t in by_length[:3]:
    print(f"  {len(t)} bytes: {show(t[:40])}{'...' if len(t) > 40 else ''}")

# %% [markdown]
# The longest word tokens are words this corpus repeats: it is a language reference, so
# long words such as `" implementation"` and the names of exceptions such as
# `"ZeroDivisionError"` earn tokens of their own (with the `cpu` settings).
# The longest tokens of all are pieces of the tables the reference draws with `+`, `-` and
# `=`. A tokenizer learns whatever its corpus repeats, useful or not.
#
# Which tokens does new text actually use? Below are the most frequent tokens of the
# validation text. A handful of tokens (line breaks, punctuation, `" the"`) make up a
# large share of everything the model will read, while most of the vocabulary is rare: the
# long tail that a larger vocabulary makes longer.

# %%
from collections import Counter

from course_utils.plots import plot_bar

val_ids = largest.encode(val_text)
top = Counter(val_ids).most_common(20)
share = sum(n for _, n in top) / len(val_ids)
ax = plot_bar(
    {show(largest.vocab[i]): n / len(val_ids) for i, n in top},
    ylabel="share of all tokens",
    fmt="{:.1%}",
    title=f"The 20 commonest of {largest.vocab_size} tokens: {share:.0%} of the validation text",
)
ax.figure.set_size_inches(11, 3.5)
plt.show()

# %% [markdown]
# ## 7. Explore: one text, two tokenizers
#
# Type anything in the box. Each coloured box is one token; hover over it to see its id.
# The slider chooses the size of the BPE vocabulary. Try a long word from the corpus
# (`"implementation"`), a name, a number, another language, an emoji: characters the
# character tokenizer never saw are shown in red.

# %%
import html

import ipywidgets as widgets
from IPython.display import display

PALETTE = ["#fde68a", "#bbf7d0", "#bfdbfe", "#fbcfe8", "#ddd6fe", "#fed7aa"]


def token_boxes(pieces, ids, unknown=()):
    """HTML: one coloured box per token; whitespace made visible."""
    boxes = []
    for k, (piece, i) in enumerate(zip(pieces, ids)):
        shown = html.escape(piece).replace(" ", "&nbsp;").replace("\n", "↵").replace("\t", "⇥")
        colour = "#fca5a5" if k in unknown else PALETTE[k % len(PALETTE)]
        boxes.append(
            f'<span title="id {i}" style="background:{colour};padding:1px 2px;'
            f'margin:1px;border-radius:3px;display:inline-block">{shown}</span>'
        )
    return "".join(boxes)


def char_tokens(s):
    ids = [chars.stoi.get(c, "?") for c in s]
    unknown = {k for k, i in enumerate(ids) if i == "?"}
    return list(s), ids, unknown


def bpe_tokens(s, tok):
    ids = tok.encode(s)
    return [tok.vocab[i].decode("utf-8", "replace") for i in ids], ids


text_box = widgets.Textarea(
    value="The interpreter tokenizes 3 expressions: naïve café 🙂",
    description="text:",
    layout=widgets.Layout(width="95%", height="60px"),
)
size_slider = widgets.SelectionSlider(
    options=list(tokenizers),
    value=list(tokenizers)[len(tokenizers) // 2],
    description="BPE vocab:",
    continuous_update=False,
)
view = widgets.HTML()


def render(_=None):
    s = text_box.value
    c_pieces, c_ids, unknown = char_tokens(s)
    b_pieces, b_ids = bpe_tokens(s, tokenizers[size_slider.value])
    view.value = (
        f"<div style='font-family:monospace;line-height:1.9'>"
        f"<b>characters</b> ({len(c_ids)} tokens, {len(unknown)} unknown)<br>"
        f"{token_boxes(c_pieces, c_ids, unknown)}<br><small>ids: {c_ids}</small><br><br>"
        f"<b>BPE, vocabulary {size_slider.value}</b> ({len(b_ids)} tokens)<br>"
        f"{token_boxes(b_pieces, b_ids)}<br><small>ids: {b_ids}</small></div>"
    )


text_box.observe(render, names="value")
size_slider.observe(render, names="value")
display(widgets.VBox([text_box, size_slider, view]))
render()

# %% [markdown]
# ## 8. Embeddings: from ids to vectors
#
# An id is a name, not a quantity: token 57 is not "bigger" than token 3. So the model gives
# each id a **vector** of `d_model` learned numbers, stored as row `i` of a `(V, d_model)`
# matrix, and the first thing it does is look up the row of every id. That is
# `nn.Embedding(V, d_model)`: ids of shape `(B, T)` in, vectors of shape `(B, T, d_model)`
# out.
#
# Another way to see the same operation: write id `i` as a **one-hot** vector (length `V`,
# all zeros except a 1 at position `i`) and multiply it by the matrix. The product picks out
# row `i`. The lookup is just a faster way to multiply by a one-hot vector, which is also why
# the embedding is an ordinary layer that trains with gradients like any other.

# %%
torch.manual_seed(0)
embedding = nn.Embedding(chars.vocab_size, 8)  # V = 103 rows of 8 numbers
word = "the cat"
ids = torch.tensor([chars.encode(word)])  # (1, 7): a batch of one sequence
looked_up = embedding(ids)  # (1, 7, 8)
one_hot = F.one_hot(ids, num_classes=chars.vocab_size).float()  # (1, 7, 103)
multiplied = one_hot @ embedding.weight  # (1, 7, 103) @ (103, 8) -> (1, 7, 8)
print("ids", tuple(ids.shape), "-> vectors", tuple(looked_up.shape))
print("lookup == one-hot @ weight, exactly:", torch.equal(looked_up, multiplied))

# %%
from course_utils.plots import plot_heatmap

ax = plot_heatmap(
    one_hot[0],
    y_labels=list(word),
    colorbar=False,
    cmap="Greys",
    xlabel="id (one column per token of the vocabulary)",
    ylabel="character",
    title=f"One-hot rows of {word!r}: each row picks one row of the embedding",
)
ax.figure.set_size_inches(10, 2.2)
plt.show()

# %% [markdown]
# A consequence you can see: a training step only changes the rows of the tokens that were
# in the batch. The gradient of every other row is exactly zero.

# %%
embedding.zero_grad()
embedding(ids).sum().backward()
touched = embedding.weight.grad.abs().sum(dim=1).nonzero().flatten().tolist()
print(f"rows with a gradient: {touched} = {[chars.itos[i] for i in touched]}")
print(f"the other {chars.vocab_size - len(touched)} rows: all zero")

# %% [markdown]
# ## 9. Where is each token? Positions
#
# The attention layer of the next lab compares every token with every other token, and by
# itself it treats its input as a **set**: shuffle the tokens and each one gets the same
# result, just in another place. Without help, "dog bites man" and "man bites dog" would
# mean the same. A quick check with the embedding above: both phrases hold the same
# characters, so they become the same set of vectors, only in another order.


# %%
def same_set_of_vectors(x, y):
    """True when the rows of x (T, C) are the rows of y (T, C), in some order."""
    return sorted(x.tolist()) == sorted(y.tolist())


a = embedding(torch.tensor(chars.encode("dog bites man")))  # (13, 8)
b = embedding(torch.tensor(chars.encode("man bites dog")))  # (13, 8)
print("same set of vectors:", same_set_of_vectors(a, b))

# %% [markdown]
# The fix is to add to each token's vector a vector that depends on its **position** 0, 1,
# 2, .... The original Transformer (Vaswani et al., 2017) uses fixed waves. For position
# `pos` and each pair of columns `2i` and `2i + 1` (with `i = 0, 1, ..., d_model/2 - 1`):
#
# $$PE[pos, 2i] = \sin\left(\frac{pos}{10000^{2i/d_{model}}}\right), \qquad
#   PE[pos, 2i+1] = \cos\left(\frac{pos}{10000^{2i/d_{model}}}\right)$$
#
# Sines sit in the even columns, cosines in the odd ones, and both columns of a pair share
# one frequency. Column pair 0 turns fastest (a full turn every 2π ≈ 6.3 positions); each
# later pair turns more slowly, down to one turn in about 10,000 × 2π positions. Like the
# hands of a clock, fast and slow waves together give every position a different
# pattern, for any length, with nothing to learn. At position 0 every angle is 0, so the
# first row is `0, 1, 0, 1, ...`.
#
# ### Exercise 5: the sinusoidal position table (3 points)
#
# Return a `float32` tensor of shape `(max_len, d_model)`; `d_model` is even. Vectorise it
# with broadcasting if you can (a double loop also passes, slowly).
#
# <details><summary>Hint</summary>
#
# `pos = torch.arange(max_len).float()[:, None]` is a column `(max_len, 1)`;
# `two_i = torch.arange(0, d_model, 2).float()` is a row `(d_model/2,)`; then
# `angle = pos / 10000 ** (two_i / d_model)` broadcasts to `(max_len, d_model/2)`. Make
# `table = torch.zeros(max_len, d_model)` and fill `table[:, 0::2]` with `torch.sin(angle)`
# and `table[:, 1::2]` with `torch.cos(angle)`. Note the exponent uses `2i`, the even
# column's index, for *both* columns of a pair.
# </details>


# %% exercise="sinusoidal_positions"
def sinusoidal_positions(max_len, d_model):
    """The sinusoidal position table: (max_len, d_model) float32 tensor, d_model even.

    Row pos holds sin(pos / 10000^(2i/d_model)) in column 2i and cos(same) in column 2i + 1.
    """
    ### BEGIN SOLUTION
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float32)  # (d_model / 2,)
    angle = pos / 10000 ** (two_i / d_model)  # (max_len, d_model / 2)
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)
    return table
    ### END SOLUTION


# %% test="sinusoidal_positions" points=3 hint="angle[pos, i] = pos / 10000 ** (2*i / d_model); sin(angle) goes in the even columns table[:, 0::2], cos(angle) in the odd ones table[:, 1::2]; return float32." nudge="Each position gets a row of sines and cosines whose wavelengths grow with the column index."
import torch

from course_utils.checks import check_tensor


def reference_table(max_len, d_model):
    # In float64, from the formula; then rounded to float32 like the answer.
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    i = torch.arange(d_model // 2, dtype=torch.float64)
    angle = pos / 10000.0 ** (2 * i / d_model)
    return (
        torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).reshape(max_len, d_model).float()
    )


# Tolerance: an angle computed in float32 is off by up to pos * 6e-8 radians, under 1e-5
# for the first 128 positions; a wrong formula is off by 0.01 or (much) more.
check_tensor(
    sinusoidal_positions(10, 8),
    reference_table(10, 8),
    atol=1e-5,
    rtol=0,
    name="sinusoidal_positions(10, 8)",
)
print("✓ sinusoidal_positions: visible tests passed")

### BEGIN HIDDEN TESTS
for max_len, d_model in [(7, 2), (1, 16), (13, 6), (128, 64), (33, 128)]:
    check_tensor(
        sinusoidal_positions(max_len, d_model),
        reference_table(max_len, d_model),
        atol=1e-5,
        rtol=0,
        name=f"sinusoidal_positions({max_len}, {d_model})",
    )
row0 = torch.tensor([0.0, 1.0] * 8)
check_tensor(
    sinusoidal_positions(50, 16)[0],
    row0,
    atol=1e-7,
    rtol=0,
    name="row 0 (position 0) of sinusoidal_positions(50, 16): sin 0 = 0, cos 0 = 1",
)
check_tensor(
    sinusoidal_positions(3, 2),
    torch.tensor([[0.0, 1.0], [0.8414710, 0.5403023], [0.9092974, -0.4161468]]),
    atol=1e-6,
    rtol=0,
    name="sinusoidal_positions(3, 2): sin and cos of 0, 1, 2",
)
### END HIDDEN TESTS

# %% [markdown]
# The whole table as a picture: one row per position, one column per dimension. The left
# columns oscillate fast, the right ones barely move over the first hundred positions.

# %%
if course_utils.ready("sinusoidal_positions"):
    table = sinusoidal_positions(100, 64)
    ax = plot_heatmap(
        table,
        cmap="RdBu",
        vmin=-1,
        vmax=1,
        xlabel="dimension",
        ylabel="position",
        title="Sinusoidal positions: sin (even) and cos (odd)",
    )
    ax.figure.set_size_inches(7, 4)
    plt.show()

# %% [markdown]
# How alike are two positions? The dot product of their rows. Because every row has the same
# length (√(d_model/2)), dividing by d_model/2 gives the **cosine similarity**, 1 for the same
# position. Two things stand out in the picture below: neighbours are alike, far-apart
# positions less so, and the pattern is the same along every diagonal. The similarity of
# positions `p` and `p + k` depends only on the distance `k`: it is the sum of `cos(k · ω)`
# over the frequencies `ω`. That is why the authors hoped the model could attend by *relative*
# position.

# %%
if course_utils.ready("sinusoidal_positions"):
    similarity = (table @ table.T) / (table.shape[1] / 2)  # (100, 100), cosine similarity

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    plot_heatmap(
        similarity,
        ax=left,
        cmap="RdBu",
        vmin=-1,
        vmax=1,
        xlabel="position",
        ylabel="position",
        title="Similarity between positions",
    )
    for p in (0, 20, 50):
        right.plot(range(0, 100 - p), similarity[p, p:], label=f"from position {p}")
    right.set_xlabel("distance k")
    right.set_ylabel("cosine similarity")
    right.set_title("Depends only on the distance")
    right.legend()
    fig.tight_layout()
    plt.show()

# %% [markdown]
# Add the table to the embeddings, row `pos` to the token at position `pos`, and the two
# phrases become different sets of vectors, as they should be: the "d" of "dog" now carries
# position 0 in one phrase and position 10 in the other.

# %%
if course_utils.ready("sinusoidal_positions"):
    positions = sinusoidal_positions(13, 8)
    print("same set of vectors:", same_set_of_vectors(a + positions, b + positions))

# %% [markdown]
# ## 10. Positions a model learns
#
# GPT-2 and BERT do not use waves: they keep a second embedding table with one **learned**
# row per position, initialised at random like the token embedding. Does training give it
# structure of its own? Let us watch. Below, a tiny character model (an embedding with
# learned positions, one transformer block, an output layer; labs 02 and 03 build each part)
# is trained briefly to predict the next character. We compare the similarity of its
# position vectors before and after.

# %%
from course_utils.layers import Embeddings, TransformerBlock
from course_utils.layers import sinusoidal_positions as course_table
from course_utils.training import train


class TinyCharModel(nn.Module):
    def __init__(self, vocab_size, d_model, max_len):
        super().__init__()
        self.embed = Embeddings(vocab_size, d_model, max_len, positions="learned")
        nn.init.normal_(self.embed.pos_emb.weight, std=0.02)  # small random start, like GPT-2
        self.block = TransformerBlock(d_model, n_heads=4, d_ff=4 * d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, ids):  # (B, T) -> logits (B, T, V)
        return self.head(self.block(self.embed(ids), is_causal=True))


device = course_utils.pick_device()
corpus_ids = torch.tensor(chars.encode(train_text))
model = TinyCharModel(chars.vocab_size, cfg.pos_dim, cfg.pos_len).to(device)
before = model.embed.pos_emb.weight.detach().cpu().clone()
generator = torch.Generator().manual_seed(0)


def get_batch(step):
    return data.get_batch(corpus_ids, 32, cfg.pos_len, generator=generator)


def loss_fn(model, batch):
    x, y = batch
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


history = train(model, get_batch, loss_fn, steps=cfg.pos_steps, lr=1e-2, seed=0)
after = model.embed.pos_emb.weight.detach().cpu()
print(f"loss after {cfg.pos_steps} steps: {history.final_train_loss:.2f}")


# %%
def cosine_similarity_table(table):
    unit = F.normalize(table, dim=1)
    return unit @ unit.T


def by_distance(sim):
    return [sim.diagonal(k).mean().item() for k in range(sim.shape[0])]


sims = {
    "learned, before training": cosine_similarity_table(before),
    f"learned, after {cfg.pos_steps} steps": cosine_similarity_table(after),
    "sinusoidal": cosine_similarity_table(course_table(cfg.pos_len, cfg.pos_dim)),
}
fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
for ax, (name, sim) in zip(axes, sims.items()):
    plot_heatmap(
        sim,
        ax=ax,
        cmap="RdBu",
        vmin=-1,
        vmax=1,
        colorbar=False,
        title=name,
        xlabel="position",
        ylabel="position",
    )
plot_curves(
    {name: (range(cfg.pos_len), by_distance(sim)) for name, sim in sims.items()},
    ax=axes[3],
    xlabel="distance k",
    ylabel="mean cosine similarity",
    title="Similarity by distance",
)
fig.tight_layout()
plt.show()

# %% [markdown]
# Before training, every position is a random vector, alike only to itself. After 200 steps
# (the `cpu` profile; 600 on a GPU, while the grader's `smoke` profile trains only 5 steps,
# too few to show it) nearby positions have grown alike and
# distant ones apart: from nothing but next-character prediction, the model has discovered
# that positions come in an order. Much larger trained models, such as GPT-2, end up with
# smooth, wave-like position tables.
#
# Which is better? Learned positions adapt to the data but know nothing beyond `max_len`,
# the last row they were trained on; sinusoidal ones cost no parameters and are defined for
# every position. In practice both work about equally well, and most recent models use
# yet another scheme (rotary embeddings) that rotates queries and keys instead of adding a
# vector.
#
# `course_utils.layers.Embeddings(vocab_size, d_model, max_len, positions="learned" or
# "sinusoidal")` packages this section: token embedding plus position embedding. Later labs
# start from it.
#
# ## What's next
#
# You can now turn any text into a `(B, T, d_model)` tensor that says what each token is and
# where it stands. In lab 02 the tokens start to look at each other: **attention**.
