"""Tests for the parts decoders changed after GPT-2 (lab 09): RMSNorm, rotary positions,
SwiGLU, grouped-query attention with its KV cache, and ``DecoderModel.from_llama``.

Each part is checked against an independent reference: Hugging Face's Llama modules where
they exist (``LlamaRMSNorm``, ``LlamaRotaryEmbedding`` with ``apply_rotary_pos_emb``,
``repeat_kv``, ``LlamaMLP``), PyTorch's ``nn.RMSNorm``, or the maths written out by hand
with separate Q, K, V matrices. The Llama proofs build small random Hugging Face models
(nothing is downloaded), perturb every parameter, and compare logits and greedy generation.

Tolerances: parts alone at ``torch.testing.assert_close``'s float32 defaults (rtol 1.3e-6,
atol 1e-5) unless said; whole models as in test_models.py, the largest logit difference
below 1e-5 of the largest logit. Rotary angles are computed here in float64 and in float32
by Hugging Face: at positions below 100 that moves cos/sin by < 1e-5.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_logits_close

from course_utils.layers import (
    KVCache,
    MultiHeadAttention,
    RMSNorm,
    SwiGLU,
    TransformerBlock,
    apply_rotary,
    count_parameters,
    repeat_kv,
    rotary_cos_sin,
    rotate_half,
)
from course_utils.models import DecoderModel, EncoderDecoderModel, ModelConfig

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()
from transformers.models.llama import modeling_llama as hf_llama  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def llama_cfg(**kw) -> ModelConfig:
    base = dict(
        vocab_size=29,
        d_model=32,
        n_heads=4,
        n_layers=2,
        max_len=16,
        d_ff=44,
        norm="rmsnorm",
        positions="rotary",
        activation="swiglu",
        bias=False,
        layer_norm_eps=1e-6,
    )
    base.update(kw)
    return ModelConfig(**base)


@torch.no_grad()
def perturb(model: torch.nn.Module, seed: int = 1) -> None:
    """Move every parameter away from its initial value (norm weights start at exactly one)."""
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.add_(0.2 * torch.randn(p.shape, generator=gen))


# --------------------------------------------------------------------------------------------
# RMSNorm
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_equals_pytorch_and_hugging_face(dtype):
    x = (3 * torch.randn(2, 5, 12) + 1).to(dtype)  # a mean far from 0: LayerNorm would differ
    ours, torch_norm = RMSNorm(12, eps=1e-6), torch.nn.RMSNorm(12, eps=1e-6)
    hf = hf_llama.LlamaRMSNorm(12, eps=1e-6)
    with torch.no_grad():
        ours.weight.normal_()
        torch_norm.weight.copy_(ours.weight)
        hf.weight.copy_(ours.weight)
    ours, hf = ours.to(dtype), hf.to(dtype)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(x), rtol=0, atol=0)  # the same recipe, exactly
        if dtype == torch.float32:
            torch.testing.assert_close(ours(x), torch_norm(x))
            by_hand = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-6) * ours.weight
            torch.testing.assert_close(ours(x), by_hand)
            layer_norm = F.layer_norm(x, (12,), ours.weight, None, 1e-6)
            assert (ours(x) - layer_norm).abs().max() > 0.1  # no mean subtracted


# --------------------------------------------------------------------------------------------
# Rotary positions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("theta", [10000.0, 500000.0, 100.0])
@pytest.mark.parametrize("offset", [0, 37])
def test_rotary_equals_hugging_face(theta: float, offset: int):
    head_dim, t = 8, 6
    config = transformers.LlamaConfig(
        hidden_size=32, num_attention_heads=4, rope_theta=theta, max_position_embeddings=64
    )
    if getattr(config, "rope_parameters", None) is not None:  # transformers >= 5
        config.rope_parameters["rope_theta"] = theta
    rope = hf_llama.LlamaRotaryEmbedding(config)
    position_ids = torch.arange(offset, offset + t)[None]
    q, k = torch.randn(2, 4, t, head_dim), torch.randn(2, 2, t, head_dim)
    hf_cos, hf_sin = rope(q, position_ids)
    cos, sin = rotary_cos_sin(t, head_dim, theta, offset)
    assert cos.shape == sin.shape == (t, head_dim)
    torch.testing.assert_close(cos, hf_cos[0])
    torch.testing.assert_close(sin, hf_sin[0])
    hf_q, hf_k = hf_llama.apply_rotary_pos_emb(q, k, hf_cos, hf_sin)
    torch.testing.assert_close(apply_rotary(q, cos, sin), hf_q)
    torch.testing.assert_close(apply_rotary(k, cos, sin), hf_k)
    torch.testing.assert_close(rotate_half(q), hf_llama.rotate_half(q), rtol=0, atol=0)


def test_rotary_pairs_channel_i_with_i_plus_half_and_keeps_lengths():
    d = 8
    cos, sin = rotary_cos_sin(5, d, 10000.0)
    assert torch.equal(cos[:, : d // 2], cos[:, d // 2 :])
    x = torch.zeros(1, 5, d)
    x[..., 1] = 1.0  # channel 1 turns into channel 1 + D/2, never into channel 0 or 2
    y = apply_rotary(x, cos, sin)
    moved = (y.abs() > 1e-6).any(dim=(0, 1)).nonzero().flatten().tolist()
    assert moved == [1, 1 + d // 2]
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    angle = 4 * 10000.0 ** (-2 / d)  # position 4, pair 1
    torch.testing.assert_close(y[0, 4, [1, 5]], torch.tensor([math.cos(angle), math.sin(angle)]))


def test_rotary_scores_depend_only_on_the_distance():
    d = 16
    q, k = torch.randn(d), torch.randn(d)
    cos, sin = rotary_cos_sin(40, d, 10000.0)

    def score(m: int, n: int) -> float:
        return float(apply_rotary(q, cos[m], sin[m]) @ apply_rotary(k, cos[n], sin[n]))

    for shift in (1, 7, 25):
        assert score(3, 1) == pytest.approx(score(3 + shift, 1 + shift), rel=1e-4, abs=1e-5)
    assert score(3, 1) != pytest.approx(score(9, 1), rel=1e-3)


def test_rotary_rejects_odd_head_sizes():
    with pytest.raises(ValueError, match="head_dim must be even"):
        rotary_cos_sin(4, 7)
    with pytest.raises(ValueError, match="must be even"):
        MultiHeadAttention(12, 4, rotary=True)
    with pytest.raises(ValueError, match="even head size"):
        ModelConfig(d_model=12, n_heads=4, positions="rotary")


# --------------------------------------------------------------------------------------------
# SwiGLU, repeat_kv, grouped-query attention
# --------------------------------------------------------------------------------------------


def test_swiglu_equals_hugging_face_llama_mlp():
    config = transformers.LlamaConfig(
        hidden_size=12, num_attention_heads=2, intermediate_size=19, mlp_bias=False
    )
    hf = hf_llama.LlamaMLP(config)
    ours = SwiGLU(12, 19, bias=False)
    perturb(hf)
    ours.load_state_dict(hf.state_dict())  # the same names: gate_proj, up_proj, down_proj
    x = torch.randn(2, 3, 12)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(x))
        w1, w3, w2 = hf.gate_proj.weight, hf.up_proj.weight, hf.down_proj.weight
        by_hand = ((x @ w1.T) * torch.sigmoid(x @ w1.T) * (x @ w3.T)) @ w2.T
        torch.testing.assert_close(ours(x), by_hand)


@pytest.mark.parametrize("n_rep", [1, 2, 3])
def test_repeat_kv_equals_hugging_face_and_repeat_interleave(n_rep: int):
    x = torch.randn(2, 3, 5, 4)
    out = repeat_kv(x, n_rep)
    assert out.shape == (2, 3 * n_rep, 5, 4)
    assert torch.equal(out, hf_llama.repeat_kv(x, n_rep))
    assert torch.equal(out, x.repeat_interleave(n_rep, dim=1))
    assert torch.equal(out[:, n_rep], x[:, 1])  # query head n_rep reads key/value head 1


def attention_by_hand(mha: MultiHeadAttention, x, wq, wk, wv, causal: bool):
    """Separate W_q, W_k, W_v, heads looped one by one: query head h reads kv head h // rep."""
    b, t, c = x.shape
    h, h_kv = mha.n_heads, mha.n_kv_heads
    d = c // h
    q, k, v = x @ wq.T, x @ wk.T, x @ wv.T
    outs = []
    for head in range(h):
        g = head // (h // h_kv)
        qh, kh, vh = (
            q[..., head * d : (head + 1) * d],
            k[..., g * d : (g + 1) * d],
            v[..., g * d : (g + 1) * d],
        )
        scores = qh @ kh.transpose(-2, -1) / math.sqrt(d)
        if causal:
            scores = scores.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
        outs.append(torch.softmax(scores, -1) @ vh)
    return torch.cat(outs, -1) @ mha.out_proj.weight.T


