"""One text stream for every task (lab 07): tasks written as prompts for a decoder.

A decoder-only model learns every task the same way, by predicting the next character, if
each task is written as text::

    review: the plot was not good => negative
    date: 26 novembre 2026 => 2026-11-26
    def load(path): ... (plain corpus text)

:func:`format_prompt` writes a task input (and, for training, its answer) in this form;
:func:`parse_answer` reads the answer back out of what a model generated after the prompt,
and returns ``None`` when it is not a well-formed answer. :func:`make_mixture` interleaves
sentiment reviews (:mod:`course_utils.tasks.sentiment`), dates
(:mod:`course_utils.tasks.dates`) and lines of plain text, deterministically for a seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

TASKS = {"sentiment": "review", "dates": "date"}
ARROW = " =>"
LABELS = ("negative", "positive")  # sentiment label 0, 1
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")


def format_prompt(task: str, text: str, answer: str | None = None) -> str:
    """``"review: <text> =>"``, and ``" <answer>"`` after it when an answer is given."""
    _check_task(task)
    if not isinstance(text, str) or "=>" in text or "\n" in text:
        raise ValueError(f"text must be one line of str without '=>', got {text!r}")
    prompt = f"{TASKS[task]}: {text}{ARROW}"
    return prompt if answer is None else f"{prompt} {answer}"


def parse_answer(task: str, generated: str) -> str | None:
    """The answer at the start of ``generated`` (the text after the prompt), or ``None``.

    Leading spaces are skipped. Sentiment: the word ``positive`` or ``negative``; dates: an
    ISO date ``YYYY-MM-DD`` (ten characters, not checked against the calendar). Whatever
    follows the answer (a newline, the next example) is ignored.
    """
    _check_task(task)
    text = generated.lstrip(" ")
    if task == "sentiment":
        for label in LABELS:
            if text.startswith(label) and not text[len(label) : len(label) + 1].isalpha():
                return label
        return None
    match = _ISO.match(text)
    return match.group(0) if match else None


def make_mixture(
    reviews: Sequence, dates: Sequence, corpus_lines: Sequence[str], *, seed: int = 0
) -> list[str]:
    """Every review and date as a prompt with its answer, and the corpus lines, shuffled.

    ``reviews``: :class:`~course_utils.tasks.sentiment.Review` objects (``.text``,
    ``.label``); ``dates``: :class:`~course_utils.tasks.dates.DateExample` objects
    (``.source``, ``.target``); ``corpus_lines``: plain text lines (empty ones are dropped).
    """
    lines = [format_prompt("sentiment", r.text, LABELS[r.label]) for r in reviews]
    lines += [format_prompt("dates", d.source, d.target) for d in dates]
    lines += [line for line in corpus_lines if line.strip()]
    random.Random(seed).shuffle(lines)
    return lines


class CharVocab:
    """Characters as tokens for all families: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<mask>`` 3.

    Then the newline, printable ASCII and every character a date format writes (French and
    German month names have accents); any other character becomes ``?``.
    """

    SPECIALS = ("<pad>", "<bos>", "<eos>", "<mask>")
    pad_id, bos_id, eos_id, mask_id = 0, 1, 2, 3

    def __init__(self) -> None:
        from .dates import DateVocab

        chars = ["\n", *(chr(c) for c in range(32, 127))]
        chars += [c for c in DateVocab().itos[len(DateVocab.SPECIALS) :] if c not in chars]
        self.itos: list[str] = [*self.SPECIALS, *chars]
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        unknown = self.stoi["?"]
        return [self.stoi.get(ch, unknown) for ch in text]

    def decode(self, ids) -> str:
        """Ids -> text; special tokens are dropped."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return "".join(self.itos[i] for i in ids if i >= len(self.SPECIALS))


WORD = re.compile(r"[^\W\d_]+")  # letters only: what WordVocab can make one token
_WORD_OR_CHAR = re.compile(rf"( ?)({WORD.pattern})|(.)", re.DOTALL)


class WordVocab(CharVocab):
    """:class:`CharVocab` plus whole words: each of ``words``, alone and with the space before
    it (``"good"`` and ``" good"``, as GPT-2's vocabulary writes words), is one token.

    Any other word, and every digit, space and sign, is spelled in characters as before, so
    every text still encodes and ``decode(encode(text)) == text`` (characters outside the
    vocabulary become ``?``). A review of 40 characters becomes about 8 tokens, and a model
    need not learn to spell before it can learn what ``not`` does to ``good``.
    """

    def __init__(self, words) -> None:
        super().__init__()
        if isinstance(words, str):
            raise TypeError("words must be a list of words, not one str")
        for word in sorted(set(words)):
            if not isinstance(word, str) or not WORD.fullmatch(word):
                raise ValueError(
                    f"each word must be letters only (no space, digit or sign), got {word!r}"
                )
            for token in (word, f" {word}"):
                if token not in self.stoi:
                    self.stoi[token] = len(self.itos)
                    self.itos.append(token)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids: list[int] = []
        for match in _WORD_OR_CHAR.finditer(text):
            space, word, other = match.groups()
            if word is None:
                ids += super().encode(other)
            elif space + word in self.stoi:
                ids.append(self.stoi[space + word])
            elif word in self.stoi:
                ids += [*super().encode(space), self.stoi[word]]
            else:
                ids += super().encode(space + word)
        return ids
