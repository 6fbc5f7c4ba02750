"""Reference transformer layers, built from scratch; every lab after 02 imports them.

The file reads top to bottom in the order the course builds things: masks, attention,
multi-head attention, feed-forward, the block, positions and embeddings. The parts that
decoders changed after GPT-2 (Llama and its relatives) are switches of the same modules:
:class:`RMSNorm` for LayerNorm, rotary positions (:func:`rotary_cos_sin`,
:func:`apply_rotary`) inside attention instead of a position table, the gated :class:`SwiGLU`
feed-forward, grouped-query attention (``n_kv_heads``, :func:`repeat_kv`), no biases.

Shapes in docstrings: B batch, T sequence length (Tq queries, Tk keys), C = d_model channels,
H heads, D = C // H channels per head, Hkv key/value heads (grouped-query attention; H by
default), V vocabulary size.

Mask conventions (the one thing to get right)
---------------------------------------------
Every ``attn_mask`` in this file is a **bool tensor where True means "may attend"**, the same
convention as :func:`torch.nn.functional.scaled_dot_product_attention`. It must broadcast to
(B, H, Tq, Tk). The one exception is ``key_padding_mask``, which keeps PyTorch's
``nn.MultiheadAttention`` convention: (B, Tk) bool, **True means "this key is padding, ignore
it"**. :func:`padding_mask` converts between the two.

Beware when you compare with PyTorch's own layers: ``nn.MultiheadAttention``,
``nn.TransformerEncoderLayer`` and ``nn.TransformerDecoderLayer`` read a bool ``attn_mask``
the *other* way round (True = ignore). Pass ``~mask`` to them.

A query whose every key is masked (say, a sequence that is all padding) has nothing to attend
to; softmax over all -inf is NaN. Here such a row gives an output of **zeros** and attention
weights of zeros, in both the plain and the fast path, so that one padded row cannot poison a
whole batch (NaN spreads through every later layer and into the loss).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "scaled_dot_product_attention",
    "causal_mask",
    "padding_mask",
    "combine_masks",
    "split_heads",
    "merge_heads",
    "repeat_kv",
    "KVCache",
    "MultiHeadAttention",
    "FeedForward",
    "SwiGLU",
    "RMSNorm",
    "make_norm",
    "TransformerBlock",
    "sinusoidal_positions",
    "rotary_cos_sin",
    "rotate_half",
    "apply_rotary",
    "LearnedPositionalEmbedding",
    "SinusoidalPositionalEmbedding",
    "Embeddings",
    "LanguageModelHead",
    "count_parameters",
]


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------


def causal_mask(
    t_q: int, t_k: int | None = None, *, device: torch.device | str | None = None
) -> Tensor:
    """Bool (t_q, t_k) mask, True where query i may attend key j: on and below the diagonal.

    With a KV cache the queries are the *last* t_q positions of a sequence of t_k keys, so the
    diagonal is aligned to the end: query i may see keys 0 .. i + (t_k - t_q). For t_q == t_k
    this is the usual lower triangle. (PyTorch's ``is_causal=True`` aligns to the top-left
    instead; the two agree only when t_q == t_k.)
    """
    t_k = t_q if t_k is None else t_k
    if t_q < 1 or t_k < 1:
        raise ValueError(f"causal_mask needs t_q >= 1 and t_k >= 1, got t_q={t_q}, t_k={t_k}")
    if t_k < t_q:
        raise ValueError(
            f"causal_mask needs t_k >= t_q (the keys include every query's own position), "
            f"got t_q={t_q}, t_k={t_k}"
        )
    ones = torch.ones(t_q, t_k, dtype=torch.bool, device=device)
    return torch.tril(ones, diagonal=t_k - t_q)


def padding_mask(x: Tensor, *, pad_id: int | None = None, max_len: int | None = None) -> Tensor:
    """Turn padding information into a (B, 1, 1, Tk) "may attend" mask (True = real token).

    ``x`` may be any of:

    * a bool (B, Tk) ``key_padding_mask`` with **True = padding** (PyTorch's
      ``nn.MultiheadAttention`` convention, True = IGNORE);
    * an integer (B, Tk) tensor of token ids, together with ``pad_id``;
    * an integer (B,) tensor of lengths (right padding), with optional ``max_len``
      (default: the longest length).

    The result uses the *opposite* convention, that of ``F.scaled_dot_product_attention``'s
    bool ``attn_mask``: **True = ATTEND**. The two singleton dimensions broadcast over heads
    and queries: padding hides a key from every query.
    """
    if x.dtype == torch.bool:
        if x.dim() != 2:
            raise ValueError(f"a bool key_padding_mask must be (B, Tk), got {tuple(x.shape)}")
        is_pad = x
    elif not x.is_floating_point() and not x.is_complex():
        if x.dim() == 2:
            if pad_id is None:
                raise ValueError("padding_mask got token ids (B, Tk) but no pad_id; pass pad_id=")
            is_pad = x == pad_id
        elif x.dim() == 1:
            if pad_id is not None:
                raise ValueError("padding_mask got lengths (B,); pad_id only applies to token ids")
            t_k = int(x.max()) if max_len is None else max_len
            is_pad = torch.arange(t_k, device=x.device)[None, :] >= x[:, None]
        else:
            raise ValueError(f"token ids must be (B, Tk) and lengths (B,), got {tuple(x.shape)}")
    else:
        raise ValueError(
            f"padding_mask takes a bool key_padding_mask, token ids or lengths, got {x.dtype}"
        )
    return ~is_pad[:, None, None, :]


def combine_masks(*masks: Tensor | None) -> Tensor | None:
    """AND together "may attend" masks, broadcasting; None means "no restriction".

    Returns None when every mask is None, so callers can keep PyTorch's fast unmasked path.
    """
    result = None
    for m in masks:
        if m is None:
            continue
        _check_bool(m, "mask")
        result = m if result is None else result & m
    return result


def _check_bool(mask: Tensor, name: str) -> None:
    if mask.dtype != torch.bool:
        raise ValueError(
            f"{name} must be a bool tensor (True = may attend), got {mask.dtype}. An additive "
            f"float mask (0 / -inf) converts with `mask == 0`."
        )


def _check_broadcast(mask: Tensor, target: tuple[int, ...], name: str, hint: str) -> None:
    """Raise unless ``mask`` broadcasts to exactly ``target`` (no extra dims, no growth)."""
    ok = mask.dim() <= len(target)
    if ok:
        try:
            ok = torch.broadcast_shapes(mask.shape, target) == torch.Size(target)
        except RuntimeError:
            ok = False
    if not ok:
        raise ValueError(
            f"{name} of shape {tuple(mask.shape)} does not broadcast to {hint} = {target}"
        )


def _guard_empty_rows(mask: Tensor) -> tuple[Tensor, Tensor]:
    """Let fully masked query rows attend everywhere (no NaN), and say which rows they were.

    The caller zeroes those rows afterwards. Doing it *before* softmax, not with nan_to_num
    after, also keeps the gradients finite: softmax's backward through a NaN row is NaN.
    """
    empty = ~mask.any(dim=-1, keepdim=True)  # (..., Tq, 1)
    return mask | empty, empty


# --------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    training: bool = False,
) -> tuple[Tensor, Tensor]:
    """softmax(Q K^T / sqrt(D)) V, spelled out. Returns (out, weights).

    q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) -> out (..., Tq, Dv), weights (..., Tq, Tk);
    usually ... is (B, H). ``attn_mask``: bool, True = may attend, broadcastable to
    (..., Tq, Tk). ``is_causal`` adds :func:`causal_mask` (end-aligned, see there).

    Fully masked rows give zero output and zero weights (PyTorch's fused kernel gives NaN
    there on some versions and devices; :class:`MultiHeadAttention` guards it the same way).
    The weights returned are the ones used, i.e. after dropout when ``training``.
    """
    if q.dim() < 2 or q.shape[:-2] != k.shape[:-2] or k.shape[:-1] != v.shape[:-1]:
        raise ValueError(
            f"expected q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) with the "
            f"same leading dims, got {tuple(q.shape)}, {tuple(k.shape)}, "
            f"{tuple(v.shape)}"
        )
    if q.size(-1) != k.size(-1):
        raise ValueError(f"q and k need the same last dim D, got {q.size(-1)} and {k.size(-1)}")
    mask = _attention_mask(attn_mask, is_causal, (*q.shape[:-1], k.size(-2)), q.device)

    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., Tq, Tk)
    if mask is not None:
        mask, empty = _guard_empty_rows(mask)
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights.masked_fill(empty, 0.0)
    if training and dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights


def _attention_mask(
    attn_mask: Tensor | None, is_causal: bool, target: tuple[int, ...], device: torch.device
) -> Tensor | None:
    """Validate ``attn_mask`` against (..., Tq, Tk) and fold in the causal mask."""
    if attn_mask is not None:
        _check_bool(attn_mask, "attn_mask")
        _check_broadcast(attn_mask, target, "attn_mask", "(..., Tq, Tk)")
    if is_causal:
        attn_mask = combine_masks(attn_mask, causal_mask(target[-2], target[-1], device=device))
    return attn_mask


def _fast_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, is_causal: bool, dropout_p: float
) -> Tensor:
    """The same maths through PyTorch's fused kernel (flash / memory-efficient on a GPU)."""
    t_q, t_k = q.size(-2), k.size(-2)
    if mask is None and (not is_causal or t_q == t_k):
        # No explicit mask: the kernel can skip masked blocks entirely.
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=is_causal)
    if is_causal:  # our causal mask is end-aligned, PyTorch's is_causal is not: pass it in full
        mask = combine_masks(mask, causal_mask(t_q, t_k, device=q.device))
    mask, empty = _guard_empty_rows(mask)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    return out.masked_fill(empty, 0.0)


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """(B, T, C) -> (B, H, T, C/H): head h gets channels h*D .. (h+1)*D - 1."""
    b, t, c = x.shape
    if c % n_heads != 0:
        raise ValueError(f"channels C={c} are not divisible by n_heads={n_heads}")
    return x.view(b, t, n_heads, c // n_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, D) -> (B, T, H*D), the inverse of :func:`split_heads`."""
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, Hkv, T, D) -> (B, Hkv * n_rep, T, D): each key/value head serves n_rep query heads.

    Grouped-query attention: query head h reads key/value head ``h // n_rep``, so the copies
    of one key/value head sit next to each other (Hugging Face's ``repeat_kv``; the same as
    ``x.repeat_interleave(n_rep, dim=1)``). ``n_rep=1`` returns ``x`` itself.
    """
    if n_rep == 1:
        return x
    b, h_kv, t, d = x.shape
    return x[:, :, None].expand(b, h_kv, n_rep, t, d).reshape(b, h_kv * n_rep, t, d)


class KVCache:
    """The keys and values one attention layer has already computed, for fast decoding.

    Generating token t+1 needs the keys and values of tokens 0 .. t. Without a cache the model
    recomputes them all at every step; with one, each step computes only the new token's and
    appends them here. ``k`` and ``v`` are (B, Hkv, T_past, D), or None before the first step:
    with grouped-query attention only the Hkv key/value heads are stored (that is the memory
    it saves), with rotary positions the keys are stored already rotated.

    * self-attention: :meth:`MultiHeadAttention.forward` appends every call's new keys;
    * cross-attention (``static=True``): the keys come from the encoder's output, which does
      not change while decoding, so they are computed once, on the first call, and reused.

    :meth:`reorder` picks batch rows (beam search keeps the cache of the surviving beams).
    """

    def __init__(self, *, static: bool = False) -> None:
        self.static = static
        self.k: Tensor | None = None
        self.v: Tensor | None = None

    def __len__(self) -> int:
        """Number of cached positions."""
        return 0 if self.k is None else self.k.size(-2)

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append (B, Hkv, T_new, D) keys and values; return all (B, Hkv, T_past + T_new, D)."""
        if self.k is not None:
            k, v = torch.cat([self.k, k], dim=-2), torch.cat([self.v, v], dim=-2)
        self.k, self.v = k, v
        return k, v

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows ``index`` (B_new,) in this order, e.g. the beams that survive."""
        if self.k is not None:
            self.k, self.v = self.k.index_select(0, index), self.v.index_select(0, index)


class _Projection:
    """Rows of the fused ``in_proj`` (W_q, W_k or W_v), with the interface of an ``nn.Linear``.

    ``weight`` and ``bias`` are views of the fused parameters, so ``proj.weight.copy_(w)``
    (under ``torch.no_grad()``) writes into the model and ``proj(x)`` trains it. (When
    ``in_proj`` is wrapped, say by :class:`~course_utils.lora.LoRALinear`, these are the base
    weights: the adapters act only through ``in_proj`` itself.)
    """

    def __init__(self, fused: nn.Module, rows: slice) -> None:
        self._fused, self._rows = fused, rows
        self.in_features, self.out_features = fused.in_features, rows.stop - rows.start

    @property
    def weight(self) -> Tensor:
        return self._fused.weight[self._rows]

    @property
    def bias(self) -> Tensor | None:
        return None if self._fused.bias is None else self._fused.bias[self._rows]

    def __call__(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def __repr__(self) -> str:
        return (
            f"_Projection(in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, rows {self._rows.start}..{self._rows.stop - 1} "
            "of in_proj)"
        )


class MultiHeadAttention(nn.Module):
    """Multi-head self- or cross-attention, batch first.

    Queries come from ``x`` (B, Tq, C); keys and values from ``context`` (B, Tk, C), or from
    ``x`` itself when ``context`` is None (self-attention). The three input projections W_q,
    W_k, W_v are stored stacked in one Linear, ``in_proj`` (weight (3C, C), rows [0, C) for
    queries, [C, 2C) keys, [2C, 3C) values: the layout of PyTorch's ``in_proj_weight``), so
    self-attention makes Q, K and V with **one** matmul. ``q_proj``, ``k_proj``, ``v_proj``
    are each third, usable like an ``nn.Linear`` (``.weight``, ``.bias``, call), and a state
    dict with separate ``q_proj.weight`` ... keys loads too. ``out_proj`` mixes the heads.
    Dropout acts on the attention weights, as in ``nn.MultiheadAttention``; residual dropout
    belongs to the block.

    ``fast=True`` runs ``F.scaled_dot_product_attention``; ``fast=False`` the plain
    :func:`scaled_dot_product_attention`. Both give the same numbers to float32 rounding.

    Two switches of the decoders after GPT-2 (both off by default):

    * ``n_kv_heads`` (grouped-query attention): only Hkv key/value heads, each shared by
      H / Hkv query heads (:func:`repeat_kv`); ``n_kv_heads=1`` is multi-query attention,
      ``None`` (= ``n_heads``) ordinary multi-head attention. ``in_proj`` is then
      (C + 2 Hkv D, C): rows [0, C) W_q, the next Hkv D rows W_k, the last Hkv D rows W_v, and
      a :class:`KVCache` stores only the Hkv heads.
    * ``rotary=True`` (self-attention only): queries and keys are rotated by their positions
      (:func:`apply_rotary`, base ``rope_theta``) before the scores, so a score depends on
      how far apart two tokens are. With a cache, positions continue after the cached ones.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        dropout: float = 0.0,
        bias: bool = True,
        fast: bool = True,
        n_kv_heads: int | None = None,
        rotary: bool = False,
        rope_theta: float = 10000.0,
    ) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(
                f"d_model={d_model} is not divisible by n_heads={n_heads}; each "
                f"head gets d_model // n_heads channels"
            )
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if not 1 <= n_kv_heads <= n_heads or n_heads % n_kv_heads:
            raise ValueError(
                f"n_kv_heads={n_kv_heads} must divide n_heads={n_heads}: each key/value head "
                f"serves the same number of query heads"
            )
        if rotary and (d_model // n_heads) % 2:
            raise ValueError(
                f"rotary positions rotate pairs of channels: the head size d_model // n_heads ="
                f" {d_model // n_heads} must be even"
            )
        self.d_model, self.n_heads, self.dropout, self.fast = d_model, n_heads, dropout, fast
        self.n_kv_heads, self.rotary, self.rope_theta = n_kv_heads, rotary, rope_theta
        kv = n_kv_heads * (d_model // n_heads)  # channels of the keys (and of the values)
        self.in_proj = nn.Linear(d_model, d_model + 2 * kv, bias=bias)  # W_q, W_k, W_v stacked
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self._register_load_state_dict_pre_hook(_fuse_qkv_keys)

    @property
    def _kv_channels(self) -> int:
        return self.n_kv_heads * (self.d_model // self.n_heads)

    @property
    def q_proj(self) -> _Projection:
        return _Projection(self.in_proj, slice(0, self.d_model))

    @property
    def k_proj(self) -> _Projection:
        c, kv = self.d_model, self._kv_channels
        return _Projection(self.in_proj, slice(c, c + kv))

    @property
    def v_proj(self) -> _Projection:
        c, kv = self.d_model, self._kv_channels
        return _Projection(self.in_proj, slice(c + kv, c + 2 * kv))

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        attn_mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
        kv_cache: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, Tq, C), context (B, Tk, C) or None -> (out (B, Tq, C), weights or None).

        attn_mask: bool, True = may attend, (Tq, Tk) or (B, 1 or H, Tq, Tk).
        key_padding_mask: bool (B, Tk), True = padding (PyTorch's convention).
        is_causal: hide future keys (end-aligned :func:`causal_mask`).
        need_weights: use the plain path and also return weights (B, H, Tq, Tk).
        kv_cache: a :class:`KVCache`; Tk then counts the cached keys too (masks must cover
        them). A static (cross-attention) cache computes keys from ``context`` once.
        The cache holds (B, Hkv, Tk, D) keys and values; they are repeated to H heads here.
        """
        b, t_q, c = x.shape if x.dim() == 3 else (0, 0, -1)
        if c != self.d_model:
            raise ValueError(f"x must be (B, T, C={self.d_model}), got {tuple(x.shape)}")
        h, h_kv = self.n_heads, self.n_kv_heads
        if context is None:  # self-attention: Q, K and V in one matmul
            qkv = self.in_proj(x)
            if h_kv == h:  # (the fewest operations: decoding one token is overhead-bound)
                q, k, v = qkv.view(b, t_q, 3, h, c // h).unbind(2)  # (B, T, H, D) each
                q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            else:
                kv = self._kv_channels
                q, k, v = qkv.split([c, kv, kv], dim=-1)
                q, k, v = _heads(q, h), _heads(k, h_kv), _heads(v, h_kv)  # (B, H / Hkv, T, D)
            if self.rotary:  # positions continue after the cached tokens
                start = 0 if kv_cache is None else len(kv_cache)
                cos, sin = rotary_cos_sin(
                    t_q, c // h, self.rope_theta, start, device=x.device, dtype=q.dtype
                )
                q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
            if kv_cache is not None:
                k, v = kv_cache.update(k, v)
        else:
            if self.rotary:
                raise ValueError("rotary positions apply to self-attention only (no context)")
            self._check_context(context, b)
            fused = isinstance(self.in_proj, nn.Linear)
            w, bias = (self.in_proj.weight, self.in_proj.bias) if fused else (None, None)
            # A wrapped in_proj (LoRA adapters) is called whole, so that its adapters act.
            q = F.linear(x, w[:c], None if bias is None else bias[:c]) if fused else None
            q = _heads(self.in_proj(x)[..., :c] if q is None else q, h)  # (B, H, Tq, D)
            if kv_cache is not None and kv_cache.static and kv_cache.k is not None:
                k, v = kv_cache.k, kv_cache.v  # the encoder's keys, computed on the first step
            else:
                if fused:
                    kv_out = F.linear(context, w[c:], None if bias is None else bias[c:])
                else:
                    kv_out = self.in_proj(context)[..., c:]
                k, v = kv_out.chunk(2, dim=-1)
                k, v = _heads(k, h_kv), _heads(v, h_kv)
                if kv_cache is not None:
                    k, v = kv_cache.update(k, v)
        if h_kv != h:  # grouped-query attention: each key/value head serves h // h_kv queries
            k, v = repeat_kv(k, h // h_kv), repeat_kv(v, h // h_kv)
        t_k = k.size(-2)
        mask = None
        if attn_mask is not None or key_padding_mask is not None:
            mask = self._mask(attn_mask, key_padding_mask, b, t_q, t_k)
        if is_causal and t_q == 1 and mask is None:
            is_causal = False  # one new query sees every cached key: nothing to hide
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights or not self.fast:
            y, weights = scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=p, training=self.training
            )
        else:
            y = _fast_attention(q, k, v, mask, is_causal, p)
        out = self.out_proj(y.transpose(1, 2).reshape(b, t_q, c))  # merge heads
        return out, (weights if need_weights else None)

    def _check_context(self, context: Tensor, b: int) -> None:
        if context.dim() != 3 or context.size(-1) != self.d_model:
            raise ValueError(
                f"context must be (B, T, C={self.d_model}), got {tuple(context.shape)}"
            )
        if context.size(0) != b:
            raise ValueError(
                f"x and context need the same batch size, got {b} and {context.size(0)}"
            )

    def _mask(
        self, attn_mask: Tensor | None, key_padding_mask: Tensor | None, b: int, t_q: int, t_k: int
    ) -> Tensor:
        """Check the masks (only when some are given) and AND them into one "may attend"."""
        if attn_mask is not None:
            _check_bool(attn_mask, "attn_mask")
            if attn_mask.dim() not in (2, 4):
                # A 3-D mask would broadcast (B, Tq, Tk) as (1, B, Tq, Tk): batch on the heads.
                raise ValueError(
                    f"attn_mask must be (Tq, Tk) = {(t_q, t_k)} or (B, 1 or H, Tq, Tk),"
                    f" got {tuple(attn_mask.shape)}"
                )
            _check_broadcast(attn_mask, (b, self.n_heads, t_q, t_k), "attn_mask", "(B, H, Tq, Tk)")
        if key_padding_mask is not None:
            _check_bool(key_padding_mask, "key_padding_mask")
            if tuple(key_padding_mask.shape) != (b, t_k):
                raise ValueError(
                    f"key_padding_mask must be (B, Tk) = {(b, t_k)} with True = "
                    f"padding, got {tuple(key_padding_mask.shape)}"
                )
            key_padding_mask = padding_mask(key_padding_mask)
        return combine_masks(attn_mask, key_padding_mask)

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of an ``nn.MultiheadAttention`` into this module; returns self."""
        if self.n_kv_heads != self.n_heads or self.rotary:
            raise ValueError("nn.MultiheadAttention has no grouped-query or rotary attention")
        if (mha.embed_dim, mha.num_heads) != (self.d_model, self.n_heads):
            raise ValueError(
                f"shape mismatch: torch has embed_dim={mha.embed_dim}, num_heads="
                f"{mha.num_heads}; this has d_model={self.d_model}, n_heads="
                f"{self.n_heads}"
            )
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("kdim/vdim, add_bias_kv and add_zero_attn are not supported")
        if (mha.in_proj_bias is None) != (self.in_proj.bias is None):
            raise ValueError("bias mismatch between nn.MultiheadAttention and this module")
        # Same layout: in_proj_weight is (3C, C), rows [0, C) W_q, [C, 2C) W_k, [2C, 3C) W_v.
        self.in_proj.weight.copy_(mha.in_proj_weight)
        if mha.in_proj_bias is not None:
            self.in_proj.bias.copy_(mha.in_proj_bias)
        _copy_params(self.out_proj, mha.out_proj)
        return self

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention, *, fast: bool = True) -> MultiHeadAttention:
        """A new module with the configuration and weights of an ``nn.MultiheadAttention``."""
        module = cls(
            mha.embed_dim,
            mha.num_heads,
            dropout=mha.dropout,
            bias=mha.in_proj_bias is not None,
            fast=fast,
        )
        w = mha.out_proj.weight
        return module.to(device=w.device, dtype=w.dtype).load_from_torch(mha)


def _heads(x: Tensor, n_heads: int) -> Tensor:
    """(B, T, n_heads * D) -> (B, n_heads, T, D), a view (the channels may be a slice)."""
    b, t, _ = x.shape
    return x.view(b, t, n_heads, -1).transpose(1, 2)


def _fuse_qkv_keys(state_dict, prefix, *args) -> None:
    """Load hook: turn separate ``q_proj``/``k_proj``/``v_proj`` entries into ``in_proj``."""
    for kind in ("weight", "bias"):
        names = [f"{prefix}{p}_proj.{kind}" for p in "qkv"]
        if all(n in state_dict for n in names):
            state_dict[f"{prefix}in_proj.{kind}"] = torch.cat([state_dict.pop(n) for n in names])


@torch.no_grad()
def _copy_params(dst: nn.Linear | nn.LayerNorm, src: nn.Linear | nn.LayerNorm) -> None:
    if dst.weight.shape != src.weight.shape or (dst.bias is None) != (src.bias is None):
        raise ValueError(f"cannot copy {src} into {dst}: shapes or bias differ")
    dst.weight.copy_(src.weight)
    if src.bias is not None:
        dst.bias.copy_(src.bias)


# --------------------------------------------------------------------------------------------
# Feed-forward and the block
# --------------------------------------------------------------------------------------------

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,  # exact erf GELU, as nn.TransformerEncoderLayer(activation="gelu")
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),  # GPT-2's approximation ("gelu_new")
}


