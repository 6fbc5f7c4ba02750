"""Date translation (lab 06): dates written in many formats and three languages, to ISO dates.

A source is a date as people write it ("Thursday, 26 November 2026", "11/26/2026",
"26.11.2026", "the 26th of November 2026", "26 novembre 2026", "26. November 2026"); its
target is the same date in ISO 8601 form, ``2026-11-26``. Getting there takes reordering
(the year moves to the front, and month names become numbers), which is what cross-attention
is for.

The ambiguity of numbers is resolved by the **separator**, and that rule is part of the task:

- slashes put the **month first**, as in the USA: ``3/6/2026`` is 6 March 2026;
- dots put the **day first**, as in Germany: ``6.3.2026`` is 6 March 2026;
- a two-digit year ``YY`` means 19YY from 50 to 99 and 20YY from 00 to 49
  (all years lie in 1950 .. 2049).

**What is held out** (never in the training data, so that the test measures generalisation):

- :data:`HELD_OUT_YEARS`, ten years spread over the range (every digit still appears in
  every place of the training years, so copying digits is learnable);
- :data:`HELD_OUT_FORMATS`, three formats that are new *combinations* of parts the training
  formats contain: ``Thursday, 26 Nov. 2026`` (the weekday of ``Thursday, 26 November 2026``
  with the abbreviated month of ``26 Nov. 2026``), ``the 26th of Nov. 2026`` (the ordinal
  phrasing of ``the 26th of November 2026``, abbreviated) and ``Thursday, November 26, 2026``
  (the weekday with the month-first order of ``November 26, 2026``).

The training split has neither; the test split has only dates with a held-out year or a
held-out format (see :func:`make_examples`). Everything is deterministic: the same split,
size and seed give the same examples on every machine (a private ``random.Random``).

Characters are the tokens: :class:`DateVocab` holds every character any format can write,
plus padding, begin- and end-of-sequence and unknown tokens. Every format writes the year
last, so sources padded on the left to :data:`SOURCE_LEN` (``batch(..., pad_side="left")``)
have the year in the same places.
"""

from __future__ import annotations

import datetime
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "YEARS",
    "HELD_OUT_YEARS",
    "TRAIN_YEARS",
    "SOURCE_LEN",
    "Format",
    "FORMATS",
    "TRAIN_FORMATS",
    "HELD_OUT_FORMATS",
    "DateExample",
    "render",
    "to_iso",
    "make_examples",
    "DateVocab",
    "exact_match",
    "accuracy_by_format",
]

YEARS = tuple(range(1950, 2050))
HELD_OUT_YEARS = (1957, 1964, 1971, 1988, 1993, 2006, 2019, 2026, 2032, 2045)
TRAIN_YEARS = tuple(y for y in YEARS if y not in HELD_OUT_YEARS)
SOURCE_LEN = 32  # every source fits: the longest format writes 29 characters

MONTHS = {
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
    "fr": (
        "janvier", "février", "mars", "avril", "mai", "juin",
        "juillet", "août", "septembre", "octobre", "novembre", "décembre",
    ),
    "de": (
        "Januar", "Februar", "März", "April", "Mai", "Juni",
        "Juli", "August", "September", "Oktober", "November", "Dezember",
    ),
}  # fmt: skip
# Abbreviations as the languages' style guides write them: a dot only where letters were cut.
ABBREVIATIONS = {
    "en": (
        "Jan.", "Feb.", "Mar.", "Apr.", "May", "Jun.",
        "Jul.", "Aug.", "Sep.", "Oct.", "Nov.", "Dec.",
    ),
    "fr": (
        "janv.", "févr.", "mars", "avr.", "mai", "juin",
        "juil.", "août", "sept.", "oct.", "nov.", "déc.",
    ),
}  # fmt: skip
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ordinal(day: int) -> str:
    if 11 <= day <= 13:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th') }"


@dataclass(frozen=True)
class Format:
    """One way of writing a date.

    name: short identifier; language: "en", "fr", "de" or "numeric"; order: how the day (D),
    month (M) and year (Y) follow each other; held_out: never in the training split.
    ``write(date) -> str`` renders a ``datetime.date``.
    """

    name: str
    language: str
    order: str
    held_out: bool
    write: Callable[[datetime.date], str]

    @property
    def example(self) -> str:
        """This format applied to 26 November 2026 (a Thursday)."""
        return self.write(datetime.date(2026, 11, 26))


def _fmt(name: str, language: str, order: str, write, held_out: bool = False) -> Format:
    return Format(name, language, order, held_out, write)


