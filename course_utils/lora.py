"""Low-rank adapters (LoRA, Hu et al. 2021): fine-tune a large model by training two small
matrices beside each chosen ``nn.Linear``, and leave every original weight frozen.

A frozen layer y = W x (W is out x in) gets an update of rank r::

    y = W x + (alpha / r) * B A x        A: (r, in), B: (out, r), r << min(in, out)

A starts random (Kaiming-uniform, as ``nn.Linear`` and PEFT initialise it) and B at zero, so
training starts from the pretrained model exactly. Only A and B train: for a 4096 x 4096
projection and r = 8 that is 65 536 numbers instead of 16.8 million, and the optimizer keeps
its two moments for those only. After training the update can be **merged** into W
(W += alpha / r * B A): the model is then as fast as before, and ``unmerge`` takes it out
again. The numbers are those of Hugging Face's PEFT (``LoraConfig(r, lora_alpha,
lora_dropout, target_modules)`` with ``get_peft_model``); the test suite proves it.

Our attention keeps W_q, W_k, W_v stacked in one Linear (``in_proj``). PEFT on Llama adapts
``q_proj`` and ``v_proj`` separately; here the same names give one adapter per part of the
fused layer, each writing only the rows of its projection (``LoRALinear(..., rows=)``), which
is the same maths as separate layers.

    >>> names = add_lora(model, r=8, alpha=16, target_modules=("q_proj", "v_proj"))
    >>> trainable_parameters(model)          # (trainable, total)
    >>> merge_lora(model)                    # fold the adapters into the weights
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import MultiHeadAttention

__all__ = [
    "LoRALinear",
    "add_lora",
    "lora_layers",
    "merge_lora",
    "unmerge_lora",
    "trainable_parameters",
]


class LoRALinear(nn.Module):
    """A frozen ``base`` Linear plus a trainable low-rank update: x (..., in) -> (..., out).

    forward(x) = base(x) + dropout(x) @ A.T @ B.T * (alpha / r), with ``lora_A`` (r, in)
    Kaiming-uniform and ``lora_B`` (out, r) zeros at the start (so it equals ``base`` until
    trained), as PEFT's ``lora_A`` / ``lora_B`` weights. Dropout acts on the adapter's input
    only, as in PEFT.

    ``rows`` (a slice of the output features) restricts the update to those rows: B is then
    (rows, r) and the other outputs are ``base``'s. That is how one fused Linear (W_q, W_k,
    W_v stacked) gets a separate adapter per projection; ``base`` may itself be a
    ``LoRALinear`` (an adapter on q wrapped by one on v). ``weight`` and ``bias`` are the
    base Linear's.

    :meth:`merge` adds scale * B A into the base weight (``merged`` becomes True and forward
    is then ``base`` alone, as fast as before); :meth:`unmerge` subtracts it again.
    """

    def __init__(
        self,
        base: nn.Module,
        r: int,
        alpha: float,
        dropout: float = 0.0,
        *,
        rows: slice | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(r, int) or r < 1:
            raise ValueError(f"the rank r must be a positive int, got {r!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        out = base.out_features
        if rows is not None and not (0 <= rows.start < rows.stop <= out and rows.step in (None, 1)):
            raise ValueError(f"rows={rows} must be a plain slice inside 0 .. {out}")
        self.base, self.r, self.alpha, self.rows = base, r, alpha, rows
        self.scale = alpha / r
        self.in_features, self.out_features = base.in_features, out
        w = base.weight
        n_out = out if rows is None else rows.stop - rows.start
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(n_out, r, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # PEFT's (and nn.Linear's) init
        self.dropout = nn.Dropout(dropout)
        self.merged = False

    @property
    def weight(self) -> Tensor:
        """The base Linear's weight (out, in)."""
        return self.base.weight

    @property
    def bias(self) -> Tensor | None:
        return self.base.bias

    def delta_weight(self) -> Tensor:
        """scale * B A: what :meth:`merge` adds to the rows this adapter covers."""
        return (self.lora_B @ self.lora_A) * self.scale

    def forward(self, x: Tensor) -> Tensor:
        y = self.base(x)
        if self.merged:
            return y
        x = self.dropout(x) if self.training and self.dropout.p > 0 else x
        update = F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scale
        if self.rows is None:
            return y + update
        start, stop = self.rows.start, self.rows.stop  # only this projection's outputs
        return torch.cat([y[..., :start], y[..., start:stop] + update, y[..., stop:]], dim=-1)

    @torch.no_grad()
    def merge(self) -> LoRALinear:
        """Fold the update into the base weight (nothing to do when already merged)."""
        if not self.merged:
            self._rows_of(self.weight).add_(self.delta_weight())
            self.merged = True
        return self

    @torch.no_grad()
    def unmerge(self) -> LoRALinear:
        """Take the update out of the base weight again (exact up to float rounding)."""
        if self.merged:
            self._rows_of(self.weight).sub_(self.delta_weight())
            self.merged = False
        return self

    def _rows_of(self, weight: Tensor) -> Tensor:
        return weight if self.rows is None else weight[self.rows]

    def extra_repr(self) -> str:
        rows = "" if self.rows is None else f", rows={self.rows.start}..{self.rows.stop - 1}"
        return f"r={self.r}, alpha={self.alpha:g}, scale={self.scale:g}{rows}, merged={self.merged}"


