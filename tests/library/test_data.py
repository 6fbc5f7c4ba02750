"""Tests of course_utils.data: corpus loading (never on the real network), splits, batches."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
import urllib.error
import urllib.request
import warnings

import pytest
import torch

from course_utils import data
from course_utils.data import (
    CORPORA,
    CorpusFallbackWarning,
    get_batch,
    load_corpus,
    train_val_split,
)

FAKE_TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
FAKE_BYTES = FAKE_TEXT.encode("utf-8")


# ----------------------------------------------------------------------------------------------
# The default corpus


def test_default_corpus_is_pydoc_prose():
    text = load_corpus()
    assert isinstance(text, str)
    assert len(text) > 400_000
    assert text == load_corpus("pydoc")
    assert "\r" not in text
    assert text.endswith("\n") and not text.endswith("\n\n")
    # Real English prose from the language reference.
    assert " the " in text and "statement" in text


def test_default_corpus_is_built_the_documented_way():
    from pydoc_data.topics import topics

    expected = "\n\n".join(topics[k].replace("\r\n", "\n").strip("\n") for k in sorted(topics))
    assert load_corpus() == expected + "\n"


def test_default_corpus_is_identical_in_another_process():
    # Another hash seed changes the order of sets and of dicts built from them: the corpus
    # must not care. One subprocess only: it spends most of its time importing torch.
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    code = (
        "import hashlib; from course_utils.data import load_corpus; "
        "print(hashlib.sha256(load_corpus().encode('utf-8')).hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == hashlib.sha256(load_corpus().encode("utf-8")).hexdigest()


def test_unknown_corpus_lists_valid_names():
    with pytest.raises(ValueError, match="pydoc.*shakespeare"):
        load_corpus("wikipedia")
    with pytest.raises(TypeError, match="str"):
        load_corpus(3)


def test_registry_pins_tiny_shakespeare():
    source = CORPORA["shakespeare"]
    assert source.url.endswith("/tinyshakespeare/input.txt")
    assert source.size == 1_115_394
    assert len(source.sha256) == 64 and int(source.sha256, 16) >= 0
    assert source.description


# ----------------------------------------------------------------------------------------------
# The download path, with urllib.request.urlopen replaced


class FakeUrlopen:
    """Stands in for urllib.request.urlopen: returns ``payload`` or raises ``error``."""

    def __init__(self, payload: bytes = FAKE_BYTES, error: Exception | None = None):
        self.payload, self.error, self.calls = payload, error, []

    def __call__(self, url, timeout=None):
        self.calls.append((url, timeout))
        if self.error is not None:
            raise self.error
        return io.BytesIO(self.payload)


@pytest.fixture
def fake_net(monkeypatch):
    """Install a FakeUrlopen; the real network is never reached from these tests."""

    def install(**kwargs) -> FakeUrlopen:
        fake = FakeUrlopen(**kwargs)
        monkeypatch.setattr(urllib.request, "urlopen", fake)
        return fake

    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("COURSE_CACHE_DIR", raising=False)
    return install


@pytest.fixture
def fake_shakespeare(monkeypatch):
    """Pin the registry entry to the fake bytes, as if they were the real file."""
    digest = hashlib.sha256(FAKE_BYTES).hexdigest()
    entry = dataclasses.replace(CORPORA["shakespeare"], sha256=digest, size=len(FAKE_BYTES))
    monkeypatch.setitem(CORPORA, "shakespeare", entry)
    return entry


def _load_expecting_fallback(**kwargs) -> tuple[str, str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = load_corpus("shakespeare", **kwargs)
    fallbacks = [w for w in caught if issubclass(w.category, CorpusFallbackWarning)]
    assert len(fallbacks) == 1, [str(w.message) for w in caught]  # exactly one message
    assert text == load_corpus("pydoc")
    message = str(fallbacks[0].message)
    assert "falling back" in message.lower() and "pydoc" in message
    return text, message


@pytest.mark.parametrize(
    "error",
    [
        urllib.error.URLError("[Errno -3] Temporary failure in name resolution"),
        TimeoutError("timed out"),
        ConnectionResetError("reset by peer"),
    ],
)
def test_offline_falls_back_with_one_warning(fake_net, tmp_path, error):
    fake = fake_net(error=error)
    _, message = _load_expecting_fallback(cache_dir=tmp_path)
    assert "download" in message
    assert len(fake.calls) == 1
    url, timeout = fake.calls[0]
    assert url == CORPORA["shakespeare"].url
    assert timeout is not None and timeout <= 10  # a short timeout: never hang a notebook
    assert list(tmp_path.iterdir()) == []  # no half-written file left behind


def test_wrong_checksum_falls_back_and_removes_the_file(fake_net, tmp_path):
    fake = fake_net(payload=b"<html>404: Not Found</html>")
    _, message = _load_expecting_fallback(cache_dir=tmp_path)
    assert "SHA-256" in message and "deleted" in message
    assert len(fake.calls) == 1
    assert list(tmp_path.iterdir()) == []


def test_correct_bytes_are_cached_then_read_from_cache(fake_net, fake_shakespeare, tmp_path):
    fake = fake_net()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # success must be silent
        assert load_corpus("shakespeare", cache_dir=tmp_path) == FAKE_TEXT
        assert (tmp_path / "shakespeare.txt").read_bytes() == FAKE_BYTES
        assert [p.name for p in tmp_path.iterdir()] == ["shakespeare.txt"]
        # Second call: from the cache, no second download even if the network is gone.
        fake.error = urllib.error.URLError("offline")
        assert load_corpus("shakespeare", cache_dir=tmp_path) == FAKE_TEXT
        assert load_corpus("shakespeare", cache_dir=tmp_path, offline=True) == FAKE_TEXT
    assert len(fake.calls) == 1


def test_cache_dir_from_environment(fake_net, fake_shakespeare, tmp_path, monkeypatch):
    fake_net()
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    assert load_corpus("shakespeare") == FAKE_TEXT
    assert (tmp_path / "cache" / "shakespeare.txt").is_file()


def test_offline_flag_never_touches_the_network(fake_net, fake_shakespeare, tmp_path):
    fake = fake_net(error=AssertionError("the network was used"))
    _, message = _load_expecting_fallback(cache_dir=tmp_path, offline=True)
    assert "offline" in message
    assert fake.calls == []


def test_offline_environment_variable(fake_net, fake_shakespeare, tmp_path, monkeypatch):
    fake = fake_net(error=AssertionError("the network was used"))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    _load_expecting_fallback(cache_dir=tmp_path)
    assert fake.calls == []


def test_corrupted_cache_is_deleted_and_downloaded_again(fake_net, fake_shakespeare, tmp_path):
    fake = fake_net()
    load_corpus("shakespeare", cache_dir=tmp_path)
    cached = tmp_path / "shakespeare.txt"
    cached.write_bytes(FAKE_BYTES[:-5])  # truncated
    assert load_corpus("shakespeare", cache_dir=tmp_path) == FAKE_TEXT
    assert cached.read_bytes() == FAKE_BYTES
    assert len(fake.calls) == 2


def test_corrupted_cache_offline_falls_back(fake_net, fake_shakespeare, tmp_path):
    fake_net(error=AssertionError("the network was used"))
    cached = tmp_path / "shakespeare.txt"
    cached.write_bytes(b"edited by hand")
    _, message = _load_expecting_fallback(cache_dir=tmp_path, offline=True)
    assert "cached copy" in message and "offline" in message
    assert not cached.exists()


def test_downloaded_line_endings_are_normalised(fake_net, monkeypatch, tmp_path):
    payload = b"line one\r\nline two\r\n"
    entry = dataclasses.replace(CORPORA["shakespeare"], sha256=hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(CORPORA, "shakespeare", entry)
    fake_net(payload=payload)
    assert load_corpus("shakespeare", cache_dir=tmp_path) == "line one\nline two\n"


def test_download_timeout_is_short():
    assert 0 < data.DOWNLOAD_TIMEOUT_S <= 10


# ----------------------------------------------------------------------------------------------
# train_val_split


@pytest.mark.parametrize(
    "seq", ["abcdefghij", list(range(10)), tuple(range(10)), torch.arange(10)], ids=type
)
def test_split_at_the_end_without_shuffling(seq):
    train, val = train_val_split(seq, 0.2)
    assert type(train) is type(seq) and type(val) is type(seq)
    assert len(train) == 8 and len(val) == 2
    if isinstance(seq, torch.Tensor):
        assert torch.equal(torch.cat([train, val]), seq)
    else:
        assert train + val == seq


def test_split_default_fraction_on_the_corpus():
    text = load_corpus()
    train, val = train_val_split(text)
    assert train + val == text
    assert len(val) == round(0.1 * len(text))


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, 0.0, 1.0])
def test_split_rejects_fractions_outside_0_1(fraction):
    with pytest.raises(ValueError, match="between 0 and 1"):
        train_val_split("abcdefghij", fraction)


@pytest.mark.parametrize("fraction", ["0.1", None, True])
def test_split_rejects_non_numbers(fraction):
    with pytest.raises(TypeError, match="val_fraction"):
        train_val_split("abcdefghij", fraction)


def test_split_needs_both_parts_non_empty():
    with pytest.raises(ValueError, match="non-empty"):
        train_val_split("abc", 0.1)  # 0 validation items
    with pytest.raises(ValueError, match="non-empty"):
        train_val_split("", 0.5)
    assert train_val_split("ab", 0.5) == ("a", "b")


def test_split_rejects_other_types():
    with pytest.raises(TypeError, match="str, list, tuple or 1-D tensor"):
        train_val_split({"a": 1, "b": 2}, 0.5)
    with pytest.raises(ValueError, match="1-D"):
        train_val_split(torch.zeros(4, 4), 0.5)


# ----------------------------------------------------------------------------------------------
# get_batch


def test_batch_shapes_and_shift():
    ids = torch.arange(1000)
    g = torch.Generator().manual_seed(0)
    x, y = get_batch(ids, 4, 8, generator=g)
    assert x.shape == (4, 8) and y.shape == (4, 8)
    assert x.dtype == torch.long and y.dtype == torch.long
    assert torch.equal(y, x + 1)  # the next token: arange makes the shift visible
    # Each row is one contiguous window.
    assert torch.equal(x - x[:, :1], torch.arange(8).expand(4, 8))


def test_batch_is_reproducible_with_a_generator():
    ids = torch.randint(0, 50, (500,), generator=torch.Generator().manual_seed(1))
    a = get_batch(ids, 8, 16, generator=torch.Generator().manual_seed(123))
    b = get_batch(ids, 8, 16, generator=torch.Generator().manual_seed(123))
    c = get_batch(ids, 8, 16, generator=torch.Generator().manual_seed(124))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_batch_uses_every_start_position():
    # Off-by-one check: with N=10 and T=3, the windows start at 0..6, all of them.
    ids = torch.arange(10)
    x, y = get_batch(ids, 2000, 3, generator=torch.Generator().manual_seed(0))
    assert set(x[:, 0].tolist()) == set(range(7))
    assert y.max().item() == 9


def test_batch_from_data_of_exactly_block_size_plus_one():
    x, y = get_batch(torch.arange(5), 3, 4)
    assert torch.equal(x, torch.arange(4).expand(3, 4))
    assert torch.equal(y, torch.arange(1, 5).expand(3, 4))


def test_batch_device_and_int_dtypes():
    x, y = get_batch(torch.arange(20, dtype=torch.int32), 2, 5, device="cpu")
    assert x.dtype == torch.long and x.device.type == "cpu"


def test_batch_too_short_data_says_why():
    with pytest.raises(ValueError, match=r"4 tokens.*block_size \+ 1 = 5"):
        get_batch(torch.arange(4), 2, 4)


def test_batch_rejects_bad_inputs():
    with pytest.raises(TypeError, match="torch.tensor"):
        get_batch(list(range(100)), 2, 4)
    with pytest.raises(TypeError, match="integer"):
        get_batch(torch.rand(100), 2, 4)
    with pytest.raises(ValueError, match="1-D"):
        get_batch(torch.zeros(10, 10, dtype=torch.long), 2, 4)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            get_batch(torch.arange(100), bad, 4)
        with pytest.raises(ValueError, match="block_size must be a positive int"):
            get_batch(torch.arange(100), 2, bad)
