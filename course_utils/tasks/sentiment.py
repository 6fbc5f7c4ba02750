"""Generated movie reviews where word order decides the sentiment (lab 04).

Each review is one or two clauses about a film. A clause says something about an aspect
("the plot", "the acting") with an adjective, and may be turned around by a negation::

    the plot was good                                   positive
    the plot was not good                               negative   (negation)
    the ending was not bad at all                       positive   (negation)
    the music was never boring                          positive   (negation)
    the acting was really clever                        positive   (intensifier)
    it is not true that the cast was not funny          positive   (double negation)
    the acting was good but the plot was boring         negative   (contrast: "but" decides)
    the script was dull and the pacing was slow         negative

Counting words is not enough: "not good" and "good, not bad" hold the same kind of words, and
the clause after "but" outweighs the one before it. So a bag-of-words model, which sees only
which words occur, fails where a model that reads the order succeeds.

:func:`make_splits` returns train, validation and test sets. The **test** set holds word
combinations never seen in training: some (aspect, adjective) pairs, such as "the plot" with
"clever", and some (negation, adjective) pairs, such as "never" with "dull", are kept out of
the training and validation sets altogether, and every test review contains at least one of
them. Each word is still seen in training, in other company.

Everything is deterministic: the generators use their own ``random.Random(seed)``, and the same
seed gives the same reviews on every machine and Python version.

The module also has the word-level :class:`WordTokenizer` that lab 04 shares between its
pretraining corpus and the reviews, and the bag-of-words baseline (:class:`BagOfWords`,
:func:`train_bag_of_words`): logistic regression on token counts, in PyTorch.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = [
    "ASPECTS",
    "POSITIVE",
    "NEGATIVE",
    "INTENSIFIERS",
    "NEGATORS",
    "PHENOMENA",
    "Review",
    "Splits",
    "generate",
    "make_splits",
    "review_words",
    "held_out_pairs",
    "accuracy_by_phenomenon",
    "words",
    "WordTokenizer",
    "BagOfWords",
    "bag_of_words_counts",
    "train_bag_of_words",
]

ASPECTS = (
    "the plot",
    "the acting",
    "the music",
    "the dialogue",
    "the ending",
    "the cast",
    "the script",
    "the pacing",
    "the story",
    "the camera work",
    "the film",
    "the humour",
)
POSITIVE = (
    "good",
    "great",
    "brilliant",
    "funny",
    "charming",
    "moving",
    "clever",
    "gripping",
    "beautiful",
    "fresh",
    "wonderful",
    "superb",
)
NEGATIVE = (
    "bad",
    "boring",
    "dull",
    "awful",
    "weak",
    "silly",
    "messy",
    "bland",
    "clumsy",
    "tedious",
    "flat",
    "terrible",
)
INTENSIFIERS = ("very", "really", "truly", "extremely", "quite", "so")
NEGATORS = ("not", "never", "hardly")  # directly before the adjective
# Frames that negate a whole clause ("it is not true that <clause>").
NEGATING_FRAMES = ("it is not true that", "i would not say that", "nobody could say that")
VERBS = ("was", "is")

#: The tags an example can carry; "plain" means none of the others.
PHENOMENA = ("negation", "double_negation", "contrast", "intensifier", "plain")

POSITIVE_LABEL, NEGATIVE_LABEL = 1, 0


@dataclass(frozen=True)
class Review:
    """One generated review: its text, its label (1 positive, 0 negative) and its phenomena.

    ``phenomena`` holds the tags of :data:`PHENOMENA` that apply, in that order:
    "negation" when a clause is negated once, "double_negation" when a clause is negated
    twice (which cancels), "contrast" when two clauses of opposite sentiment are joined by
    "but" (the second one decides), "intensifier" for "very good" and the like, and "plain"
    when none of these applies. ``pairs`` are the (aspect, adjective) and (negator,
    adjective) combinations the review contains, which decide the split.
    """

    text: str
    label: int
    phenomena: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    def has(self, phenomenon: str) -> bool:
        _check_phenomenon(phenomenon)
        return phenomenon in self.phenomena


@dataclass(frozen=True)
class Splits:
    """Train, validation and test reviews, and the word pairs kept out of training.

    ``train`` and ``val`` come from the same distribution (``val`` holds no review text that is
    in ``train``); every ``test`` review contains at least one pair of ``held_out``, and no
    ``train`` or ``val`` review contains any.
    """

    train: list[Review]
    val: list[Review]
    test: list[Review]
    held_out: frozenset[tuple[str, str]]
    seed: int

    def __repr__(self) -> str:
        return (
            f"Splits(train={len(self.train)}, val={len(self.val)}, test={len(self.test)}, "
            f"held_out={len(self.held_out)} pairs, seed={self.seed})"
        )


def _check_phenomenon(phenomenon: str) -> None:
    if phenomenon not in PHENOMENA:
        raise ValueError(f"unknown phenomenon {phenomenon!r}; expected one of {PHENOMENA}")


def _check_count(name: str, value: Any, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


# ----------------------------------------------------------------------------------------------
# The generator


def _clause(
    rng: random.Random, polarity: int, *, frames: bool = True
) -> tuple[str, set[str], list[tuple[str, str]]]:
    """A clause whose sentiment is ``polarity`` (+1 or -1): (text, phenomena, pairs).

    ``frames=False`` never wraps the clause in "it is not true that ...": a first clause
    that starts with a frame would leave unclear how far the frame reaches.
    """
    aspect, verb = rng.choice(ASPECTS), rng.choice(VERBS)
    # How many negations: 0, 1 (flips the adjective) or 2 (flips it twice).
    n_neg = rng.choices((0, 1, 2), weights=(50, 38, 12))[0]
    adjective_polarity = polarity * (-1) ** n_neg
    adjective = rng.choice(POSITIVE if adjective_polarity > 0 else NEGATIVE)
    tags: set[str] = set()
    pairs = [(aspect, adjective)]
    if n_neg == 0:
        frame, negator = None, None
    elif n_neg == 1:
        # Either a negation word before the adjective, or a frame around the clause.
        if not frames or rng.random() < 0.75:
            frame, negator = None, rng.choice(NEGATORS)
        else:
            frame, negator = rng.choice(NEGATING_FRAMES), None
    else:
        # Both, or "never not".
        if frames and rng.random() < 0.7:
            frame, negator = rng.choice(NEGATING_FRAMES), rng.choice(NEGATORS)
        else:
            frame, negator = None, "never not"
    if n_neg:
        tags.add("negation" if n_neg == 1 else "double_negation")
    words_ = [aspect, verb]
    if negator is not None:
        words_.append(negator)
        pairs.append((negator, adjective))
    if negator is None and rng.random() < 0.35:
        words_.append(rng.choice(INTENSIFIERS))
        tags.add("intensifier")
    words_.append(adjective)
    if negator in ("not", "never") and rng.random() < 0.3:
        words_.append("at all")
    text = " ".join(words_)
    if frame is not None:
        text = f"{frame} {text}"
    return text, tags, pairs


def _review(rng: random.Random) -> Review:
    label = rng.randrange(2)
    polarity = 1 if label == POSITIVE_LABEL else -1
    shape = rng.choices(("one", "but", "and"), weights=(45, 35, 20))[0]
    if shape == "one":
        text, tags, pairs = _clause(rng, polarity)
    else:
        # "but" joins clauses of opposite sentiment, the second one deciding; "and" agrees.
        first = _clause(rng, -polarity if shape == "but" else polarity, frames=False)
        second = _clause(rng, polarity)
        text = f"{first[0]} {shape} {second[0]}"
        tags = first[1] | second[1] | ({"contrast"} if shape == "but" else set())
        pairs = first[2] + second[2]
    phenomena = tuple(p for p in PHENOMENA if p in tags) or ("plain",)
    return Review(text, label, phenomena, tuple(pairs))


def generate(n: int, seed: int = 0) -> list[Review]:
    """``n`` reviews drawn from the generator with ``random.Random(seed)`` (no split rules)."""
    _check_count("n", n)
    _check_count("seed", seed)
    rng = random.Random(seed)
    return [_review(rng) for _ in range(n)]


def held_out_pairs(seed: int = 0, fraction: float = 0.2) -> frozenset[tuple[str, str]]:
    """The word pairs :func:`make_splits` keeps out of training, for a given seed.

    A ``fraction`` of every (aspect, adjective) pair and of every (negator, adjective) pair
    ("not"/"never"/"hardly"/"never not" with an adjective), chosen with
    ``random.Random(seed)`` from the pairs in a fixed order. Each adjective keeps at least
    one aspect and one negator in training, so every word is seen there.
    """
    _check_count("seed", seed)
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
    rng = random.Random(f"held-out-{seed}")
    held: set[tuple[str, str]] = set()
    for adjective in POSITIVE + NEGATIVE:
        for partners in (ASPECTS, NEGATORS + ("never not",)):
            k = min(len(partners) - 1, round(fraction * len(partners)))
            held.update((partner, adjective) for partner in rng.sample(partners, k))
    return frozenset(held)


def make_splits(
    n_train: int = 4000,
    n_val: int = 500,
    n_test: int = 1000,
    seed: int = 0,
    *,
    fraction_held_out: float = 0.2,
) -> Splits:
    """Train, validation and test reviews; the test set holds unseen word combinations.

    Reviews are drawn from one stream; those that contain a pair of
    :func:`held_out_pairs` go to the test set, the others to train and then validation
    (validation skips any text already in train). Deterministic for a given ``seed``.
    """
    for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        _check_count(name, value)
    _check_count("seed", seed)
    held = held_out_pairs(seed, fraction_held_out)
    rng = random.Random(seed)
    train: list[Review] = []
    val: list[Review] = []
    test: list[Review] = []
    train_texts: set[str] = set()
    for _ in range(200 * (n_train + n_val + n_test) + 1000):
        if len(train) == n_train and len(val) == n_val and len(test) == n_test:
            break
        review = _review(rng)
        if any(pair in held for pair in review.pairs):
            if len(test) < n_test:
                test.append(review)
        elif len(train) < n_train:
            train.append(review)
            train_texts.add(review.text)
        elif len(val) < n_val and review.text not in train_texts:
            val.append(review)
    else:  # pragma: no cover - the loop above always ends by its break at these sizes
        raise RuntimeError("could not draw enough reviews; lower n_val or fraction_held_out")
    return Splits(train, val, test, held, seed)


def review_words() -> list[str]:
    """Every word a review can contain, sorted (so a tokenizer never needs ``[UNK]`` for them)."""
    phrases = ASPECTS + POSITIVE + NEGATIVE + INTENSIFIERS + NEGATORS + NEGATING_FRAMES + VERBS
    out = {w for phrase in phrases for w in phrase.split()}
    out.update(("but", "and", "at", "all"))
    return sorted(out)


def accuracy_by_phenomenon(
    reviews: Sequence[Review], predictions: Sequence[int] | torch.Tensor
) -> dict[str, float]:
    """Accuracy overall (key "all") and on the reviews carrying each phenomenon.

    ``predictions`` are labels (0 or 1), one per review. A phenomenon that no review carries
    is left out of the dict.
    """
    if isinstance(predictions, torch.Tensor):
        predictions = predictions.tolist()
    if len(predictions) != len(reviews):
        raise ValueError(f"got {len(predictions)} predictions for {len(reviews)} reviews")
    if not reviews:
        raise ValueError("no reviews to score")
    right = [int(p) == r.label for p, r in zip(predictions, reviews)]
    out = {"all": sum(right) / len(right)}
    for phenomenon in PHENOMENA:
        hits = [ok for ok, r in zip(right, reviews) if phenomenon in r.phenomena]
        if hits:
            out[phenomenon] = sum(hits) / len(hits)
    return out


# ----------------------------------------------------------------------------------------------
# A word-level tokenizer shared by the corpus and the reviews

_WORD = re.compile(r"[a-z]+|[0-9]+|[^\sa-z0-9]")


def words(text: str) -> list[str]:
    """Lower-case words, numbers and single punctuation marks, in order."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