_FORMAT_LIST = (
    # Numbers: the separator says the order (slashes month first, dots day first).
    _fmt("us_numeric", "numeric", "MDY", lambda d: f"{d.month}/{d.day}/{d.year}"),
    _fmt("us_numeric_short", "numeric", "MDY", lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}"),
    _fmt("eu_numeric", "numeric", "DMY", lambda d: f"{d.day}.{d.month}.{d.year}"),
    # English
    _fmt("en_day_month", "en", "DMY", lambda d: f"{d.day} {MONTHS['en'][d.month - 1]} {d.year}"),
    _fmt("en_month_day", "en", "MDY", lambda d: f"{MONTHS['en'][d.month - 1]} {d.day}, {d.year}"),
    _fmt(
        "en_weekday",
        "en",
        "DMY",
        lambda d: f"{WEEKDAYS_EN[d.weekday()]}, {d.day} {MONTHS['en'][d.month - 1]} {d.year}",
    ),
    _fmt(
        "en_ordinal",
        "en",
        "DMY",
        lambda d: f"the {_ordinal(d.day)} of {MONTHS['en'][d.month - 1]} {d.year}",
    ),
    _fmt(
        "en_abbrev", "en", "DMY", lambda d: f"{d.day} {ABBREVIATIONS['en'][d.month - 1]} {d.year}"
    ),
    # French and German
    _fmt("fr_long", "fr", "DMY", lambda d: f"{d.day} {MONTHS['fr'][d.month - 1]} {d.year}"),
    _fmt(
        "fr_abbrev", "fr", "DMY", lambda d: f"{d.day} {ABBREVIATIONS['fr'][d.month - 1]} {d.year}"
    ),
    _fmt("de_long", "de", "DMY", lambda d: f"{d.day}. {MONTHS['de'][d.month - 1]} {d.year}"),
    # Held out: each combines two things that training formats show separately.
    _fmt(
        "en_weekday_abbrev",
        "en",
        "DMY",
        lambda d: (
            f"{WEEKDAYS_EN[d.weekday()]}, {d.day} {ABBREVIATIONS['en'][d.month - 1]} {d.year}"
        ),
        held_out=True,
    ),
    _fmt(
        "en_ordinal_abbrev",
        "en",
        "DMY",
        lambda d: f"the {_ordinal(d.day)} of {ABBREVIATIONS['en'][d.month - 1]} {d.year}",
        held_out=True,
    ),
    _fmt(
        "en_weekday_month_day",
        "en",
        "MDY",
        lambda d: f"{WEEKDAYS_EN[d.weekday()]}, {MONTHS['en'][d.month - 1]} {d.day}, {d.year}",
        held_out=True,
    ),
)

FORMATS: dict[str, Format] = {f.name: f for f in _FORMAT_LIST}
TRAIN_FORMATS = tuple(f.name for f in _FORMAT_LIST if not f.held_out)
HELD_OUT_FORMATS = tuple(f.name for f in _FORMAT_LIST if f.held_out)


def render(date: datetime.date, format: str) -> str:
    """``date`` written in the format called ``format`` (a key of :data:`FORMATS`)."""
    if format not in FORMATS:
        raise KeyError(f"unknown date format {format!r}; the formats are: {', '.join(FORMATS)}")
    if not isinstance(date, datetime.date):
        raise TypeError(f"date must be a datetime.date, got {type(date).__name__}")
    return FORMATS[format].write(date)


def to_iso(date: datetime.date) -> str:
    """The target: ``YYYY-MM-DD``."""
    return date.isoformat()


@dataclass(frozen=True)
class DateExample:
    """One pair: ``source`` (as people write it) -> ``target`` (ISO), and where it came from."""

    source: str
    target: str
    format: str
    date: datetime.date

    @property
    def held_out_year(self) -> bool:
        return self.date.year in HELD_OUT_YEARS

    @property
    def held_out_format(self) -> bool:
        return FORMATS[self.format].held_out


SPLITS = ("train", "valid", "test")
_SPLIT_SEEDS = {"train": 1, "valid": 2, "test": 3}


def _random_date(rng: random.Random, years: Sequence[int]) -> datetime.date:
    year = rng.choice(years)
    first = datetime.date(year, 1, 1)
    n_days = (datetime.date(year + 1, 1, 1) - first).days
    return first + datetime.timedelta(days=rng.randrange(n_days))


