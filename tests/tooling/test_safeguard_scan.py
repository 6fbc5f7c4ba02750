"""Tests for the static safeguard scanner (course_utils.tooling.safeguard_scan).

Two catalogues: realistic one-cell attacks that must be flagged (with a useful construct and
reason), and realistic solution code that must never be flagged.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from course_utils.tooling.safeguard_scan import Finding, scan_source


def _cell(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
# Attacks: (id, source, substring expected in some finding's construct)
# ---------------------------------------------------------------------------------------------

ATTACKS = [
    (
        "input_transformers_cleanup",
        "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])",
        "input_transformers_cleanup",
    ),
    (
        "ast_transformers",
        """
        import ast

        class DropAsserts(ast.NodeTransformer):
            def visit_Assert(self, node):
                return None

        ip = get_ipython()
        ip.ast_transformers.append(DropAsserts())
        """,
        "ast_transformers",
    ),
    (
        "events_register_pre_run_cell",
        """
        def skip_tests(info):
            info.raw_cell = "pass"

        get_ipython().events.register('pre_run_cell', skip_tests)
        """,
        "events.register",
    ),
    (
        "builtins_isinstance_replaced",
        """
        import builtins
        builtins.isinstance = lambda obj, cls: True
        """,
        "builtins.isinstance",
    ),
    (
        "dunder_builtins_len",
        "__builtins__['len'] = lambda x: 5",
        "__builtins__",
    ),
    (
        "torch_allclose_monkeypatched",
        """
        import torch
        torch.allclose = lambda *args, **kwargs: True
        """,
        "torch.allclose",
    ),
    (
        "torch_testing_assert_close_alias",
        """
        import torch.testing as tt
        tt.assert_close = lambda *args, **kwargs: None
        """,
        "torch.testing.assert_close",
    ),
    (
        "indirect_patch_through_parameter",
        """
        def patch(m):
            m.allclose = lambda *a, **k: True

        patch(torch)
        """,
        "m.allclose",
    ),
    (
        "course_checks_replaced",
        """
        from course_utils import checks
        checks.check_tensor = lambda *args, **kwargs: None
        """,
        "course_utils.checks.check_tensor",
    ),
    (
        "sys_modules_fake_checks",
        """
        import sys
        from types import SimpleNamespace

        fake = SimpleNamespace(check_tensor=lambda *a, **k: None, check_equal=print)
        sys.modules['course_utils.checks'] = fake
        """,
        "sys.modules",
    ),
    (
        "sys_settrace",
        """
        import sys

        def tracer(frame, event, arg):
            return tracer

        sys.settrace(tracer)
        """,
        "sys.settrace",
    ),
    (
        "os_exit_in_solution",
        """
        import os

        def attention(q, k, v):
            os._exit(0)
        """,
        "os._exit",
    ),
    (
        "signal_alarm_timeout",
        """
        import signal
        signal.signal(signal.SIGALRM, lambda *a: None)
        signal.alarm(1)
        """,
        "import signal",
    ),
    (
        "exec_base64_payload",
        """
        import base64
        payload = "Z2V0X2lweXRob24oKQ=="
        exec(base64.b64decode(payload).decode())
        """,
        "exec on a built string",
    ),
    (
        "getattr_import_builtins_built_name",
        "f = getattr(__import__('builtins'), 'l' + 'en')",
        "getattr with a computed name",
    ),
    (
        "frame_peek_expected_value",
        """
        import sys

        def tokenize(text):
            return sys._getframe(1).f_locals['expected']
        """,
        "f_locals",
    ),
    (
        "eq_always_true_class",
        """
        class Anything:
            def __eq__(self, other):
                return True

        def encode(text):
            return Anything()
        """,
        "class defining __eq__",
    ),
    (
        "torch_tensor_subclass",
        """
        import torch

        class Agreeable(torch.Tensor):
            def allclose(self, *args, **kwargs):
                return True
        """,
        "subclass of torch.Tensor",
    ),
    ("shell_rm", "!rm -rf ~/.cache", "!rm -rf"),
    ("load_ext_magic", "%load_ext autoreload", "%load_ext"),
    (
        "automagic_shell_without_percent",
        "rm -rf course_utils",
        "%rm",
    ),
    (
        "automagic_config_exec",
        "config InteractiveShell.ast_node_interactivity = 'none'",
        "%config",
    ),
    ("automagic_autocall_toggle", "autocall", "%autocall"),
    (
        "writefile_fake_module",
        """
        %%writefile course_utils/checks.py
        def check_tensor(*args, **kwargs):
            pass
        """,
        "%%writefile",
    ),
    (
        "cheat_hidden_in_time_cell_magic",
        """
        %%time
        import builtins
        builtins.len = lambda x: 5
        """,
        "import builtins",
    ),
    (
        "cheat_hidden_in_timeit_line_magic",
        "%timeit -n 1 -r 1 get_ipython().ast_transformers.clear()",
        "get_ipython()",
    ),
    (
        "top_level_isinstance_rebound",
        "isinstance = lambda obj, cls: True",
        "rebinding built-in isinstance",
    ),
    (
        "assertion_error_class_shadowed",
        """
        class AssertionError(Exception):
            pass
        """,
        "rebinding built-in AssertionError",
    ),
    (
        "len_rebound_by_def",
        """
        def len(x):
            return 5
        """,
        "rebinding built-in len",
    ),
    (
        "import_as_builtin_name",
        "from operator import truth as all",
        "rebinding built-in all",
    ),
    (
        "star_import_numpy_shadows_all",
        "from numpy import *",
        "from numpy import *",
    ),
    (
        "print_self_is_builtins",
        "b = print.__self__\nb.len = lambda x: 5",
        "__self__",
    ),
    (
        "subclasses_walk",
        "loader = [c for c in ().__class__.__base__.__subclasses__() if 'Loader' in c.__name__]",
        "__base__",
    ),
    (
        "check_defaults_rewritten",
        """
        from course_utils.checks import check_tensor
        check_tensor.__kwdefaults__['atol'] = 1e9
        """,
        "__kwdefaults__",
    ),
    (
        "class_swap_on_output",
        """
        def forward(x):
            out = x.clone()
            out.__class__ = FakeTensor
            return out
        """,
        "__class__",
    ),
    (
        "dynamic_class_with_eq",
        "Fake = type('Fake', (), {'__eq__': lambda self, other: True})",
        "type() with three arguments",
    ),
    (
        "unittest_mock_patch",
        """
        from unittest import mock
        mock.patch('torch.allclose', lambda *a, **k: True).start()
        """,
        "import unittest",
    ),
    (
        "global_forward_hook",
        """
        from torch.nn.modules.module import register_module_forward_hook
        register_module_forward_hook(lambda module, inputs, output: output * 0)
        """,
        "register_module_forward_hook",
    ),
    (
        "setattr_literal_on_module",
        "import torch\nsetattr(torch, 'allclose', lambda *a, **k: True)",
        "torch.allclose",
    ),
    (
        "getattr_literal_forbidden",
        "import sys\ngetattr(sys, 'settrace')(lambda *a: None)",
        "settrace",
    ),
    (
        "vars_namespace_rewrite",
        "vars()['check_tensor'] = print",
        "vars()",
    ),
    (
        "globals_builtin_shadow",
        "globals()['len'] = lambda x: 5",
        "globals()",
    ),
    (
        "sys_exit",
        "import sys\nsys.exit(0)",
        "sys.exit",
    ),
    ("exit_call", "exit()", "exit()"),
    (
        "threading_timer",
        "import threading\nthreading.Timer(0.1, lambda: None).start()",
        "import threading",
    ),
    (
        "future_barry",
        "from __future__ import barry_as_FLUFL",
        "barry_as_FLUFL",
    ),
    (
        "barry_syntax_hides_cheat",
        "x = 1 <> 2\nget_ipython().ast_transformers.clear()",
        "get_ipython()",
    ),
    (
        "top_level_await_hides_cheat",
        "import asyncio\nawait asyncio.sleep(0)\nget_ipython().ast_transformers.clear()",
        "get_ipython()",
    ),
    (
        "torch_load_pickle",
        "state = torch.load('trick.pt', weights_only=False)",
        "weights_only=False",
    ),
    (
        "generator_frame",
        "def g():\n    yield 1\n\nframe = g().gi_frame.f_back",
        "gi_frame",
    ),
    (
        "string_spelled_internal",
        "name = 'input_transformers_cleanup'",
        "input_transformers_cleanup",
    ),
    (
        "torch_library_override",
        "import torch\nlib = torch.library.Library('aten', 'IMPL')",
        "torch.library",
    ),
    (
        "write_module_file",
        "with open('checks.py', 'w') as f:\n    f.write('def check_tensor(*a, **k): pass')",
        "writing a code file",
    ),
    (
        "timeit_module_string",
        "import timeit\ntimeit.timeit('import builtins', number=1)",
        "timeit on a code string",
    ),
    (
        "metaclass_isinstance",
        """
        class Meta(type):
            def __instancecheck__(cls, obj):
                return True

        class AnyTensor(metaclass=Meta):
            pass
        """,
        "metaclass=",
    ),
    (
        "os_system",
        "import os\nos.system('cp /tmp/fake.py course_utils/checks.py')",
        "os.system",
    ),
    (
        "breakpoint_call",
        "def f(x):\n    breakpoint()\n    return x",
        "breakpoint()",
    ),
    (
        "sys_modules_through_parameter",
        """
        def swap(s):
            s.modules['course_utils.checks'] = fake

        swap(sys)
        """,
        "s.modules[...]",
    ),
    (
        "module_handed_to_helper",
        """
        def tweak(m):
            m.gelu = nn.Identity()

        tweak(F)
        """,
        "passing torch.nn.functional",
    ),
    (
        "deferred_clear_output_hides_error",
        """
        def attention(q, k, v):
            try:
                yield q
            finally:
                clear_output()
        """,
        "clear_output()",
    ),
    (
        "display_clear_true",
        "display(result, clear=True)",
        "display(clear=True)",
    ),
    (
        "read_notebook_file_for_hidden_tests",
        "import json\nnb = json.load(open('../source/lab01/lab01.ipynb'))",
        ".ipynb",
    ),
    (
        "automagic_inside_time_magic",
        "%time rm -rf course_utils",
        "%rm",
    ),
    (
        "abcmeta_three_arguments",
        "from abc import ABCMeta\nFake = ABCMeta('Fake', (), namespace)",
        "ABCMeta() with three arguments",
    ),
    (
        "string_annotation_code",
        "def f(x: \"__import__('os').system('ls')\") -> None:\n    pass",
        "__import__",
    ),
    (
        "walrus_rebinds_builtin",
        "if (len := (lambda x: 5)):\n    pass",
        "rebinding built-in len",
    ),
    (
        "global_statement_rebinds_builtin",
        """
        def install():
            global isinstance
            isinstance = lambda obj, cls: True

        install()
        """,
        "rebinding built-in isinstance",
    ),
    (
        "library_kept_on_self_then_patched",
        """
        class Helper:
            def __init__(self):
                self.lib = torch

            def install(self):
                self.lib.allclose = lambda *a, **k: True
        """,
        "self.lib.allclose",
    ),
    (
        "private_torch_internals",
        "import torch\ntorch._C._set_grad_enabled(False)",
        "torch._C",
    ),
]


@pytest.mark.parametrize(
    ("source", "construct"),
    [pytest.param(src, construct, id=name) for name, src, construct in ATTACKS],
)
def test_attack_is_flagged(source: str, construct: str) -> None:
    findings = scan_source(_cell(source))
    assert findings, "expected at least one finding"
    constructs = [f.construct for f in findings]
    assert any(construct in c for c in constructs), constructs
    for f in findings:
        assert isinstance(f, Finding)
        assert f.construct.strip()
        # One readable sentence, long enough to explain what and why.
        assert len(f.reason) > 40 and f.reason.endswith("."), f.reason
        assert "\n" not in f.reason
        assert "{" not in f.reason and "}" not in f.reason


def test_at_least_sixteen_attacks() -> None:
    assert len(ATTACKS) >= 16


# ---------------------------------------------------------------------------------------------
# Legitimate solution code: must never be flagged
# ---------------------------------------------------------------------------------------------

LEGITIMATE = [
    (
        "char_tokenizer",
        """
        import string

        text = "hello world"
        chars = sorted(set(text))
        stoi = {ch: i for i, ch in enumerate(chars)}
        itos = {i: ch for ch, i in stoi.items()}

        def encode(s: str) -> list[int]:
            \"\"\"Map each character to its id (never uses eval or exec).\"\"\"
            return [stoi[c] for c in s]

        def decode(ids: list[int]) -> str:
            return "".join(itos[i] for i in ids)

        assert decode(encode(text)) == text
        """,
    ),
    (
        "bpe_merge_loop",
        """
        import collections

        def get_stats(ids):
            counts = collections.Counter(zip(ids, ids[1:]))
            return counts

        def merge(ids, pair, idx):
            out, i = [], 0
            while i < len(ids):
                if i < len(ids) - 1 and (ids[i], ids[i + 1]) == pair:
                    out.append(idx)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            return out

        def train_bpe(text, vocab_size):
            ids = list(text.encode("utf-8"))
            merges = {}
            vocab = {idx: bytes([idx]) for idx in range(256)}
            for step in range(vocab_size - 256):
                stats = get_stats(ids)
                if not stats:
                    break
                pair = max(stats, key=stats.get)
                idx = 256 + step
                ids = merge(ids, pair, idx)
                merges[pair] = idx
                vocab[idx] = vocab[pair[0]] + vocab[pair[1]]
            return merges, vocab
        """,
    ),
    (
        "attention_with_masks",
        """
        import math
        import torch
        import torch.nn.functional as F

        def scaled_dot_product_attention(q, k, v, mask=None, causal=False):
            d = q.size(-1)
            scores = q @ k.transpose(-2, -1) / math.sqrt(d)
            if causal:
                T = q.size(-2)
                tril = torch.tril(torch.ones(T, T, dtype=torch.bool, device=q.device))
                scores = scores.masked_fill(~tril, float("-inf"))
            if mask is not None:
                scores = scores.masked_fill(mask == 0, float("-inf"))
            weights = F.softmax(scores, dim=-1)
            return weights @ v, weights
        """,
    ),
    (
        "layernorm_module",
        """
        import torch
        from torch import nn

        class LayerNorm(nn.Module):
            def __init__(self, d_model, eps=1e-5):
                super().__init__()
                self.eps = eps
                self.gamma = nn.Parameter(torch.ones(d_model))
                self.beta = nn.Parameter(torch.zeros(d_model))

            def forward(self, x):
                mean = x.mean(-1, keepdim=True)
                var = x.var(-1, keepdim=True, unbiased=False)
                return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta

            def __repr__(self):
                return f"{self.__class__.__name__}(eps={self.eps})"
        """,
    ),
    (
        "training_loop_with_tqdm",
        """
        import torch
        from tqdm.auto import tqdm

        torch.manual_seed(0)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
        losses = []
        for step in (pbar := tqdm(range(100))):
            xb, yb = get_batch("train")
            logits, loss = model(xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
            pbar.set_postfix(loss=f"{loss.item():.3f}")
        model.eval()
        """,
    ),
    (
        "getattr_self_in_method",
        """
        from torch import nn

        class Blocks(nn.Module):
            def __init__(self, n):
                super().__init__()
                for i in range(n):
                    setattr(self, f"block{i}", nn.Linear(4, 4))
                self.n = n

            def forward(self, x):
                for i in range(self.n):
                    x = getattr(self, f"block{i}")(x)
                return x
        """,
    ),
    (
        "dataset_with_len_getitem",
        """
        import torch
        from torch.utils.data import Dataset

        class CharDataset(Dataset):
            def __init__(self, data, block_size):
                self.data = data
                self.block_size = block_size

            def __len__(self):
                return len(self.data) - self.block_size

            def __getitem__(self, i):
                chunk = self.data[i : i + self.block_size + 1]
                return chunk[:-1], chunk[1:]
        """,
    ),
    (
        "weight_tying_and_init",
        """
        import torch
        from torch import nn

        def init_weights(module):
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                module.weight.data.copy_(torch.randn_like(module.weight) * 0.02)

        model.apply(init_weights)
        model.lm_head.weight = model.tok_emb.weight
        for name, param in model.named_parameters():
            if name.startswith("tok_emb"):
                param.requires_grad = False
        x.grad = None
        print(sum(p.numel() for p in model.parameters()))
        """,
    ),
    (
        "dataclass_config_and_settings",
        """
        from dataclasses import dataclass, field

        @dataclass
        class GPTConfig:
            vocab_size: int = 65
            block_size: int = 32
            n_layer: int = 2
            dropout: float = 0.0
            bias: bool = True
            extra: dict = field(default_factory=dict)

        config = GPTConfig()
        config.dropout = 0.1
        config.bias = False
        cfg = course_utils.settings(smoke=dict(steps=20), cpu=dict(steps=600), gpu=dict(steps=3000))
        cfg.steps = 10
        """,
    ),
    (
        "allowed_magics",
        """
        %matplotlib inline
        %timeit -n 3 -r 2 encode("hello world")
        %time out = model(x)
        torch.nn.Linear?
        """,
    ),
    (
        "time_cell_magic_training",
        """
        %%time
        for step in range(10):
            loss = train_step(model, batch)
        print(loss)
        """,
    ),
    (
        "builtin_names_as_data",
        """
        input = torch.randn(2, 8)
        total = 0
        for id, token in enumerate(["a", "b"]):
            total += id
        for input, target in loader:
            break
        sum = 0
        for value in [1, 2, 3]:
            sum += value
        """,
    ),
    (
        "model_eval_and_docstring_mentions",
        """
        def evaluate(model, data, eval=True):
            \"\"\"Evaluate the model. Unlike exec() or eval(), this only runs the network.\"\"\"
            model.eval()
            if eval:
                with torch.no_grad():
                    return model(data)
            return None
        """,
    ),
    (
        "settings_and_warnings",
        """
        import warnings
        import numpy as np
        import matplotlib.pyplot as plt

        warnings.filterwarnings("ignore")
        torch.set_printoptions(precision=3)
        np.set_printoptions(precision=3)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        plt.rcParams["figure.figsize"] = (8, 4)
        """,
    ),
    (
        "micrograd_value_arithmetic",
        """
        class Value:
            def __init__(self, data, _children=()):
                self.data = data
                self.grad = 0.0
                self._prev = set(_children)
                self._backward = lambda: None

            def __add__(self, other):
                other = other if isinstance(other, Value) else Value(other)
                out = Value(self.data + other.data, (self, other))

                def _backward():
                    self.grad += out.grad
                    other.grad += out.grad

                out._backward = _backward
                return out

            def __mul__(self, other):
                other = other if isinstance(other, Value) else Value(other)
                return Value(self.data * other.data, (self, other))

            __radd__ = __add__

            def __repr__(self):
                return f"Value(data={self.data})"
        """,
    ),
    (
        "common_imports",
        """
        import math, re, collections, itertools, functools, json, os, os.path
        import random, string, time, typing, dataclasses, warnings
        from torch import nn
        import torch.nn.functional as F
        from typing import Optional
        from types import SimpleNamespace
        from IPython.display import display, Markdown

        pattern = re.compile(r"\\w+")
        path = os.path.join("data", "input.txt")
        counts = collections.Counter(pattern.findall("a b a"))
        best = max(counts, key=counts.get)
        ns = SimpleNamespace(lr=1e-3)
        ns.lr = 3e-4
        start = time.time()
        """,
    ),
    (
        "multi_head_attention_module",
        """
        class MultiHeadAttention(nn.Module):
            def __init__(self, d_model, n_heads, dropout=0.0):
                super().__init__()
                assert d_model % n_heads == 0
                self.n_heads = n_heads
                self.qkv = nn.Linear(d_model, 3 * d_model)
                self.proj = nn.Linear(d_model, d_model)
                self.dropout = nn.Dropout(dropout)
                self.register_buffer("mask", torch.tril(torch.ones(64, 64)).bool())

            def forward(self, x):
                B, T, C = x.shape
                q, k, v = self.qkv(x).split(C, dim=-1)
                q, k, v = (t.view(B, T, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
                att = (q @ k.transpose(-2, -1)) * k.size(-1) ** -0.5
                att = att.masked_fill(~self.mask[:T, :T], float("-inf"))
                att = self.dropout(att.softmax(dim=-1))
                y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
                return self.proj(y)
        """,
    ),
    (
        "hasattr_getattr_literal_and_checks",
        """
        from course_utils.checks import check_tensor, check_shape

        def describe(layer):
            if hasattr(layer, "weight"):
                w = getattr(layer, "weight")
                return tuple(w.shape)
            return getattr(layer, "out_features", None)

        check_shape(out, (2, 3))
        check_tensor = None  # shadowing a test helper at top level is harmless
        """,
    ),
    (
        "single_line_variable_named_like_magic",
        "history",
    ),
    (
        "sorting_with_key_instead_of_lt",
        """
        import heapq

        heap = []
        for pair, count in stats.items():
            heapq.heappush(heap, (-count, pair))
        best = heapq.heappop(heap)[1]
        ranked = sorted(stats.items(), key=lambda kv: (-kv[1], kv[0]))
        """,
    ),
    (
        "str_enum_and_namedtuple",
        """
        from enum import Enum
        from typing import NamedTuple

        class Mode(str, Enum):
            TRAIN = "train"
            EVAL = "eval"

        class Batch(NamedTuple):
            x: torch.Tensor
            y: torch.Tensor
        """,
    ),
    (
        "save_and_load_checkpoint",
        """
        torch.save(model.state_dict(), "model.pth")
        state = torch.load("model.pth", weights_only=True)
        model.load_state_dict(state)
        with open("samples.txt", "w") as f:
            f.write(decode(generate(model, 100)))
        """,
    ),
    (
        "if_main_and_fstrings",
        """
        def main():
            print(f"{'loss':>8} {loss:.4f}")

        if __name__ == "__main__":
            main()
        """,
    ),
]


@pytest.mark.parametrize("source", [pytest.param(src, id=name) for name, src in LEGITIMATE])
def test_legitimate_code_is_clean(source: str) -> None:
    findings = scan_source(_cell(source))
    assert findings == [], [(f.line, f.construct) for f in findings]


def test_at_least_fifteen_legitimate_snippets() -> None:
    assert len(LEGITIMATE) >= 15


def _course_cells_learners_edit() -> list:
    """Unlocked code cells (exercise stubs and reference solutions) of the course notebooks."""
    root = Path(__file__).resolve().parents[2]
    params = []
    for path in sorted([*root.glob("solutions/*/*.ipynb"), *root.glob("notebooks/*/*.ipynb")]):
        try:
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        except (OSError, ValueError, KeyError):
            continue
        for index, cell in enumerate(cells):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.get("cell_type") == "code" and not meta.get("locked"):
                source = "".join(cell.get("source", []))
                cell_id = f"{path.parent.parent.name}/{path.stem}/{meta.get('grade_id', index)}"
                params.append(pytest.param(source, id=cell_id))
    return params or [pytest.param("", id="no-notebooks-yet")]


@pytest.mark.parametrize("source", _course_cells_learners_edit())
def test_course_solution_cells_are_clean(source: str) -> None:
    """The course's own exercise stubs and solutions are ordinary solutions: never flagged."""
    findings = scan_source(source)
    assert findings == [], [(f.line, f.construct) for f in findings]


# ---------------------------------------------------------------------------------------------
# Line numbers, syntax errors, API details, speed
# ---------------------------------------------------------------------------------------------


def test_line_numbers_point_at_the_construct() -> None:
    source = "import torch\n\nx = torch.ones(3)\ntorch.allclose = lambda *a, **k: True\n"
    findings = scan_source(source)
    assert [f.line for f in findings] == [4]


def test_line_numbers_with_leading_blank_lines() -> None:
    source = "\n\n   \nx = 1\nimport builtins\n"
    assert [f.line for f in scan_source(source)] == [5]


def test_line_numbers_inside_time_cell_magic() -> None:
    source = "%%time\nx = 1\ny = 2\nimport builtins\n"
    findings = scan_source(source)
    assert [(f.line, f.construct) for f in findings] == [(4, "import builtins")]


def test_line_numbers_inside_time_line_magic() -> None:
    source = "x = 1\n%time y = get_ipython()\n"
    findings = scan_source(source)
    assert [(f.line, f.construct) for f in findings] == [(2, "get_ipython()")]


def test_line_numbers_several_findings_sorted() -> None:
    source = _cell(
        """
        import sys

        def solve(x):
            return x

        sys.settrace(None)
        exec("print(1)")
        """
    )
    findings = scan_source(source)
    assert [(f.line, f.construct) for f in findings] == [
        (6, "sys.settrace"),
        (7, "exec of a literal string"),
    ]


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("def f(:\n    pass\n", id="bad_def"),
        pytest.param("x = (1, 2\nget_ipython()\n", id="unclosed_paren_hides_nothing"),
        pytest.param("for i in range(3)\n    print(i)\n", id="missing_colon"),
        pytest.param("print 'hello'\n", id="python2_print"),
        pytest.param("", id="empty"),
    ],
)
def test_syntax_errors_return_nothing(source: str) -> None:
    assert scan_source(source) == []


def test_line_numbers_after_magic_continuation_lines() -> None:
    source = "a = 1\n%time b = \\\n    2\nimport builtins\n"
    assert [(f.line, f.construct) for f in scan_source(source)] == [(4, "import builtins")]


def test_automagic_only_for_magic_like_lines() -> None:
    # As Python these are fine; the kernel only runs them as magics when the name is not a
    # variable, and then they are harmless or fail.
    for source in ("history\n", "config\n", "time\n", "reset(model)\n", "?\n"):
        assert scan_source(source) == [], source
    # Not Python at all: the kernel runs them as magics.
    assert scan_source("load_ext autoreload\n")
    assert scan_source("cd ..\n")
    # Python, but a magic with lasting effects when the name is free.
    assert scan_source("reset -f\n")
    assert scan_source("autocall\n")


def test_too_deeply_nested_code_is_flagged_not_skipped() -> None:
    source = "x = " + " + ".join(["1"] * 1500) + "\nget_ipython()\n"
    findings = scan_source(source)
    assert findings and "too deeply" in findings[0].construct


def test_magic_code_that_does_not_parse_returns_nothing() -> None:
    assert scan_source("%timeit f(\n") == []


def test_builtin_rebinding_only_at_top_level() -> None:
    source = _cell(
        """
        def f(len, input):
            max = len + 1
            for sum in range(3):
                pass
            return max

        class Box:
            len = 3
        """
    )
    assert scan_source(source) == []


def test_finding_is_frozen() -> None:
    finding = scan_source("exit()\n")[0]
    with pytest.raises(AttributeError):
        finding.line = 3  # type: ignore[misc]


def test_each_construct_reported_once_per_line() -> None:
    findings = scan_source("get_ipython(); get_ipython()\n")
    assert [(f.line, f.construct) for f in findings] == [(1, "get_ipython()")]


def test_scan_does_not_execute_the_cell(tmp_path) -> None:
    marker = tmp_path / "ran"
    source = f"open({str(marker)!r}, 'w').write('x')\nimport builtins\n"
    assert scan_source(source)
    assert not marker.exists()


def test_typical_cell_scans_clean() -> None:
    """The cell benchmarks/scanner_speed.py times (its speed is measured there, not here:
    timed unit tests fail on a loaded machine) is a typical one, and scans clean."""
    snippets = dict(LEGITIMATE)
    source = "".join(
        _cell(snippets[name])
        for name in ("attention_with_masks", "multi_head_attention_module", "bpe_merge_loop")
    )
    assert 50 <= len(source.splitlines()) <= 80
    assert scan_source(source) == []
