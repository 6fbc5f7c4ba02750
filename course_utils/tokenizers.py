"""Reference tokenizers: characters and byte-level byte-pair encoding (BPE).

Lab 01 builds these step by step; later labs import them from here::

    chars = CharTokenizer.train(text)           # vocabulary = the sorted unique characters
    bpe = BPETokenizer.train(text, 512)         # 256 bytes + 256 merges
    ids = bpe.encode("Hello world")             # list[int]
    bpe.decode(ids)                             # "Hello world"

:class:`BPETokenizer` follows Karpathy's minbpe ``RegexTokenizer``: the base vocabulary is the
256 byte values, the text is first cut into chunks (words, numbers, punctuation, spaces) by a
regular expression so that merges never cross a word boundary, and training repeatedly merges
the most frequent adjacent pair of ids. The lab's exercises mirror the two small functions
:func:`get_pair_counts` and :func:`merge_pair`.
"""

from __future__ import annotations

import json
import operator
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "GPT2_SPLIT_PATTERN",
    "CharTokenizer",
    "BPETokenizer",
    "get_pair_counts",
    "merge_pair",
    "token_stats",
]

# GPT-2's split pattern, adapted to Python's `re` (no \p{L} or \p{N} there):
#   's 't 're 've 'm 'll 'd  contractions
#   ` ?[^\W\d_]+`            a word: letters, optionally after one space ("\w minus digits and _")
#   ` ?\d+`                  a number
#   ` ?(?:[^\s\w]|_)+`       punctuation and symbols (GPT-2 counts "_" as one of these)
#   `\s+(?!\S)`              spaces, except the last one before a word, which joins the word
#   `\s+`                    any remaining spaces
# Every character matches one branch, so the chunks always join back to the text.
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""


def _as_id_list(ids: Any, what: str = "ids") -> list[int]:
    """``ids`` as a list of Python ints: accepts a list/tuple of ints or a 1-D integer tensor."""
    if hasattr(ids, "dim") and hasattr(ids, "tolist"):  # a torch.Tensor, without importing torch
        if ids.dim() != 1:
            raise ValueError(f"{what} must be a 1-D tensor, got shape {tuple(ids.shape)}")
        if ids.dtype.is_floating_point or ids.dtype.is_complex:
            raise TypeError(f"{what} must hold integer token ids, got dtype {ids.dtype}")
        return ids.tolist()
    if isinstance(ids, (str, bytes)) or not isinstance(ids, (list, tuple)):
        raise TypeError(
            f"{what} must be a list of ints or a 1-D tensor, got {type(ids).__name__}"
            + ("; encode the text first" if isinstance(ids, str) else "")
        )
    try:
        return [operator.index(i) for i in ids]
    except TypeError:
        bad = next(i for i in ids if not hasattr(i, "__index__"))
        raise TypeError(f"{what} must contain ints, found {bad!r}") from None


# ----------------------------------------------------------------------------------------------
# Characters


class CharTokenizer:
    """One token per character; the vocabulary is the sorted set of characters.

    ``CharTokenizer.train(text)`` learns the vocabulary from a text;
    ``CharTokenizer(chars)`` builds it from the characters themselves.

    Attributes:
        stoi: ``dict[str, int]``, character -> id.
        itos: ``dict[int, str]``, id -> character.
    """

    def __init__(self, chars: Iterable[str]) -> None:
        if isinstance(chars, (bytes, bytearray)):
            raise TypeError("chars must be str characters, got bytes; decode them first")
        chars = list(chars)
        for ch in chars:
            if not isinstance(ch, str) or len(ch) != 1:
                raise ValueError(f"every vocabulary item must be a single character, got {ch!r}")
        if not chars:
            raise ValueError("the vocabulary is empty; give at least one character")
        vocab = sorted(set(chars))  # sorted: the same text always gives the same ids
        self.itos: dict[int, str] = dict(enumerate(vocab))
        self.stoi: dict[str, int] = {ch: i for i, ch in self.itos.items()}

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """Build the tokenizer whose vocabulary is every character in ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError("cannot train on an empty text")
        return cls(text)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """``str`` of length N -> ``list[int]`` of length N."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        try:
            return [self.stoi[ch] for ch in text]
        except KeyError as err:
            ch = err.args[0]
            raise ValueError(
                f"character {ch!r} (U+{ord(ch):04X}, first at position {text.index(ch)}) is not "
                f"in the vocabulary of {self.vocab_size} characters; train the tokenizer on text "
                "that contains it"
            ) from None

    def decode(self, ids: Sequence[int] | Any) -> str:
        """``list[int]`` or 1-D integer tensor of length N -> ``str`` of length N."""
        ids = _as_id_list(ids)
        try:
            return "".join(self.itos[i] for i in ids)
        except KeyError as err:
            raise ValueError(
                f"id {err.args[0]} is out of range for a vocabulary of {self.vocab_size} "
                f"(valid ids are 0..{self.vocab_size - 1})"
            ) from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON to ``path``."""
        # ensure_ascii (the default) escapes every non-ASCII character, lone surrogates too,
        # so any vocabulary survives the round trip whatever the platform's encoding.
        data = {"type": "CharTokenizer", "version": 1, "chars": list(self.itos.values())}
        Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CharTokenizer:
        """Read a tokenizer written by :meth:`save`."""
        data = _read_json(path, "CharTokenizer")
        return cls(data["chars"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def _read_json(path: str | os.PathLike[str], kind: str) -> dict[str, Any]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("type") != kind:
        found = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path} does not hold a saved {kind} (found type {found!r})")
    if data.get("version") != 1:
        raise ValueError(f"{path}: unsupported {kind} file version {data.get('version')!r}")
    return data


# ----------------------------------------------------------------------------------------------
# Byte-pair encoding: the two steps the lab builds


def get_pair_counts(
    ids: Sequence[int], counts: dict[tuple[int, int], int] | None = None
) -> dict[tuple[int, int], int]:
    """Count each adjacent pair of ids: ``[1, 2, 3, 1, 2] -> {(1, 2): 2, (2, 3): 1, (3, 1): 1}``.

    ``counts``, when given, is updated in place and returned, so that counts can be summed
    over many chunks of text.
    """
    _check_id_list(ids)
    if counts is None:
        counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge_pair(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``new_id``.

    Scans left to right and never overlaps: merging ``(1, 1)`` in ``[1, 1, 1]`` gives
    ``[new_id, 1]``. Returns a new list; ``ids`` is unchanged.
    """
    _check_id_list(ids)
    if not isinstance(pair, tuple) or len(pair) != 2:
        raise TypeError(f"pair must be a tuple of two ids, got {pair!r}")
    return _merge(ids, pair, new_id)


