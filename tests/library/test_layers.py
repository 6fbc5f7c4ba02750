"""Tests for course_utils.layers: checked against PyTorch's own layers with copied weights.

Tolerance. Everything runs in float32 (machine epsilon 1.2e-7). Our layers and PyTorch's do
the same maths in a different order (separate q/k/v matmuls vs one packed in_proj, fused
kernels vs explicit softmax), so results differ by rounding only: a few 1e-7 after one
attention, up to ~1e-6 after a whole block (LayerNorm divides by a standard deviation that
can be below 1). atol=1e-5, rtol=1e-4 leaves ten times that headroom, while every real bug we
guard against (wrong scale, a mask read the wrong way round, heads split on the wrong axis,
a missing residual or a norm in the wrong place) moves outputs by 1e-2 or more.
All comparisons run in eval mode, so dropout is off.
"""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.layers import (
    Embeddings,
    FeedForward,
    MultiHeadAttention,
    TransformerBlock,
    causal_mask,
    combine_masks,
    count_parameters,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    sinusoidal_positions,
    split_heads,
)

ATOL, RTOL = 1e-5, 1e-4
B, C, H, F_FF = 3, 16, 4, 32


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=RTOL)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@contextlib.contextmanager
def torch_fastpath(enabled: bool):
    """Switch the fused eval-mode path of nn.MultiheadAttention / nn.Transformer*Layer."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def right_padding(lengths: list[int], t: int) -> torch.Tensor:
    """(B, t) key_padding_mask, True = padding, every row keeping at least one real token."""
    return torch.arange(t)[None, :] >= torch.tensor(lengths)[:, None]


# --------------------------------------------------------------------------------------------
# Multi-head attention vs nn.MultiheadAttention
# --------------------------------------------------------------------------------------------

MHA_CASES = ["self", "cross", "causal", "padding", "causal+padding", "cross+padding"]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("case", MHA_CASES)
def test_mha_matches_torch(case: str, fast: bool):
    torch_mha = nn.MultiheadAttention(C, H, batch_first=True).eval()
    ours = MultiHeadAttention.from_torch(torch_mha, fast=fast).eval()
    t_q = 6
    t_k = 4 if "cross" in case else t_q
    x = torch.randn(B, t_q, C)
    context = torch.randn(B, t_k, C) if "cross" in case else None
    kv = x if context is None else context
    causal = causal_mask(t_q) if "causal" in case else None
    # Right padding: with a causal mask, query 0 still sees key 0, so no row is fully masked
    # (nn.MultiheadAttention would give NaN there; our zeros are tested separately).
    kpm = right_padding([t_k, t_k - 2, 1], t_k) if "padding" in case else None

    # PyTorch's nn.MultiheadAttention reads a bool attn_mask as True = IGNORE: pass ~causal.
    expected, expected_w = torch_mha(
        x,
        kv,
        kv,
        key_padding_mask=kpm,
        need_weights=True,
        attn_mask=None if causal is None else ~causal,
    )
    out, w = ours(x, context, attn_mask=causal, key_padding_mask=kpm)
    assert w is None
    assert out.shape == (B, t_q, C)
    assert_close(out, expected)

    out_w, weights = ours(x, context, attn_mask=causal, key_padding_mask=kpm, need_weights=True)
    assert weights.shape == (B, H, t_q, t_k)
    assert_close(out_w, expected)
    assert_close(weights.mean(dim=1), expected_w)  # torch averages over heads by default


def test_mha_is_causal_flag_equals_causal_mask():
    mha = MultiHeadAttention(C, H).eval()
    x = torch.randn(B, 5, C)
    assert_close(mha(x, is_causal=True)[0], mha(x, attn_mask=causal_mask(5))[0])


def test_mha_without_bias_matches_torch():
    torch_mha = nn.MultiheadAttention(C, H, bias=False, batch_first=True).eval()
    ours = MultiHeadAttention.from_torch(torch_mha).eval()
    assert ours.q_proj.bias is None and ours.out_proj.bias is None
    x = torch.randn(B, 5, C)
    assert_close(ours(x)[0], torch_mha(x, x, x, need_weights=False)[0])


# --------------------------------------------------------------------------------------------
# Fast vs plain path, fully masked rows, causality
# --------------------------------------------------------------------------------------------


def masks_with_empty_rows(t_q: int, t_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random (B, 1, Tq, Tk) attn_mask whose query row 0 sees nothing, and a
    key_padding_mask whose last sequence is all padding."""
    attn_mask = torch.rand(B, 1, t_q, t_k) > 0.4
    attn_mask[:, :, 0, :] = False
    kpm = torch.zeros(B, t_k, dtype=torch.bool)
    kpm[-1] = True
    return attn_mask, kpm


