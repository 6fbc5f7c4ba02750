"""The three transformer families, each a few lines assembled from :mod:`course_utils.layers`.

One :class:`ModelConfig` describes all three. Side by side, they differ in three switches:
the **mask** of self-attention, the presence of **cross-attention**, and the **head**::

    Type C, encoder-only (BERT)   Type B, decoder-only (GPT)    Type A, encoder-decoder (BART)
    ---------------------------   --------------------------    ------------------------------
    ids -> Embeddings             ids -> Embeddings             src -> Embeddings
        -> TransformerBlock x N       -> TransformerBlock x N       -> TransformerBlock x N
           mask: padding only            mask: causal                  mask: padding only
           (all see all)                 (t sees <= t)                 -> memory
                                                                tgt -> Embeddings
                                                                    -> TransformerBlock x N
                                                                       mask: causal, and
                                                                       cross_attention=True
                                                                       (reads the memory)
        -> masked-LM head             -> next-token head            -> next-token head
           or pooled classifier

    EncoderModel(cfg)             DecoderModel(cfg)             EncoderDecoderModel(cfg)
      (ids) -> hidden               (ids) -> logits               (src, tgt) -> logits
      .masked_lm_logits(ids)        .generate(ids, n, ...)        .encode(src), .decode(tgt, mem)
      .classify(ids), .embed(ids)                                 .greedy_decode, .beam_search

A fourth variant is one switch away: ``DecoderModel(cfg)(ids, prefix_len=p)`` is a **prefix LM**
(T5's third architecture): the first ``p`` positions see each other both ways, as an encoder's
input does, and the rest stays causal.

Everything else is shared: the same ``TransformerBlock`` (pre-norm or post-norm), the same
``MultiHeadAttention`` (one fused QKV matmul, a KV cache for decoding), the same
``Embeddings`` and ``LanguageModelHead``. Published models differ in switches of these parts,
all fields of :class:`ModelConfig`:

* GPT-2: pre-norm, ``activation="gelu_tanh"``, a final LayerNorm, a tied head without bias;
* BERT: post-norm, token-type embedding (``type_vocab_size=2``), ``embed_norm=True``,
  ``mlm_transform=True`` (Linear, GELU, LayerNorm before the tied head), ``head_bias=True``,
  ``layer_norm_eps=1e-12``;
* BART: post-norm, ``embed_norm=True``, learned positions shifted by ``position_offset=2``,
  optional ``embed_scale=sqrt(d_model)``, ``head_bias=True`` (its ``final_logits_bias``);
* Llama (and Mistral, Qwen...): GPT-2's plan with ``norm="rmsnorm"``, ``positions="rotary"``
  (with ``rope_theta``), ``activation="swiglu"``, ``bias=False``, an untied or tied head, and
  grouped-query attention (``n_kv_heads``).

:meth:`DecoderModel.from_gpt2`, :meth:`EncoderModel.from_bert`,
:meth:`EncoderDecoderModel.from_bart` and :meth:`DecoderModel.from_llama` load Hugging Face
models (or their state dicts); the test suite proves, on random configurations, that the
logits then equal Hugging Face's.

Conventions: ids are (B, T) integer tensors; ``key_padding_mask`` / ``src_padding_mask`` /
``tgt_padding_mask`` are (B, T) bool with **True = padding** (as in :mod:`course_utils.layers`;
``ids == cfg.pad_id`` makes one). An all-False mask equals no mask.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import (
    _ACTIVATIONS,
    NORMS,
    Embeddings,
    KVCache,
    LanguageModelHead,
    TransformerBlock,
    make_norm,
)

__all__ = [
    "ModelConfig",
    "EncoderModel",
    "DecoderModel",
    "EncoderDecoderModel",
    "sample_next",
    "nucleus_filter",
]


@dataclass
class ModelConfig:
    """Every size and switch of the three families. Defaults: nanoGPT's CPU-sized GPT.

    ``d_ff=None`` becomes ``4 * d_model``, ``final_norm=None`` becomes ``norm_first`` (a
    pre-norm stack ends in a norm, a post-norm one already did), and
    ``n_encoder_layers`` / ``n_decoder_layers`` (Type A only) default to ``n_layers``; these
    are filled in when the config is made, so ``dataclasses.replace`` keeps the filled values.
    """

    vocab_size: int = 65
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int | None = None
    max_len: int = 64  # context (block) size; for Type A the longest source and target
    dropout: float = 0.0
    norm_first: bool = True  # pre-norm (GPT-2) or post-norm (BERT, BART, the 2017 paper)
    activation: str = "gelu"  # "gelu", "gelu_tanh" (GPT-2), "relu" or "swiglu" (Llama)
    positions: str = "learned"  # or "sinusoidal", or "rotary" (Llama; no position table)
    bias: bool = True  # in every Linear and LayerNorm of the blocks and the final norm
    norm: str = "layernorm"  # or "rmsnorm" (Llama), in the blocks and the final norm
    rope_theta: float = 10000.0  # base of the rotary angles (Llama 3: 500000)
    n_kv_heads: int | None = None  # self-attention key/value heads; None = n_heads, 1 = MQA
    tie_weights: bool = True  # the output head shares the token embedding's weight
    layer_norm_eps: float = 1e-5
    pad_id: int | None = None
    bos_id: int | None = None  # the token decoding starts from (Type A's decoder start)
    eos_id: int | None = None  # decoding stops at it
    # Switches published models need:
    type_vocab_size: int = 0  # BERT's segment embedding (2); 0 = none
    embed_norm: bool = False  # LayerNorm right after the embeddings (BERT, BART)
    final_norm: bool | None = None  # LayerNorm after the last block (GPT-2's ln_f)
    mlm_transform: bool = False  # BERT's Linear-activation-LayerNorm before the MLM head
    head_bias: bool = False  # a bias per vocabulary entry (BERT; BART's final_logits_bias)
    position_offset: int = 0  # BART's learned positions start at row 2
    embed_scale: float = 1.0  # token embeddings times this (sqrt(d_model) in BART, T2T)
    n_encoder_layers: int | None = None  # Type A
    n_decoder_layers: int | None = None  # Type A
    n_classes: int = 0  # Type C: size of the classification head (0 = no head)
    pooling: str = "cls"  # Type C: "cls" (first token) or "mean" (over real tokens)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_heads", "n_layers", "max_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; each head "
                f"gets d_model // n_heads channels"
            )
        if self.activation not in (*_ACTIVATIONS, "swiglu"):
            raise ValueError(
                f"activation must be one of {sorted([*_ACTIVATIONS, 'swiglu'])}, "
                f"got {self.activation!r}"
            )
        if self.mlm_transform and self.activation == "swiglu":
            raise ValueError("mlm_transform needs a plain activation, not 'swiglu'")
        if self.positions not in ("learned", "sinusoidal", "rotary"):
            raise ValueError(
                f"positions must be 'learned', 'sinusoidal' or 'rotary', got {self.positions!r}"
            )
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {list(NORMS)}, got {self.norm!r}")
        if self.n_kv_heads is not None and (
            not isinstance(self.n_kv_heads, int)
            or not 1 <= self.n_kv_heads <= self.n_heads
            or self.n_heads % self.n_kv_heads
        ):
            raise ValueError(
                f"n_kv_heads={self.n_kv_heads!r} must divide n_heads={self.n_heads} (or be None)"
            )
        if self.positions == "rotary" and (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"rotary positions need an even head size, got d_model // n_heads = "
                f"{self.d_model // self.n_heads}"
            )
        if not self.rope_theta > 0:
            raise ValueError(f"rope_theta must be > 0, got {self.rope_theta}")
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {self.pooling!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        self.d_ff = 4 * self.d_model if self.d_ff is None else self.d_ff
        self.final_norm = self.norm_first if self.final_norm is None else self.final_norm
        self.n_encoder_layers = self.n_encoder_layers or self.n_layers
        self.n_decoder_layers = self.n_decoder_layers or self.n_layers


# --------------------------------------------------------------------------------------------
# Shared construction: the same parts for every family
# --------------------------------------------------------------------------------------------


def _embeddings(cfg: ModelConfig) -> Embeddings:
    return Embeddings(
        cfg.vocab_size,
        cfg.d_model,
        cfg.max_len,
        positions=cfg.positions,
        dropout=cfg.dropout,
        type_vocab_size=cfg.type_vocab_size,
        norm=cfg.embed_norm,
        layer_norm_eps=cfg.layer_norm_eps,
        scale=cfg.embed_scale,
        position_offset=cfg.position_offset,
    )


def _blocks(cfg: ModelConfig, n: int, *, cross_attention: bool = False) -> nn.ModuleList:
    return nn.ModuleList(
        TransformerBlock(
            cfg.d_model,
            cfg.n_heads,
            cfg.d_ff,
            dropout=cfg.dropout,
            norm_first=cfg.norm_first,
            cross_attention=cross_attention,
            activation=cfg.activation,
            layer_norm_eps=cfg.layer_norm_eps,
            bias=cfg.bias,
            norm=cfg.norm,
            n_kv_heads=cfg.n_kv_heads,
            rotary=cfg.positions == "rotary",
            rope_theta=cfg.rope_theta,
        )
        for _ in range(n)
    )


def _final_norm(cfg: ModelConfig) -> nn.Module:
    if cfg.final_norm:
        return make_norm(cfg.norm, cfg.d_model, cfg.layer_norm_eps, cfg.bias)
    return nn.Identity()


def _lm_head(cfg: ModelConfig, embeddings: Embeddings) -> LanguageModelHead:
    head = LanguageModelHead(
        cfg.d_model,
        cfg.vocab_size,
        bias=cfg.head_bias,
        transform=cfg.mlm_transform,
        activation=cfg.activation,
        layer_norm_eps=cfg.layer_norm_eps,
    )
    if cfg.tie_weights:
        head.proj.weight = embeddings.tok_emb.weight  # one (V, C) matrix reads and writes tokens
    return head


@torch.no_grad()
def _init_weights(model: nn.Module, n_layers: int) -> None:
    """GPT-2's initialisation: N(0, 0.02) weights, zero biases, unit norms, and the
    projections that write into the residual stream scaled by 1/sqrt(2 * layers), so the
    stream's variance does not grow with depth."""
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            std = 0.02
            if name.endswith(("out_proj", "fc2", "down_proj")):
                std /= math.sqrt(2 * n_layers)
            nn.init.normal_(module.weight, std=std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif hasattr(module, "weight") and name.endswith("pos_emb"):  # learned positions
            nn.init.normal_(module.weight, std=0.02)


def _encode(
    blocks: nn.ModuleList,
    norm: nn.Module,
    x: Tensor,
    key_padding_mask: Tensor | None,
    return_attention: bool,
) -> Tensor | tuple[Tensor, list[Tensor]]:
    """The encoder stack of Types C and A: embedded x (B, T, C) through every block, each
    token seeing every real token (only padding is hidden), then the final norm -> (B, T, C).

    ``return_attention=True`` also returns a list, one (B, H, T, T) tensor per layer.
    """
    attention = []
    for block in blocks:
        x = block(x, key_padding_mask=key_padding_mask, need_weights=return_attention)
        if return_attention:
            x, weights = x
            attention.append(weights["self"])
    x = norm(x)
    return (x, attention) if return_attention else x


def _check_ids(ids: Tensor, name: str = "ids") -> None:
    if ids.dim() != 2 or ids.is_floating_point():
        raise ValueError(
            f"{name} must be integer token ids (B, T), got {ids.dtype} {tuple(ids.shape)}"
        )


# --------------------------------------------------------------------------------------------
# Type C: encoder-only (BERT)
# --------------------------------------------------------------------------------------------


class EncoderModel(nn.Module):
    """Type C: every token sees every other (only padding is hidden). BERT-like.

    Submodules: ``embeddings``, ``blocks``, ``final_norm``, ``lm_head`` (masked-LM),
    ``classifier`` (a Linear(C, n_classes), when ``cfg.n_classes > 0``).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = _embeddings(cfg)
        self.blocks = _blocks(cfg, cfg.n_layers)
        self.final_norm = _final_norm(cfg)
        self.lm_head = _lm_head(cfg, self.embeddings)
        self.classifier = nn.Linear(cfg.d_model, cfg.n_classes) if cfg.n_classes else None
        _init_weights(self, cfg.n_layers)

    def forward(
        self,
        ids: Tensor,
        *,
        key_padding_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """ids (B, T) -> hidden states (B, T, C). ``key_padding_mask`` (B, T), True = padding.

        ``return_attention=True`` also returns a list, one (B, H, T, T) tensor per layer.
        """
        x = self.embeddings(ids, token_type_ids=token_type_ids)
        return _encode(self.blocks, self.final_norm, x, key_padding_mask, return_attention)

    def masked_lm_logits(
        self,
        ids: Tensor,
        *,
        key_padding_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        """ids (B, T) -> logits (B, T, V): at each position, which token was masked out."""
        return self.lm_head(
            self(ids, key_padding_mask=key_padding_mask, token_type_ids=token_type_ids)
        )

    def pool(
        self, hidden: Tensor, key_padding_mask: Tensor | None = None, *, pooling: str | None = None
    ) -> Tensor:
        """hidden (B, T, C) -> (B, C): the first ([CLS]) token, or the mean over real tokens."""
        pooling = pooling or self.config.pooling
        if pooling == "cls":
            return hidden[:, 0]
        if pooling != "mean":
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        if key_padding_mask is None:
            return hidden.mean(dim=1)
        real = (~key_padding_mask).unsqueeze(-1).to(hidden.dtype)  # (B, T, 1), 1 = real token
        return (hidden * real).sum(dim=1) / real.sum(dim=1).clamp(min=1.0)

    def classify(
        self, ids: Tensor, *, key_padding_mask: Tensor | None = None, pooling: str | None = None
    ) -> Tensor:
        """ids (B, T) -> class logits (B, n_classes), from the pooled hidden states."""
        if self.classifier is None:
            raise ValueError("this EncoderModel has no classifier: build it with cfg.n_classes > 0")
        hidden = self(ids, key_padding_mask=key_padding_mask)
        return self.classifier(self.pool(hidden, key_padding_mask, pooling=pooling))

    def embed(
        self,
        ids: Tensor,
        *,
        key_padding_mask: Tensor | None = None,
        pooling: str = "mean",
        normalize: bool = True,
    ) -> Tensor:
        """ids (B, T) -> sentence embeddings (B, C), unit length when ``normalize``.

        Compare two with a dot product (cosine similarity).
        """
        hidden = self(ids, key_padding_mask=key_padding_mask)
        vectors = self.pool(hidden, key_padding_mask, pooling=pooling)
        return F.normalize(vectors, dim=-1) if normalize else vectors

    @classmethod
    def from_bert(
        cls, bert: nn.Module | dict, *, n_heads: int | None = None, **overrides
    ) -> EncoderModel:
        """An EncoderModel with the config and weights of a Hugging Face ``BertForMaskedLM``
        (or its state dict, then with ``n_heads``). ``overrides`` set ModelConfig fields that
        a state dict cannot tell (``activation``, ``layer_norm_eps``) or that you want
        changed (``dropout``, ``n_classes``)."""
        return _from_bert(cls, bert, n_heads, overrides)


# --------------------------------------------------------------------------------------------
# Type B: decoder-only (GPT)
# --------------------------------------------------------------------------------------------


class DecoderModel(nn.Module):
    """Type B: token t sees tokens 0 .. t (a causal mask) and predicts token t + 1. GPT-like.

    Submodules: ``embeddings``, ``blocks``, ``final_norm``, ``lm_head``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = _embeddings(cfg)
        self.blocks = _blocks(cfg, cfg.n_layers)
        self.final_norm = _final_norm(cfg)
        self.lm_head = _lm_head(cfg, self.embeddings)
        _init_weights(self, cfg.n_layers)

    def forward(
        self,
        ids: Tensor,
        *,
        kv_cache: list[KVCache] | None = None,
        return_attention: bool = False,
        prefix_len: int | Tensor | None = None,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """ids (B, T) -> next-token logits (B, T, V).

        With ``kv_cache`` (from :meth:`new_cache`) ``ids`` are the tokens that follow the
        cached ones: positions continue from there and the cache grows by T.
        ``return_attention=True`` also returns a list, one (B, H, T, T_total) per layer.

        ``prefix_len`` switches the mask to a **prefix LM** (T5's third architecture): the
        first ``prefix_len`` positions (an int, or a (B,) tensor, one per row) see each other
        in both directions, as an encoder's do; every later position is causal, as before.
        A prefix must be fed whole in one call (with a cache: from an empty one).
        """
        start = 0 if kv_cache is None else len(kv_cache[0])
        mask = None
        if prefix_len is not None:
            mask = self._prefix_mask(ids, prefix_len, start)
        x = self.embeddings(ids, start_pos=start)
        attention = []
        for i, block in enumerate(self.blocks):
            cache = None if kv_cache is None else kv_cache[i]
            if mask is None:
                x = block(x, is_causal=True, kv_cache=cache, need_weights=return_attention)
            else:
                x = block(x, attn_mask=mask, kv_cache=cache, need_weights=return_attention)
            if return_attention:
                x, weights = x
                attention.append(weights["self"])
        logits = self.lm_head(self.final_norm(x))
        return (logits, attention) if return_attention else logits

    @staticmethod
    def _prefix_mask(ids: Tensor, prefix_len: int | Tensor, start: int) -> Tensor | None:
        """(B, 1, T, T) bool, True = may attend: causal, plus both ways inside the prefix."""
        b, t = ids.shape
        prefix = torch.as_tensor(prefix_len, device=ids.device)
        if prefix.dtype.is_floating_point or prefix.dim() > 1 or prefix.numel() not in (1, b):
            raise ValueError(f"prefix_len must be an int or a (B,) int tensor, got {prefix_len!r}")
        if bool((prefix < 0).any()):
            raise ValueError(f"prefix_len must be >= 0, got {prefix_len!r}")
        if start > 0:
            if bool((prefix > start).any()):
                raise ValueError("a prefix must be fed whole in one call (with an empty cache)")
            return None  # the prefix is already in the cache: the new tokens are causal
        pos = torch.arange(t, device=ids.device)
        causal = pos[None, :] <= pos[:, None]  # (T, T): query row sees keys up to itself
        inside = pos[None, :] < prefix.reshape(-1, 1)  # (B or 1, T): inside the prefix
        both = inside[:, :, None] & inside[:, None, :]  # (B or 1, T, T)
        return (causal[None] | both)[:, None].expand(b, 1, t, t)

    def new_cache(self) -> list[KVCache]:
        """An empty KV cache, one :class:`~course_utils.layers.KVCache` per block."""
        return [KVCache() for _ in self.blocks]

    @torch.no_grad()
    def generate(
        self,
        ids: Tensor,
        max_new_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        use_cache: bool = True,
        eos_id: int | None = None,
    ) -> Tensor:
        """Continue ids (B, T) by ``max_new_tokens`` sampled tokens -> (B, T + max_new_tokens).

        ``temperature=0`` is greedy (argmax); ``top_k`` / ``top_p`` keep the k most likely
        tokens / the smallest set whose probability reaches p (see :func:`sample_next`).
        ``seed`` makes the samples reproducible without touching the global generator. The
        model sees at most ``max_len`` tokens: longer contexts are cropped to the last
        ``max_len``. With ``use_cache`` each step feeds only the newest token; once the
        context is full the window slides, every position shifts, and the cache is rebuilt
        from the cropped context, so cached and uncached runs give the same logits.
        ``eos_id`` (off by default): a sequence that produced it is padded with it, and
        generation stops early once every sequence has.
        """
        _check_ids(ids)
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        was_training = self.training
        self.eval()
        generator = None
        if seed is not None:
            generator = torch.Generator(device=ids.device).manual_seed(seed)
        block = self.config.max_len
        cache, done = None, torch.zeros(ids.size(0), dtype=torch.bool, device=ids.device)
        for _ in range(max_new_tokens):
            if not use_cache:
                logits = self(ids[:, -block:])
            elif cache is None or len(cache[0]) >= block:  # start, or the window slides
                cache = self.new_cache()
                logits = self(ids[:, -block:], kv_cache=cache)
            else:
                logits = self(ids[:, -1:], kv_cache=cache)
            next_id = sample_next(logits[:, -1], temperature, top_k, top_p, generator)
            if eos_id is not None:
                next_id = next_id.masked_fill(done, eos_id)
                done = done | (next_id == eos_id)
            ids = torch.cat([ids, next_id[:, None]], dim=1)
            if eos_id is not None and bool(done.all()):
                break
        self.train(was_training)
        return ids

    @classmethod
    def from_gpt2(
        cls, gpt2: nn.Module | dict, *, n_heads: int | None = None, **overrides
    ) -> DecoderModel:
        """A DecoderModel with the config and weights of a Hugging Face ``GPT2LMHeadModel``
        (or its state dict, then with ``n_heads``). ``overrides`` set ModelConfig fields that
        a state dict cannot tell (``activation``, ``layer_norm_eps``) or that you want
        changed (``dropout``)."""
        return _from_gpt2(cls, gpt2, n_heads, overrides)

    @classmethod
    def from_llama(
        cls,
        llama: nn.Module | dict,
        *,
        n_heads: int | None = None,
        n_kv_heads: int | None = None,
        **overrides,
    ) -> DecoderModel:
        """A DecoderModel with the config and weights of a Hugging Face ``LlamaForCausalLM``
        (or its state dict, then with ``n_heads``; ``n_kv_heads`` is read off the key
        projection's shape). The model is GPT-2's plan with ``norm="rmsnorm"``,
        ``positions="rotary"``, ``activation="swiglu"``, ``bias=False`` and ``n_kv_heads``.

        A state dict cannot tell ``rope_theta`` (default 10000; Llama 3 uses 500000),
        ``layer_norm_eps`` (Hugging Face's ``rms_norm_eps``, default 1e-6; Llama 2 and 3
        use 1e-5) or ``max_len`` (default 2048): pass them as ``overrides``, which set any
        ModelConfig field. Config fields with no equivalent here (rope scaling, biases in
        attention or MLP, a head size other than hidden_size / heads...) are named in one
        error. Works for Mistral-style models too when they use none of those.
        """
        return _from_llama(cls, llama, n_heads, n_kv_heads, overrides)


def sample_next(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick one token per row of logits (B, V) -> (B,) ids.

    temperature 0: argmax. Otherwise logits / temperature; ``top_k`` keeps the k largest;
    ``top_p`` keeps the most likely tokens until their probability sums to at least p
    (nucleus sampling; the most likely token always stays). Then sample from the softmax.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        logits = nucleus_filter(logits, top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def nucleus_filter(logits: Tensor, top_p: float) -> Tensor:
    """Top-p: logits (..., V) with every token outside the nucleus set to -inf (a new tensor).

    A token is dropped when the tokens more likely than it already hold probability >= p;
    the most likely token always stays, and ``top_p=1`` keeps every token. Computed as
    Hugging Face's ``TopPLogitsWarper`` does: sorted from least to most likely, a token is
    dropped when it and every less likely token hold at most 1 - p. Summing from the top
    instead (``cumsum - probs >= p``) rounds past 1 in float32 and drops real tokens at p = 1.
    """
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    sorted_logits, order = torch.sort(logits, dim=-1)
    total = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)  # it and all less likely
    drop = total <= 1 - top_p
    drop[..., -1] = False
    return logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))


# --------------------------------------------------------------------------------------------
# Type A: encoder-decoder (BART, T5, the 2017 Transformer)
# --------------------------------------------------------------------------------------------


class EncoderDecoderModel(nn.Module):
    """Type A: an encoder reads the source; a causal decoder writes the target, each of its
    blocks attending to the encoder's output (cross-attention). BART-like.

    Submodules: ``encoder_embeddings``, ``encoder`` (blocks), ``encoder_norm``,
    ``decoder_embeddings`` (its ``tok_emb`` is the encoder's: one vocabulary), ``decoder``
    (blocks with cross-attention), ``decoder_norm``, ``lm_head``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder_embeddings = _embeddings(cfg)
        self.encoder = _blocks(cfg, cfg.n_encoder_layers)
        self.encoder_norm = _final_norm(cfg)
        self.decoder_embeddings = _embeddings(cfg)
        self.decoder_embeddings.tok_emb = self.encoder_embeddings.tok_emb  # shared vocabulary
        self.decoder = _blocks(cfg, cfg.n_decoder_layers, cross_attention=True)
        self.decoder_norm = _final_norm(cfg)
        self.lm_head = _lm_head(cfg, self.decoder_embeddings)
        _init_weights(self, cfg.n_encoder_layers + cfg.n_decoder_layers)

    def encode(
        self,
        src_ids: Tensor,
        *,
        src_padding_mask: Tensor | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """src_ids (B, Ts) -> memory (B, Ts, C). Run once per source, however long the output.

        ``return_attention=True`` also returns a list, one (B, H, Ts, Ts) per layer.
        """
        x = self.encoder_embeddings(src_ids)
        return _encode(self.encoder, self.encoder_norm, x, src_padding_mask, return_attention)

    def decode(
        self,
        tgt_ids: Tensor,
        memory: Tensor,
        *,
        src_padding_mask: Tensor | None = None,
        tgt_padding_mask: Tensor | None = None,
        kv_cache: list[tuple[KVCache, KVCache]] | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, list[dict[str, Tensor]]]:
        """tgt_ids (B, Tt), memory (B, Ts, C) -> next-token logits (B, Tt, V).

        ``kv_cache`` (from :meth:`new_cache`): ``tgt_ids`` follow the cached tokens; the
        cross-attention keys of the memory are computed on the first call and reused.
        ``tgt_padding_mask`` must then cover the cached tokens too (B, T_cached + Tt).
        ``return_attention=True`` also returns one dict per layer: "self" (B, H, Tt, Tt) and
        "cross" (B, H, Tt, Ts), the heat maps of which source tokens each output token read.
        """
        start = 0 if kv_cache is None else len(kv_cache[0][0])
        x = self.decoder_embeddings(tgt_ids, start_pos=start)
        attention = []
        for i, block in enumerate(self.decoder):
            self_cache, cross_cache = (None, None) if kv_cache is None else kv_cache[i]
            x = block(
                x,
                is_causal=True,
                key_padding_mask=tgt_padding_mask,
                context=memory,
                context_key_padding_mask=src_padding_mask,
                kv_cache=self_cache,
                context_kv_cache=cross_cache,
                need_weights=return_attention,
            )
            if return_attention:
                x, weights = x
                attention.append(weights)
        logits = self.lm_head(self.decoder_norm(x))
        return (logits, attention) if return_attention else logits

    def forward(
        self,
        src_ids: Tensor,
        tgt_ids: Tensor,
        *,
        src_padding_mask: Tensor | None = None,
        tgt_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """src_ids (B, Ts), tgt_ids (B, Tt) -> logits (B, Tt, V) (teacher forcing)."""
        memory = self.encode(src_ids, src_padding_mask=src_padding_mask)
        return self.decode(
            tgt_ids, memory, src_padding_mask=src_padding_mask, tgt_padding_mask=tgt_padding_mask
        )

    def new_cache(self) -> list[tuple[KVCache, KVCache]]:
        """An empty cache: per decoder block, (self-attention cache, cross-attention cache)."""
        return [(KVCache(), KVCache(static=True)) for _ in self.decoder]

    def _decoding_ids(self, bos_id: int | None, eos_id: int | None) -> tuple[int, int | None, int]:
        bos_id = self.config.bos_id if bos_id is None else bos_id
        eos_id = self.config.eos_id if eos_id is None else eos_id
        if bos_id is None:
            raise ValueError("decoding needs a start token: pass bos_id= or set cfg.bos_id")
        pad_id = self.config.pad_id
        pad_id = pad_id if pad_id is not None else (eos_id if eos_id is not None else bos_id)
        return bos_id, eos_id, pad_id

    @torch.no_grad()
    def greedy_decode(
        self,
        src_ids: Tensor,
        *,
        max_new_tokens: int | None = None,
        src_padding_mask: Tensor | None = None,
        bos_id: int | None = None,
        eos_id: int | None = None,
        use_cache: bool = True,
    ) -> Tensor:
        """src_ids (B, Ts) -> output ids (B, 1 + n): bos, then the most likely token each step.

        Stops when every sequence has produced ``eos_id`` (tokens after it are ``cfg.pad_id``,
        or eos when there is none) or after ``max_new_tokens`` (default ``max_len - 1``).
        The encoder runs once; with ``use_cache`` each step feeds only the newest token.
        For heat maps, run ``decode(output, memory, return_attention=True)`` on the result.
        """
        _check_ids(src_ids, "src_ids")
        bos_id, eos_id, pad_id = self._decoding_ids(bos_id, eos_id)
        max_new_tokens = self.config.max_len - 1 if max_new_tokens is None else max_new_tokens
        was_training = self.training
        self.eval()
        memory = self.encode(src_ids, src_padding_mask=src_padding_mask)
        out = torch.full((src_ids.size(0), 1), bos_id, dtype=torch.long, device=src_ids.device)
        done = torch.zeros(src_ids.size(0), dtype=torch.bool, device=src_ids.device)
        cache = self.new_cache() if use_cache else None
        for _ in range(max_new_tokens):
            step_ids = out[:, -1:] if use_cache else out
            logits = self.decode(
                step_ids, memory, src_padding_mask=src_padding_mask, kv_cache=cache
            )
            next_id = logits[:, -1].argmax(dim=-1).masked_fill(done, pad_id)
            out = torch.cat([out, next_id[:, None]], dim=1)
            if eos_id is not None:
                done = done | (next_id == eos_id)
                if bool(done.all()):
                    break
        self.train(was_training)
        return out

    @torch.no_grad()
    def beam_search(
        self,
        src_ids: Tensor,
        *,
        beam_size: int = 4,
        max_new_tokens: int | None = None,
        src_padding_mask: Tensor | None = None,
        length_penalty: float = 1.0,
        bos_id: int | None = None,
        eos_id: int | None = None,
        use_cache: bool = True,
        return_scores: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """src_ids (B, Ts) -> the best output per source (B, 1 + n), starting with bos.

        Keeps the ``beam_size`` most likely partial outputs per source. A hypothesis ends at
        ``eos_id``; its score is its total log-probability divided by its length (tokens
        after bos, eos included) to the power ``length_penalty`` (1: mean log-probability per
        token; 0: no normalisation, which favours short outputs). A source is done once it
        has ``beam_size`` finished hypotheses and its best live beam, scored at its current
        length, does not beat the worst of them: Hugging Face's ``generate(...,
        early_stopping=False)`` rule. That is a heuristic, not a guarantee: with
        ``length_penalty > 0`` a live beam's normalised score still rises as it grows, so a
        longer output could have won (``early_stopping="never"`` would score live beams at
        the longest length instead). Otherwise a source stops after ``max_new_tokens``
        (default ``max_len - 1``), when live beams count as finished. Outputs are padded with
        ``cfg.pad_id`` (or eos). ``return_scores=True`` also returns the (B,) normalised
        scores. ``beam_size=1`` is greedy decoding.
        """
        _check_ids(src_ids, "src_ids")
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        bos_id, eos_id, pad_id = self._decoding_ids(bos_id, eos_id)
        max_new_tokens = self.config.max_len - 1 if max_new_tokens is None else max_new_tokens
        was_training = self.training
        self.eval()
        b, k, device = src_ids.size(0), beam_size, src_ids.device
        memory = self.encode(src_ids, src_padding_mask=src_padding_mask)
        memory = memory.repeat_interleave(k, dim=0)  # (B*K, Ts, C): beams of source i together
        mask = None if src_padding_mask is None else src_padding_mask.repeat_interleave(k, dim=0)
        seqs = torch.full((b * k, 1), bos_id, dtype=torch.long, device=device)
        scores = torch.full((b, k), float("-inf"), device=device)
        scores[:, 0] = 0.0  # at the start all beams are the same: expand only the first
        finished: list[list[tuple[float, Tensor]]] = [[] for _ in range(b)]
        done = [False] * b
        cache = self.new_cache() if use_cache else None

        def norm(score: float, length: int) -> float:
            return score / length**length_penalty

        for step in range(1, max_new_tokens + 1):
            step_ids = seqs[:, -1:] if use_cache else seqs
            logits = self.decode(step_ids, memory, src_padding_mask=mask, kv_cache=cache)
            logp = torch.log_softmax(logits[:, -1].float(), dim=-1)  # (B*K, V)
            vocab = logp.size(-1)
            total = (scores.unsqueeze(-1) + logp.view(b, k, vocab)).view(b, k * vocab)
            top_scores, top_index = total.topk(min(2 * k, k * vocab), dim=-1)  # (B, 2K)
            top_scores, top_index = top_scores.tolist(), top_index.tolist()
            new_rows, new_tokens, new_scores = [], [], []
            for i in range(b):
                kept = []
                for score, index in zip(top_scores[i], top_index[i]):
                    beam, token = divmod(index, vocab)
                    if done[i] or score == float("-inf"):
                        break
                    if eos_id is not None and token == eos_id:
                        seq = torch.cat([seqs[i * k + beam], seqs.new_tensor([token])])
                        finished[i].append((norm(score, step), seq))
                    else:
                        kept.append((score, beam, token))
                    if len(kept) == k:
                        break
                while len(kept) < k:  # done sources (or tiny vocabularies) keep dummy beams
                    kept.append((float("-inf"), 0, pad_id))
                for score, beam, token in kept:
                    new_rows.append(i * k + beam)
                    new_tokens.append(token)
                    new_scores.append(score)
                if not done[i] and len(finished[i]) >= k:
                    worst = sorted(s for s, _ in finished[i])[-k]
                    best_live = max(s for s, _, _ in kept)
                    done[i] = best_live == float("-inf") or norm(best_live, step) <= worst
            rows = torch.tensor(new_rows, device=device)
            seqs = torch.cat([seqs[rows], torch.tensor(new_tokens, device=device)[:, None]], 1)
            scores = torch.tensor(new_scores, device=device).view(b, k)
            if cache is not None:
                for self_cache, _ in cache:  # cross-attention caches are the same for all beams
                    self_cache.reorder(rows)
            if all(done):
                break

        best = []
        for i in range(b):
            if not done[i]:  # ran out of steps: live beams compete as they are
                for j in range(k):
                    if scores[i, j] > float("-inf"):
                        length = seqs.size(1) - 1
                        finished[i].append((norm(scores[i, j].item(), length), seqs[i * k + j]))
            best.append(max(finished[i], key=lambda pair: pair[0]))
        width = max(seq.numel() for _, seq in best)
        out = torch.full((b, width), pad_id, dtype=torch.long, device=device)
        for i, (_, seq) in enumerate(best):
            out[i, : seq.numel()] = seq
        self.train(was_training)
        if return_scores:
            return out, torch.tensor([s for s, _ in best], device=device)
        return out

    @classmethod
    def from_bart(
        cls, bart: nn.Module | dict, *, n_heads: int | None = None, **overrides
    ) -> EncoderDecoderModel:
        """An EncoderDecoderModel with the config and weights of a Hugging Face
        ``BartForConditionalGeneration`` (or its state dict, then with ``n_heads``).
        ``overrides`` set ModelConfig fields that a state dict cannot tell (``activation``,
        ``embed_scale``, ``bos_id``...) or that you want changed (``dropout``)."""
        return _from_bart(cls, bart, n_heads, overrides)


# --------------------------------------------------------------------------------------------
# Loading Hugging Face models (GPT-2, BERT, BART, Llama): config fields, then tensor names
# --------------------------------------------------------------------------------------------

_HF_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
}


def _hf_source(obj: nn.Module | dict, kind: str, n_heads: int | None):
    """(state dict, HF config or None) from a Hugging Face model or a state dict."""
    if isinstance(obj, dict):
        if n_heads is None:
            raise ValueError(
                f"a {kind} state dict does not say how many attention heads there are: "
                f"pass n_heads="
            )
        return {k: v for k, v in obj.items()}, None
    if not isinstance(obj, nn.Module) or not hasattr(obj, "config"):
        raise ValueError(
            f"expected a Hugging Face {kind} model or its state dict, got {type(obj).__name__}"
        )
    return obj.state_dict(), obj.config


def _override(cfg: ModelConfig, overrides: dict) -> ModelConfig:
    unknown = sorted(set(overrides) - set(ModelConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(f"not ModelConfig fields: {', '.join(unknown)}")
    return dataclasses.replace(cfg, **overrides)


def _check_unmapped(kind: str, problems: list[str]) -> None:
    if problems:
        raise ValueError(
            f"cannot map these {kind} config fields onto ModelConfig: " + "; ".join(problems)
        )


def _activation(name: str, field: str, problems: list[str]) -> str:
    if name not in _HF_ACTIVATIONS:
        problems.append(f"{field}={name!r} (supported: {sorted(_HF_ACTIVATIONS)})")
        return "gelu"
    return _HF_ACTIVATIONS[name]


@torch.no_grad()
def _copy_weights(
    model: nn.Module,
    state: dict[str, Tensor],
    mapping: dict[str, tuple[list[str], bool]],
    kind: str,
    ignore: tuple[str, ...] = (),
) -> None:
    """Copy ``state`` into ``model``: ``mapping[ours] = ([their names], transpose)``; several
    names are concatenated along dim 0 (Q, K, V into the fused ``in_proj``; with grouped-query
    attention K and V have fewer rows than Q). Raises one clear
    error for the first tensor that is missing or does not fit, and for tensors left over."""
    used = set()
    ours = model.state_dict()
    for name, target in ours.items():
        if name.startswith("classifier."):
            continue  # a new task head: it stays as initialised
        if name not in mapping:
            raise ValueError(f"{kind}: nothing to load into {name!r} (an override it cannot map?)")
        theirs, transpose = mapping[name]
        parts = []
        for their_name in theirs:
            if their_name not in state:
                raise ValueError(f"{kind}: no tensor {their_name!r} (needed for {name!r})")
            t = state[their_name].t() if transpose else state[their_name]
            # One tensor fills ``target``; stacked parts (Q, K, V) fill its rows together.
            rows = target.size(0) if len(theirs) == 1 else t.size(0) if t.dim() else -1
            want = (rows, *target.shape[1:])
            if tuple(t.shape) != want:
                expected = tuple(reversed(want)) if transpose else want
                raise ValueError(
                    f"{kind}: tensor {their_name!r} has shape {tuple(state[their_name].shape)},"
                    f" expected {expected} for {name!r}"
                )
            parts.append(t)
            used.add(their_name)
        value = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
        if value.shape != target.shape:
            shapes = ", ".join(f"{n} {tuple(state[n].shape)}" for n in theirs)
            raise ValueError(
                f"{kind}: {shapes} stack to {tuple(value.shape)}, expected "
                f"{tuple(target.shape)} for {name!r}"
            )
        target.copy_(value)
    left = [n for n in state if n not in used and not n.endswith(ignore)]
    if left:
        raise ValueError(
            f"{kind}: tensors with no place in this model (a config field it cannot map?): "
            + ", ".join(left[:5])
            + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        )


def _tied(state: dict[str, Tensor], a: str, b: str) -> bool:
    return (
        a in state
        and b in state
        and state[a].shape == state[b].shape
        and torch.equal(state[a], state[b])
    )


def _qkv(prefix: str, q: str, k: str, v: str, kind: str = "weight") -> list[str]:
    return [f"{prefix}{q}.{kind}", f"{prefix}{k}.{kind}", f"{prefix}{v}.{kind}"]


def _linear(mapping: dict, ours: str, theirs: str, *, bias: bool = True, transpose: bool = False):
    mapping[f"{ours}.weight"] = ([f"{theirs}.weight"], transpose)
    if bias:
        mapping[f"{ours}.bias"] = ([f"{theirs}.bias"], False)


def _from_gpt2(cls, gpt2, n_heads, overrides):
    state, hf = _hf_source(gpt2, "GPT-2", n_heads)
    problems: list[str] = []
    if hf is not None:
        for field, ok in [
            ("scale_attn_weights", True),
            ("scale_attn_by_inverse_layer_idx", False),
            ("add_cross_attention", False),
        ]:
            if getattr(hf, field, ok) != ok:
                problems.append(f"{field}={getattr(hf, field)!r} (only {ok!r})")
        cfg = ModelConfig(
            vocab_size=hf.vocab_size,
            d_model=hf.n_embd,
            n_heads=hf.n_head,
            n_layers=hf.n_layer,
            d_ff=hf.n_inner or 4 * hf.n_embd,
            max_len=hf.n_positions,
            dropout=hf.resid_pdrop,
            activation=_activation(hf.activation_function, "activation_function", problems),
            layer_norm_eps=hf.layer_norm_epsilon,
            tie_weights=bool(getattr(hf, "tie_word_embeddings", True)),
            bos_id=hf.bos_token_id,
            eos_id=hf.eos_token_id,
        )
        _check_unmapped("GPT2Config", problems)
    else:
        wte, wpe = state["transformer.wte.weight"], state["transformer.wpe.weight"]
        n_layers = len({k.split(".")[2] for k in state if k.startswith("transformer.h.")})
        cfg = ModelConfig(
            vocab_size=wte.size(0),
            d_model=wte.size(1),
            n_heads=n_heads,
            n_layers=n_layers,
            d_ff=state["transformer.h.0.mlp.c_fc.weight"].size(1),
            max_len=wpe.size(0),
            activation="gelu_tanh",
            tie_weights=_tied(state, "lm_head.weight", "transformer.wte.weight"),
        )
    model = cls(_override(cfg, overrides))
    m = {
        "embeddings.tok_emb.weight": (["transformer.wte.weight"], False),
        "embeddings.pos_emb.weight": (["transformer.wpe.weight"], False),
        "lm_head.proj.weight": (["lm_head.weight"], False),
    }
    _linear(m, "final_norm", "transformer.ln_f")
    for i in range(cfg.n_layers):
        ours, theirs = f"blocks.{i}", f"transformer.h.{i}"
        _linear(m, f"{ours}.attn_norm", f"{theirs}.ln_1")
        _linear(m, f"{ours}.self_attn.in_proj", f"{theirs}.attn.c_attn", transpose=True)
        _linear(m, f"{ours}.self_attn.out_proj", f"{theirs}.attn.c_proj", transpose=True)
        _linear(m, f"{ours}.ffn_norm", f"{theirs}.ln_2")
        _linear(m, f"{ours}.ffn.fc1", f"{theirs}.mlp.c_fc", transpose=True)
        _linear(m, f"{ours}.ffn.fc2", f"{theirs}.mlp.c_proj", transpose=True)
    _copy_weights(model, state, m, "GPT-2", ignore=(".attn.bias", ".attn.masked_bias"))
    return model


def _from_bert(cls, bert, n_heads, overrides):
    state, hf = _hf_source(bert, "BERT", n_heads)
    problems: list[str] = []
    common = dict(
        norm_first=False,
        final_norm=False,
        embed_norm=True,
        mlm_transform=True,
        head_bias=True,
    )
    if hf is not None:
        for field, ok in [
            ("position_embedding_type", "absolute"),
            ("is_decoder", False),
            ("add_cross_attention", False),
        ]:
            if getattr(hf, field, ok) != ok:
                problems.append(f"{field}={getattr(hf, field)!r} (only {ok!r})")
        cfg = ModelConfig(
            vocab_size=hf.vocab_size,
            d_model=hf.hidden_size,
            n_heads=hf.num_attention_heads,
            n_layers=hf.num_hidden_layers,
            d_ff=hf.intermediate_size,
            max_len=hf.max_position_embeddings,
            dropout=hf.hidden_dropout_prob,
            activation=_activation(hf.hidden_act, "hidden_act", problems),
            layer_norm_eps=hf.layer_norm_eps,
            type_vocab_size=hf.type_vocab_size,
            tie_weights=bool(getattr(hf, "tie_word_embeddings", True)),
            pad_id=hf.pad_token_id,
            **common,
        )
        _check_unmapped("BertConfig", problems)
    else:
        words = state["bert.embeddings.word_embeddings.weight"]
        n_layers = len({k.split(".")[3] for k in state if k.startswith("bert.encoder.layer.")})
        cfg = ModelConfig(
            vocab_size=words.size(0),
            d_model=words.size(1),
            n_heads=n_heads,
            n_layers=n_layers,
            d_ff=state["bert.encoder.layer.0.intermediate.dense.weight"].size(0),
            max_len=state["bert.embeddings.position_embeddings.weight"].size(0),
            layer_norm_eps=1e-12,
            type_vocab_size=state["bert.embeddings.token_type_embeddings.weight"].size(0),
            tie_weights=_tied(
                state, "cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"
            ),
            **common,
        )
    model = cls(_override(cfg, overrides))
    e = "bert.embeddings"
    m = {
        "embeddings.tok_emb.weight": ([f"{e}.word_embeddings.weight"], False),
        "embeddings.pos_emb.weight": ([f"{e}.position_embeddings.weight"], False),
        "embeddings.type_emb.weight": ([f"{e}.token_type_embeddings.weight"], False),
        "lm_head.proj.weight": (["cls.predictions.decoder.weight"], False),
        "lm_head.proj.bias": (["cls.predictions.bias"], False),
    }
    _linear(m, "embeddings.norm", f"{e}.LayerNorm")
    _linear(m, "lm_head.transform", "cls.predictions.transform.dense")
    _linear(m, "lm_head.norm", "cls.predictions.transform.LayerNorm")
    for i in range(cfg.n_layers):
        ours, theirs = f"blocks.{i}", f"bert.encoder.layer.{i}"
        att = f"{theirs}.attention.self."
        m[f"{ours}.self_attn.in_proj.weight"] = (_qkv(att, "query", "key", "value"), False)
        m[f"{ours}.self_attn.in_proj.bias"] = (_qkv(att, "query", "key", "value", "bias"), False)
        _linear(m, f"{ours}.self_attn.out_proj", f"{theirs}.attention.output.dense")
        _linear(m, f"{ours}.attn_norm", f"{theirs}.attention.output.LayerNorm")
        _linear(m, f"{ours}.ffn.fc1", f"{theirs}.intermediate.dense")
        _linear(m, f"{ours}.ffn.fc2", f"{theirs}.output.dense")
        _linear(m, f"{ours}.ffn_norm", f"{theirs}.output.LayerNorm")
    ignore = ("position_ids", "token_type_ids", "cls.predictions.decoder.bias")
    _copy_weights(model, state, m, "BERT", ignore=ignore)
    return model


def _from_bart(cls, bart, n_heads, overrides):
    state, hf = _hf_source(bart, "BART", n_heads)
    if "final_logits_bias" in state:  # a (1, V) buffer in Hugging Face, a (V,) bias here
        state["final_logits_bias"] = state["final_logits_bias"].reshape(-1)
    problems: list[str] = []
    common = dict(norm_first=False, final_norm=False, embed_norm=True, head_bias=True)
    if hf is not None:
        for a, b in [
            ("encoder_attention_heads", "decoder_attention_heads"),
            ("encoder_ffn_dim", "decoder_ffn_dim"),
        ]:
            if getattr(hf, a) != getattr(hf, b):
                problems.append(f"{a}={getattr(hf, a)} != {b}={getattr(hf, b)} (must be equal)")
        for field in ("add_final_layer_norm", "normalize_before", "add_bias_logits"):
            if getattr(hf, field, False):
                problems.append(f"{field}=True (not supported)")
        cfg = ModelConfig(
            vocab_size=hf.vocab_size,
            d_model=hf.d_model,
            n_heads=hf.encoder_attention_heads,
            n_layers=max(hf.encoder_layers, hf.decoder_layers),
            n_encoder_layers=hf.encoder_layers,
            n_decoder_layers=hf.decoder_layers,
            d_ff=hf.encoder_ffn_dim,
            max_len=hf.max_position_embeddings,
            dropout=hf.dropout,
            activation=_activation(hf.activation_function, "activation_function", problems),
            embed_scale=math.sqrt(hf.d_model) if hf.scale_embedding else 1.0,
            position_offset=2,
            tie_weights=bool(getattr(hf, "tie_word_embeddings", True)),
            pad_id=hf.pad_token_id,
            bos_id=hf.decoder_start_token_id,
            eos_id=hf.eos_token_id,
            **common,
        )
        _check_unmapped("BartConfig", problems)
    else:
        shared = state["model.shared.weight"]
        count = lambda side: len(  # noqa: E731
            {k.split(".")[3] for k in state if k.startswith(f"model.{side}.layers.")}
        )
        cfg = ModelConfig(
            vocab_size=shared.size(0),
            d_model=shared.size(1),
            n_heads=n_heads,
            n_layers=max(count("encoder"), count("decoder")),
            n_encoder_layers=count("encoder"),
            n_decoder_layers=count("decoder"),
            d_ff=state["model.encoder.layers.0.fc1.weight"].size(0),
            max_len=state["model.encoder.embed_positions.weight"].size(0) - 2,
            position_offset=2,
            tie_weights=_tied(state, "lm_head.weight", "model.shared.weight"),
            **common,
        )
    model = cls(_override(cfg, overrides))
    m = {
        "encoder_embeddings.tok_emb.weight": (["model.shared.weight"], False),
        "decoder_embeddings.tok_emb.weight": (["model.shared.weight"], False),
        "lm_head.proj.weight": (["lm_head.weight"], False),
        "lm_head.proj.bias": (["final_logits_bias"], False),
    }
    for side, n in (("encoder", cfg.n_encoder_layers), ("decoder", cfg.n_decoder_layers)):
        m[f"{side}_embeddings.pos_emb.weight"] = ([f"model.{side}.embed_positions.weight"], False)
        _linear(m, f"{side}_embeddings.norm", f"model.{side}.layernorm_embedding")
        for i in range(n):
            ours, theirs = f"{side}.{i}", f"model.{side}.layers.{i}"
            attentions = [("self_attn", "self_attn", "self_attn_layer_norm", "attn_norm")]
            if side == "decoder":
                attentions.append(
                    ("cross_attn", "encoder_attn", "encoder_attn_layer_norm", "cross_norm")
                )
            for our_attn, their_attn, their_norm, our_norm in attentions:
                p = f"{theirs}.{their_attn}."
                m[f"{ours}.{our_attn}.in_proj.weight"] = (
                    _qkv(p, "q_proj", "k_proj", "v_proj"),
                    False,
                )
                m[f"{ours}.{our_attn}.in_proj.bias"] = (
                    _qkv(p, "q_proj", "k_proj", "v_proj", "bias"),
                    False,
                )
                _linear(m, f"{ours}.{our_attn}.out_proj", f"{p}out_proj")
                _linear(m, f"{ours}.{our_norm}", f"{theirs}.{their_norm}")
            _linear(m, f"{ours}.ffn.fc1", f"{theirs}.fc1")
            _linear(m, f"{ours}.ffn.fc2", f"{theirs}.fc2")
            _linear(m, f"{ours}.ffn_norm", f"{theirs}.final_layer_norm")
    ignore = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
    _copy_weights(model, state, m, "BART", ignore=ignore)
    return model


def _rope_theta(hf, problems: list[str]) -> float:
    """Llama's rotary base, from ``rope_parameters`` (transformers >= 5) or ``rope_theta``
    and ``rope_scaling`` (4.x); any scaling (linear, dynamic, yarn, llama3...) is a problem."""
    params = getattr(hf, "rope_parameters", None)
    if params is None:  # transformers 4.x
        scaling = getattr(hf, "rope_scaling", None)
        params = dict(scaling or {}, rope_theta=getattr(hf, "rope_theta", 10000.0))
        field = "rope_scaling"
    else:
        field = "rope_parameters"
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type != "default":
        problems.append(f"{field} with rope_type={rope_type!r} (only plain rotary, 'default')")
    return float(params.get("rope_theta", 10000.0))


def _from_llama(cls, llama, n_heads, n_kv_heads, overrides):
    state, hf = _hf_source(llama, "Llama", n_heads)
    problems: list[str] = []
    common = dict(
        norm="rmsnorm",
        positions="rotary",
        activation="swiglu",
        bias=False,
        final_norm=True,
    )
    if hf is not None:
        d, heads = hf.hidden_size, hf.num_attention_heads
        kv_heads = getattr(hf, "num_key_value_heads", None) or heads
        for name, given, theirs in [
            ("n_heads", n_heads, heads),
            ("n_kv_heads", n_kv_heads, kv_heads),
        ]:
            if given is not None and given != theirs:
                problems.append(f"{name}={given} given, but the model has {theirs}")
        if hf.hidden_act != "silu":
            problems.append(f"hidden_act={hf.hidden_act!r} (SwiGLU needs 'silu')")
        for field in ("attention_bias", "mlp_bias"):
            if getattr(hf, field, False):
                problems.append(f"{field}=True (a Llama block here has no biases)")
        head_dim = getattr(hf, "head_dim", None) or d // heads
        if head_dim * heads != d:
            problems.append(f"head_dim={head_dim} (only hidden_size / num_attention_heads)")
        if getattr(hf, "pretraining_tp", 1) != 1:
            problems.append(f"pretraining_tp={hf.pretraining_tp} (only 1)")
        if getattr(hf, "attention_dropout", 0.0):
            problems.append(f"attention_dropout={hf.attention_dropout} (only 0)")
        theta = _rope_theta(hf, problems)
        eos = hf.eos_token_id
        eos = eos[0] if isinstance(eos, (list, tuple)) else eos  # Llama 3 lists several
        cfg = ModelConfig(
            vocab_size=hf.vocab_size,
            d_model=d,
            n_heads=heads,
            n_kv_heads=kv_heads,
            n_layers=hf.num_hidden_layers,
            d_ff=hf.intermediate_size,
            max_len=hf.max_position_embeddings,
            layer_norm_eps=hf.rms_norm_eps,
            rope_theta=theta,
            tie_weights=bool(getattr(hf, "tie_word_embeddings", False)),
            pad_id=hf.pad_token_id,
            bos_id=hf.bos_token_id,
            eos_id=eos,
            **common,
        )
        _check_unmapped("LlamaConfig", problems)
    else:
        emb = state["model.embed_tokens.weight"]
        d = emb.size(1)
        k_rows = state["model.layers.0.self_attn.k_proj.weight"].size(0)
        kv_heads = k_rows // (d // n_heads) if d % n_heads == 0 else None
        if n_kv_heads is not None and n_kv_heads != kv_heads:
            raise ValueError(
                f"n_kv_heads={n_kv_heads} given, but k_proj has {k_rows} rows: "
                f"{kv_heads} key/value heads of {d // n_heads} channels"
            )
        n_layers = len({k.split(".")[2] for k in state if k.startswith("model.layers.")})
        cfg = ModelConfig(
            vocab_size=emb.size(0),
            d_model=d,
            n_heads=n_heads,
            n_kv_heads=kv_heads,
            n_layers=n_layers,
            d_ff=state["model.layers.0.mlp.gate_proj.weight"].size(0),
            max_len=2048,
            layer_norm_eps=1e-6,
            tie_weights="lm_head.weight" not in state
            or _tied(state, "lm_head.weight", "model.embed_tokens.weight"),
            **common,
        )
    cfg = _override(cfg, overrides)
    model = cls(cfg)
    # A tied head may be missing from a state dict (safetensors files drop the copy).
    head = "lm_head.weight" if "lm_head.weight" in state else "model.embed_tokens.weight"
    m = {
        "embeddings.tok_emb.weight": (["model.embed_tokens.weight"], False),
        "lm_head.proj.weight": ([head], False),
        "final_norm.weight": (["model.norm.weight"], False),
    }
    for i in range(cfg.n_layers):
        ours, theirs = f"blocks.{i}", f"model.layers.{i}"
        m[f"{ours}.attn_norm.weight"] = ([f"{theirs}.input_layernorm.weight"], False)
        att = f"{theirs}.self_attn."
        m[f"{ours}.self_attn.in_proj.weight"] = (_qkv(att, "q_proj", "k_proj", "v_proj"), False)
        _linear(m, f"{ours}.self_attn.out_proj", f"{att}o_proj", bias=False)
        m[f"{ours}.ffn_norm.weight"] = ([f"{theirs}.post_attention_layernorm.weight"], False)
        for proj in ("gate_proj", "up_proj", "down_proj"):
            _linear(m, f"{ours}.ffn.{proj}", f"{theirs}.mlp.{proj}", bias=False)
    _copy_weights(model, state, m, "Llama", ignore=("rotary_emb.inv_freq",))
    return model
