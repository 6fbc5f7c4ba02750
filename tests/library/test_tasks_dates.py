"""Tests of course_utils.tasks.dates: formats, held-out splits, determinism, the vocabulary."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys

import pytest
import torch

from course_utils.tasks import dates

THURSDAY = datetime.date(2026, 11, 26)


@pytest.mark.parametrize(
    "name, text",
    [
        ("us_numeric", "11/26/2026"),
        ("us_numeric_short", "11/26/26"),
        ("eu_numeric", "26.11.2026"),
        ("en_day_month", "26 November 2026"),
        ("en_month_day", "November 26, 2026"),
        ("en_weekday", "Thursday, 26 November 2026"),
        ("en_ordinal", "the 26th of November 2026"),
        ("en_abbrev", "26 Nov. 2026"),
        ("fr_long", "26 novembre 2026"),
        ("fr_abbrev", "26 nov. 2026"),
        ("de_long", "26. November 2026"),
        ("en_weekday_abbrev", "Thursday, 26 Nov. 2026"),
        ("en_ordinal_abbrev", "the 26th of Nov. 2026"),
        ("en_weekday_month_day", "Thursday, November 26, 2026"),
    ],
)
def test_each_format_writes_the_documented_example(name, text):
    assert dates.render(THURSDAY, name) == text
    assert dates.FORMATS[name].example == text


def test_formats_resolve_day_month_order_by_separator_and_short_years_by_century():
    march_6 = datetime.date(1999, 3, 6)
    assert dates.render(march_6, "us_numeric") == "3/6/1999"  # slashes: month first
    assert dates.render(march_6, "eu_numeric") == "6.3.1999"  # dots: day first
    assert dates.render(march_6, "us_numeric_short") == "3/6/99"
    assert dates.render(datetime.date(2005, 1, 2), "us_numeric_short") == "1/2/05"
    for day, suffix in [(1, "st"), (2, "nd"), (3, "rd"), (4, "th"), (11, "th"), (12, "th"),
                        (13, "th"), (21, "st"), (22, "nd"), (23, "rd"), (31, "st")]:  # fmt: skip
        assert dates.render(datetime.date(2020, 1, day), "en_ordinal").startswith(
            f"the {day}{suffix} of"
        )
    assert dates.render(datetime.date(2020, 8, 1), "fr_long") == "1 août 2020"
    assert dates.render(datetime.date(2020, 3, 1), "de_long") == "1. März 2020"
    assert dates.render(datetime.date(2020, 5, 9), "en_abbrev") == "9 May 2020"  # no dot


def test_weekdays_are_the_real_ones():
    for example in dates.make_examples("train", 300) + dates.make_examples("test", 300):
        if "weekday" in example.format:
            weekday = example.source.split(",")[0]
            assert weekday == dates.WEEKDAYS_EN[example.date.weekday()]


def test_held_out_formats_and_years():
    assert set(dates.HELD_OUT_FORMATS) == {
        "en_weekday_abbrev",
        "en_ordinal_abbrev",
        "en_weekday_month_day",
    }
    assert len(dates.HELD_OUT_YEARS) == 10
    assert set(dates.HELD_OUT_YEARS) <= set(dates.YEARS)
    # Every digit still appears in every place of the training years: copying is learnable.
    for place in range(4):
        held = {str(y)[place] for y in dates.HELD_OUT_YEARS}
        assert held <= {str(y)[place] for y in dates.TRAIN_YEARS}


def test_training_never_sees_a_held_out_year_or_format():
    train = dates.make_examples("train", 5000)
    valid = dates.make_examples("valid", 1000)
    for example in train + valid:
        assert not example.held_out_year and not example.held_out_format
    assert {e.format for e in train} == set(dates.TRAIN_FORMATS)


def test_every_test_example_is_held_out_in_year_or_format():
    test = dates.make_examples("test", 2000)
    assert all(e.held_out_year or e.held_out_format for e in test)
    in_held_out_format = sum(e.held_out_format for e in test)
    assert in_held_out_format == 1000  # half, by construction
    assert {e.format for e in test} == set(dates.FORMATS)
    assert {e.date.year for e in test if not e.held_out_format} == set(dates.HELD_OUT_YEARS)


def test_targets_are_iso_and_sources_fit():
    for example in dates.make_examples("test", 500) + dates.make_examples("train", 500):
        assert example.target == example.date.isoformat()
        assert dates.render(example.date, example.format) == example.source
        assert len(example.source) <= dates.SOURCE_LEN
        assert 1950 <= example.date.year <= 2049


def test_the_same_arguments_give_the_same_examples():
    assert dates.make_examples("train", 50) == dates.make_examples("train", 50)
    assert dates.make_examples("train", 50) != dates.make_examples("train", 50, seed=1)
    assert dates.make_examples("train", 50)[:20] == dates.make_examples("train", 20)
    assert dates.make_examples("valid", 50) != dates.make_examples("train", 50)


def test_examples_are_identical_in_another_process():
    code = (
        "from course_utils.tasks import dates; "
        "print([e.source for e in dates.make_examples('test', 5, seed=3)])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()
    assert other == str([e.source for e in dates.make_examples("test", 5, seed=3)])


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="split must be one of"):
        dates.make_examples("training", 3)
    with pytest.raises(ValueError, match="non-negative int"):
        dates.make_examples("train", -1)
    with pytest.raises(KeyError, match="unknown date format"):
        dates.render(THURSDAY, "iso")
    with pytest.raises(TypeError, match="datetime.date"):
        dates.render("2026-11-26", "us_numeric")


def test_vocab_covers_every_format_and_has_special_tokens():
    vocab = dates.DateVocab()
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert vocab.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    for example in dates.make_examples("test", 1000) + dates.make_examples("train", 1000):
        for text in (example.source, example.target):
            ids = vocab.encode(text)
            assert vocab.unk_id not in ids
            assert vocab.decode(ids) == text
    assert vocab.encode("ab", bos=True, eos=True) == [1, vocab.stoi["a"], vocab.stoi["b"], 2]
    assert vocab.encode("ñ") == [vocab.unk_id]
    assert vocab.decode([1, vocab.stoi["7"], 2, vocab.stoi["8"]]) == "7"  # stops at eos
    assert vocab.decode(torch.tensor([0, vocab.stoi["x"], 0])) == "x"
    with pytest.raises(ValueError, match="not in a vocabulary"):
        vocab.decode([999])


def test_batch_pads_right_or_left_to_a_width():
    vocab = dates.DateVocab()
    ids, pad = vocab.batch(["12", "3"])
    assert ids.tolist() == [[vocab.stoi["1"], vocab.stoi["2"]], [vocab.stoi["3"], 0]]
    assert pad.tolist() == [[False, False], [False, True]]
    ids, pad = vocab.batch(["12", "3"], width=4, pad_side="left")
    assert ids.tolist() == [[0, 0, vocab.stoi["1"], vocab.stoi["2"]], [0, 0, 0, vocab.stoi["3"]]]
    assert pad.tolist() == [[True, True, False, False], [True, True, True, False]]
    assert ids.dtype == torch.long and pad.dtype == torch.bool
    ids, _ = vocab.batch(["5"], bos=True, eos=True)
    assert ids.tolist() == [[1, vocab.stoi["5"], 2]]
    with pytest.raises(ValueError, match="does not fit"):
        vocab.batch(["12345"], width=3)
    with pytest.raises(ValueError, match="pad_side"):
        vocab.batch(["1"], pad_side="middle")
    with pytest.raises(ValueError, match="non-empty list"):
        vocab.batch("12")


def test_exact_match_and_accuracy_by_format():
    examples = dates.make_examples("test", 40)
    predictions = [e.target for e in examples]
    predictions[0] = "1900-01-01"
    assert dates.exact_match(predictions, [e.target for e in examples]) == 39 / 40
    by_format = dates.accuracy_by_format(examples, predictions)
    assert sum(n for _, n in by_format.values()) == 40
    assert by_format[examples[0].format][0] < 1
    assert list(by_format) == [f for f in dates.FORMATS if f in by_format]
    with pytest.raises(ValueError, match="predictions for"):
        dates.exact_match(["a"], ["a", "b"])
