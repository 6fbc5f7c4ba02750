"""The prefix-LM switch of DecoderModel (lab 07): bidirectional over a prefix, causal after.

About 1 s on CPU.
"""

from __future__ import annotations

import pytest
import torch

from course_utils.models import DecoderModel, EncoderModel, ModelConfig


def tiny(**kw) -> ModelConfig:
    base = dict(vocab_size=23, d_model=16, n_heads=2, n_layers=2, max_len=12)
    return ModelConfig(**{**base, **kw})


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DecoderModel(tiny()).eval()


def expected_mask(t: int, p: int) -> torch.Tensor:
    """By hand: query i may see key j if j <= i, or if both are inside the prefix."""
    return torch.tensor([[j <= i or (i < p and j < p) for j in range(t)] for i in range(t)])


@torch.no_grad()
@pytest.mark.parametrize("p", [0, 1, 5, 8])
def test_attention_weights_follow_the_prefix_mask(model, p):
    ids = torch.randint(0, 23, (2, 8))
    _, weights = model(ids, prefix_len=p, return_attention=True)
    allowed = expected_mask(8, p)
    for w in weights:  # (B, H, T, T) per layer
        assert (w[..., ~allowed] == 0).all(), "a position attends where the mask forbids"
        assert (w[..., allowed] > 0).all(), "a position ignores a key it may see"


@torch.no_grad()
def test_prefix_zero_is_the_causal_decoder_and_a_full_prefix_is_an_encoder(model):
    ids = torch.randint(0, 23, (2, 8))
    torch.testing.assert_close(model(ids, prefix_len=0), model(ids))
    torch.testing.assert_close(model(ids, prefix_len=1), model(ids))  # 1 token: nothing new
    # a prefix over the whole row is the encoder's bidirectional attention, same weights
    encoder = EncoderModel(tiny()).eval()
    encoder.load_state_dict(model.state_dict(), strict=False)
    logits = model.lm_head(encoder(ids))  # the encoder's forward ends in its final norm
    torch.testing.assert_close(model(ids, prefix_len=8), logits, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_prefix_sees_ahead_inside_and_the_rest_stays_causal(model):
    ids = torch.randint(3, 23, (1, 10))
    changed = ids.clone()
    changed[0, 3] = (ids[0, 3] - 3 + 1) % 20 + 3  # inside a prefix of 5
    a, b = model(ids, prefix_len=5), model(changed, prefix_len=5)
    assert not torch.allclose(a[:, :3], b[:, :3])  # earlier prefix positions see position 3
    changed = ids.clone()
    changed[0, 7] = (ids[0, 7] - 3 + 1) % 20 + 3  # after the prefix
    a, b = model(ids, prefix_len=5), model(changed, prefix_len=5)
    torch.testing.assert_close(a[:, :7], b[:, :7])  # nothing before it sees it


@torch.no_grad()
def test_one_prefix_per_row_and_the_kv_cache(model):
    ids = torch.randint(0, 23, (2, 9))
    both = model(ids, prefix_len=torch.tensor([2, 6]))
    torch.testing.assert_close(both[:1], model(ids[:1], prefix_len=2))
    torch.testing.assert_close(both[1:], model(ids[1:], prefix_len=6))
    cache = model.new_cache()  # the prefix whole, then one token at a time
    pieces = [model(ids[:, :6], prefix_len=6, kv_cache=cache)]
    pieces += [model(ids[:, t : t + 1], kv_cache=cache, prefix_len=6) for t in range(6, 9)]
    torch.testing.assert_close(torch.cat(pieces, 1), model(ids, prefix_len=6), atol=1e-5, rtol=1e-5)


def test_bad_prefixes_say_what_was_expected(model):
    ids = torch.randint(0, 23, (2, 6))
    with pytest.raises(ValueError, match="must be >= 0"):
        model(ids, prefix_len=-1)
    with pytest.raises(ValueError, match="an int or a \\(B,\\) int tensor"):
        model(ids, prefix_len=torch.tensor([1, 2, 3]))
    cache = model.new_cache()
    model(ids[:, :2], kv_cache=cache)
    with pytest.raises(ValueError, match="fed whole"):
        model(ids[:, 2:], kv_cache=cache, prefix_len=4)