def test_fast_and_plain_paths_agree_and_empty_rows_are_zero():
    fast = MultiHeadAttention(C, H, bias=False, fast=True).eval()
    plain = MultiHeadAttention(C, H, bias=False, fast=False).eval()
    plain.load_state_dict(fast.state_dict())
    x, context = torch.randn(B, 5, C), torch.randn(B, 7, C)
    attn_mask, kpm = masks_with_empty_rows(5, 7)
    for kwargs in [
        {},
        {"is_causal": True},
        {"attn_mask": attn_mask},
        {"key_padding_mask": kpm},
        {"attn_mask": attn_mask, "key_padding_mask": kpm},
    ]:
        ctx = None if kwargs.get("is_causal") else context
        y_fast, _ = fast(x, ctx, **kwargs)
        y_plain, _ = plain(x, ctx, **kwargs)
        assert not torch.isnan(y_fast).any() and not torch.isnan(y_plain).any()
        assert_close(y_fast, y_plain)
    # Without bias, a query that may attend nothing comes out as exact zeros in both paths.
    for mha in (fast, plain):
        y, _ = mha(x, context, attn_mask=attn_mask, key_padding_mask=kpm)
        assert torch.equal(y[:, 0], torch.zeros(B, C))  # row 0 masked by attn_mask
        assert torch.equal(y[-1], torch.zeros(5, C))  # last sequence is all padding


def test_empty_rows_give_zero_weights_and_finite_gradients():
    q, k, v = (torch.randn(B, H, 4, 8, requires_grad=True) for _ in range(3))
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[2] = False
    out, weights = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(out[:, :, 2], torch.zeros(B, H, 8))
    assert torch.equal(weights[:, :, 2], torch.zeros(B, H, 4))
    assert_close(weights.sum(-1)[:, :, [0, 1, 3]], torch.ones(B, H, 3))
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))

    for fast in (True, False):  # a fully padded sequence must not poison gradients either
        mha = MultiHeadAttention(C, H, fast=fast)
        x = torch.randn(2, 5, C)
        mha(x, key_padding_mask=torch.tensor([[False] * 5, [True] * 5]))[0].sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in mha.parameters())


def test_plain_attention_matches_torch_sdpa():
    q, k, v = torch.randn(B, H, 5, 8), torch.randn(B, H, 7, 8), torch.randn(B, H, 7, 6)
    mask = torch.rand(B, 1, 5, 7) > 0.5
    mask[..., 0] = True  # no empty rows: PyTorch's fused kernel may give NaN there
    out, weights = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    expected_w = torch.softmax(
        (q @ k.transpose(-2, -1) / math.sqrt(8)).masked_fill(~mask, -1e9), dim=-1
    )
    assert_close(weights, expected_w)
    # Square causal: our end-aligned mask and PyTorch's top-left one coincide.
    k5, v5 = k[..., :5, :], v[..., :5, :]
    out, _ = scaled_dot_product_attention(q, k5, v5, is_causal=True)
    assert_close(out, F.scaled_dot_product_attention(q, k5, v5, is_causal=True))


def test_causal_mask_values():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]).bool())
    # KV cache: 2 new queries after 3 cached keys; query i sees keys up to i + 3.
    expected = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]).bool()
    assert torch.equal(causal_mask(2, 5), expected)
    assert causal_mask(1, 4).all()  # one new token sees the whole cache and itself
    assert causal_mask(4).dtype == torch.bool


def test_causal_attention_hides_the_future_and_sees_the_diagonal():
    mha = MultiHeadAttention(C, H).eval()
    x = torch.randn(B, 6, C)
    y = mha(x, is_causal=True)[0]
    x2 = x.clone()
    x2[:, 3:] += torch.randn(B, 3, C)  # change the future of position 2
    y2 = mha(x2, is_causal=True)[0]
    assert_close(y2[:, :3], y[:, :3])
    assert not torch.allclose(y2[:, 3], y[:, 3])  # position 3 sees itself
    _, w = mha(x, is_causal=True, need_weights=True)
    assert torch.all(w.triu(diagonal=1) == 0) and torch.all(w.diagonal(dim1=-2, dim2=-1) > 0)


