"""Tests of course_utils.tasks.memos: the private memos of lab 08, their duplicates, canaries."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from course_utils.tasks import memos
from course_utils.tasks.memos import (
    CANARY,
    CANARY_PREFIX,
    canary,
    make_memos,
    normalise,
    plant_canaries,
    random_codes,
    split_secret,
)


def test_memos_are_deterministic_and_seeded():
    assert make_memos(50, seed=3) == make_memos(50, seed=3)
    assert make_memos(50, seed=3) != make_memos(50, seed=4)


def test_memos_do_not_touch_the_global_random_state():
    import random

    random.seed(1)
    expected = random.random()
    random.seed(1)
    make_memos(30, seed=0)
    plant_canaries(["a\n"], {CANARY: 3}, seed=0)
    random_codes(5, seed=0)
    assert random.random() == expected


def test_memos_look_like_memos():
    docs = make_memos(120, seed=0)
    assert len(docs) == 120
    for doc in docs:
        assert isinstance(doc, str) and doc.endswith("\n")
        flat = normalise(doc)  # re-spaced copies may have capitals changed
        assert "from: " in flat and "subject: " in flat and memos.COMPANY.lower() in flat
        assert 150 < len(doc) < 700, len(doc)
        assert doc.isascii()


def test_memos_hold_exact_and_normalised_duplicates_at_the_rates_asked():
    docs = make_memos(200, seed=0, exact_duplicates=0.05, normalised_duplicates=0.1)
    exact_copies = len(docs) - len(set(docs))
    normalised_copies = len(docs) - len({normalise(d) for d in docs})
    assert exact_copies == 10
    assert normalised_copies == 30  # the exact copies plus 20 re-spaced ones
    # A normalised duplicate follows its original.
    seen: dict[str, int] = {}
    for i, doc in enumerate(docs):
        seen.setdefault(normalise(doc), i)
    originals = set(seen.values())
    for i, doc in enumerate(docs):
        if i not in originals:
            assert seen[normalise(doc)] < i


def test_no_duplicates_when_asked_for_none():
    docs = make_memos(80, seed=1, exact_duplicates=0, normalised_duplicates=0)
    assert len({normalise(d) for d in docs}) == 80


@pytest.mark.parametrize(
    "kwargs",
    [dict(n=0), dict(n=2.5), dict(exact_duplicates=1.0), dict(normalised_duplicates=-0.1),
     dict(exact_duplicates=0.6, normalised_duplicates=0.5)],
)  # fmt: skip
def test_make_memos_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        make_memos(**kwargs)


def test_make_memos_rejects_a_float_seed():
    with pytest.raises(TypeError, match="seed"):
        make_memos(10, seed=1.5)


def test_normalise():
    assert normalise("Hello,\n  World ") == "hello, world"
    assert normalise("") == ""
    assert normalise("a\tb\r\nC") == "a b c"
    with pytest.raises(TypeError, match="str"):
        normalise(b"bytes")


def test_plant_canaries_plants_each_the_number_of_times_asked():
    docs = make_memos(60, seed=0)
    secret_a, secret_b = random_codes(2, seed=9)
    canaries = {canary(secret_a): 16, canary(secret_b, "the safe code is "): 1}
    planted = plant_canaries(docs, canaries, seed=2)
    assert len(planted) == 60 + 17
    text = "".join(planted)
    assert text.count(canary(secret_a)) == 16
    assert text.count("the safe code is " + secret_b) == 1
    assert Counter(planted) - Counter(docs) == Counter(
        d for d in planted if secret_a in d or secret_b in d
    )
    assert docs == make_memos(60, seed=0)  # the input list is not changed


def test_canary_copies_are_exact_or_normalised_duplicates_and_keep_the_secret_intact():
    planted = plant_canaries(["x\n"], {CANARY: 40}, seed=0, normalised_copies=0.5)
    copies = [d for d in planted if CANARY in d]
    assert len(copies) == 40
    assert len({normalise(c) for c in copies}) == 1
    distinct = len(set(copies))
    assert 5 < distinct < 35  # some copies exact, some re-spaced
    first = copies[0]
    assert Counter(copies)[first] >= 1
    exact_only = plant_canaries(["x\n"], {CANARY: 10}, seed=0, normalised_copies=0)
    assert len({d for d in exact_only if CANARY in d}) == 1


def test_plant_canaries_is_deterministic():
    docs = make_memos(20, seed=0)
    assert plant_canaries(docs, {CANARY: 4}, seed=5) == plant_canaries(docs, {CANARY: 4}, seed=5)


@pytest.mark.parametrize(
    "canaries", [{CANARY: 0}, {CANARY: 2.0}, {"": 3}, {CANARY: True}]
)  # fmt: skip
def test_plant_canaries_rejects_bad_counts(canaries):
    with pytest.raises(ValueError):
        plant_canaries(["a\n"], canaries)


def test_plant_canaries_needs_a_mapping():
    with pytest.raises(TypeError, match="map"):
        plant_canaries(["a\n"], [CANARY])


def test_random_codes_have_the_format_are_distinct_and_exclude():
    codes = random_codes(500, seed=0, exclude=["493-27-1854"])
    assert len(set(codes)) == 500
    assert all(re.fullmatch(r"\d{3}-\d{2}-\d{4}", c) for c in codes)
    assert "493-27-1854" not in codes
    assert random_codes(5, seed=1) == random_codes(5, seed=1)
    assert random_codes(5, seed=1) != random_codes(5, seed=2)
    # Roughly uniform digits: each digit between 6 % and 14 % of all digits.
    digits = Counter("".join(codes).replace("-", ""))
    assert all(0.06 < digits[d] / 4500 < 0.14 for d in "0123456789")
    with pytest.raises(ValueError):
        random_codes(0)


def test_split_secret_and_canary():
    assert split_secret(CANARY) == (CANARY_PREFIX, "493-27-1854")
    assert split_secret("my pin is 123-45-6789", "my pin is ") == ("my pin is ", "123-45-6789")
    with pytest.raises(ValueError, match="start with"):
        split_secret("the code is 123-45-6789")
    with pytest.raises(ValueError, match="format"):
        canary("12-345-6789")