@pytest.mark.parametrize("n_kv_heads", [1, 2, 4])
def test_grouped_query_attention_by_hand(n_kv_heads: int):
    c, h = 16, 4
    mha = MultiHeadAttention(c, h, n_kv_heads=n_kv_heads, bias=False)
    d_kv = n_kv_heads * c // h
    assert mha.in_proj.weight.shape == (c + 2 * d_kv, c)
    assert count_parameters(mha) == c * (c + 2 * d_kv) + c * c
    wq, wk, wv = mha.q_proj.weight, mha.k_proj.weight, mha.v_proj.weight
    assert (wq.shape, wk.shape, wv.shape) == ((c, c), (d_kv, c), (d_kv, c))
    assert torch.equal(torch.cat([wq, wk, wv]), mha.in_proj.weight)
    x = torch.randn(2, 5, c)
    with torch.no_grad():
        for causal in (False, True):
            expected = attention_by_hand(mha, x, wq, wk, wv, causal)
            fast, _ = mha(x, is_causal=causal)
            plain, weights = mha(x, is_causal=causal, need_weights=True)
            torch.testing.assert_close(fast, expected, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(plain, expected, rtol=1e-5, atol=1e-5)
            assert weights.shape == (2, h, 5, 5)


def test_grouped_query_attention_loads_separate_projections():
    """A state dict with q_proj / k_proj / v_proj of different heights loads into in_proj."""
    mha = MultiHeadAttention(16, 4, n_kv_heads=2, bias=True)
    state = {
        "q_proj.weight": torch.randn(16, 16),
        "k_proj.weight": torch.randn(8, 16),
        "v_proj.weight": torch.randn(8, 16),
        "q_proj.bias": torch.randn(16),
        "k_proj.bias": torch.randn(8),
        "v_proj.bias": torch.randn(8),
        "out_proj.weight": torch.randn(16, 16),
        "out_proj.bias": torch.randn(16),
    }
    mha.load_state_dict(state)
    for p in "qkv":
        assert torch.equal(getattr(mha, f"{p}_proj").weight, state[f"{p}_proj.weight"])
        assert torch.equal(getattr(mha, f"{p}_proj").bias, state[f"{p}_proj.bias"])


def test_n_kv_heads_must_divide_n_heads():
    with pytest.raises(ValueError, match="must divide n_heads"):
        MultiHeadAttention(24, 6, n_kv_heads=4)
    with pytest.raises(ValueError, match="must divide n_heads"):
        ModelConfig(d_model=24, n_heads=6, n_kv_heads=4)
    with pytest.raises(ValueError, match="must divide n_heads"):
        ModelConfig(d_model=24, n_heads=6, n_kv_heads=0)


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(norm="batchnorm"), "norm must be one of"),
        (dict(positions="alibi"), "positions must be"),
        (dict(activation="geglu"), "activation must be one of"),
        (dict(activation="swiglu", mlm_transform=True), "mlm_transform"),
        (dict(rope_theta=0.0), "rope_theta"),
    ],
)
def test_config_rejects_bad_modern_switches(kw, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kw)