class FeedForward(nn.Module):
    """Position-wise MLP: fc1 (C -> d_ff) -> activation -> fc2 (d_ff -> C) -> dropout.

    (B, T, C) -> (B, T, C). ``fc1``/``fc2`` are ``linear1``/``linear2`` in PyTorch's layers.
    PyTorch also drops out after the activation; here, as in nanoGPT, only the output is
    dropped. In eval mode the two agree exactly.
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        *,
        dropout: float = 0.0,
        activation: str = "gelu",
        bias: bool = True,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.act = _ACTIVATIONS[activation]()
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return _dropout(self.dropout, self.fc2(self.act(self.fc1(x))))


class SwiGLU(nn.Module):
    """The gated feed-forward of Llama (Shazeer 2020): down(silu(gate(x)) * up(x)) -> dropout.

    (B, T, C) -> (B, T, C). Three Linears, named as in Hugging Face's Llama: ``gate_proj`` and
    ``up_proj`` (C -> d_ff) and ``down_proj`` (d_ff -> C). ``d_ff`` is the hidden width
    (Llama's ``intermediate_size``); models usually pick it near 8/3 C so that the three
    matrices cost about what FeedForward's two of width 4 C cost.
    """

    def __init__(self, d_model: int, d_ff: int, *, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_ff, bias=bias)
        self.up_proj = nn.Linear(d_model, d_ff, bias=bias)
        self.down_proj = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = F.silu(self.gate_proj(x)) * self.up_proj(x)  # (B, T, d_ff)
        return _dropout(self.dropout, self.down_proj(h))


class RMSNorm(nn.Module):
    """Root-mean-square norm (Zhang and Sennrich 2019; Llama): x / rms(x) * weight.

    (..., C) -> (..., C), rms(x) = sqrt(mean(x^2 over C) + eps). Unlike LayerNorm it neither
    subtracts the mean nor adds a bias. Computed in float32 and cast back, as Hugging Face's
    ``LlamaRMSNorm`` does (same numbers in half precision). ``weight`` (C,) starts at ones.
    """

    def __init__(self, d_model: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: Tensor) -> Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, eps={self.eps}"


NORMS = ("layernorm", "rmsnorm")


def make_norm(kind: str, d_model: int, eps: float = 1e-5, bias: bool = True) -> nn.Module:
    """``nn.LayerNorm`` ("layernorm", with a bias unless ``bias=False``) or :class:`RMSNorm`."""
    if kind == "layernorm":
        return nn.LayerNorm(d_model, eps=eps, bias=bias)
    if kind == "rmsnorm":
        return RMSNorm(d_model, eps=eps)
    raise ValueError(f"norm must be one of {list(NORMS)}, got {kind!r}")


def _dropout(module: nn.Dropout, x: Tensor) -> Tensor:
    """``module(x)``, skipped when it would do nothing (eval mode or p = 0)."""
    return module(x) if module.training and module.p > 0 else x


class TransformerBlock(nn.Module):
    """One transformer layer: self-attention, optional cross-attention, feed-forward.

    * encoder block (BERT): ``cross_attention=False``, bidirectional;
    * GPT block: the same with ``is_causal=True`` in forward;
    * decoder block of the original Transformer: ``cross_attention=True`` (self-attention,
      cross-attention to ``context``, feed-forward).

    Each sub-layer has a residual connection and a norm. ``norm_first=True`` (pre-norm,
    GPT-2 and most modern models: x + f(norm(x))) trains stably without warm-up;
    ``norm_first=False`` (post-norm, the 2017 paper, BERT and BART: norm(x + f(x))).
    Submodules: ``self_attn``, ``attn_norm``, ``cross_attn``, ``cross_norm`` (only with
    cross-attention), ``ffn``, ``ffn_norm``.

    Llama's block is this one with ``norm="rmsnorm"``, ``activation="swiglu"`` (``ffn`` is
    then a :class:`SwiGLU`), ``bias=False``, ``rotary=True`` and optionally ``n_kv_heads``
    (these go to the self-attention; cross-attention has neither rotary positions nor
    grouped heads).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        *,
        dropout: float = 0.0,
        norm_first: bool = True,
        cross_attention: bool = False,
        activation: str = "gelu",
        layer_norm_eps: float = 1e-5,
        bias: bool = True,
        norm: str = "layernorm",
        n_kv_heads: int | None = None,
        rotary: bool = False,
        rope_theta: float = 10000.0,
    ) -> None:
        super().__init__()
        self.norm_first, self.cross_attention = norm_first, cross_attention
        self.self_attn = MultiHeadAttention(
            d_model,
            n_heads,
            dropout=dropout,
            bias=bias,
            n_kv_heads=n_kv_heads,
            rotary=rotary,
            rope_theta=rope_theta,
        )
        self.attn_norm = make_norm(norm, d_model, layer_norm_eps, bias)
        if cross_attention:
            self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias)
            self.cross_norm = make_norm(norm, d_model, layer_norm_eps, bias)
        if activation == "swiglu":
            self.ffn = SwiGLU(d_model, d_ff, dropout=dropout, bias=bias)
        else:
            self.ffn = FeedForward(d_model, d_ff, dropout=dropout, activation=activation, bias=bias)
        self.ffn_norm = make_norm(norm, d_model, layer_norm_eps, bias)
        self.dropout = nn.Dropout(dropout)  # on each attention output, before the residual add

    def forward(
        self,
        x: Tensor,
        *,
        context: Tensor | None = None,
        attn_mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
        context_key_padding_mask: Tensor | None = None,
        context_attn_mask: Tensor | None = None,
        kv_cache: KVCache | None = None,
        context_kv_cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """x (B, T, C), context (B, Tk, C) for cross-attention -> (B, T, C).

        ``attn_mask``/``key_padding_mask``/``is_causal`` apply to self-attention,
        ``context_attn_mask``/``context_key_padding_mask`` to cross-attention; conventions as in
        :class:`MultiHeadAttention` (attn masks True = attend, key padding True = padding).
        ``kv_cache`` / ``context_kv_cache``: :class:`KVCache` of the self- / cross-attention.
        ``need_weights=True`` returns ``(out, weights)``, weights a dict with "self" (and
        "cross") attention weights (B, H, T, Tk), for plots.
        """
        if self.cross_attention and context is None:
            raise ValueError("this block has cross_attention=True: pass context=(B, Tk, C)")
        if not self.cross_attention and (
            context is not None
            or context_key_padding_mask is not None
            or context_attn_mask is not None
        ):
            raise ValueError("context given to a block built with cross_attention=False")
        weights = {}
        pre = self.norm_first  # pre-norm: x + f(norm(x)); post-norm: norm(x + f(x))

        h = self.attn_norm(x) if pre else x
        h, weights["self"] = self.self_attn(
            h,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            is_causal=is_causal,
            kv_cache=kv_cache,
            need_weights=need_weights,
        )
        x = x + _dropout(self.dropout, h) if pre else self.attn_norm(x + _dropout(self.dropout, h))

        if self.cross_attention:
            h = self.cross_norm(x) if pre else x
            h, weights["cross"] = self.cross_attn(
                h,
                context,
                attn_mask=context_attn_mask,
                key_padding_mask=context_key_padding_mask,
                kv_cache=context_kv_cache,
                need_weights=need_weights,
            )
            x = (
                x + _dropout(self.dropout, h)
                if pre
                else self.cross_norm(x + _dropout(self.dropout, h))
            )

        x = x + self.ffn(self.ffn_norm(x)) if pre else self.ffn_norm(x + self.ffn(x))
        return (x, weights) if need_weights else x

    @torch.no_grad()
    def load_from_torch_layer(
        self, layer: nn.TransformerEncoderLayer | nn.TransformerDecoderLayer
    ) -> TransformerBlock:
        """Copy weights from a PyTorch encoder/decoder layer of the same shape; returns self.

        Mapping: self_attn -> self_attn, multihead_attn -> cross_attn, linear1/linear2 ->
        ffn.fc1/fc2, norm1 -> attn_norm, and norm2 -> ffn_norm (encoder) or norm2/norm3 ->
        cross_norm/ffn_norm (decoder). Note: this block is batch first, whatever the layer's
        ``batch_first``.
        """
        is_decoder = isinstance(layer, nn.TransformerDecoderLayer)
        if not is_decoder and not isinstance(layer, nn.TransformerEncoderLayer):
            raise ValueError(
                f"expected nn.TransformerEncoderLayer or nn.TransformerDecoderLayer,"
                f" got {type(layer).__name__}"
            )
        if is_decoder != self.cross_attention or layer.norm_first != self.norm_first:
            raise ValueError(
                f"layer has decoder={is_decoder}, norm_first={layer.norm_first}; "
                f"this block has cross_attention={self.cross_attention}, "
                f"norm_first={self.norm_first}"
            )
        if not isinstance(self.ffn, FeedForward) or not all(
            isinstance(n, nn.LayerNorm) for n in (self.attn_norm, self.ffn_norm)
        ):
            raise ValueError("PyTorch's layers have LayerNorms and a two-layer feed-forward")
        if _activation_name(layer.activation) != _activation_name(self.ffn.act):
            raise ValueError("activation differs between the layer and this block")
        self.self_attn.load_from_torch(layer.self_attn)
        _copy_params(self.ffn.fc1, layer.linear1)
        _copy_params(self.ffn.fc2, layer.linear2)
        _copy_params(self.attn_norm, layer.norm1)
        if is_decoder:
            self.cross_attn.load_from_torch(layer.multihead_attn)
            _copy_params(self.cross_norm, layer.norm2)
            _copy_params(self.ffn_norm, layer.norm3)
        else:
            _copy_params(self.ffn_norm, layer.norm2)
        return self

    @classmethod
    def from_torch(
        cls, layer: nn.TransformerEncoderLayer | nn.TransformerDecoderLayer
    ) -> TransformerBlock:
        """A new block with the configuration and weights of a PyTorch layer."""
        attn = layer.self_attn
        block = cls(
            attn.embed_dim,
            attn.num_heads,
            layer.linear1.out_features,
            dropout=layer.dropout.p,
            norm_first=layer.norm_first,
            cross_attention=isinstance(layer, nn.TransformerDecoderLayer),
            activation=_activation_name(layer.activation),
            layer_norm_eps=layer.norm1.eps,
            bias=layer.linear1.bias is not None,
        )
        w = layer.linear1.weight
        return block.to(device=w.device, dtype=w.dtype).load_from_torch_layer(layer)


def _activation_name(act: object) -> str:
    """Name of a PyTorch layer's activation (a function or a module) in ``_ACTIVATIONS``."""
    if act is F.relu or isinstance(act, nn.ReLU):
        return "relu"
    if act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
        return "gelu"
    if isinstance(act, nn.GELU) and act.approximate == "tanh":
        return "gelu_tanh"
    raise ValueError(f"unsupported activation {act!r}; use relu, gelu or gelu_tanh")


# --------------------------------------------------------------------------------------------
# Positions and embeddings
# --------------------------------------------------------------------------------------------


def sinusoidal_positions(max_len: int, d_model: int) -> Tensor:
    """The (max_len, d_model) table of Vaswani et al. (2017), float32.

    PE[pos, 2i] = sin(pos / 10000^(2i / d_model)), PE[pos, 2i + 1] = cos(same angle):
    sines and cosines interleaved, wavelengths from 2*pi to 10000 * 2*pi.
    """
    if d_model % 2 != 0 or d_model < 2:
        raise ValueError(
            f"sinusoidal positions pair a sin with a cos: d_model must be even, got {d_model}"
        )
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    # float64 for the angles: pos * freq loses digits in float32 at large pos.
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d_model / 2,)
    angle = pos / 10000.0 ** (two_i / d_model)  # (max_len, d_model / 2)
    table = torch.empty(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)
    return table.float()


