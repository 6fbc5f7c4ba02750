"""Tests for course_utils.lora, proven equal to Hugging Face's PEFT.

PEFT (``LoraConfig`` + ``get_peft_model``) and our ``add_lora`` get the same base weights;
their adapters start at B = 0, so the test overwrites both A and B with the same random
values and then compares outputs, gradients, which parameters train, and merge / unmerge.
The whole-model proof loads a random Hugging Face Llama with ``DecoderModel.from_llama``
(fused W_q, W_k, W_v here, separate ``q_proj`` / ``v_proj`` in PEFT's Llama) and adapts q
and v on both sides.

Tolerances: one layer at assert_close's float32 defaults; whole models as in test_models.py,
the largest logit difference below 1e-5 of the largest logit.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from helpers import assert_logits_close
from torch import nn

from course_utils.lora import (
    LoRALinear,
    add_lora,
    lora_layers,
    merge_lora,
    trainable_parameters,
    unmerge_lora,
)
from course_utils.models import DecoderModel, EncoderDecoderModel, ModelConfig

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(12, 7)
        self.other = nn.Linear(7, 5)

    def forward(self, x):
        return self.other(self.proj(x))


@torch.no_grad()
def randomise_peft_adapters(peft_model, seed: int = 2) -> None:
    gen = torch.Generator().manual_seed(seed)
    for name, p in peft_model.named_parameters():
        if "lora_" in name:
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))


@torch.no_grad()
def copy_adapter(ours: LoRALinear, theirs) -> None:
    ours.lora_A.copy_(theirs.lora_A["default"].weight)
    ours.lora_B.copy_(theirs.lora_B["default"].weight)


def peft_tiny(r=4, alpha=8.0, dropout=0.0):
    base = Tiny()
    ours = copy.deepcopy(base)
    config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=["proj"])
    theirs = peft.get_peft_model(base, config)
    randomise_peft_adapters(theirs)
    names = add_lora(ours, r=r, alpha=alpha, dropout=dropout, target_modules=["proj"])
    assert names == ["proj"]
    copy_adapter(ours.proj, theirs.base_model.model.proj)
    return ours, theirs


def test_a_fresh_adapter_changes_nothing_and_is_initialised_as_peft():
    base = nn.Linear(64, 10)
    lora = LoRALinear(base, r=8, alpha=16)
    assert lora.scale == 2.0 and lora.lora_A.shape == (8, 64) and lora.lora_B.shape == (10, 8)
    assert torch.equal(lora.lora_B, torch.zeros(10, 8))
    x = torch.randn(3, 64)
    assert torch.equal(lora(x), base(x))
    bound = 1 / math.sqrt(64)  # kaiming_uniform_(a=sqrt(5)): U(-1/sqrt(in), 1/sqrt(in))
    assert lora.lora_A.abs().max() <= bound and lora.lora_A.abs().max() > 0.8 * bound
    config = peft.LoraConfig(r=8, lora_alpha=16, target_modules=["proj"])
    theirs = peft.get_peft_model(Tiny(), config).base_model.model.proj
    assert theirs.scaling["default"] == lora.scale
    assert theirs.lora_A["default"].weight.abs().max() <= 1 / math.sqrt(12)
    assert torch.equal(theirs.lora_B["default"].weight, torch.zeros(7, 8))


def test_layer_by_hand():
    lora = LoRALinear(nn.Linear(6, 4), r=2, alpha=3.0)
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.randn(5, 6)
    a, b, w = lora.lora_A, lora.lora_B, lora.weight
    expected = x @ w.T + lora.bias + (x @ a.T @ b.T) * 1.5
    torch.testing.assert_close(lora(x), expected)


@pytest.mark.parametrize("r, alpha", [(1, 1.0), (4, 8.0), (8, 32.0)])
def test_one_layer_equals_peft_outputs_gradients_and_trainable(r, alpha):
    ours, theirs = peft_tiny(r, alpha)
    x = torch.randn(3, 5, 12)
    torch.testing.assert_close(ours(x), theirs(x))
    ours(x).square().sum().backward()
    theirs(x).square().sum().backward()
    layer = theirs.base_model.model.proj
    torch.testing.assert_close(ours.proj.lora_A.grad, layer.lora_A["default"].weight.grad)
    torch.testing.assert_close(ours.proj.lora_B.grad, layer.lora_B["default"].weight.grad)
    mine = sorted((n, p.shape) for n, p in ours.named_parameters() if p.requires_grad)
    peft_names = [
        (n.replace("base_model.model.", "").replace(".default.weight", ""), p.shape)
        for n, p in theirs.named_parameters()
        if p.requires_grad
    ]
    assert mine == sorted(peft_names) == [("proj.lora_A", (r, 12)), ("proj.lora_B", (7, r))]
    assert trainable_parameters(ours) == theirs.get_nb_trainable_parameters()


def test_one_layer_merge_and_unmerge_equal_peft():
    ours, theirs = peft_tiny(4, 8.0)
    x = torch.randn(3, 12)
    before = ours.proj.weight.clone()
    unmerged = ours(x)
    ours.proj.merge()
    theirs.merge_adapter()
    assert ours.proj.merged
    torch.testing.assert_close(ours.proj.weight, theirs.base_model.model.proj.base_layer.weight)
    torch.testing.assert_close(ours(x), unmerged)
    torch.testing.assert_close(ours(x), theirs(x))
    ours.proj.merge()  # twice does nothing
    torch.testing.assert_close(ours(x), unmerged)
    ours.proj.unmerge()
    theirs.unmerge_adapter()
    assert not ours.proj.merged
    torch.testing.assert_close(ours.proj.weight, before)
    torch.testing.assert_close(ours(x), theirs(x))


def test_dropout_equals_peft_in_training_and_is_off_in_eval():
    ours, theirs = peft_tiny(4, 8.0, dropout=0.5)
    ours.train(), theirs.train()
    x = torch.randn(4, 12)
    torch.manual_seed(5)
    mine = ours(x)
    torch.manual_seed(5)
    torch.testing.assert_close(mine, theirs(x))
    torch.manual_seed(6)
    assert not torch.allclose(ours(x), mine)  # a new mask
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x))


def test_add_lora_freezes_everything_else_and_says_when_nothing_matches():
    model = DecoderModel(ModelConfig(vocab_size=11, d_model=16, n_heads=2, n_layers=2))
    total = sum(p.numel() for p in model.parameters())
    names = add_lora(model, r=2, alpha=4, target_modules=("q_proj", "v_proj", "fc2"))
    assert names == [
        "blocks.0.self_attn.q_proj",
        "blocks.0.self_attn.v_proj",
        "blocks.0.ffn.fc2",
        "blocks.1.self_attn.q_proj",
        "blocks.1.self_attn.v_proj",
        "blocks.1.ffn.fc2",
    ]
    assert list(lora_layers(model)) == sorted(names, key=names.index)
    lora = 2 * (2 * (2 * 16 + 16 * 2) + (2 * 64 + 16 * 2))
    assert trainable_parameters(model) == (lora, total + lora)
    assert all(("lora_" in n) == p.requires_grad for n, p in model.named_parameters())
    with pytest.raises(ValueError, match="already has LoRA"):
        add_lora(model)
    fresh = DecoderModel(ModelConfig(vocab_size=11, d_model=16, n_heads=2, n_layers=1))
    with pytest.raises(ValueError, match=r"no Linear matches target_modules=\['query'\]"):
        add_lora(fresh, target_modules="query")
    assert all(p.requires_grad for p in fresh.parameters())  # nothing was frozen


def test_fused_parts_write_only_their_rows_and_train():
    cfg = ModelConfig(vocab_size=11, d_model=16, n_heads=4, n_kv_heads=2, n_layers=1)
    model = DecoderModel(cfg).eval()
    add_lora(model, r=2, alpha=2, target_modules=["k_proj"])
    layer = lora_layers(model)["blocks.0.self_attn.k_proj"]
    assert (layer.rows.start, layer.rows.stop) == (16, 24) and layer.lora_B.shape == (8, 2)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(1, 3, 16)
    out = layer(x)
    base = layer.base(x)
    assert torch.equal(out[..., :16], base[..., :16]) and torch.equal(out[..., 24:], base[..., 24:])
    assert not torch.allclose(out[..., 16:24], base[..., 16:24])
    ids = torch.randint(0, 11, (2, 5))
    model(ids).sum().backward()
    assert layer.lora_B.grad is not None and layer.base.weight.grad is None


def test_merge_covers_cross_attention_and_every_family():
    """Merged and unmerged models agree only if the adapters act wherever in_proj does."""
    cfg = ModelConfig(vocab_size=13, d_model=16, n_heads=2, n_layers=2, bos_id=1)
    model = EncoderDecoderModel(cfg).eval()
    names = add_lora(model, r=2, alpha=4, target_modules=("q_proj", "k_proj", "v_proj"))
    assert "decoder.0.cross_attn.k_proj" in names and "encoder.1.self_attn.q_proj" in names
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.normal_()
    src, tgt = torch.randint(0, 13, (2, 6)), torch.randint(0, 13, (2, 4))
    with torch.no_grad():
        unmerged = model(src, tgt)
        merge_lora(model)
        assert all(layer.merged for layer in lora_layers(model).values())
        torch.testing.assert_close(model(src, tgt), unmerged, rtol=1e-5, atol=1e-5)
        unmerge_lora(model)
        torch.testing.assert_close(model(src, tgt), unmerged, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------
# The whole model: a Hugging Face Llama through from_llama, against PEFT on that Llama
# --------------------------------------------------------------------------------------------


def hf_llama(n_kv_heads: int, tied: bool):
    config = transformers.LlamaConfig(
        vocab_size=37,
        hidden_size=32,
        num_attention_heads=4,
        num_key_value_heads=n_kv_heads,
        num_hidden_layers=2,
        intermediate_size=45,
        max_position_embeddings=32,
        tie_word_embeddings=tied,
        pad_token_id=0,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    return model


@pytest.mark.parametrize(
    "n_kv_heads, tied, targets",
    [
        (2, False, ["q_proj", "v_proj"]),
        (1, True, ["q_proj", "v_proj"]),
        (4, False, ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"]),
    ],
)
def test_whole_llama_equals_peft(n_kv_heads: int, tied: bool, targets: list[str]):
    hf = hf_llama(n_kv_heads, tied)
    ours = DecoderModel.from_llama(hf).eval()
    ours_targets = ["out_proj" if t == "o_proj" else t for t in targets]  # our name for W_o
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets)
    theirs = peft.get_peft_model(hf, config).eval()
    randomise_peft_adapters(theirs)
    names = add_lora(ours, r=4, alpha=8, target_modules=ours_targets)
    assert len(names) == 2 * len(targets)
    mine = lora_layers(ours)
    for i in range(2):
        layer = theirs.base_model.model.model.layers[i]
        for t, ot in zip(targets, ours_targets):
            mlp = t == "down_proj"
            theirs_layer = getattr(layer.mlp if mlp else layer.self_attn, t)
            copy_adapter(mine[f"blocks.{i}.{'ffn' if mlp else 'self_attn'}.{ot}"], theirs_layer)

    ids = torch.randint(1, 37, (2, 11))
    with torch.no_grad():
        expected = theirs(input_ids=ids).logits
        assert_logits_close(ours(ids), expected)
    assert trainable_parameters(ours) == theirs.get_nb_trainable_parameters()
    trainable = [(n, tuple(p.shape)) for n, p in theirs.named_parameters() if p.requires_grad]
    assert all("lora_" in n for n, _ in trainable)
    mine_shapes = sorted(
        s for n, p in ours.named_parameters() if p.requires_grad for s in [tuple(p.shape)]
    )
    assert mine_shapes == sorted(s for _, s in trainable)

    # one training step's gradients
    loss = torch.nn.functional.cross_entropy
    loss(ours(ids)[:, :-1].flatten(0, 1), ids[:, 1:].flatten()).backward()
    theirs(input_ids=ids, labels=ids).loss.backward()
    q = theirs.base_model.model.model.layers[1].self_attn.q_proj
    assert_logits_close(
        mine["blocks.1.self_attn.q_proj"].lora_B.grad, q.lora_B["default"].weight.grad, 1e-4
    )

    # merge on both sides: same logits, same merged weights; unmerge restores the base
    before = ours.blocks[0].self_attn.in_proj.weight.clone()
    merge_lora(ours)
    theirs.merge_adapter()
    att = theirs.base_model.model.model.layers[0].self_attn
    merged = torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight])
    torch.testing.assert_close(ours.blocks[0].self_attn.in_proj.weight, merged)
    with torch.no_grad():
        assert_logits_close(ours(ids), theirs(input_ids=ids).logits)
        assert_logits_close(ours(ids), expected)
    unmerge_lora(ours)
    theirs.unmerge_adapter()
    torch.testing.assert_close(ours.blocks[0].self_attn.in_proj.weight, before)
    with torch.no_grad():
        assert_logits_close(ours(ids), theirs(input_ids=ids).logits)