# --------------------------------------------------------------------------------------------
# The Llama-style model: no position table, no biases, a cache of the key/value heads only
# --------------------------------------------------------------------------------------------


def test_llama_switches_build_the_llama_parts():
    model = DecoderModel(llama_cfg(n_kv_heads=2))
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.endswith("bias") for n in names), names
    assert not any("pos_emb" in n for n in names)
    assert model.embeddings.pos_emb is None
    block = model.blocks[0]
    assert isinstance(block.attn_norm, RMSNorm) and isinstance(block.ffn_norm, RMSNorm)
    assert isinstance(model.final_norm, RMSNorm)
    assert isinstance(block.ffn, SwiGLU) and block.ffn.up_proj.out_features == 44
    assert block.self_attn.rotary and block.self_attn.n_kv_heads == 2
    default = DecoderModel(ModelConfig())
    assert default.blocks[0].self_attn.in_proj.weight.shape == (3 * 128, 128)
    assert isinstance(default.blocks[0].attn_norm, torch.nn.LayerNorm)


@pytest.mark.parametrize("n_kv_heads", [1, 2, 4])
def test_cache_stores_only_the_key_value_heads_and_equals_the_full_forward(n_kv_heads):
    model = DecoderModel(llama_cfg(n_kv_heads=n_kv_heads)).eval()
    perturb(model)
    ids = torch.randint(0, 29, (2, 11))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache()
        parts = [model(ids[:, :4], kv_cache=cache)]
        parts += [model(ids[:, i : i + 1], kv_cache=cache) for i in range(4, 11)]
    assert cache[0].k.shape == cache[0].v.shape == (2, n_kv_heads, 11, 8)
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)
    prompt = ids[:, :3]
    for kw in (dict(temperature=0), dict(temperature=1.0, seed=3)):  # past max_len: slides
        cached = model.generate(prompt, 20, **kw)
        assert torch.equal(cached, model.generate(prompt, 20, use_cache=False, **kw))


