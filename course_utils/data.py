"""Data for the labs: the course corpus, train/validation splits and random training batches.

No lab needs the network. The default corpus is English prose that ships with every CPython
(the language reference in :mod:`pydoc_data.topics`); larger corpora are opt-in, downloaded
once, checked against a pinned SHA-256 and cached, and fall back to the default with one clear
warning when they cannot be had::

    text = load_corpus()                    # ~465 KB, offline, identical on every run
    text = load_corpus("shakespeare")       # 1.1 MB if online, else the default + a warning
    train, val = train_val_split(text, 0.1)
    x, y = get_batch(ids, batch_size=32, block_size=64, generator=g)   # (32, 64) each
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import torch

__all__ = [
    "CORPORA",
    "DEFAULT_CORPUS",
    "CorpusFallbackWarning",
    "CorpusSource",
    "load_corpus",
    "train_val_split",
    "get_batch",
]

# ----------------------------------------------------------------------------------------------
# Corpora


@dataclass(frozen=True)
class CorpusSource:
    """Where a corpus comes from.

    ``url`` is ``None`` for corpora built from the Python installation itself; downloadable
    ones pin the ``sha256`` of the exact bytes at ``url`` and their ``size`` in bytes.
    """

    url: str | None
    sha256: str | None
    size: int | None
    description: str


DEFAULT_CORPUS = "pydoc"

# Later labs may add entries; a downloadable corpus needs all of url, sha256 and size.
CORPORA: dict[str, CorpusSource] = {
    "pydoc": CorpusSource(
        url=None,
        sha256=None,  # depends on the Python minor version; stable within one
        size=None,
        description="Python's language reference (pydoc_data.topics), ~465 KB, always offline",
    ),
    "shakespeare": CorpusSource(
        url=(
            "https://raw.githubusercontent.com/karpathy/char-rnn/master/"
            "data/tinyshakespeare/input.txt"
        ),
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        size=1_115_394,
        description="Karpathy's Tiny Shakespeare, 1.1 MB, downloaded once and cached",
    ),
}

CACHE_ENV_VAR = "COURSE_CACHE_DIR"
OFFLINE_ENV_VAR = "COURSE_OFFLINE"
DEFAULT_CACHE_DIR = Path("~/.cache/llm-architectures-course")
DOWNLOAD_TIMEOUT_S = 10.0


class CorpusFallbackWarning(UserWarning):
    """An opt-in corpus could not be loaded, so the default corpus was returned instead."""


def load_corpus(
    name: str = DEFAULT_CORPUS,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
) -> str:
    """Return the text of the corpus called ``name``.

    Args:
        name: a key of :data:`CORPORA`; ``"pydoc"`` (the default) never needs the network.
        cache_dir: where downloaded corpora live; else ``$COURSE_CACHE_DIR``, else
            ``~/.cache/llm-architectures-course``.
        offline: ``True`` never touches the network (a verified cached copy is still used);
            ``None`` means ``True`` when ``$COURSE_OFFLINE`` is ``1``/``true``/``yes``.

    Returns:
        The text as a ``str`` with ``"\\n"`` line endings. A downloadable corpus that cannot be
        had (offline, download error, checksum mismatch) gives the default corpus and one
        :class:`CorpusFallbackWarning` saying why.
    """
    if not isinstance(name, str):
        raise TypeError(f"corpus name must be a str, got {type(name).__name__}")
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; expected one of: {', '.join(sorted(CORPORA))}")
    if name == DEFAULT_CORPUS:
        return _pydoc_corpus()
    if offline is None:
        offline = os.environ.get(OFFLINE_ENV_VAR, "").strip().lower() in ("1", "true", "yes")

    source = CORPORA[name]
    if source.url is None or source.sha256 is None:
        raise ValueError(f"corpus {name!r} needs a url and a sha256 in CORPORA to be downloaded")
    path = _cache_dir(cache_dir) / f"{name}.txt"

    problems = []
    # A cached copy is re-verified every time: a truncated or edited file must not slip through.
    if path.is_file():
        digest = _sha256_of_file(path)
        if digest == source.sha256:
            return _normalise(path.read_bytes().decode("utf-8"))
        path.unlink(missing_ok=True)
        problems.append(
            f"the cached copy {path} failed its SHA-256 check (got {digest}) and was deleted"
        )

    if offline:
        problems.append(f"it is not cached in {path.parent} and offline mode is on")
    else:
        try:
            _download(source.url, path, source.sha256)
            return _normalise(path.read_bytes().decode("utf-8"))
        except _ChecksumMismatch as err:
            problems.append(str(err))
        except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, disk errors
            problems.append(f"downloading {source.url} failed ({err})")

    # One message, whatever went wrong, so notebooks stay readable.
    warnings.warn(
        f"Could not load corpus {name!r}: {'; '.join(problems)}. "
        f"Falling back to the default {DEFAULT_CORPUS!r} corpus (works offline).",
        CorpusFallbackWarning,
        stacklevel=2,
    )
    return _pydoc_corpus()


@lru_cache(maxsize=1)
def _pydoc_corpus() -> str:
    from pydoc_data.topics import topics

    # Sorted keys and normalised line endings: the same bytes on every run and platform
    # for a given Python minor version (dict order and \r\n would otherwise leak in).
    parts = (_normalise(topics[key]).strip("\n") for key in sorted(topics))
    return "\n\n".join(parts) + "\n"


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV_VAR) or DEFAULT_CACHE_DIR
    return Path(cache_dir).expanduser()


class _ChecksumMismatch(Exception):
    pass


def _sha256_of_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, path: Path, sha256: str) -> None:
    """Download ``url`` to ``path`` if its bytes hash to ``sha256``; leave nothing otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary file in the same folder, then rename: a reader never sees half a file.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    h.update(chunk)
                    out.write(chunk)
        digest = h.hexdigest()
        if digest != sha256:
            raise _ChecksumMismatch(
                f"the download from {url} failed its SHA-256 check "
                f"(expected {sha256}, got {digest}) and was deleted"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------
# Splits and batches

_Seq = TypeVar("_Seq", str, list, tuple, torch.Tensor)


def train_val_split(data: _Seq, val_fraction: float = 0.1) -> tuple[_Seq, _Seq]:
    """Split ``data`` into ``(train, val)``, the last ``val_fraction`` of it being ``val``.

    No shuffling: language data is sequential, and a held-out *stretch* of text is what
    measures generalisation. Works for a ``str``, ``list``, ``tuple`` or 1-D ``torch.Tensor``
    of length N; ``val`` has ``round(N * val_fraction)`` items and both parts are non-empty.
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)):
        raise TypeError(f"val_fraction must be a float, got {type(val_fraction).__name__}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    if isinstance(data, torch.Tensor):
        if data.dim() != 1:
            raise ValueError(f"expected a 1-D tensor, got shape {tuple(data.shape)}")
    elif not isinstance(data, (str, list, tuple)):
        raise TypeError(f"expected a str, list, tuple or 1-D tensor, got {type(data).__name__}")
    n = len(data)
    n_val = round(n * val_fraction)
    n_train = n - n_val
    if n_train == 0 or n_val == 0:
        raise ValueError(
            f"splitting {n} items with val_fraction={val_fraction} leaves {n_train} for training "
            f"and {n_val} for validation; both must be non-empty (use more data or another "
            "fraction)"
        )
    return data[:n_train], data[n_train:]


def get_batch(
    data: torch.Tensor,
    batch_size: int,
    block_size: int,
    *,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``batch_size`` random windows of ``block_size`` tokens from ``data``.

    Args:
        data: 1-D integer tensor of token ids, length N >= block_size + 1.
        batch_size: B, the number of windows.
        block_size: T, the length of each window.
        generator: a ``torch.Generator`` for reproducible batches (else the global RNG).
        device: where to put the batch (default: where ``data`` is).

    Returns:
        ``(x, y)``, two long tensors of shape (B, T) where ``y[b, t] == x[b, t + 1]``
        inside the window: ``y`` is the next token after each position of ``x``.
    """
    if not isinstance(data, torch.Tensor):
        raise TypeError(
            f"data must be a 1-D torch.Tensor of token ids, got {type(data).__name__}; "
            "try torch.tensor(ids, dtype=torch.long)"
        )
    if data.dim() != 1:
        raise ValueError(f"data must be 1-D, got shape {tuple(data.shape)}")
    if data.dtype.is_floating_point or data.dtype.is_complex or data.dtype == torch.bool:
        raise TypeError(f"data must hold integer token ids, got dtype {data.dtype}")
    for arg, value in (("batch_size", batch_size), ("block_size", block_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    if len(data) < block_size + 1:
        raise ValueError(
            f"data has {len(data)} tokens but a window needs block_size + 1 = {block_size + 1} "
            "(inputs plus the next token); use a smaller block_size or more data"
        )
    # Start positions 0 .. N-T-1, so that the shifted target window still fits.
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = starts[:, None] + torch.arange(block_size)  # (B, T) indices into data
    offsets = offsets.to(data.device)
    x = data[offsets].long()
    y = data[offsets + 1].long()
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y


# ----------------------------------------------------------------------------------------------
# Task generators: later labs add the deterministic sentiment (lab 04) and date-translation
# (lab 06) data sets here.