def _check_id_list(ids: Any) -> None:
    # Only the container is checked: these functions run in tight loops over long lists.
    if not isinstance(ids, (list, tuple)):
        hint = ""
        if isinstance(ids, (str, bytes)):
            hint = "; turn text into ids first, e.g. list(text.encode('utf-8'))"
        elif hasattr(ids, "tolist"):
            hint = "; convert it with ids.tolist()"
        raise TypeError(f"ids must be a list of ints, got {type(ids).__name__}{hint}")


def _merge(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    a, b = pair
    out = []
    i, n = 0, len(ids)
    while i < n:
        if i < n - 1 and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


# ----------------------------------------------------------------------------------------------
# Byte-pair encoding: the tokenizer


class BPETokenizer:
    """Byte-level BPE with a regex pre-split, like minbpe's ``RegexTokenizer``.

    Attributes:
        merges: ``dict[(int, int), int]``, pair -> new id, in the order they were learned
            (new ids 256, 257, ...).
        vocab: ``dict[int, bytes]``, id -> the bytes it stands for.
        pattern: the split pattern (a ``re`` regular expression).

    ``BPETokenizer()`` (no merges) is the plain byte tokenizer: 256 tokens, one per byte.
    """

    def __init__(
        self,
        merges: dict[tuple[int, int], int] | None = None,
        *,
        pattern: str = GPT2_SPLIT_PATTERN,
    ) -> None:
        merges = dict(merges or {})
        vocab = {i: bytes([i]) for i in range(256)}
        # Merges must come in order and only use ids that exist by then.
        for rank, (pair, new_id) in enumerate(merges.items()):
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise TypeError(f"merges must map (int, int) pairs to new ids, got key {pair!r}")
            a, b = pair
            if new_id != 256 + rank:
                raise ValueError(
                    f"merge #{rank} of {(a, b)} should create id {256 + rank}, "
                    f"not {new_id}: merges must be in the order they were learned"
                )
            if a not in vocab or b not in vocab:
                raise ValueError(f"merge #{rank} uses ids {(a, b)}, not all below {new_id}")
            vocab[new_id] = vocab[a] + vocab[b]
        self.merges: dict[tuple[int, int], int] = merges
        self.vocab: dict[int, bytes] = vocab
        self.pattern = pattern
        self._split = re.compile(pattern)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # -- training ------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        *,
        verbose: bool = False,
        pattern: str = GPT2_SPLIT_PATTERN,
    ) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text`` and return the trained tokenizer.

        Each step merges the most frequent adjacent pair, ties going to the smallest pair
        ``(a, b)`` so that training is deterministic. Training stops early, with a warning,
        when no pair is left to merge (a short text).

        A classmethod, like :meth:`CharTokenizer.train`: write
        ``tok = BPETokenizer.train(text, 512)``; unlike minbpe's ``tok.train(...)`` it returns a
        new tokenizer and leaves the one it is called on unchanged.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
        if vocab_size < 256:
            raise ValueError(
                f"vocab_size must be at least 256 (the byte values of the base vocabulary), "
                f"got {vocab_size}"
            )

        # Words repeat a lot: train on the unique chunks, each weighted by its count, instead
        # of on the whole text. This is what makes training fast.
        chunk_counts = Counter(re.findall(pattern, text))
        words = [list(_utf8(chunk)) for chunk in chunk_counts]
        freqs = list(chunk_counts.values())

        # pair -> weighted count, and pair -> the words it (maybe) occurs in.
        counts: dict[tuple[int, int], int] = {}
        where: dict[tuple[int, int], set[int]] = {}
        for w, (word, f) in enumerate(zip(words, freqs)):
            for pair in zip(word, word[1:]):
                counts[pair] = counts.get(pair, 0) + f
                where.setdefault(pair, set()).add(w)

        merges: dict[tuple[int, int], int] = {}
        vocab = {i: bytes([i]) for i in range(256)}  # only for the verbose printout
        for new_id in range(256, vocab_size):
            if not counts:
                warnings.warn(
                    f"BPE training stopped at vocab_size={new_id}: no pairs left to merge "
                    f"(asked for {vocab_size}); train on more text for a larger vocabulary",
                    stacklevel=2,
                )
                break
            best = max(counts.values())
            pair = min(p for p, c in counts.items() if c == best)
            merges[pair] = new_id
            # Only the words that contain the pair change; update the counts of just those.
            for w in sorted(where.pop(pair)):
                word = words[w]
                merged = _merge(word, pair, new_id)
                if len(merged) == len(word):  # stale entry: an earlier merge removed the pair
                    continue
                f = freqs[w]
                for p in zip(word, word[1:]):
                    counts[p] -= f
                    if counts[p] == 0:
                        del counts[p]
                for p in zip(merged, merged[1:]):
                    counts[p] = counts.get(p, 0) + f
                    where.setdefault(p, set()).add(w)
                words[w] = merged
            if verbose:
                vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
                print(
                    f"merge {new_id - 255}/{vocab_size - 256}: {pair} -> {new_id} "
                    f"{vocab[new_id]!r} ({best} occurrences)"
                )
        return cls(merges, pattern=pattern)

    # -- encoding and decoding -----------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """``str`` -> ``list[int]``: split into chunks, then apply merges within each chunk."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids: list[int] = []
        cache: dict[str, list[int]] = {}  # a text repeats its words: encode each chunk once
        for chunk in self._split.findall(text):
            if chunk not in cache:
                cache[chunk] = self._encode_chunk(_utf8(chunk))
            ids.extend(cache[chunk])
        return ids

    def _encode_chunk(self, data: bytes) -> list[int]:
        ids = list(data)
        while len(ids) >= 2:
            # Apply merges in the order they were learned: the pair with the lowest new id
            # first, exactly as training built them up.
            pair = min(zip(ids, ids[1:]), key=lambda p: self.merges.get(p, float("inf")))
            if pair not in self.merges:
                break  # nothing left to merge
            ids = _merge(ids, pair, self.merges[pair])
        return ids

    def decode(self, ids: Sequence[int] | Any) -> str:
        """``list[int]`` or 1-D integer tensor -> ``str``.

        Bytes that are not valid UTF-8 on their own (a lone token from the middle of a
        character) become U+FFFD rather than an error.
        """
        ids = _as_id_list(ids)
        try:
            data = b"".join(self.vocab[i] for i in ids)
        except KeyError as err:
            raise ValueError(
                f"id {err.args[0]} is out of range for a vocabulary of {self.vocab_size} "
                f"(valid ids are 0..{self.vocab_size - 1})"
            ) from None
        return data.decode("utf-8", errors="replace")

    # -- saving and loading --------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the split pattern and the merges (in order) as JSON to ``path``."""
        data = {
            "type": "BPETokenizer",
            "version": 1,
            "pattern": self.pattern,
            "merges": [[a, b, new_id] for (a, b), new_id in self.merges.items()],
        }
        Path(path).write_text(json.dumps(data) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """Read a tokenizer written by :meth:`save`."""
        data = _read_json(path, "BPETokenizer")
        merges = {(a, b): new_id for a, b, new_id in data["merges"]}
        return cls(merges, pattern=data["pattern"])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, BPETokenizer)
            and self.pattern == other.pattern
            and list(self.merges.items()) == list(other.merges.items())
        )

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


def _utf8(chunk: str) -> bytes:
    try:
        return chunk.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"the text contains {chunk[err.start : err.end]!r}, a lone surrogate that is not "
            "valid Unicode and has no UTF-8 bytes"
        ) from None


# ----------------------------------------------------------------------------------------------
# Statistics for plots


def token_stats(tokenizer: Any, text: str) -> dict[str, float]:
    """How much text one token carries, for comparing tokenizers.

    Returns a dict with ``vocab_size``, ``chars``, ``bytes`` (UTF-8), ``tokens``,
    ``chars_per_token`` and ``bytes_per_token``. Works with any tokenizer that has
    ``encode(str) -> list[int]`` and ``vocab_size``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text:
        raise ValueError("text is empty; token statistics need some text")
    n_tokens = len(tokenizer.encode(text))
    n_bytes = len(text.encode("utf-8", errors="surrogatepass"))
    return {
        "vocab_size": tokenizer.vocab_size,
        "chars": len(text),
        "bytes": n_bytes,
        "tokens": n_tokens,
        "chars_per_token": len(text) / n_tokens,
        "bytes_per_token": n_bytes / n_tokens,
    }