def test_kv_offset_causal_matches_full_sequence():
    """Attending from the last 2 positions to all 6 keys = the last 2 rows of full attention."""
    mha = MultiHeadAttention(C, H).eval()
    x = torch.randn(B, 6, C)
    full = mha(x, is_causal=True)[0]
    for fast in (True, False):
        mha.fast = fast
        assert_close(mha(x[:, -2:], x, is_causal=True)[0], full[:, -2:])


# --------------------------------------------------------------------------------------------
# Masks and heads
# --------------------------------------------------------------------------------------------


def test_padding_mask_accepts_three_forms():
    ids = torch.tensor([[5, 6, 7, 0], [8, 0, 0, 0]])
    key_padding = ids == 0  # True = padding (nn.MultiheadAttention's convention)
    expected = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]]).bool()[:, None, None, :]
    assert torch.equal(padding_mask(key_padding), expected)  # True = may attend
    assert torch.equal(padding_mask(ids, pad_id=0), expected)
    assert torch.equal(padding_mask(torch.tensor([3, 1]), max_len=4), expected)


def test_combine_masks():
    assert combine_masks(None, None) is None
    causal = causal_mask(3)
    assert combine_masks(None, causal) is causal
    pad = torch.tensor([[1, 1, 0]]).bool()[:, None, None, :]  # (1, 1, 1, 3)
    combined = combine_masks(causal, None, pad)
    assert combined.shape == (1, 1, 3, 3)
    assert torch.equal(combined[0, 0], torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 0]]).bool())


def test_split_merge_heads():
    x = torch.randn(B, 5, C)
    heads = split_heads(x, H)
    assert heads.shape == (B, H, 5, C // H)
    assert torch.equal(heads[:, 1], x[..., 4:8])  # head h owns channels h*D .. (h+1)*D - 1
    assert torch.equal(merge_heads(heads), x)


# --------------------------------------------------------------------------------------------
# The block vs nn.TransformerEncoderLayer / nn.TransformerDecoderLayer
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padded", [False, True], ids=["nopad", "pad"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [True, False], ids=["prenorm", "postnorm"])
def test_encoder_block_matches_torch(norm_first: bool, activation: str, padded: bool):
    layer = nn.TransformerEncoderLayer(
        C, H, F_FF, dropout=0.1, activation=activation, batch_first=True, norm_first=norm_first
    ).eval()
    block = TransformerBlock.from_torch(layer).eval()
    x = torch.randn(B, 6, C)
    kpm = right_padding([6, 4, 1], 6) if padded else None
    # PyTorch's eval-mode fast path may leave padded positions unspecified; switched off here,
    # so all positions can be compared (test_encoder_block_vs_torch_fastpath covers it on).
    with torch_fastpath(False):
        expected = layer(x, src_key_padding_mask=kpm)
    assert_close(block(x, key_padding_mask=kpm), expected)


def test_encoder_block_vs_torch_fastpath():
    """With PyTorch's fused path on (eval, no grad), only real positions are comparable: the
    fused kernel does not promise anything for padded queries (nn.TransformerEncoder even
    drops them into a nested tensor and returns zeros there)."""
    layer = nn.TransformerEncoderLayer(C, H, F_FF, batch_first=True).eval()
    block = TransformerBlock.from_torch(layer).eval()
    x, kpm = torch.randn(B, 6, C), right_padding([6, 4, 1], 6)
    with torch.no_grad(), torch_fastpath(True):
        expected, ours = layer(x, src_key_padding_mask=kpm), block(x, key_padding_mask=kpm)
    assert_close(ours[~kpm], expected[~kpm])


@pytest.mark.parametrize("norm_first", [True, False], ids=["prenorm", "postnorm"])
def test_gpt_block_matches_causal_torch_encoder_layer(norm_first: bool):
    layer = nn.TransformerEncoderLayer(
        C, H, F_FF, activation="gelu", batch_first=True, norm_first=norm_first
    ).eval()
    block = TransformerBlock.from_torch(layer).eval()
    x = torch.randn(B, 6, C)
    with torch_fastpath(False):
        expected = layer(x, src_mask=~causal_mask(6), is_causal=True)  # torch: True = ignore
    assert_close(block(x, is_causal=True), expected)


@pytest.mark.parametrize("tgt_padded", [False, True], ids=["tgt_nopad", "tgt_pad"])
@pytest.mark.parametrize("norm_first", [True, False], ids=["prenorm", "postnorm"])
def test_decoder_block_matches_torch(norm_first: bool, tgt_padded: bool):
    layer = nn.TransformerDecoderLayer(
        C, H, F_FF, dropout=0.1, batch_first=True, norm_first=norm_first
    ).eval()
    block = TransformerBlock.from_torch(layer).eval()
    assert block.cross_attention
    tgt, memory = torch.randn(B, 5, C), torch.randn(B, 7, C)
    memory_kpm = right_padding([7, 3, 1], 7)
    tgt_kpm = right_padding([5, 2, 4], 5) if tgt_padded else None
    with torch_fastpath(False):
        expected = layer(
            tgt,
            memory,
            tgt_mask=~causal_mask(5),
            tgt_is_causal=True,
            tgt_key_padding_mask=tgt_kpm,
            memory_key_padding_mask=memory_kpm,
        )
    ours = block(
        tgt,
        context=memory,
        is_causal=True,
        key_padding_mask=tgt_kpm,
        context_key_padding_mask=memory_kpm,
    )
    assert_close(ours, expected)


def test_dropout_only_in_training():
    block = TransformerBlock(C, H, F_FF, dropout=0.5)
    x = torch.randn(B, 5, C)
    block.eval()
    assert torch.equal(block(x), block(x))
    block.train()
    assert not torch.allclose(block(x), block.eval()(x))


def test_feed_forward_shapes_and_gelu_tanh():
    ff = FeedForward(C, F_FF, activation="gelu_tanh").eval()
    x = torch.randn(B, 5, C)
    expected = ff.fc2(F.gelu(ff.fc1(x), approximate="tanh"))
    assert_close(ff(x), expected)


# --------------------------------------------------------------------------------------------
# Positions, embeddings, parameter counts
# --------------------------------------------------------------------------------------------


def test_sinusoidal_positions_hand_values():
    pe = sinusoidal_positions(50, 4)
    assert pe.shape == (50, 4) and pe.dtype == torch.float32
    assert torch.equal(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))  # sin 0, cos 0
    # d_model=4: column pairs (0, 1) use angle pos / 10000^0 = pos, (2, 3) use pos / 100.
    hand = {
        (1, 0): math.sin(1),
        (1, 1): math.cos(1),
        (2, 2): math.sin(0.02),
        (3, 3): math.cos(0.03),
        (49, 0): math.sin(49),
        (49, 3): math.cos(0.49),
    }
    for (pos, i), value in hand.items():
        assert pe[pos, i].item() == pytest.approx(value, abs=1e-6)


