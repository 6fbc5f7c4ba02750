"""Tests of course_utils.tasks.sentiment: the review generator, its splits, the word tokenizer
and the bag-of-words baseline."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
import torch

from course_utils.tasks import sentiment
from course_utils.tasks.sentiment import (
    NEGATING_FRAMES,
    NEGATIVE,
    PHENOMENA,
    POSITIVE,
    BagOfWords,
    Review,
    WordTokenizer,
    accuracy_by_phenomenon,
    bag_of_words_counts,
    generate,
    held_out_pairs,
    make_splits,
    review_words,
    train_bag_of_words,
)


@pytest.fixture(scope="module")
def splits():
    return make_splits(n_train=3000, n_val=300, n_test=600, seed=0)


def _reference_label(text: str) -> int:
    """The sentiment of a review, read with rules written independently of the generator.

    A clause's sentiment is its adjective's, flipped once per negation ("not", "never",
    "hardly", and the frames "it is not true that", "i would not say that", "nobody could say
    that"); "but" hands the decision to the second clause, "and" joins clauses that agree.
    """
    positive, negative = set(POSITIVE), set(NEGATIVE)

    def clause(words: list[str]) -> int:
        adjectives = [w for w in words if w in positive or w in negative]
        assert len(adjectives) == 1, words
        sign = 1 if adjectives[0] in positive else -1
        flips = sum(w in ("not", "never", "hardly", "nobody") for w in words)
        return sign * (-1) ** flips

    words = text.split()
    for joiner in ("but", "and"):
        if joiner in words:
            i = words.index(joiner)
            first, second = clause(words[:i]), clause(words[i + 1 :])
            if joiner == "and":
                assert first == second, text
            else:
                assert first == -second, text
            return int(second > 0)
    return int(clause(words) > 0)


# ----------------------------------------------------------------------------------------------
# The generator


def test_labels_follow_the_rules_of_negation_and_contrast(splits):
    for review in splits.train + splits.val + splits.test:
        assert review.label == _reference_label(review.text), review


def test_phenomena_tags_match_the_text(splits):
    intensifiers = set(sentiment.INTENSIFIERS)
    for review in splits.train + splits.test:
        words = review.text.split()
        assert review.phenomena, review
        assert set(review.phenomena) <= set(PHENOMENA)
        assert review.has("contrast") == ("but" in words)
        assert review.has("intensifier") == any(w in intensifiers for w in words)
        assert review.has("plain") == (len(review.phenomena) == 1 and "plain" in review.phenomena)
        if not {"negation", "double_negation"} & set(review.phenomena):
            assert not any(w in ("not", "never", "hardly", "nobody") for w in words)


def test_examples_of_each_phenomenon_in_the_docstring_form():
    reviews = generate(3000, seed=3)
    by_tag = {p: [r.text for r in reviews if r.has(p)] for p in PHENOMENA}
    assert all(by_tag[p] for p in PHENOMENA), {p: len(v) for p, v in by_tag.items()}
    texts = [r.text for r in reviews]
    assert any(t.endswith("at all") for t in texts)
    assert any("never not" in t for t in texts)
    assert any(t.startswith(NEGATING_FRAMES) for t in texts)
    # A frame never opens the first of two clauses: its reach would be ambiguous.
    for t in texts:
        if " but " in t or " and " in t:
            first = t.split(" but ")[0].split(" and ")[0]
            assert not first.startswith(NEGATING_FRAMES), t


def test_labels_are_balanced_within_each_phenomenon(splits):
    for phenomenon in ("negation", "double_negation", "contrast", "intensifier"):
        labels = [r.label for r in splits.train if r.has(phenomenon)]
        assert len(labels) > 100
        assert 0.4 < sum(labels) / len(labels) < 0.6, phenomenon


def test_same_seed_same_reviews_other_seed_other_reviews():
    assert generate(50, seed=1) == generate(50, seed=1)
    assert generate(50, seed=1) != generate(50, seed=2)
    a, b = make_splits(200, 50, 50, seed=4), make_splits(200, 50, 50, seed=4)
    assert (a.train, a.val, a.test, a.held_out) == (b.train, b.val, b.test, b.held_out)
    assert make_splits(200, 50, 50, seed=5).held_out != a.held_out


def test_same_reviews_in_another_process():
    # Another hash seed changes the order of sets: the data must not depend on it.
    code = (
        "import hashlib; from course_utils.tasks.sentiment import make_splits; "
        "s = make_splits(500, 100, 100, seed=0); "
        "print(hashlib.sha256(repr([(r.text, r.label, r.phenomena) for r in "
        "s.train + s.val + s.test]).encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    s = make_splits(500, 100, 100, seed=0)
    here = repr([(r.text, r.label, r.phenomena) for r in s.train + s.val + s.test])
    assert out.stdout.strip() == hashlib.sha256(here.encode()).hexdigest()


def test_generate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n must be an int"):
        generate(-1)
    with pytest.raises(ValueError, match="seed"):
        generate(3, seed=1.5)
    with pytest.raises(ValueError, match="n_val"):
        make_splits(10, "5", 10)
    with pytest.raises(ValueError, match="fraction"):
        held_out_pairs(0, fraction=1.0)
    with pytest.raises(ValueError, match="unknown phenomenon"):
        Review("the plot was good", 1, ("plain",)).has("sarcasm")


# ----------------------------------------------------------------------------------------------
# The splits


def test_split_sizes(splits):
    assert (len(splits.train), len(splits.val), len(splits.test)) == (3000, 300, 600)
    assert "train=3000" in repr(splits)


def test_test_set_holds_only_unseen_combinations(splits):
    held = splits.held_out
    assert held
    for review in splits.test:
        assert any(pair in held for pair in review.pairs), review
    for review in splits.train + splits.val:
        assert not any(pair in held for pair in review.pairs), review
    seen_pairs = {pair for r in splits.train for pair in r.pairs}
    for review in splits.test:
        assert any(pair not in seen_pairs for pair in review.pairs)
    train_texts = {r.text for r in splits.train}
    assert not train_texts & {r.text for r in splits.val}
    assert not train_texts & {r.text for r in splits.test}


def test_every_word_of_the_test_set_is_seen_in_training(splits):
    train_words = {w for r in splits.train for w in r.text.split()}
    test_words = {w for r in splits.test for w in r.text.split()}
    assert test_words <= train_words, test_words - train_words


def test_held_out_pairs_leave_every_adjective_partners():
    held = held_out_pairs(0)
    for adjective in POSITIVE + NEGATIVE:
        aspects = [a for a in sentiment.ASPECTS if (a, adjective) not in held]
        negators = [n for n in sentiment.NEGATORS + ("never not",) if (n, adjective) not in held]
        assert 0 < len(aspects) < len(sentiment.ASPECTS)
        assert negators


def test_accuracy_by_phenomenon():
    reviews = [
        Review("a", 1, ("negation",)),
        Review("b", 0, ("negation", "contrast")),
        Review("c", 1, ("plain",)),
        Review("d", 0, ("plain",)),
    ]
    acc = accuracy_by_phenomenon(reviews, torch.tensor([1, 1, 1, 1]))
    assert acc == {"all": 0.5, "negation": 0.5, "contrast": 0.0, "plain": 0.5}
    with pytest.raises(ValueError, match="3 predictions for 4 reviews"):
        accuracy_by_phenomenon(reviews, [1, 1, 1])


# ----------------------------------------------------------------------------------------------
# The word tokenizer


def test_word_tokenizer_specials_and_review_words():
    tok = WordTokenizer.train(["the value is not None ."], always=review_words())
    assert tok.itos[:5] == list(WordTokenizer.SPECIALS)
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert tok.itos[5] in ("the", "value", "is", "not", "none", ".")
    for word in review_words():
        assert word in tok.stoi
    assert tok.encode("The plot was GOOD!") == [
        tok.stoi["the"],
        tok.stoi["plot"],
        tok.stoi["was"],
        tok.stoi["good"],
        tok.unk_id,
    ]
    assert tok.decode(tok.encode("the plot was not good")) == "the plot was not good"


def test_word_tokenizer_min_count_and_order():
    tok = WordTokenizer.train(["b b b a a c"], min_count=2)
    assert tok.itos[5:] == ["b", "a"]
    assert tok.encode("c") == [tok.unk_id]


def test_encode_batch_pads_and_marks_padding():
    tok = WordTokenizer.train(["the plot was good"], always=review_words())
    ids, pad = tok.encode_batch(["the plot was good", "good"])
    assert ids.shape == pad.shape == (2, 6)
    assert ids.dtype == torch.long and pad.dtype == torch.bool
    assert ids[1].tolist() == [tok.cls_id, tok.stoi["good"], tok.sep_id, 0, 0, 0]
    assert pad[1].tolist() == [False, False, False, True, True, True]
    assert not pad[0].any()
    short, _ = tok.encode_batch(["the plot was good"], max_len=4)
    assert short[0].tolist() == [tok.cls_id, tok.stoi["the"], tok.stoi["plot"], tok.sep_id]
    with pytest.raises(TypeError, match="list of texts"):
        tok.encode_batch("the plot")


def test_word_tokenizer_save_load(tmp_path):
    tok = WordTokenizer.train(["x y z y"], always=["good"])
    tok.save(tmp_path / "tok.json")
    assert WordTokenizer.load(tmp_path / "tok.json") == tok
    with pytest.raises(ValueError, match="special tokens"):
        WordTokenizer(["a", "b"])


# ----------------------------------------------------------------------------------------------
# The bag-of-words baseline


def test_bag_of_words_counts_ignores_order_and_specials():
    ids = torch.tensor([[2, 7, 8, 7, 3, 0], [2, 8, 7, 7, 3, 0]])
    counts = bag_of_words_counts(ids, 10)
    expected = torch.zeros(2, 10)
    expected[:, 7], expected[:, 8] = 2, 1
    torch.testing.assert_close(counts, expected)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        bag_of_words_counts(torch.tensor([1.0, 2.0]), 10)


def test_bag_of_words_is_logistic_regression_on_counts():
    model = BagOfWords(10)
    ids = torch.tensor([[2, 7, 8, 3]])
    counts = bag_of_words_counts(ids, 10)
    torch.testing.assert_close(model(ids), counts @ model.linear.weight.T + model.linear.bias)


def test_bag_of_words_learns_words_but_fails_on_negation(splits):
    tok = WordTokenizer.train([], always=review_words())
    ids, _ = tok.encode_batch([r.text for r in splits.train])
    model = train_bag_of_words(ids, [r.label for r in splits.train], tok.vocab_size, steps=200)
    test_ids, _ = tok.encode_batch([r.text for r in splits.test])
    acc = accuracy_by_phenomenon(splits.test, model.predict(test_ids))
    assert acc["plain"] > 0.95  # one adjective decides: counting words is enough
    assert acc["negation"] < 0.6  # "not good" is "not" + "good": counting is not enough
    again = train_bag_of_words(ids, [r.label for r in splits.train], tok.vocab_size, steps=200)
    torch.testing.assert_close(again.linear.weight, model.linear.weight)
    with pytest.raises(ValueError, match="labels must have shape"):
        train_bag_of_words(ids, [1, 0], tok.vocab_size)