def make_examples(split: str, n: int, *, seed: int = 0) -> list[DateExample]:
    """``n`` examples of ``split``, the same on every machine for the same arguments.

    - ``"train"``: training formats and training years only;
    - ``"valid"``: the same distribution as train, from another random stream (dates may
      repeat training dates: it measures fitting, not generalisation);
    - ``"test"``: every example has a held-out year or a held-out format. Half of them are
      written in a held-out format (any year), the other half in a training format with a
      held-out year. Formats are drawn uniformly within each half.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    rng = random.Random(f"dates/{split}/{seed}/{_SPLIT_SEEDS[split]}")
    examples = []
    for i in range(n):
        if split != "test":
            fmt, years = rng.choice(TRAIN_FORMATS), TRAIN_YEARS
        elif i % 2 == 0:
            fmt, years = rng.choice(HELD_OUT_FORMATS), YEARS
        else:
            fmt, years = rng.choice(TRAIN_FORMATS), HELD_OUT_YEARS
        date = _random_date(rng, years)
        examples.append(DateExample(render(date, fmt), to_iso(date), fmt, date))
    return examples


# ----------------------------------------------------------------------------------------------
# Characters as tokens


def _alphabet() -> list[str]:
    chars = set("0123456789 ,./-")  # digits and separators, the ISO dash included
    for names in (*MONTHS.values(), *ABBREVIATIONS.values(), WEEKDAYS_EN):
        for name in names:
            chars.update(name)
    chars.update("the of st nd rd th")
    chars.update("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")  # for typed inputs
    return sorted(chars)


class DateVocab:
    """Character vocabulary with special tokens: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3.

    Sources and targets share it (as BART's encoder and decoder share one embedding).
    A character no format writes (a typo in a widget, say) becomes ``<unk>``.
    """

    SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __init__(self) -> None:
        self.itos: list[str] = [*self.SPECIALS, *_alphabet()]
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """``text`` -> one id per character, optionally framed by ``<bos>`` and ``<eos>``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids = [self.stoi.get(ch, self.unk_id) for ch in text]
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids: Iterable[int] | Any) -> str:
        """ids -> text: stops at the first ``<eos>``, skips ``<pad>`` and ``<bos>``."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        out = []
        for i in ids:
            if not isinstance(i, int) or not 0 <= i < len(self.itos):
                raise ValueError(f"id {i!r} is not in a vocabulary of {len(self.itos)} tokens")
            if i == self.eos_id:
                break
            if i in (self.pad_id, self.bos_id):
                continue
            out.append("?" if i == self.unk_id else self.itos[i])
        return "".join(out)

    def batch(
        self,
        texts: Sequence[str],
        *,
        bos: bool = False,
        eos: bool = False,
        width: int | None = None,
        pad_side: str = "right",
    ):
        """Encode and pad: ``(ids (B, T) long, padding_mask (B, T) bool, True = pad)``.

        ``width``: T (default: the longest row); ``pad_side="left"`` right-aligns the texts,
        so that every text ends at position T - 1 (the lab pads sources this way, to
        :data:`SOURCE_LEN`).
        """
        import torch

        if isinstance(texts, str) or not len(texts):
            raise ValueError("batch needs a non-empty list of strings")
        if pad_side not in ("left", "right"):
            raise ValueError(f"pad_side must be 'left' or 'right', got {pad_side!r}")
        rows = [self.encode(t, bos=bos, eos=eos) for t in texts]
        longest = max(len(r) for r in rows)
        if width is None:
            width = max(1, longest)
        elif longest > width:
            raise ValueError(f"a text of {longest} tokens does not fit in width={width}")
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for i, row in enumerate(rows):
            if row:
                where = slice(width - len(row), width) if pad_side == "left" else slice(len(row))
                ids[i, where] = torch.tensor(row, dtype=torch.long)
        return ids, ids == self.pad_id

    def __repr__(self) -> str:
        return f"DateVocab(vocab_size={self.vocab_size})"


# ----------------------------------------------------------------------------------------------
# Scoring


def exact_match(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """The share of predictions equal to their target, character for character."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    if not targets:
        raise ValueError("exact_match of no examples is undefined")
    return sum(p == t for p, t in zip(predictions, targets)) / len(targets)


def accuracy_by_format(
    examples: Sequence[DateExample], predictions: Sequence[str]
) -> dict[str, tuple[float, int]]:
    """``{format: (exact-match accuracy, number of examples)}``, in :data:`FORMATS` order."""
    if len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    right: Counter[str] = Counter()
    total: defaultdict[str, int] = defaultdict(int)
    for example, prediction in zip(examples, predictions):
        total[example.format] += 1
        right[example.format] += prediction == example.target
    return {f: (right[f] / total[f], total[f]) for f in FORMATS if total[f]}
