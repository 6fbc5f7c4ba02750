"""course_utils.tasks.prompts: tasks as text for a decoder, and answers read back."""

import pytest

from course_utils.tasks import dates, prompts, sentiment


def test_format_prompt():
    assert prompts.format_prompt("sentiment", "the plot was good") == "review: the plot was good =>"
    assert (
        prompts.format_prompt("dates", "26 novembre 2026", "2026-11-26")
        == "date: 26 novembre 2026 => 2026-11-26"
    )
    with pytest.raises(ValueError, match="task"):
        prompts.format_prompt("translate", "x")
    with pytest.raises(ValueError, match="one line"):
        prompts.format_prompt("sentiment", "a => b")


@pytest.mark.parametrize(
    "task, generated, expected",
    [
        ("sentiment", " positive\nreview", "positive"),
        ("sentiment", "negative", "negative"),
        ("sentiment", " positively", None),
        ("sentiment", " neg", None),
        ("sentiment", "", None),
        ("dates", " 2026-11-26\n", "2026-11-26"),
        ("dates", " 2026-11-2", None),
        ("dates", " 26/11/2026", None),
        ("dates", "x 2026-11-26", None),
    ],
)
def test_parse_answer(task, generated, expected):
    assert prompts.parse_answer(task, generated) == expected


def test_round_trip_and_mixture():
    reviews = sentiment.generate(20, seed=0)
    examples = dates.make_examples("train", 20, seed=0)
    mixture = prompts.make_mixture(reviews, examples, ["plain text", ""], seed=0)
    assert len(mixture) == 41
    assert mixture == prompts.make_mixture(reviews, examples, ["plain text", ""], seed=0)
    for review in reviews:
        line = prompts.format_prompt("sentiment", review.text, prompts.LABELS[review.label])
        assert line in mixture
        prompt = prompts.format_prompt("sentiment", review.text)
        assert (
            prompts.parse_answer("sentiment", line[len(prompt) :]) == prompts.LABELS[review.label]
        )
    for example in examples:
        line = prompts.format_prompt("dates", example.source, example.target)
        prompt = prompts.format_prompt("dates", example.source)
        assert prompts.parse_answer("dates", line[len(prompt) :]) == example.target


def test_char_vocab_covers_every_task():
    vocab = prompts.CharVocab()
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.mask_id) == (0, 1, 2, 3)
    for example in dates.make_examples("test", 200, seed=0):
        text = prompts.format_prompt("dates", example.source, example.target)
        assert vocab.decode(vocab.encode(text)) == text
    assert vocab.decode([vocab.bos_id, *vocab.encode("a\nb"), vocab.eos_id]) == "a\nb"
    assert vocab.decode(vocab.encode("ü")) == "?"
    with pytest.raises(TypeError):
        vocab.encode(3)


def test_word_vocab_makes_each_known_word_one_token_and_spells_the_rest():
    vocab = prompts.WordVocab([*sentiment.review_words(), "review", *prompts.LABELS])
    chars = prompts.CharVocab()
    assert vocab.itos[: len(chars)] == chars.itos  # the characters keep their ids
    text = "review: the plot was not good => negative"
    tokens = [vocab.itos[i] for i in vocab.encode(text)]
    assert tokens == ["review", ":", " the", " plot", " was", " not", " good", " ", "=", ">",
                      " negative"]  # fmt: skip
    # A word not in the list, digits, and a word glued to a known one are spelled out.
    assert [vocab.itos[i] for i in vocab.encode(" goodness 12")] == list(" goodness 12")
    # A known word after something other than one space: the word alone.
    assert [vocab.itos[i] for i in vocab.encode("(good")] == ["(", "good"]
    assert [vocab.itos[i] for i in vocab.encode("  good")] == [" ", " good"]


@pytest.mark.parametrize("seed", range(3))
def test_word_vocab_round_trips_every_task(seed):
    reviews = sentiment.generate(30, seed=seed)
    examples = dates.make_examples("train", 30, seed=seed)
    month_words = {w for e in examples for w in prompts.WORD.findall(e.source)}
    vocab = prompts.WordVocab([*sentiment.review_words(), *month_words])
    lines = prompts.make_mixture(reviews, examples, ["def f(x):\n    return x  # ok"], seed=seed)
    for line in lines:
        ids = vocab.encode(line)
        assert vocab.decode(ids) == line
        assert len(ids) <= len(line)
    assert vocab.decode(vocab.encode("prix 5€")) == "prix 5?"  # as CharVocab


def test_word_vocab_rejects_what_is_not_a_word():
    for bad in (["good day"], ["12"], [""], ["don't"]):
        with pytest.raises(ValueError, match="letters only"):
            prompts.WordVocab(bad)
    with pytest.raises(TypeError, match="list of words"):
        prompts.WordVocab("good")
    with pytest.raises(TypeError, match="str"):
        prompts.WordVocab(["good"]).encode(None)