def test_rotary_makes_the_model_see_order_without_a_table():
    """With rotary positions (and no table) swapping two tokens changes what follows them."""
    model = DecoderModel(llama_cfg()).eval()
    perturb(model)
    ids = torch.tensor([[3, 4, 5, 6]])
    swapped = torch.tensor([[4, 3, 5, 6]])
    with torch.no_grad():
        assert (model(ids)[0, -1] - model(swapped)[0, -1]).abs().max() > 1e-3


def test_block_with_cross_attention_keeps_plain_heads_and_no_rotary():
    block = TransformerBlock(16, 4, 24, cross_attention=True, n_kv_heads=2, rotary=True)
    assert block.cross_attn.n_kv_heads == 4 and not block.cross_attn.rotary
    x, memory = torch.randn(2, 3, 16), torch.randn(2, 5, 16)
    assert block(x, context=memory, is_causal=True).shape == (2, 3, 16)
    model = EncoderDecoderModel(llama_cfg(n_kv_heads=2, bos_id=1)).eval()
    src = torch.randint(0, 29, (2, 6))
    out = model.greedy_decode(src, max_new_tokens=5)
    assert torch.equal(out, model.greedy_decode(src, max_new_tokens=5, use_cache=False))


def test_mha_rotary_rejects_cross_attention():
    mha = MultiHeadAttention(16, 4, rotary=True)
    with pytest.raises(ValueError, match="self-attention only"):
        mha(torch.randn(1, 2, 16), torch.randn(1, 3, 16))


def test_kv_cache_update_keeps_heads():
    cache = KVCache()
    k, v = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4)
    cache.update(k, v)
    assert len(cache) == 3 and cache.k.shape == (1, 2, 3, 4)


# --------------------------------------------------------------------------------------------
# "Your model is Llama": from_llama on random Hugging Face models
# --------------------------------------------------------------------------------------------

LLAMA_CASES = {
    "multi-head, untied": dict(num_attention_heads=4, num_key_value_heads=4),
    "grouped (2 kv heads), tied": dict(
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True
    ),
    "multi-query, theta 500000": dict(
        num_attention_heads=4, num_key_value_heads=1, rope_theta=500000.0
    ),
    "one head, one layer, theta 100, tied": dict(
        hidden_size=8,
        num_attention_heads=1,
        num_key_value_heads=1,
        num_hidden_layers=1,
        intermediate_size=13,
        rope_theta=100.0,
        tie_word_embeddings=True,
    ),
    "8 heads, 2 kv heads, 3 layers, eps 1e-5": dict(
        hidden_size=64,
        num_attention_heads=8,
        num_key_value_heads=2,
        num_hidden_layers=3,
        intermediate_size=171,
        rms_norm_eps=1e-5,
    ),
}


def hf_llama_model(**kw):
    base = dict(
        vocab_size=37,
        hidden_size=32,
        num_hidden_layers=2,
        intermediate_size=45,  # odd, and not 8/3 of the width
        max_position_embeddings=32,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
    )
    base.update(kw)
    theta = base.pop("rope_theta", 10000.0)
    config = transformers.LlamaConfig(rope_theta=theta, **base)
    if getattr(config, "rope_parameters", None) is not None:
        config.rope_parameters["rope_theta"] = theta
    model = transformers.LlamaForCausalLM(config).eval()
    perturb(model)
    return model


@pytest.mark.parametrize("case", list(LLAMA_CASES))
def test_from_llama_logits_equal_hugging_face(case: str):
    hf = hf_llama_model(**LLAMA_CASES[case])
    tied = hf.config.tie_word_embeddings
    assert (hf.lm_head.weight is hf.model.embed_tokens.weight) == tied
    ours = DecoderModel.from_llama(hf).eval()
    cfg = ours.config
    assert (cfg.n_kv_heads, cfg.rope_theta, cfg.tie_weights) == (
        hf.config.num_key_value_heads,
        LLAMA_CASES[case].get("rope_theta", 10000.0),
        tied,
    )
    assert cfg.layer_norm_eps == hf.config.rms_norm_eps
    assert (ours.lm_head.proj.weight is ours.embeddings.tok_emb.weight) == tied
    assert count_parameters(ours) == sum(p.numel() for p in hf.parameters())
    ids = torch.randint(0, 37, (2, 19))  # positions 0..18: rotary angles well past one turn
    with torch.no_grad():
        assert_logits_close(ours(ids), hf(ids).logits)
    from_state = DecoderModel.from_llama(
        hf.state_dict(),
        n_heads=hf.config.num_attention_heads,
        rope_theta=cfg.rope_theta,
        layer_norm_eps=cfg.layer_norm_eps,
        max_len=cfg.max_len,
    ).eval()
    assert from_state.config.n_kv_heads == cfg.n_kv_heads
    assert from_state.config.tie_weights == tied
    with torch.no_grad():
        assert_logits_close(from_state(ids), hf(ids).logits)