class WordTokenizer:
    """Whole words to ids, with BERT's special tokens.

    Ids 0-4 are ``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]`` and ``[MASK]``; then the words, most
    frequent first. :meth:`train` builds the vocabulary from texts (every word that occurs at
    least ``min_count`` times) plus ``always`` (words that must be in it, such as every
    review word). ``encode`` gives bare word ids; :meth:`encode_batch` adds ``[CLS]`` and
    ``[SEP]`` and pads, as the encoder expects.
    """

    SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    pad_id, unk_id, cls_id, sep_id, mask_id = range(5)

    def __init__(self, vocab: Iterable[str]) -> None:
        vocab = list(vocab)
        if tuple(vocab[:5]) != self.SPECIALS:
            raise ValueError(f"a vocabulary starts with the special tokens {self.SPECIALS}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("the vocabulary has repeated entries")
        self.itos = vocab
        self.stoi = {w: i for i, w in enumerate(vocab)}

    @classmethod
    def train(
        cls, texts: Iterable[str], *, min_count: int = 1, always: Iterable[str] = ()
    ) -> WordTokenizer:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(words(text))
        always = [w for w in always if w not in cls.SPECIALS]
        frequent = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        vocab = list(cls.SPECIALS) + frequent
        seen = set(vocab)
        vocab += [w for w in sorted(set(always)) if w not in seen]
        return cls(vocab)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def special_ids(self) -> list[int]:
        return list(range(len(self.SPECIALS)))

    def encode(self, text: str) -> list[int]:
        """Word ids of ``text``, unknown words as ``[UNK]``; no special tokens added."""
        return [self.stoi.get(w, self.unk_id) for w in words(text)]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Words separated by spaces; ``[PAD]`` is dropped, other specials are shown."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return " ".join(self.itos[i] for i in ids if i != self.pad_id)

    def encode_batch(
        self, texts: Sequence[str], *, max_len: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``[CLS] words [SEP]`` for each text, padded: (ids (B, T) long, padding (B, T) bool).

        The padding mask is True at ``[PAD]`` positions (the course's key-padding
        convention). ``max_len`` truncates (keeping ``[SEP]`` last); by default T is the
        longest text plus two.
        """
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a list of texts; wrap a single text in [...]")
        rows = [[self.cls_id, *self.encode(t), self.sep_id] for t in texts]
        if max_len is not None:
            _check_count("max_len", max_len, 2)
            rows = [r if len(r) <= max_len else r[: max_len - 1] + [self.sep_id] for r in rows]
        width = max((len(r) for r in rows), default=2)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids, ids == self.pad_id

    def save(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"kind": "word", "vocab": self.itos}, f)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WordTokenizer:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("kind") != "word":
            raise ValueError(f"{path} does not hold a word tokenizer")
        return cls(data["vocab"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordTokenizer) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size})"


# ----------------------------------------------------------------------------------------------
# The bag-of-words baseline


def bag_of_words_counts(
    ids: torch.Tensor, vocab_size: int, *, ignore_ids: Iterable[int] = (0, 1, 2, 3, 4)
) -> torch.Tensor:
    """How often each token occurs in each row: ids (B, T) long -> counts (B, V) float.

    Tokens in ``ignore_ids`` (by default the special tokens of :class:`WordTokenizer`,
    padding included) are not counted. Order is thrown away: that is the point.
    """
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.is_floating_point():
        raise ValueError("ids must be a (B, T) tensor of integer token ids")
    counts = torch.zeros(ids.size(0), vocab_size, device=ids.device)
    counts.scatter_add_(1, ids, torch.ones_like(ids, dtype=counts.dtype))
    ignore = list(ignore_ids)
    if ignore:
        counts[:, ignore] = 0
    return counts


class BagOfWords(nn.Module):
    """Logistic regression on token counts: ids (B, T) -> logits (B, 2).

    One weight per (word, class) and a bias: a word pushes towards a class by the same amount
    wherever it stands, so "not good" is just "not" plus "good".
    """

    def __init__(self, vocab_size: int, n_classes: int = 2) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.linear = nn.Linear(vocab_size, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.linear(bag_of_words_counts(ids, self.vocab_size))

    @torch.no_grad()
    def predict(self, ids: torch.Tensor) -> torch.Tensor:
        """Predicted labels (B,) long."""
        return self(ids).argmax(-1)


def train_bag_of_words(
    ids: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    vocab_size: int,
    *,
    steps: int = 300,
    lr: float = 0.1,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> BagOfWords:
    """Fit :class:`BagOfWords` on all of ``ids`` (B, T) and ``labels`` (B,) with full-batch Adam.

    The problem is convex, so a few hundred full-batch steps reach the optimum; weight decay
    keeps the weights of words that always agree with the label finite.
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.shape != (ids.size(0),):
        raise ValueError(f"labels must have shape ({ids.size(0)},), got {tuple(labels.shape)}")
    _check_count("steps", steps, 1)
    generator = torch.Generator().manual_seed(seed)
    model = BagOfWords(vocab_size)
    with torch.no_grad():
        model.linear.weight.normal_(0, 0.01, generator=generator)
        model.linear.bias.zero_()
    counts = bag_of_words_counts(ids, vocab_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model.linear(counts), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()