def rotary_cos_sin(
    seq_len: int,
    head_dim: int,
    theta: float = 10000.0,
    offset: int = 0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """The cos and sin of rotary positions (Su et al. 2021) offset .. offset + seq_len - 1.

    Returns (cos, sin), each (seq_len, head_dim). Channel i and channel i + head_dim / 2 form
    a pair, rotated at position p by the angle p * theta^(-2i / head_dim), i < head_dim / 2:
    **Hugging Face Llama's layout** ("rotate_half"), so ``cos[:, i] == cos[:, i + D/2]``. The
    paper pairs neighbouring channels (2i, 2i + 1) instead; the two differ by a fixed
    permutation of the channels of W_q and W_k, so they train the same, but weights
    trained with one layout give other numbers in the other. Angles in float64, then ``dtype``.
    """
    if head_dim % 2 or head_dim < 2:
        raise ValueError(f"rotary positions rotate pairs: head_dim must be even, got {head_dim}")
    if seq_len < 0 or offset < 0:
        raise ValueError(f"seq_len and offset must be >= 0, got {seq_len}, {offset}")
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    pos = torch.arange(offset, offset + seq_len, dtype=torch.float64)
    angle = torch.outer(pos, inv_freq)  # (seq_len, head_dim / 2)
    angle = torch.cat([angle, angle], dim=-1)  # channel i and i + D/2 share an angle
    return angle.cos().to(device=device, dtype=dtype), angle.sin().to(device=device, dtype=dtype)


def rotate_half(x: Tensor) -> Tensor:
    """(..., D) -> (..., D): [x1, x2] -> [-x2, x1], with x1, x2 the two halves of the channels."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate queries or keys x (..., T, D) by their positions: x * cos + rotate_half(x) * sin.

    ``cos``, ``sin`` (T, D) from :func:`rotary_cos_sin`. Each pair (x_i, x_{i + D/2}) turns by
    its angle, so q_m . k_n depends on m - n only. Applied to queries and keys, never values.
    """
    return x * cos + rotate_half(x) * sin


def _check_positions(seq_len: int, start: int, max_len: int) -> None:
    if start < 0 or start + seq_len > max_len:
        raise ValueError(
            f"positions {start} .. {start + seq_len - 1} are outside the table of "
            f"max_len={max_len}; build the embeddings with a larger max_len"
        )


class LearnedPositionalEmbedding(nn.Module):
    """A trained vector per position (GPT-2, BERT). ``weight`` is (max_len, C)."""

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        self.max_len = max_len
        # N(0, 1), nn.Embedding's default; models may re-initialise (GPT-2 uses small stds).
        self.weight = nn.Parameter(torch.randn(max_len, d_model))

    def forward(self, seq_len: int, *, start: int = 0) -> Tensor:
        """Positions start .. start + seq_len - 1 -> (seq_len, C)."""
        _check_positions(seq_len, start, self.max_len)
        return self.weight[start : start + seq_len]


class SinusoidalPositionalEmbedding(nn.Module):
    """Fixed :func:`sinusoidal_positions`; no parameters, nothing in the state dict."""

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        self.max_len = max_len
        # A buffer follows .to(device) but is not saved: it is recomputed, never learned.
        self.register_buffer("table", sinusoidal_positions(max_len, d_model), persistent=False)

    def forward(self, seq_len: int, *, start: int = 0) -> Tensor:
        """Positions start .. start + seq_len - 1 -> (seq_len, C)."""
        _check_positions(seq_len, start, self.max_len)
        return self.table[start : start + seq_len]


class Embeddings(nn.Module):
    """Token embedding + position embedding, then dropout: ids (B, T) -> (B, T, C).

    ``positions`` is "learned", "sinusoidal" or "rotary" (no table here: ``pos_emb`` is None
    and attention rotates queries and keys, see :class:`MultiHeadAttention`). Submodules
    ``tok_emb`` (nn.Embedding, its ``weight`` is (V, C) and can be tied to an output layer)
    and ``pos_emb``.
    ``start_pos`` in forward offsets the positions, for decoding with a KV cache.

    Switches that published models need (all off by default):

    * ``type_vocab_size`` > 0 adds a segment embedding ``type_emb`` (BERT's token types;
      ``token_type_ids=None`` means type 0 everywhere);
    * ``norm=True`` applies a LayerNorm ``norm`` to the sum (BERT, BART);
    * ``scale`` multiplies the token embedding (the 2017 Transformer and BART's
      ``scale_embedding`` use sqrt(d_model));
    * ``position_offset`` shifts every position (BART's learned table starts at row 2);
      the table then has ``max_len + position_offset`` rows.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        max_len: int,
        *,
        positions: str = "learned",
        dropout: float = 0.0,
        type_vocab_size: int = 0,
        norm: bool = False,
        layer_norm_eps: float = 1e-5,
        scale: float = 1.0,
        position_offset: int = 0,
    ) -> None:
        super().__init__()
        kinds = {
            "learned": LearnedPositionalEmbedding,
            "sinusoidal": SinusoidalPositionalEmbedding,
            "rotary": None,
        }
        if positions not in kinds:
            raise ValueError(f"positions must be one of {sorted(kinds)}, got {positions!r}")
        self.max_len, self.scale, self.position_offset = max_len, scale, position_offset
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        table = kinds[positions]
        self.pos_emb = None if table is None else table(max_len + position_offset, d_model)
        if type_vocab_size:
            self.type_emb = nn.Embedding(type_vocab_size, d_model)
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps) if norm else None
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, ids: Tensor, *, start_pos: int = 0, token_type_ids: Tensor | None = None
    ) -> Tensor:
        if ids.dim() != 2 or ids.is_floating_point():
            raise ValueError(
                f"ids must be integer token ids (B, T), got {ids.dtype} {tuple(ids.shape)}"
            )
        if start_pos < 0 or start_pos + ids.size(1) > self.max_len:
            raise ValueError(
                f"positions {start_pos} .. {start_pos + ids.size(1) - 1} are outside the table "
                f"of max_len={self.max_len}; build the embeddings with a larger max_len"
            )
        x = self.tok_emb(ids)
        if self.scale != 1.0:
            x = x * self.scale
        if self.pos_emb is not None:  # (T, C) positions broadcast over the batch
            x = x + self.pos_emb(ids.size(1), start=start_pos + self.position_offset)
        if hasattr(self, "type_emb"):
            types = (
                self.type_emb.weight[0] if token_type_ids is None else self.type_emb(token_type_ids)
            )
            x = x + types
        if self.norm is not None:
            x = self.norm(x)
        return _dropout(self.dropout, x)


class LanguageModelHead(nn.Module):
    """Hidden states (B, T, C) -> logits over the vocabulary (B, T, V).

    ``proj`` is a Linear(C, V) whose weight a model may tie to its token embedding (GPT-2,
    BERT, BART all do). ``transform=True`` first applies Linear(C, C), the activation and a
    LayerNorm (``transform``, ``act``, ``norm``): BERT's masked-LM head. ``bias`` adds a
    learned bias per vocabulary entry (BERT; BART's ``final_logits_bias``).
    """

    def __init__(
        self,
        d_model: int,
        vocab_size: int,
        *,
        bias: bool = False,
        transform: bool = False,
        activation: str = "gelu",
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if transform:
            self.transform = nn.Linear(d_model, d_model)
            self.act = _ACTIVATIONS[activation]()
            self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.proj = nn.Linear(d_model, vocab_size, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if hasattr(self, "transform"):
            x = self.norm(self.act(self.transform(x)))
        return self.proj(x)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters; tied (shared) tensors count once, buffers never."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
