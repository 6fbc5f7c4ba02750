"""Reference transformer layers, built from scratch; every lab after 02 imports them.

The file reads top to bottom in the order the course builds things: masks, attention,
multi-head attention, feed-forward, the block, positions and embeddings.

Shapes in docstrings: B batch, T sequence length (Tq queries, Tk keys), C = d_model channels,
H heads, D = C // H channels per head, V vocabulary size.

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
    "MultiHeadAttention",
    "FeedForward",
    "TransformerBlock",
    "sinusoidal_positions",
    "LearnedPositionalEmbedding",
    "SinusoidalPositionalEmbedding",
    "Embeddings",
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


class MultiHeadAttention(nn.Module):
    """Multi-head self- or cross-attention, batch first.

    Queries come from ``x`` (B, Tq, C); keys and values from ``context`` (B, Tk, C), or from
    ``x`` itself when ``context`` is None (self-attention). Four separate Linear layers,
    ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` (PyTorch packs the first three in one
    ``in_proj_weight``; :meth:`load_from_torch` copies the slices). Dropout acts on the
    attention weights, as in ``nn.MultiheadAttention``; residual dropout belongs to the block.

    ``fast=True`` runs ``F.scaled_dot_product_attention``; ``fast=False`` the plain
    :func:`scaled_dot_product_attention`. Both give the same numbers to float32 rounding.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        dropout: float = 0.0,
        bias: bool = True,
        fast: bool = True,
    ) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(
                f"d_model={d_model} is not divisible by n_heads={n_heads}; each "
                f"head gets d_model // n_heads channels"
            )
        self.d_model, self.n_heads, self.dropout, self.fast = d_model, n_heads, dropout, fast
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        attn_mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, Tq, C), context (B, Tk, C) or None -> (out (B, Tq, C), weights or None).

        attn_mask: bool, True = may attend, (Tq, Tk) or (B, 1 or H, Tq, Tk).
        key_padding_mask: bool (B, Tk), True = padding (PyTorch's convention).
        is_causal: hide future keys (end-aligned :func:`causal_mask`).
        need_weights: use the plain path and also return weights (B, H, Tq, Tk).
        """
        context = x if context is None else context
        self._check_input(x, "x")
        self._check_input(context, "context")
        b, t_q, t_k = x.size(0), x.size(1), context.size(1)
        if context.size(0) != b:
            raise ValueError(
                f"x and context need the same batch size, got {b} and {context.size(0)}"
            )
        if attn_mask is not None and attn_mask.dim() not in (2, 4):
            # A 3-D mask would broadcast (B, Tq, Tk) as (1, B, Tq, Tk): batch on the head axis.
            raise ValueError(
                f"attn_mask must be (Tq, Tk) = {(t_q, t_k)} or (B, 1 or H, Tq, Tk),"
                f" got {tuple(attn_mask.shape)}"
            )
        if key_padding_mask is not None:
            _check_bool(key_padding_mask, "key_padding_mask")
            if tuple(key_padding_mask.shape) != (b, t_k):
                raise ValueError(
                    f"key_padding_mask must be (B, Tk) = {(b, t_k)} with True = "
                    f"padding, got {tuple(key_padding_mask.shape)}"
                )
            key_padding_mask = padding_mask(key_padding_mask)
        if attn_mask is not None:
            _check_bool(attn_mask, "attn_mask")
            _check_broadcast(attn_mask, (b, self.n_heads, t_q, t_k), "attn_mask", "(B, H, Tq, Tk)")
        mask = combine_masks(attn_mask, key_padding_mask)

        q = split_heads(self.q_proj(x), self.n_heads)  # (B, H, Tq, D)
        k = split_heads(self.k_proj(context), self.n_heads)  # (B, H, Tk, D)
        v = split_heads(self.v_proj(context), self.n_heads)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights or not self.fast:
            y, weights = scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=p, training=self.training
            )
        else:
            y = _fast_attention(q, k, v, mask, is_causal, p)
        out = self.out_proj(merge_heads(y))
        return out, (weights if need_weights else None)

    def _check_input(self, t: Tensor, name: str) -> None:
        if t.dim() != 3 or t.size(-1) != self.d_model:
            raise ValueError(f"{name} must be (B, T, C={self.d_model}), got {tuple(t.shape)}")

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of an ``nn.MultiheadAttention`` into this module; returns self."""
        if (mha.embed_dim, mha.num_heads) != (self.d_model, self.n_heads):
            raise ValueError(
                f"shape mismatch: torch has embed_dim={mha.embed_dim}, num_heads="
                f"{mha.num_heads}; this has d_model={self.d_model}, n_heads="
                f"{self.n_heads}"
            )
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("kdim/vdim, add_bias_kv and add_zero_attn are not supported")
        if (mha.in_proj_bias is None) != (self.q_proj.bias is None):
            raise ValueError("bias mismatch between nn.MultiheadAttention and this module")
        # in_proj_weight is (3C, C): rows [0, C) are W_q, [C, 2C) W_k, [2C, 3C) W_v.
        for proj, w in zip((self.q_proj, self.k_proj, self.v_proj), mha.in_proj_weight.chunk(3)):
            proj.weight.copy_(w)
        if mha.in_proj_bias is not None:
            for proj, bias in zip(
                (self.q_proj, self.k_proj, self.v_proj), mha.in_proj_bias.chunk(3)
            ):
                proj.bias.copy_(bias)
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
        return self.dropout(self.fc2(self.act(self.fc1(x))))


class TransformerBlock(nn.Module):
    """One transformer layer: self-attention, optional cross-attention, feed-forward.

    * encoder block (BERT): ``cross_attention=False``, bidirectional;
    * GPT block: the same with ``is_causal=True`` in forward;
    * decoder block of the original Transformer: ``cross_attention=True`` (self-attention,
      cross-attention to ``context``, feed-forward).

    Each sub-layer has a residual connection and a LayerNorm. ``norm_first=True`` (pre-norm,
    GPT-2 and most modern models: x + f(norm(x))) trains stably without warm-up;
    ``norm_first=False`` (post-norm, the 2017 paper and BERT: norm(x + f(x))).
    Submodules: ``self_attn``, ``attn_norm``, ``cross_attn``, ``cross_norm`` (only with
    cross-attention), ``ffn``, ``ffn_norm``.
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
    ) -> None:
        super().__init__()
        self.norm_first, self.cross_attention = norm_first, cross_attention
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias)
        self.attn_norm = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        if cross_attention:
            self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias)
            self.cross_norm = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.ffn = FeedForward(d_model, d_ff, dropout=dropout, activation=activation, bias=bias)
        self.ffn_norm = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
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
    ) -> Tensor:
        """x (B, T, C), context (B, Tk, C) for cross-attention -> (B, T, C).

        ``attn_mask``/``key_padding_mask``/``is_causal`` apply to self-attention,
        ``context_attn_mask``/``context_key_padding_mask`` to cross-attention; conventions as in
        :class:`MultiHeadAttention` (attn masks True = attend, key padding True = padding).
        """
        if self.cross_attention and context is None:
            raise ValueError("this block has cross_attention=True: pass context=(B, Tk, C)")
        if not self.cross_attention and (
            context is not None
            or context_key_padding_mask is not None
            or context_attn_mask is not None
        ):
            raise ValueError("context given to a block built with cross_attention=False")

        def self_attend(h: Tensor) -> Tensor:
            return self.dropout(
                self.self_attn(
                    h, attn_mask=attn_mask, is_causal=is_causal, key_padding_mask=key_padding_mask
                )[0]
            )

        def cross_attend(h: Tensor) -> Tensor:
            return self.dropout(
                self.cross_attn(
                    h,
                    context,
                    attn_mask=context_attn_mask,
                    key_padding_mask=context_key_padding_mask,
                )[0]
            )

        sublayers = [(self_attend, self.attn_norm)]
        if self.cross_attention:
            sublayers.append((cross_attend, self.cross_norm))
        sublayers.append((self.ffn, self.ffn_norm))  # ffn ends in its own dropout
        for f, norm in sublayers:
            if self.norm_first:
                x = x + f(norm(x))  # pre-norm: the residual path stays an identity
            else:
                x = norm(x + f(x))  # post-norm: normalise after adding
        return x

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

    ``positions`` is "learned" or "sinusoidal". Submodules ``tok_emb`` (nn.Embedding, its
    ``weight`` is (V, C) and can be tied to an output layer) and ``pos_emb``.
    ``start_pos`` in forward offsets the positions, for decoding with a KV cache.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        max_len: int,
        *,
        positions: str = "learned",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        kinds = {"learned": LearnedPositionalEmbedding, "sinusoidal": SinusoidalPositionalEmbedding}
        if positions not in kinds:
            raise ValueError(f"positions must be one of {sorted(kinds)}, got {positions!r}")
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = kinds[positions](max_len, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids: Tensor, *, start_pos: int = 0) -> Tensor:
        if ids.dim() != 2 or ids.is_floating_point():
            raise ValueError(
                f"ids must be integer token ids (B, T), got {ids.dtype} {tuple(ids.shape)}"
            )
        pos = self.pos_emb(ids.size(1), start=start_pos)  # (T, C), broadcasts over the batch
        return self.dropout(self.tok_emb(ids) + pos)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters; tied (shared) tensors count once, buffers never."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