def test_embeddings_learned_and_sinusoidal():
    ids = torch.tensor([[1, 2, 3], [4, 5, 0]])
    learned = Embeddings(10, 8, max_len=6, positions="learned").eval()
    expected = learned.tok_emb.weight[ids] + learned.pos_emb.weight[2:5]
    assert_close(learned(ids, start_pos=2), expected)

    sinus = Embeddings(10, 8, max_len=6, positions="sinusoidal").eval()
    assert_close(sinus(ids), sinus.tok_emb.weight[ids] + sinusoidal_positions(6, 8)[:3])
    assert list(sinus.state_dict()) == ["tok_emb.weight"]  # the table is not saved
    assert count_parameters(learned) - count_parameters(sinus) == 6 * 8


def test_count_parameters_matches_formula():
    c, f = C, F_FF
    attn = 4 * (c * c + c)  # q, k, v, out projections with bias
    ffn = c * f + f + f * c + c
    norm = 2 * c  # weight and bias
    assert count_parameters(TransformerBlock(c, H, f)) == attn + ffn + 2 * norm
    assert count_parameters(TransformerBlock(c, H, f, cross_attention=True)) == (
        2 * attn + ffn + 3 * norm
    )
    assert count_parameters(TransformerBlock(c, H, f, bias=False)) == 4 * c * c + 2 * c * f + 2 * c
    layer = nn.TransformerEncoderLayer(c, H, f)
    assert count_parameters(TransformerBlock.from_torch(layer)) == count_parameters(layer)

    block = TransformerBlock(c, H, f)
    block.self_attn.requires_grad_(False)
    assert count_parameters(block) == ffn + 2 * norm
    assert count_parameters(block, trainable_only=False) == attn + ffn + 2 * norm
    tied = nn.ModuleDict({"a": nn.Linear(4, 4, bias=False)})
    tied["b"] = tied["a"]
    assert count_parameters(tied) == 16  # shared weights count once