_PARTS = ("q_proj", "k_proj", "v_proj")


def _matches(name: str, targets: tuple[str, ...]) -> bool:
    """PEFT's rule for a list of target names: the full name, or its last dotted parts."""
    return any(name == t or name.endswith("." + t) for t in targets)


def add_lora(
    model: nn.Module,
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    target_modules: str | Iterable[str] = ("q_proj", "v_proj"),
) -> list[str]:
    """Freeze every parameter of ``model`` and wrap each matching Linear in a
    :class:`LoRALinear`; returns the names of the layers adapted, in order.

    ``target_modules`` are names matched as PEFT matches a list: a module matches when its
    name equals one, or ends with "." + one ("q_proj" matches "blocks.0.self_attn.q_proj").
    In a :class:`~course_utils.layers.MultiHeadAttention` the names "q_proj", "k_proj" and
    "v_proj" are the parts of the fused ``in_proj``: each gets its own adapter on its rows
    ("in_proj" adapts the whole fused layer at once). The default, q and v, is PEFT's for
    Llama. Raises one error line when nothing matches.
    """
    targets = (target_modules,) if isinstance(target_modules, str) else tuple(target_modules)
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("this model already has LoRA adapters; add them once")
    plan: list[tuple[nn.Module, str, slice | None, str]] = []  # (parent, attribute, rows, name)
    linears = []
    for name, module in model.named_modules():
        if isinstance(module, MultiHeadAttention):
            for part in _PARTS:
                full = f"{name}.{part}" if name else part
                if _matches(full, targets):
                    plan.append((module, "in_proj", getattr(module, part)._rows, full))
        for child_name, child in module.named_children():
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear):
                linears.append(full)
                if _matches(full, targets):
                    plan.append((module, child_name, None, full))
    if not plan:
        examples = sorted({n.rsplit(".", 1)[-1] for n in linears} | set(_PARTS))
        raise ValueError(
            f"add_lora: no Linear matches target_modules={list(targets)}; names here end in "
            f"{', '.join(examples)}"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    for parent, attribute, rows, _ in plan:
        base = getattr(parent, attribute)
        setattr(parent, attribute, LoRALinear(base, r, alpha, dropout, rows=rows))
    return [name for *_, name in plan]


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """The adapters of a model, under the names :func:`add_lora` returned."""
    found: dict[str, LoRALinear] = {}
    inside = set()
    for name, module in model.named_modules():  # an attention comes before its in_proj
        if isinstance(module, MultiHeadAttention):
            prefix = f"{name}." if name else ""
            parts = {
                (getattr(module, p)._rows.start, getattr(module, p)._rows.stop): p for p in _PARTS
            }
            chain, layer = [], module.in_proj
            while isinstance(layer, LoRALinear):  # outermost first: the last one added
                chain.append(layer)
                layer = layer.base
            for layer in reversed(chain):
                rows = layer.rows
                part = "in_proj" if rows is None else parts[(rows.start, rows.stop)]
                found[prefix + part] = layer
                inside.add(id(layer))
        elif isinstance(module, LoRALinear) and id(module) not in inside:
            found[name] = module
    return found


def merge_lora(model: nn.Module) -> nn.Module:
    """Merge every adapter of ``model`` into its weights (see :meth:`LoRALinear.merge`)."""
    for module in model.modules():
        if isinstance(module, LoRALinear):
            module.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo :func:`merge_lora`."""
    for module in model.modules():
        if isinstance(module, LoRALinear):
            module.unmerge()
    return model


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, shared (tied) tensors once: PEFT's
    ``get_nb_trainable_parameters()``."""
    params = list(model.parameters())  # deduplicated: a tied tensor appears once
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
