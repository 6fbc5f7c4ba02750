"""Tests of course_utils.tokenizers: the character and byte-pair tokenizers."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time

import pytest
import torch

from course_utils.data import load_corpus
from course_utils.tokenizers import (
    GPT2_SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    get_pair_counts,
    merge_pair,
    token_stats,
)

TRICKY_TEXTS = [
    "",
    "a",
    "Hello, world!",
    "  leading and trailing spaces  ",
    "tabs\tand\nnew\r\nlines\n\n\n",
    "It's, we're, they'll, I'd, you've, I'm, don't",
    "snake_case __dunder__ x_1 3.14159 1,000,000",
    "café naïve résumé (precomposed) cafe\u0301 (combining accent)",
    "日本語のテキスト、中文文本, 한국어 텍스트",
    "Ελληνικά, русский, עברית, العربية",
    "emoji 😀🎉 and a family 👨\u200d👩\u200d👧 and flags 🇫🇷🇯🇵",
    "math ∑∫√∞ ≠ ≤ ½ ² ³ and symbols ©®™ §¶",
    "\x00\x01 control \x7f characters \ufeff BOM",
]


@pytest.fixture(scope="module")
def corpus() -> str:
    return load_corpus()


@pytest.fixture(scope="module")
def bpe(corpus) -> BPETokenizer:
    return BPETokenizer.train(corpus, 512)


def random_text(rng: random.Random, n: int) -> str:
    """Random text that mixes ASCII, whitespace, accents, CJK and emoji."""
    pools = [
        (32, 127),
        (0x80, 0x800),
        (0x3040, 0x30FF),
        (0x4E00, 0x9FFF),
        (0x1F300, 0x1FAFF),
    ]
    out = []
    for _ in range(n):
        if rng.random() < 0.2:
            out.append(rng.choice(" \n\t_'"))
        else:
            lo, hi = rng.choice(pools)
            out.append(chr(rng.randrange(lo, hi)))
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# CharTokenizer


def test_char_known_example():
    tok = CharTokenizer.train("hello")
    assert tok.vocab_size == 4
    assert tok.itos == {0: "e", 1: "h", 2: "l", 3: "o"}
    assert tok.stoi == {"e": 0, "h": 1, "l": 2, "o": 3}
    assert tok.encode("hello") == [1, 0, 2, 2, 3]
    assert tok.decode([1, 0, 2, 2, 3]) == "hello"
    assert tok.encode("") == [] and tok.decode([]) == ""


def test_char_constructor_sorts_and_deduplicates():
    assert CharTokenizer("cabbac") == CharTokenizer(["a", "b", "c"]) == CharTokenizer.train("abc")
    assert CharTokenizer("cba").itos == {0: "a", 1: "b", 2: "c"}


@pytest.mark.parametrize("text", [t for t in TRICKY_TEXTS if t])
def test_char_round_trip(text):
    tok = CharTokenizer.train(text)
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert tok.decode(ids) == text
    assert tok.decode(torch.tensor(ids)) == text


def test_char_corpus_round_trip(corpus):
    tok = CharTokenizer.train(corpus)
    assert tok.decode(tok.encode(corpus)) == corpus
    assert tok.vocab_size == len(set(corpus))


def test_char_unknown_character_says_which_and_what_to_do():
    tok = CharTokenizer.train("hello world")
    with pytest.raises(ValueError, match=r"'Z'.*position 6.*train the tokenizer on text"):
        tok.encode("hello Zorld")


def test_char_save_load_round_trip(tmp_path):
    text = "".join(TRICKY_TEXTS) + "\ud800"  # a lone surrogate too: JSON escapes it
    tok = CharTokenizer.train(text)
    path = tmp_path / "chars.json"
    tok.save(path)
    loaded = CharTokenizer.load(str(path))
    assert loaded == tok
    assert loaded.itos == tok.itos and loaded.stoi == tok.stoi
    assert loaded.decode(loaded.encode(text)) == text
    assert json.loads(path.read_text(encoding="utf-8"))["type"] == "CharTokenizer"


def test_char_bad_inputs():
    with pytest.raises(TypeError, match="str"):
        CharTokenizer.train(b"bytes")
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer.train("")
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer([])
    with pytest.raises(ValueError, match="single character"):
        CharTokenizer(["ab", "c"])
    with pytest.raises(TypeError, match="bytes"):
        CharTokenizer(b"abc")
    tok = CharTokenizer.train("abc")
    with pytest.raises(TypeError, match="str"):
        tok.encode(["a", "b"])
    with pytest.raises(ValueError, match=r"id 3 is out of range.*0\.\.2"):
        tok.decode([0, 3])
    with pytest.raises(TypeError, match="encode the text first"):
        tok.decode("abc")
    with pytest.raises(TypeError, match="ints"):
        tok.decode([0, 1.5])
    with pytest.raises(ValueError, match="1-D"):
        tok.decode(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        tok.decode(torch.zeros(2))


def test_char_load_rejects_other_files(tmp_path):
    path = tmp_path / "bpe.json"
    BPETokenizer().save(path)
    with pytest.raises(ValueError, match="CharTokenizer"):
        CharTokenizer.load(path)


# ----------------------------------------------------------------------------------------------
# get_pair_counts and merge_pair


def test_pair_counts_known_example():
    assert get_pair_counts([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert get_pair_counts([1, 1, 1]) == {(1, 1): 2}  # counting overlaps: two positions
    assert get_pair_counts([]) == {} and get_pair_counts([7]) == {}


def test_pair_counts_accumulate_in_place():
    counts = get_pair_counts([1, 2])
    same = get_pair_counts((1, 2, 3), counts)
    assert same is counts
    assert counts == {(1, 2): 2, (2, 3): 1}


def test_pair_counts_bad_inputs():
    with pytest.raises(TypeError, match=r"text\.encode"):
        get_pair_counts("hello")
    with pytest.raises(TypeError, match=r"tolist"):
        get_pair_counts(torch.tensor([1, 2]))


def test_merge_pair_known_examples():
    assert merge_pair([5, 6, 6, 7, 9, 1], (6, 7), 99) == [5, 6, 99, 9, 1]
    assert merge_pair([1, 2, 1, 2], (1, 2), 256) == [256, 256]
    assert merge_pair([], (1, 2), 256) == []
    assert merge_pair([1], (1, 2), 256) == [1]


def test_merge_pair_left_to_right_without_overlap():
    assert merge_pair([1, 1, 1], (1, 1), 9) == [9, 1]
    assert merge_pair([1, 1, 1, 1], (1, 1), 9) == [9, 9]
    assert merge_pair([2, 1, 1, 1, 2], (1, 1), 9) == [2, 9, 1, 2]


def test_merge_pair_leaves_its_input_alone():
    ids = [1, 2, 3]
    assert merge_pair(ids, (1, 2), 4) == [4, 3]
    assert ids == [1, 2, 3]


def test_merge_pair_bad_inputs():
    with pytest.raises(TypeError, match="pair"):
        merge_pair([1, 2], [1, 2], 3)
    with pytest.raises(TypeError, match="pair"):
        merge_pair([1, 2], (1, 2, 3), 3)
    with pytest.raises(TypeError, match="list of ints"):
        merge_pair("ab", (97, 98), 256)


# ----------------------------------------------------------------------------------------------
# BPETokenizer


def test_bpe_wikipedia_example():
    # https://en.wikipedia.org/wiki/Byte_pair_encoding: aaabdaaabac -> Z=aa, Y=ab, X=ZY.
    # The tie between (Z, a) and (a, b) at count 2 goes to the smaller pair, (a, b).
    tok = BPETokenizer.train("aaabdaaabac", 256 + 3)
    a, b = ord("a"), ord("b")
    assert list(tok.merges.items()) == [((a, a), 256), ((a, b), 257), ((256, 257), 258)]
    assert tok.vocab[258] == b"aaab"
    assert tok.encode("aaabdaaabac") == [258, ord("d"), 258, a, ord("c")]
    assert tok.vocab_size == 259


def test_bpe_untrained_is_utf8_bytes():
    tok = BPETokenizer()
    assert tok.vocab_size == 256
    text = "héllo 😀"
    assert tok.encode(text) == list(text.encode("utf-8"))
    assert tok.decode(list(text.encode("utf-8"))) == text


def test_bpe_encode_applies_merges_in_rank_order():
    # "bc" was learned first (id 256), so "abc" is a + bc, even though "ab" comes first
    # from the left and also is a merge.
    tok = BPETokenizer({(ord("b"), ord("c")): 256, (ord("a"), ord("b")): 257})
    assert tok.encode("abc") == [ord("a"), 256]
    assert tok.encode("abd") == [257, ord("d")]


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_bpe_round_trip_tricky_texts(bpe, text):
    ids = bpe.encode(text)
    assert all(isinstance(i, int) and 0 <= i < bpe.vocab_size for i in ids)
    assert bpe.decode(ids) == text
    assert bpe.decode(torch.tensor(ids, dtype=torch.long)) == text


def test_bpe_round_trip_random_texts(bpe):
    rng = random.Random(0)
    for _ in range(200):
        text = random_text(rng, rng.randrange(0, 60))
        assert bpe.decode(bpe.encode(text)) == text


def test_bpe_round_trip_corpus_and_compresses(bpe, corpus):
    ids = bpe.encode(corpus)
    assert bpe.decode(ids) == corpus
    assert len(ids) < len(corpus.encode("utf-8")) / 2  # 256 merges at least halve the bytes


def test_split_pattern_covers_every_character():
    rng = random.Random(1)
    for text in TRICKY_TEXTS + [random_text(rng, 80) for _ in range(300)]:
        assert "".join(re.findall(GPT2_SPLIT_PATTERN, text)) == text


def test_split_pattern_matches_gpt2_on_examples():
    # What GPT-2's own pattern (with the `regex` package) gives for these strings.
    assert re.findall(GPT2_SPLIT_PATTERN, "Hello world's   42 foo_bar!\n\n  end") == [
        "Hello", " world", "'s", "  ", " 42", " foo", "_", "bar", "!", "\n\n ", " end",
    ]  # fmt: skip


def test_bpe_merges_never_cross_chunk_boundaries(bpe):
    for i in range(256, bpe.vocab_size):
        try:
            piece = bpe.vocab[i].decode("utf-8")
        except UnicodeDecodeError:
            continue  # part of a multi-byte character: inside one chunk by construction
        assert len(re.findall(GPT2_SPLIT_PATTERN, piece)) == 1, piece


def reference_train(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    """Slow, obvious BPE training (recount everything each step) to check the fast one."""
    chunks = [list(c.encode("utf-8")) for c in re.findall(GPT2_SPLIT_PATTERN, text)]
    merges = {}
    for new_id in range(256, vocab_size):
        counts = {}
        for chunk in chunks:
            get_pair_counts(chunk, counts)
        if not counts:
            break
        best = max(counts.values())
        pair = min(p for p, c in counts.items() if c == best)
        merges[pair] = new_id
        chunks = [merge_pair(chunk, pair, new_id) for chunk in chunks]
    return merges


def test_bpe_training_matches_the_slow_reference(corpus):
    text = corpus[:20_000]
    fast = BPETokenizer.train(text, 300)
    assert list(fast.merges.items()) == list(reference_train(text, 300).items())


def test_bpe_training_is_deterministic_in_another_process(corpus, tmp_path):
    # Different hash seeds reorder sets and dicts of str: the merges must not change.
    text_file = tmp_path / "text.txt"
    text_file.write_text(corpus[:50_000], encoding="utf-8")
    code = (
        "import json, pathlib, sys; from course_utils.tokenizers import BPETokenizer; "
        "text = pathlib.Path(sys.argv[1]).read_text(encoding='utf-8'); "
        "print(json.dumps(list(BPETokenizer.train(text, 300).merges)))"
    )
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    out = subprocess.run(
        [sys.executable, "-c", code, str(text_file)],
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        check=True,
    )
    here = BPETokenizer.train(corpus[:50_000], 300)
    assert out.stdout.strip() == json.dumps([list(pair) for pair in here.merges])
    assert BPETokenizer.train(corpus[:50_000], 300) == here


def test_bpe_training_is_fast(corpus):
    start = time.perf_counter()
    tok = BPETokenizer.train(corpus, 512)
    elapsed = time.perf_counter() - start
    assert tok.vocab_size == 512
    assert elapsed < 10, f"training took {elapsed:.1f} s"


def test_bpe_vocab_is_built_from_merges(bpe):
    assert bpe.vocab_size == 512 == len(bpe.vocab)
    assert list(bpe.merges.values()) == list(range(256, 512))
    for (a, b), new_id in bpe.merges.items():
        assert a < new_id and b < new_id
        assert bpe.vocab[new_id] == bpe.vocab[a] + bpe.vocab[b]


def test_bpe_stops_early_with_a_warning():
    with pytest.warns(UserWarning, match="no pairs left"):
        tok = BPETokenizer.train("ab ab", 300)
    # Chunks "ab" and " ab": merge (a, b), then (" ", ab); then nothing is left to merge.
    assert list(tok.merges) == [(ord("a"), ord("b")), (ord(" "), 256)]
    assert tok.vocab_size == 258
    assert tok.decode(tok.encode("ab ab")) == "ab ab"


def test_bpe_verbose_prints_each_merge(capsys):
    BPETokenizer.train("aaabdaaabac", 258, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "(97, 97) -> 256" in lines[0] and "b'aa'" in lines[0]


def test_bpe_decode_invalid_utf8_gives_replacement_character():
    tok = BPETokenizer()
    euro = list("€".encode())  # three UTF-8 bytes
    assert tok.decode(euro[:2]) == "\ufffd"
    assert tok.decode(euro) == "€"


def test_bpe_save_load_round_trip(bpe, tmp_path, corpus):
    path = tmp_path / "bpe.json"
    bpe.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded == bpe
    assert list(loaded.merges.items()) == list(bpe.merges.items())
    assert loaded.vocab == bpe.vocab and loaded.pattern == bpe.pattern
    sample = corpus[:5000] + TRICKY_TEXTS[10]
    assert loaded.encode(sample) == bpe.encode(sample)


def test_bpe_bad_inputs():
    with pytest.raises(ValueError, match="at least 256"):
        BPETokenizer.train("hello", 255)
    with pytest.raises(TypeError, match="vocab_size must be an int"):
        BPETokenizer.train("hello", 300.0)
    with pytest.raises(TypeError, match="text must be a str"):
        BPETokenizer.train(b"hello", 300)
    tok = BPETokenizer()
    with pytest.raises(TypeError, match="text must be a str"):
        tok.encode([104, 105])
    with pytest.raises(ValueError, match=r"id 256 is out of range.*0\.\.255"):
        tok.decode([104, 256])
    with pytest.raises(ValueError, match="lone surrogate"):
        tok.encode("bad \ud800 text")
    with pytest.raises(ValueError, match="lone surrogate"):
        BPETokenizer.train("bad \ud800 text", 300)
    with pytest.raises(ValueError, match="should create id 256"):
        BPETokenizer({(97, 98): 300})
    with pytest.raises(ValueError, match="not all below"):
        BPETokenizer({(97, 300): 256})
    with pytest.raises(TypeError, match="pairs"):
        BPETokenizer({97: 256})


def test_bpe_load_rejects_other_files(tmp_path):
    path = tmp_path / "chars.json"
    CharTokenizer.train("abc").save(path)
    with pytest.raises(ValueError, match="BPETokenizer"):
        BPETokenizer.load(path)


# ----------------------------------------------------------------------------------------------
# token_stats


def test_token_stats(bpe, corpus):
    text = corpus[:10_000]
    chars = token_stats(CharTokenizer.train(text), text)
    assert chars["chars_per_token"] == 1.0 and chars["tokens"] == 10_000
    stats = token_stats(bpe, text)
    assert stats["vocab_size"] == 512
    assert stats["chars"] == 10_000 and stats["bytes"] == len(text.encode("utf-8"))
    assert stats["chars_per_token"] > 1.5
    assert stats["bytes_per_token"] == stats["bytes"] / stats["tokens"]
    with pytest.raises(ValueError, match="empty"):
        token_stats(bpe, "")