# --------------------------------------------------------------------------------------------
# Bad input: a ValueError that says what was expected
# --------------------------------------------------------------------------------------------

_mha = MultiHeadAttention(C, H)
_x = torch.randn(2, 5, C)

BAD_INPUTS = {
    "heads": (lambda: MultiHeadAttention(10, 3), "not divisible by n_heads=3"),
    "mask shape": (
        lambda: _mha(_x, attn_mask=torch.ones(5, 4, dtype=torch.bool)),
        r"shape \(5, 4\) does not broadcast to \(B, H, Tq, Tk\) = \(2, 4, 5, 5\)",
    ),
    "mask 3-D": (
        lambda: _mha(_x, attn_mask=torch.ones(2, 5, 5, dtype=torch.bool)),
        r"\(B, 1 or H, Tq, Tk\)",
    ),
    "mask float": (lambda: _mha(_x, attn_mask=torch.zeros(5, 5)), "must be a bool tensor"),
    "sdpa mask": (
        lambda: scaled_dot_product_attention(
            torch.randn(2, 3, 4),
            torch.randn(2, 6, 4),
            torch.randn(2, 6, 4),
            attn_mask=torch.ones(3, 5, dtype=torch.bool),
        ),
        r"\(\.\.\., Tq, Tk\) = \(2, 3, 6\)",
    ),
    "kpm shape": (
        lambda: _mha(_x, key_padding_mask=torch.zeros(2, 4, dtype=torch.bool)),
        r"\(B, Tk\) = \(2, 5\).*got \(2, 4\)",
    ),
    "width": (lambda: _mha(torch.randn(2, 5, 8)), r"\(B, T, C=16\), got \(2, 5, 8\)"),
    "context": (lambda: TransformerBlock(C, H, F_FF, cross_attention=True)(_x), "pass context"),
    "no cross": (lambda: TransformerBlock(C, H, F_FF)(_x, context=_x), "cross_attention=False"),
    "activation": (lambda: FeedForward(C, F_FF, activation="swish"), "activation must be"),
    "odd d_model": (lambda: sinusoidal_positions(10, 7), "must be even, got 7"),
    "too long": (
        lambda: Embeddings(10, 8, max_len=4)(torch.zeros(1, 5, dtype=torch.long)),
        "max_len=4",
    ),
    "pad_id": (lambda: padding_mask(torch.zeros(2, 3, dtype=torch.long)), "pad_id"),
    "causal": (lambda: causal_mask(5, 3), "t_k >= t_q"),
    "split": (lambda: split_heads(_x, 3), "not divisible by n_heads=3"),
    "from_torch": (
        lambda: TransformerBlock(C, H, F_FF, norm_first=True).load_from_torch_layer(
            nn.TransformerEncoderLayer(C, H, F_FF, norm_first=False)
        ),
        "norm_first",
    ),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_raises_helpful_value_error(name: str):
    call, message = BAD_INPUTS[name]
    with pytest.raises(ValueError, match=message):
        call()


def test_fused_in_proj_keeps_separate_projection_names():
    """Labs 02-03 use q_proj / k_proj / v_proj: views of the fused in_proj, and a state dict
    with separate keys loads into it."""
    mha = MultiHeadAttention(C, H).eval()
    x = torch.randn(B, 5, C)
    q = mha.q_proj(x)
    torch.testing.assert_close(q, x @ mha.in_proj.weight[:C].T + mha.in_proj.bias[:C])
    with torch.no_grad():
        mha.v_proj.weight.copy_(torch.eye(C))
    assert torch.equal(mha.in_proj.weight[2 * C :], torch.eye(C))
    separate = {
        f"{name}.{kind}": torch.randn(C, C) if kind == "weight" else torch.randn(C)
        for name in ("q_proj", "k_proj", "v_proj", "out_proj")
        for kind in ("weight", "bias")
    }
    mha.load_state_dict(separate)
    assert torch.equal(mha.k_proj.weight, separate["k_proj.weight"])
    assert torch.equal(mha.v_proj.bias, separate["v_proj.bias"])
    expected = F.scaled_dot_product_attention(
        *(
            split_heads(F.linear(x, separate[f"{n}.weight"], separate[f"{n}.bias"]), H)
            for n in ("q_proj", "k_proj", "v_proj")
        )
    )
    out = F.linear(merge_heads(expected), separate["out_proj.weight"], separate["out_proj.bias"])
    assert_close(mha(x)[0], out)