@pytest.mark.parametrize("case", list(LLAMA_CASES))
def test_from_llama_greedy_generation_equals_hugging_face(case: str):
    """Our KV cache (only the key/value heads, rotated keys) against Hugging Face's."""
    hf = hf_llama_model(**LLAMA_CASES[case])
    ours = DecoderModel.from_llama(hf).eval()
    prompt = torch.randint(3, 37, (2, 5))
    expected = hf.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=20,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=0,
    )
    assert torch.equal(ours.generate(prompt, 20, temperature=0), expected)


def test_from_llama_gradients_equal_hugging_face():
    hf = hf_llama_model(**LLAMA_CASES["grouped (2 kv heads), tied"])
    ours = DecoderModel.from_llama(hf)
    # No pad id (0) in the input: Hugging Face's embedding has padding_idx=pad_token_id,
    # which keeps the pad row out of the lookup's gradient; ours has no such exception.
    ids = torch.randint(1, 37, (2, 9))
    hf(ids, labels=ids).loss.backward()
    logits = ours(ids)
    F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten()).backward()
    att = hf.model.layers[1].self_attn
    for mine, theirs in [
        (ours.embeddings.tok_emb.weight.grad, hf.model.embed_tokens.weight.grad),
        (
            ours.blocks[1].self_attn.in_proj.weight.grad,
            torch.cat([att.q_proj.weight.grad, att.k_proj.weight.grad, att.v_proj.weight.grad]),
        ),
        (ours.blocks[0].attn_norm.weight.grad, hf.model.layers[0].input_layernorm.weight.grad),
    ]:
        assert_logits_close(mine, theirs, rel=1e-4)


def hf_llama_with(**kw):
    return hf_llama_model(num_attention_heads=4, num_key_value_heads=2, **kw)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: hf_llama_with(
                rope_scaling={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}
            ),
            "rope_type='linear'",
        ),
        (lambda: hf_llama_with(attention_bias=True), "attention_bias=True"),
        (lambda: hf_llama_with(mlp_bias=True), "mlp_bias=True"),
        (lambda: hf_llama_with(hidden_act="gelu"), "hidden_act='gelu'"),
        (lambda: hf_llama_with(head_dim=16), "head_dim=16"),
    ],
    ids=["rope scaling", "attention bias", "mlp bias", "activation", "head_dim"],
)
def test_from_llama_names_config_fields_it_cannot_map(make, message):
    hf = make()
    with pytest.raises(ValueError, match=f"cannot map these LlamaConfig config fields.*{message}"):
        DecoderModel.from_llama(hf)


def test_from_llama_state_dict_problems_are_named():
    hf = hf_llama_with()
    state = hf.state_dict()
    with pytest.raises(ValueError, match="pass n_heads="):
        DecoderModel.from_llama(state)
    with pytest.raises(ValueError, match="n_kv_heads=1 given, but k_proj has 16 rows"):
        DecoderModel.from_llama(state, n_heads=4, n_kv_heads=1)
    with pytest.raises(ValueError, match="n_kv_heads=4 given, but the model has 2"):
        DecoderModel.from_llama(hf, n_kv_heads=4)
    bad = dict(state)
    bad["model.layers.1.self_attn.v_proj.weight"] = torch.zeros(8, 32)
    with pytest.raises(ValueError, match=r"v_proj.weight \(8, 32\) stack to \(56, 32\)"):
        DecoderModel.from_llama(bad, n_heads=4)
    bad = dict(state, **{"model.layers.0.self_attn.q_proj.bias": torch.zeros(32)})
    with pytest.raises(ValueError, match="no place in this model.*q_proj.bias"):
        DecoderModel.from_llama(bad, n_heads=4)
    untied = DecoderModel.from_llama(state, n_heads=4)
    assert not untied.config.tie_weights
    del state["lm_head.weight"]  # a tied checkpoint saved without its copy of the embedding
    assert DecoderModel.from_llama(state, n_heads=4).config.tie_weights
