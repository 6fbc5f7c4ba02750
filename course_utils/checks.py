"""Friendly checks for exercise tests.

Every check raises :class:`CheckFailed` (an ``AssertionError``) whose message says what was
expected, what was found, and, when given, a hint: never a bare ``AssertionError``.

The checks look only at the values passed in. Tests compute their reference values inside the
test cell, from PyTorch itself, and pass both here.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CheckFailed",
    "check_tensor",
    "check_shape",
    "check_equal",
    "check_true",
    "check_raises",
]


class CheckFailed(AssertionError):
    """A test of an exercise failed; the message explains why."""


def _fail(name: str, problem: str, hint: str | None) -> None:
    message = f"{name}: {problem}"
    if hint:
        message += f"\nHint: {hint}"
    raise CheckFailed(message)


def _is_plain_tensor(value: Any) -> bool:
    import torch

    # Exact types only: a subclass could override comparisons and pass any test.
    return type(value) in (torch.Tensor, torch.nn.Parameter)


def check_shape(
    actual: Any, shape: tuple[int, ...], *, name: str = "output", hint: str | None = None
) -> None:
    """Check that ``actual`` is a tensor of exactly ``shape``."""
    if not _is_plain_tensor(actual):
        _fail(name, f"expected a torch.Tensor, got {type(actual).__name__}", hint)
    if tuple(actual.shape) != tuple(shape):
        _fail(name, f"wrong shape: expected {tuple(shape)}, got {tuple(actual.shape)}", hint)


def check_tensor(
    actual: Any,
    expected: Any,
    *,
    name: str = "output",
    rtol: float = 1e-5,
    atol: float = 1e-6,
    check_dtype: bool = True,
    hint: str | None = None,
) -> None:
    """Check that tensor ``actual`` matches ``expected`` within ``|a - e| <= atol + rtol * |e|``.

    Checks, in order: it is a tensor, the shape, the dtype, NaN or infinity where the expected
    value has none, then the values; a mismatch reports the largest difference and where it is.
    The default tolerances suit float32 results computed in a different order from the
    reference (rounding differs by a few units in the last place).
    """
    import torch

    if not _is_plain_tensor(expected):
        raise TypeError(f"check_tensor: expected must be a torch.Tensor, got {type(expected)}")
    if not _is_plain_tensor(actual):
        _fail(name, f"expected a torch.Tensor, got {type(actual).__name__}: {actual!r:.80}", hint)
    if tuple(actual.shape) != tuple(expected.shape):
        _fail(
            name,
            f"wrong shape: expected {tuple(expected.shape)}, got {tuple(actual.shape)}",
            hint,
        )
    if check_dtype and actual.dtype != expected.dtype:
        _fail(name, f"wrong dtype: expected {expected.dtype}, got {actual.dtype}", hint)
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    bad_a = ~torch.isfinite(a)
    bad_e = ~torch.isfinite(e)
    if bool((bad_a & ~bad_e).any()):
        where = tuple(int(i) for i in torch.nonzero(bad_a & ~bad_e)[0])
        _fail(name, f"contains NaN or infinity (first at index {where}: {a[where].item()})", hint)
    # Positions where both are the same non-finite value (e.g. -inf in masked scores) agree.
    same_nonfinite = bad_a & bad_e & ((a == e) | (torch.isnan(a) & torch.isnan(e)))
    if bool((bad_e & ~same_nonfinite).any()):
        where = tuple(int(i) for i in torch.nonzero(bad_e & ~same_nonfinite)[0])
        _fail(name, f"at index {where}: expected {e[where].item()}, got {a[where].item()}", hint)
    diff = torch.where(same_nonfinite, torch.zeros_like(a), (a - e).abs())
    allowed = atol + rtol * torch.where(same_nonfinite, torch.zeros_like(e), e.abs())
    if a.numel() and bool((diff > allowed).any()):
        excess = diff - allowed
        flat = int(torch.argmax(excess))
        where = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), a.shape))
        n_bad = int((diff > allowed).sum())
        _fail(
            name,
            f"values differ in {n_bad} of {a.numel()} places; the largest difference is "
            f"{diff[where].item():.3g} at index {where} (expected {e[where].item():.6g}, "
            f"got {a[where].item():.6g}; tolerance atol={atol:g}, rtol={rtol:g})",
            hint,
        )


def check_equal(
    actual: Any, expected: Any, *, name: str = "output", hint: str | None = None
) -> None:
    """Check ``actual == expected`` for plain Python values (int, str, list, dict, ...).

    The type must match exactly too, so an object that claims to equal everything fails.
    """
    if type(actual) is not type(expected):
        _fail(
            name,
            f"expected a {type(expected).__name__}, got {type(actual).__name__}: {actual!r:.120}",
            hint,
        )
    if isinstance(expected, (list, tuple)):
        if len(actual) != len(expected):
            _fail(name, f"expected length {len(expected)}, got {len(actual)}", hint)
        for i, (a, e) in enumerate(zip(actual, expected)):
            check_equal(a, e, name=f"{name}[{i}]", hint=hint)
        return
    if isinstance(expected, dict):
        if set(actual) != set(expected):
            missing = ", ".join(sorted(map(repr, set(expected) - set(actual)))[:5])
            extra = ", ".join(sorted(map(repr, set(actual) - set(expected)))[:5])
            _fail(name, f"keys differ: missing [{missing}], unexpected [{extra}]", hint)
        for key in expected:
            check_equal(actual[key], expected[key], name=f"{name}[{key!r}]", hint=hint)
        return
    if not bool(expected == actual):
        _fail(name, f"expected {expected!r:.200}, got {actual!r:.200}", hint)


def check_true(condition: Any, message: str, *, hint: str | None = None) -> None:
    """Fail with ``message`` unless ``condition`` is the boolean ``True``.

    ``condition`` may be a Python bool or a one-element boolean tensor.
    """
    import torch

    if _is_plain_tensor(condition):
        if condition.numel() != 1 or condition.dtype != torch.bool:
            raise TypeError("check_true: pass a bool or a one-element bool tensor")
        condition = bool(condition.item())
    if condition is not True:
        raise CheckFailed(message + (f"\nHint: {hint}" if hint else ""))


def check_raises(
    exception: type[BaseException],
    func,
    *args,
    name: str = "call",
    hint: str | None = None,
    **kwargs,
) -> BaseException:
    """Check that ``func(*args, **kwargs)`` raises ``exception``; return the exception."""
    try:
        func(*args, **kwargs)
    except exception as error:  # noqa: B902 - any subclass is fine
        return error
    except Exception as error:  # noqa: BLE001
        _fail(
            name,
            f"expected {exception.__name__}, but it raised {type(error).__name__}: {error}",
            hint,
        )
    _fail(name, f"expected {exception.__name__}, but nothing was raised", hint)
    raise AssertionError("unreachable")
