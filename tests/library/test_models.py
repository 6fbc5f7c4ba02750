"""Tests for course_utils.models: the three families, and proofs that they are BERT, GPT-2, BART.

The proofs build small random Hugging Face models (nothing is downloaded), perturb every
parameter (a fresh model has zero biases and unit norms, which would hide a missing bias or
norm), load them with ``from_gpt2`` / ``from_bert`` / ``from_bart`` and compare logits.

Tolerance: the largest difference must stay below 1e-5 of the largest logit. Both sides run
the same maths in float32 in a different order (one fused QKV matmul against three, fused
attention kernels against explicit softmax): that moves logits by ~1e-7 relative. A real bug
(a dropped bias, a norm in the wrong place, a position off by one) moves them by 1e-2 or more.

Planted bugs, each tried alone in a scratch copy, and the tests here that caught them:
a dropped bias (cross-attention query: the BART proofs and BART generate; fc2: every proof);
post-norm instead of pre-norm (the GPT-2 proofs, gradients and generate); an untied head (the
parameter counts of the GPT-2 / BERT / BART proofs, the GPT-2 gradients); BART's position
offset off by one (the BART proofs and generate); the KV cache's start position off by one
(the cache and generate tests); a causal mask on cross-attention (the BART proofs, the
encoder-decoder cache, padding and decoding tests).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_logits_close

from course_utils.layers import KVCache, count_parameters
from course_utils.models import (
    DecoderModel,
    EncoderDecoderModel,
    EncoderModel,
    ModelConfig,
    nucleus_filter,
    sample_next,
)

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny(**kw) -> ModelConfig:
    base = dict(vocab_size=23, d_model=16, n_heads=2, n_layers=2, max_len=12, pad_id=0)
    base.update(kw, bos_id=kw.get("bos_id", 1), eos_id=kw.get("eos_id", 2))
    return ModelConfig(**base)


@torch.no_grad()
def perturb(model: torch.nn.Module) -> None:
    """Move every parameter and float buffer away from its initial value."""
    gen = torch.Generator().manual_seed(1)
    for p in itertools.chain(model.parameters(), model.buffers()):
        if p.is_floating_point():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))


def right_padding(lengths: list[int], t: int) -> torch.Tensor:
    """(B, t) key_padding_mask, True = padding."""
    return torch.arange(t)[None, :] >= torch.tensor(lengths)[:, None]


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


def test_config_fills_derived_fields():
    cfg = ModelConfig(d_model=32, n_heads=4, n_layers=3)
    assert cfg.d_ff == 128 and cfg.final_norm is True
    assert cfg.n_encoder_layers == cfg.n_decoder_layers == 3
    assert ModelConfig(norm_first=False).final_norm is False


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(d_model=10, n_heads=3), "not divisible by n_heads=3"),
        (dict(activation="swish"), "activation must be one of"),
        (dict(positions="alibi"), "positions must be"),
        (dict(pooling="max"), "pooling must be"),
        (dict(n_layers=0), "n_layers must be a positive int"),
        (dict(dropout=1.0), "dropout must be in"),
    ],
)
def test_config_rejects_bad_values(kw, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kw)


# --------------------------------------------------------------------------------------------
# Type C: EncoderModel
# --------------------------------------------------------------------------------------------


def test_encoder_shapes_and_an_all_false_mask_equals_no_mask():
    model = EncoderModel(tiny(n_classes=3)).eval()
    ids = torch.randint(3, 23, (3, 7))
    assert model(ids).shape == (3, 7, 16)
    assert model.masked_lm_logits(ids).shape == (3, 7, 23)
    assert model.classify(ids).shape == (3, 3)
    no_pad = torch.zeros(3, 7, dtype=torch.bool)
    torch.testing.assert_close(model(ids, key_padding_mask=no_pad), model(ids))


def test_encoder_is_bidirectional():
    model = EncoderModel(tiny()).eval()
    ids = torch.randint(3, 23, (1, 6))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1 - 3) % 20 + 3
    assert not torch.allclose(model(ids)[0, 0], model(changed)[0, 0])  # token 0 sees the last


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_encoder_padding_is_ignored_everywhere(pooling: str):
    model = EncoderModel(tiny(n_classes=2, pooling=pooling)).eval()
    ids = torch.randint(3, 23, (1, 5))
    padded = torch.cat([ids, torch.full((1, 3), 0), torch.randint(3, 23, (1, 0))], dim=1)
    padded[0, 5:] = torch.tensor([0, 7, 9])  # whatever sits under the padding must not matter
    kpm = right_padding([5], 8)
    torch.testing.assert_close(model(padded, key_padding_mask=kpm)[:, :5], model(ids))
    torch.testing.assert_close(model.classify(padded, key_padding_mask=kpm), model.classify(ids))
    torch.testing.assert_close(model.embed(padded, key_padding_mask=kpm), model.embed(ids))
    emb = model.embed(padded, key_padding_mask=kpm, pooling=pooling)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(1))


def test_mean_pooling_by_hand():
    model = EncoderModel(tiny()).eval()
    hidden = torch.randn(2, 4, 16)
    kpm = right_padding([4, 2], 4)
    pooled = model.pool(hidden, kpm, pooling="mean")
    torch.testing.assert_close(pooled[1], hidden[1, :2].mean(0))
    torch.testing.assert_close(model.pool(hidden, kpm, pooling="cls"), hidden[:, 0])


def test_encoder_without_classifier_says_so():
    with pytest.raises(ValueError, match="n_classes > 0"):
        EncoderModel(tiny()).classify(torch.ones(1, 3, dtype=torch.long))


# --------------------------------------------------------------------------------------------
# Type B: DecoderModel
# --------------------------------------------------------------------------------------------


def test_decoder_is_causal():
    model = DecoderModel(tiny()).eval()
    ids = torch.randint(3, 23, (2, 8))
    changed = ids.clone()
    changed[:, 5] = (ids[:, 5] + 1 - 3) % 20 + 3
    torch.testing.assert_close(model(changed)[:, :5], model(ids)[:, :5])
    assert not torch.allclose(model(changed)[:, 5:], model(ids)[:, 5:])


def test_kv_cache_logits_equal_full_forward():
    model = DecoderModel(tiny(n_layers=3)).eval()
    ids = torch.randint(3, 23, (2, 12))
    cache = model.new_cache()
    pieces = [model(ids[:, :4], kv_cache=cache)]  # a prompt, then one token at a time
    pieces += [model(ids[:, t : t + 1], kv_cache=cache) for t in range(4, 12)]
    assert len(cache[0]) == 12
    torch.testing.assert_close(torch.cat(pieces, dim=1), model(ids), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("sampling", [dict(temperature=0.0), dict(top_k=5, top_p=0.8)])
def test_generate_cached_equals_uncached_past_the_block_size(sampling):
    model = DecoderModel(tiny()).eval()
    prompt = torch.randint(3, 23, (2, 5))
    # 5 + 20 tokens > max_len=12: the context is cropped, the cache rebuilt as it slides.
    cached = model.generate(prompt, 20, seed=3, **sampling)
    plain = model.generate(prompt, 20, seed=3, use_cache=False, **sampling)
    assert cached.shape == (2, 25) and torch.equal(cached[:, :5], prompt)
    assert torch.equal(cached, plain)


def test_generate_greedy_by_hand_and_seeds():
    model = DecoderModel(tiny()).eval()
    prompt = torch.randint(3, 23, (1, 3))
    out = model.generate(prompt, 4, temperature=0)
    ids = prompt
    for _ in range(4):
        ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, ids)
    assert torch.equal(model.generate(prompt, 4, top_k=1), out)  # top-1 sampling is greedy
    a, b = (model.generate(prompt, 8, seed=7) for _ in range(2))
    assert torch.equal(a, b)


def test_generate_stops_at_eos_and_restores_training_mode():
    model = DecoderModel(tiny())
    with torch.no_grad():
        model.lm_head.proj.weight.zero_()
        model.lm_head.proj.bias = None
        model.final_norm.bias.zero_()
    model.train()
    with torch.no_grad():  # make eos (2) the only likely token
        model.embeddings.tok_emb.weight[2] = 0.0
        model.embeddings.tok_emb.weight[2, 0] = 50.0
        model.final_norm.weight.fill_(1.0)
    out = model.generate(torch.tensor([[5, 6]]), 10, temperature=0, eos_id=2)
    assert model.training
    assert out[0, -1].item() == 2 and out.size(1) < 12


def test_sample_next_filters():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0]]).repeat(2000, 1)
    gen = torch.Generator().manual_seed(0)
    assert set(sample_next(logits, top_k=2, generator=gen).tolist()) == {0, 1}
    probs = torch.softmax(logits[0], -1)  # 0.64, 0.23, 0.09, ...: p = 0.8 keeps two tokens
    assert probs[:2].sum() > 0.8 > probs[0]
    assert set(sample_next(logits, top_p=0.8, generator=gen).tolist()) == {0, 1}
    assert set(sample_next(logits, top_p=0.5, generator=gen).tolist()) == {0}
    assert len(set(sample_next(logits, generator=gen).tolist())) == 5
    with pytest.raises(ValueError, match="top_p"):
        sample_next(logits, top_p=0.0)


def test_top_p_keeps_every_token_at_p_1_and_matches_hugging_face():
    """Summed from the most likely token down, float32 totals reach 1.0 early: p = 1 dropped
    17,932 of 50,000 tokens of 8 * randn(1000, 50) and [[0, -20]] lost its second token."""
    gen = torch.Generator().manual_seed(0)
    wide = 8 * torch.randn(1000, 50, generator=gen)
    assert torch.equal(nucleus_filter(wide, 1.0), wide)
    tiny = torch.tensor([[0.0, -20.0]])
    assert torch.equal(nucleus_filter(tiny, 1.0), tiny)
    counts = torch.bincount(sample_next(tiny.repeat(4, 1), top_p=1.0, generator=gen))
    assert counts.tolist() == [4]  # the 2e-9 token stays possible, just unlikely
    # The boundary: 4 equal tokens (0.25 each, exact in float32), p = 0.5 keeps 2, not 3.
    kept = torch.isfinite(nucleus_filter(torch.zeros(3, 4), 0.5)).sum(-1)
    assert kept.tolist() == [2, 2, 2]
    assert torch.isfinite(nucleus_filter(wide, 1e-9)).sum(-1).eq(1).all()  # the top one stays
    transformers = pytest.importorskip("transformers")
    from transformers.generation.logits_process import TopPLogitsWarper

    for p in (0.05, 0.3, 0.5, 0.9, 0.95, 0.99, 1.0):
        x = 8 * torch.randn(2000, 50, generator=gen)
        expected = TopPLogitsWarper(p)(None, x.clone())
        assert torch.equal(nucleus_filter(x, p), expected), (p, transformers.__version__)


# --------------------------------------------------------------------------------------------
# Type A: EncoderDecoderModel
# --------------------------------------------------------------------------------------------


def test_encode_decode_equals_forward_and_cache_equals_full():
    model = EncoderDecoderModel(tiny(n_encoder_layers=1, n_decoder_layers=3)).eval()
    src, tgt = torch.randint(3, 23, (2, 9)), torch.randint(3, 23, (2, 6))
    kpm = right_padding([9, 6], 9)
    logits = model(src, tgt, src_padding_mask=kpm)
    memory = model.encode(src, src_padding_mask=kpm)
    torch.testing.assert_close(model.decode(tgt, memory, src_padding_mask=kpm), logits)
    cache = model.new_cache()
    steps = [
        model.decode(tgt[:, t : t + 1], memory, src_padding_mask=kpm, kv_cache=cache)
        for t in range(6)
    ]
    torch.testing.assert_close(torch.cat(steps, 1), logits, atol=1e-5, rtol=1e-5)
    assert len(model.decoder) == 3 and len(model.encoder) == 1


def test_source_padding_is_ignored_and_cross_attention_sees_all_the_source():
    model = EncoderDecoderModel(tiny()).eval()
    src, tgt = torch.randint(3, 23, (1, 5)), torch.randint(3, 23, (1, 4))
    padded = torch.cat([src, torch.tensor([[0, 9, 4]])], dim=1)
    kpm = right_padding([5], 8)
    torch.testing.assert_close(model(padded, tgt, src_padding_mask=kpm), model(src, tgt))
    memory = model.encode(padded, src_padding_mask=kpm)
    _, attention = model.decode(tgt, memory, src_padding_mask=kpm, return_attention=True)
    cross = attention[0]["cross"]  # (B, H, Tt, Ts)
    assert cross.shape == (1, 2, 4, 8)
    torch.testing.assert_close(cross.sum(-1), torch.ones(1, 2, 4))
    assert cross[..., 5:].abs().max() == 0  # padding gets no attention
    assert (cross[..., :5] > 0).all()  # every output token may read every source token
    changed = src.clone()
    changed[0, -1] = (src[0, -1] + 1 - 3) % 20 + 3
    assert not torch.allclose(model(changed, tgt)[:, 0], model(src, tgt)[:, 0])


def test_greedy_decode_cached_equals_uncached_and_beam_of_one():
    model = EncoderDecoderModel(tiny()).eval()
    src = torch.randint(3, 23, (3, 7))
    kpm = right_padding([7, 4, 6], 7)
    greedy = model.greedy_decode(src, src_padding_mask=kpm)
    assert greedy.shape[0] == 3 and (greedy[:, 0] == 1).all()
    assert torch.equal(greedy, model.greedy_decode(src, src_padding_mask=kpm, use_cache=False))
    beam1 = model.beam_search(src, src_padding_mask=kpm, beam_size=1)
    assert torch.equal(beam1, greedy[:, : beam1.size(1)])


def _brute_force_best(model, src, max_new, length_penalty):
    """Score every possible output of up to max_new tokens; the exact answer beam search
    approximates. Outputs end at eos or at max_new tokens."""
    memory = model.encode(src)
    best, best_score = None, -math.inf
    v = model.config.vocab_size
    for n in range(1, max_new + 1):
        for tokens in itertools.product(range(v), repeat=n):
            if 2 in tokens[:-1]:
                continue  # eos ends an output
            if n < max_new and tokens[-1] != 2:
                continue  # shorter outputs must end with eos
            seq = torch.tensor([[1, *tokens]])
            logp = torch.log_softmax(model.decode(seq[:, :-1], memory), -1)
            total = logp[0, torch.arange(n), seq[0, 1:]].sum().item()
            score = total / n**length_penalty
            if score > best_score:
                best, best_score = seq, score
    return best, best_score


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_search_with_a_wide_beam_is_exact(length_penalty: float):
    model = EncoderDecoderModel(tiny(vocab_size=4, d_model=8, max_len=6, pad_id=3)).eval()
    perturb(model)  # sharper distributions, so that the best output is clear
    src = torch.randint(0, 4, (1, 4))
    expected, expected_score = _brute_force_best(model, src, 3, length_penalty)
    out, score = model.beam_search(
        src, beam_size=64, max_new_tokens=3, length_penalty=length_penalty, return_scores=True
    )
    got = out[0, : expected.size(1)]
    assert torch.equal(got, expected[0]), (out, expected)
    assert score.item() == pytest.approx(expected_score, abs=1e-5)


def test_beam_search_batch_equals_one_by_one_and_cache_changes_nothing():
    model = EncoderDecoderModel(tiny()).eval()
    perturb(model)
    src = torch.randint(3, 23, (3, 6))
    kpm = right_padding([6, 3, 5], 6)
    batch, scores = model.beam_search(src, src_padding_mask=kpm, beam_size=3, return_scores=True)
    for i in range(3):
        n = 6 - int(kpm[i].sum())
        one, s = model.beam_search(src[i : i + 1, :n], beam_size=3, return_scores=True)
        assert torch.equal(batch[i, : one.size(1)], one[0])
        assert s.item() == pytest.approx(scores[i].item(), abs=1e-5)
    plain = model.beam_search(src, src_padding_mask=kpm, beam_size=3, use_cache=False)
    assert torch.equal(plain, batch)


def test_decoding_without_start_token_says_so():
    model = EncoderDecoderModel(tiny(bos_id=None))
    model.config.bos_id = None
    with pytest.raises(ValueError, match="bos_id"):
        model.greedy_decode(torch.ones(1, 3, dtype=torch.long))


def test_kv_cache_reorder():
    cache = KVCache()
    k = torch.arange(3.0).view(3, 1, 1, 1)
    cache.update(k, k)
    cache.reorder(torch.tensor([2, 2, 0]))
    assert cache.k.flatten().tolist() == [2.0, 2.0, 0.0] and len(cache) == 1


# --------------------------------------------------------------------------------------------
# Proofs against Hugging Face
# --------------------------------------------------------------------------------------------

GPT2_CASES = {
    "one head, one layer": dict(n_embd=8, n_head=1, n_layer=1, n_positions=16),
    "4 heads, 3 layers": dict(n_embd=32, n_head=4, n_layer=3, n_positions=24),
    "relu, n_inner": dict(
        n_embd=16, n_head=2, n_layer=2, n_positions=10, activation_function="relu", n_inner=40
    ),
}


def hf_gpt2(**kw):
    cfg = transformers.GPT2Config(vocab_size=37, bos_token_id=0, eos_token_id=0, **kw)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    perturb(model)
    return model


@pytest.mark.parametrize("case", list(GPT2_CASES))
def test_from_gpt2_logits_equal_hugging_face(case: str):
    hf = hf_gpt2(**GPT2_CASES[case])
    ours = DecoderModel.from_gpt2(hf).eval()
    ids = torch.randint(0, 37, (2, 7))  # shorter than the context: positions 0..6 only
    with torch.no_grad():
        assert_logits_close(ours(ids), hf(ids).logits)
    assert count_parameters(ours) == sum(p.numel() for p in hf.parameters())
    activation = "relu" if case == "relu, n_inner" else "gelu_tanh"  # a state dict cannot say
    from_state = DecoderModel.from_gpt2(
        hf.state_dict(), n_heads=hf.config.n_head, activation=activation
    ).eval()
    with torch.no_grad():
        assert_logits_close(from_state(ids), hf(ids).logits)


def test_from_gpt2_gradients_equal_hugging_face():
    """A training step sees the same gradients: the head is tied to the token embedding."""
    hf = hf_gpt2(**GPT2_CASES["4 heads, 3 layers"])
    ours = DecoderModel.from_gpt2(hf).eval()  # eval: dropout (0.1 in GPT2Config) off in both
    assert ours.lm_head.proj.weight is ours.embeddings.tok_emb.weight
    ids = torch.randint(0, 37, (2, 9))
    hf(ids, labels=ids).loss.backward()
    logits = ours(ids)
    F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten()).backward()
    for mine, theirs in [
        (ours.embeddings.tok_emb.weight.grad, hf.transformer.wte.weight.grad),
        (
            ours.blocks[1].self_attn.in_proj.weight.grad,
            hf.transformer.h[1].attn.c_attn.weight.grad.t(),
        ),
    ]:
        assert_logits_close(mine, theirs)


def test_generate_greedy_equals_hugging_face():
    hf = hf_gpt2(**GPT2_CASES["4 heads, 3 layers"])
    ours = DecoderModel.from_gpt2(hf).eval()
    prompt = torch.randint(0, 37, (1, 4))
    expected = hf.generate(
        prompt, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0
    )
    assert torch.equal(ours.generate(prompt, 12, temperature=0, eos_id=None), expected)


BERT_CASES = {
    "one head, one layer": dict(
        hidden_size=8, num_attention_heads=1, num_hidden_layers=1, intermediate_size=16
    ),
    "4 heads, 2 layers": dict(
        hidden_size=32, num_attention_heads=4, num_hidden_layers=2, intermediate_size=48
    ),
    "gelu_new": dict(
        hidden_size=16,
        num_attention_heads=2,
        num_hidden_layers=2,
        intermediate_size=32,
        hidden_act="gelu_new",
    ),
}


def hf_bert(**kw):
    cfg = transformers.BertConfig(vocab_size=41, max_position_embeddings=20, **kw)
    model = transformers.BertForMaskedLM(cfg).eval()
    perturb(model)
    return model


@pytest.mark.parametrize("padded", [False, True], ids=["no padding", "padding"])
@pytest.mark.parametrize("case", list(BERT_CASES))
def test_from_bert_masked_lm_logits_equal_hugging_face(case: str, padded: bool):
    hf = hf_bert(**BERT_CASES[case])
    ours = EncoderModel.from_bert(hf).eval()
    ids = torch.randint(1, 41, (3, 8))
    kpm = right_padding([8, 5, 2] if padded else [8, 8, 8], 8)
    with torch.no_grad():
        theirs = hf(ids, attention_mask=(~kpm).long()).logits
        mine = ours.masked_lm_logits(ids, key_padding_mask=kpm if padded else None)
    real = ~kpm
    assert_logits_close(mine[real], theirs[real])
    assert count_parameters(ours) == sum(p.numel() for p in hf.parameters())
    if case == "one head, one layer":
        from_state = EncoderModel.from_bert(hf.state_dict(), n_heads=1).eval()
        with torch.no_grad():
            assert_logits_close(
                from_state.masked_lm_logits(ids)[real], ours.masked_lm_logits(ids)[real]
            )


BART_CASES = {
    "one head, one layer": dict(
        d_model=8, attention_heads=1, encoder_layers=1, decoder_layers=1, ffn=16
    ),
    "2 encoder, 3 decoder layers, scaled": dict(
        d_model=32,
        attention_heads=4,
        encoder_layers=2,
        decoder_layers=3,
        ffn=48,
        scale_embedding=True,
    ),
}


def hf_bart(d_model, attention_heads, ffn, vocab_size=43, **kw):
    cfg = transformers.BartConfig(
        vocab_size=vocab_size,
        d_model=d_model,
        encoder_attention_heads=attention_heads,
        decoder_attention_heads=attention_heads,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        max_position_embeddings=20,
        **kw,
    )
    model = transformers.BartForConditionalGeneration(cfg).eval()
    perturb(model)  # final_logits_bias, a buffer, too
    return model


@pytest.mark.parametrize("padded", [False, True], ids=["no padding", "source padding"])
@pytest.mark.parametrize("case", list(BART_CASES))
def test_from_bart_logits_equal_hugging_face(case: str, padded: bool):
    hf = hf_bart(**BART_CASES[case])
    ours = EncoderDecoderModel.from_bart(hf).eval()
    src, tgt = torch.randint(3, 43, (3, 9)), torch.randint(3, 43, (3, 5))
    kpm = right_padding([9, 4, 7] if padded else [9, 9, 9], 9)
    with torch.no_grad():
        theirs = hf(input_ids=src, attention_mask=(~kpm).long(), decoder_input_ids=tgt).logits
        mine = ours(src, tgt, src_padding_mask=kpm if padded else None)
    assert_logits_close(mine, theirs)
    # One shared, tied token embedding; final_logits_bias is a buffer there, a parameter here.
    assert count_parameters(ours) == sum(p.numel() for p in hf.parameters()) + 43
    if case == "one head, one layer":
        from_state = EncoderDecoderModel.from_bart(hf.state_dict(), n_heads=1).eval()
        with torch.no_grad():
            assert_logits_close(from_state(src, tgt, src_padding_mask=kpm), mine)


# --------------------------------------------------------------------------------------------
# Loaders fail clearly
# --------------------------------------------------------------------------------------------


def test_loader_names_the_first_tensor_that_does_not_fit():
    state = hf_gpt2(**GPT2_CASES["one head, one layer"]).state_dict()
    state["transformer.h.0.mlp.c_fc.bias"] = torch.zeros(5)
    with pytest.raises(
        ValueError, match=r"'transformer.h.0.mlp.c_fc.bias' has shape \(5,\), expected \(32,\)"
    ):
        DecoderModel.from_gpt2(state, n_heads=1)
    state = hf_bert(**BERT_CASES["one head, one layer"]).state_dict()
    state["bert.encoder.layer.0.attention.self.key.weight"] = torch.zeros(8, 7)
    with pytest.raises(ValueError, match=r"attention.self.key.weight' has shape \(8, 7\)"):
        EncoderModel.from_bert(state, n_heads=1)


def test_loader_names_missing_and_left_over_tensors():
    state = hf_bart(**BART_CASES["one head, one layer"]).state_dict()
    del state["model.decoder.layers.0.encoder_attn.k_proj.bias"]
    with pytest.raises(
        ValueError, match="no tensor 'model.decoder.layers.0.encoder_attn.k_proj.bias'"
    ):
        EncoderDecoderModel.from_bart(state, n_heads=1)
    state = hf_gpt2(**GPT2_CASES["one head, one layer"]).state_dict()
    state["transformer.h.0.crossattention.c_attn.weight"] = torch.zeros(8, 24)
    with pytest.raises(ValueError, match="no place in this model.*crossattention"):
        DecoderModel.from_gpt2(state, n_heads=1)
    with pytest.raises(ValueError, match="pass n_heads="):
        DecoderModel.from_gpt2(state)


@pytest.mark.parametrize(
    "load, message",
    [
        (
            lambda: DecoderModel.from_gpt2(
                hf_gpt2(n_embd=8, n_head=2, n_layer=1, scale_attn_by_inverse_layer_idx=True)
            ),
            "scale_attn_by_inverse_layer_idx=True",
        ),
        (
            lambda: DecoderModel.from_gpt2(
                hf_gpt2(n_embd=8, n_head=2, n_layer=1, activation_function="silu")
            ),
            "activation_function='silu'",
        ),
        (
            lambda: EncoderModel.from_bert(
                hf_bert(
                    hidden_size=8,
                    num_attention_heads=2,
                    num_hidden_layers=1,
                    intermediate_size=8,
                    position_embedding_type="relative_key",
                )
            ),
            "position_embedding_type='relative_key'",
        ),
        (
            lambda: EncoderDecoderModel.from_bart(
                transformers.BartForConditionalGeneration(
                    transformers.BartConfig(
                        vocab_size=11,
                        d_model=8,
                        encoder_attention_heads=2,
                        decoder_attention_heads=4,
                        encoder_layers=1,
                        decoder_layers=1,
                        encoder_ffn_dim=8,
                        decoder_ffn_dim=8,
                    )
                )
            ),
            "encoder_attention_heads=2 != decoder_attention_heads=4",
        ),
        (lambda: DecoderModel.from_gpt2("gpt2"), "expected a Hugging Face GPT-2 model"),
    ],
    ids=["gpt2 scaling", "gpt2 activation", "bert positions", "bart heads", "not a model"],
)
def test_loader_names_config_fields_it_cannot_map(load, message):
    with pytest.raises(ValueError, match=message):
        load()


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 2.0])
def test_greedy_and_beam_search_equal_hugging_face_generate(length_penalty: float):
    """Same outputs and scores as ``generate``: length normalisation, stopping at eos per
    source, padding after it, a batch with source padding."""
    hf = hf_bart(
        d_model=16, attention_heads=2, ffn=32, encoder_layers=1, decoder_layers=2, vocab_size=10
    )
    hf.config.forced_eos_token_id = hf.generation_config.forced_eos_token_id = None
    with torch.no_grad():
        hf.final_logits_bias[0, hf.config.eos_token_id] += 1.0  # some outputs end early
    ours = EncoderDecoderModel.from_bart(hf).eval()
    kpm = right_padding([6, 4, 5, 6], 6)
    settings = dict(attention_mask=(~kpm).long(), max_new_tokens=8, do_sample=False)
    for seed in range(20):  # sources for which some outputs stop at eos and some run on
        src = torch.randint(3, 10, (4, 6), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            greedy = hf.generate(src, num_beams=1, **settings)
        lengths = (greedy != hf.config.pad_token_id).sum(1)
        if lengths.min() < 9 == lengths.max():
            break
    else:
        pytest.fail("no batch of sources with outputs of different lengths")
    with torch.no_grad():
        beams = hf.generate(
            src,
            num_beams=4,
            length_penalty=length_penalty,
            early_stopping=False,
            output_scores=True,
            return_dict_in_generate=True,
            **settings,
        )
    ours_greedy = ours.greedy_decode(src, src_padding_mask=kpm, max_new_tokens=8)
    assert torch.equal(ours_greedy, greedy)
    out, scores = ours.beam_search(
        src,
        src_padding_mask=kpm,
        beam_size=4,
        max_new_tokens=8,
        length_penalty=length_penalty,
        return_scores=True,
    )
    assert torch.equal(out, beams.sequences), (out, beams.sequences)
    torch.testing.assert_close(scores, beams.sequences_scores, atol=1e-5, rtol=1e-5)
