"""What the safeguard scanner forbids, and why: the reasons it gives and the catalogue of names.

Part of the static scan in :mod:`course_utils.tooling.safeguard_scan`: this module holds the data
(each reason a learner and an instructor read, the modules, attributes, builtins and magics
that are allowed or forbidden), :mod:`~course_utils.tooling.safeguard_visitor` how each construct is
detected in the syntax tree.
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One construct that graded work must not contain."""

    line: int  # 1-based line in the cell source as the learner wrote it (best effort)
    construct: str  # short name of what was found, e.g. "get_ipython()", "sys.settrace"
    reason: str  # one sentence for the learner and the instructor


# --------------------------------------------------------------------------------------------
# Reasons (one sentence each; the construct names the detail)
# --------------------------------------------------------------------------------------------

_R_IPYTHON = (
    "This reaches into the IPython kernel that also runs the test cells, so it could change "
    "or skip the tests; graded work must not use it."
)
_R_MAGIC = (
    "Only the %time, %timeit and %matplotlib magics are allowed in graded work, because other "
    "magics can change how the kernel runs the test cells, load code or run shell commands."
)
_R_SHELL = (
    "Shell commands are not allowed in graded work: they can change the files and processes "
    "the grader relies on."
)
_R_IMPORT = (
    "Graded work must not import the {what} module: it gives access to the machinery that "
    "runs the tests rather than to anything an exercise needs."
)
_R_BUILTINS = (
    "The built-in functions are shared with the test cells, so touching them directly could "
    "make a test pass without a correct solution; graded work must not do it."
)
_R_REBIND = (
    "Giving a built-in name such as `{name}` a new meaning at the top level of a cell changes "
    "it for the test cells too; rename your variable (e.g. `my_{name}`)."
)
_R_STAR = (
    "`from ... import *` at the top level can silently replace built-in functions that the "
    "test cells use; import the names you need explicitly."
)
_R_SYS = (
    "This changes how the Python interpreter itself runs, imports or reports errors for the "
    "test cells too; graded work must not use it."
)
_R_TRACE = (
    "A trace or profile hook runs your code inside every later cell, including the tests; "
    "graded work must not install one."
)
_R_EXIT = (
    "Stopping the kernel or a process from graded work interrupts the tests instead of "
    "passing them; return from your function instead."
)
_R_PROCESS = (
    "Starting processes or shell commands is not allowed in graded work: they can change the "
    "files and processes the grader relies on."
)
_R_FRAME = (
    "Stack frames expose the variables of the code that called yours, including a test's "
    "expected values; graded work must not inspect them."
)
_R_DUNDER = (
    "Special double-underscore attributes such as `{attr}` reach Python's internals (globals, "
    "code objects, class hierarchies); ordinary solutions do not need them."
)
_R_DUNDER_NAME = (
    "`{name}` gives direct access to the interpreter's internals that the test cells share; "
    "graded work must not use it."
)
_R_NAMESPACE = (
    "`{name}()` hands out the notebook's namespace, which the test cells share, as a "
    "dictionary that code can rewrite; use your variables directly."
)
_R_BREAKPOINT = (
    "breakpoint() stops the kernel waiting for a debugger, which blocks the tests; remove it "
    "before submitting."
)
_R_EXEC = (
    "`{name}` runs code given as text, which hides what actually runs; graded work never "
    "needs it, so write the code itself."
)
_R_MONKEYPATCH = (
    "Replacing or deleting something inside an imported module (monkeypatching `{target}`) "
    "changes what the tests' own code does, so a test could pass without a correct solution."
)
_R_INDIRECT = (
    "Setting an attribute called `{attr}` on an object that is not `self` looks like "
    "replacing a function of torch, numpy, the built-ins or the course checks "
    "(monkeypatching); if this is your own object, use another attribute name or set it "
    "inside the class."
)
_R_DUNDER_STORE = (
    "Assigning a special double-underscore attribute such as `{attr}` changes how Python "
    "treats an object or function (its class, defaults or code); graded work must not do it."
)
_R_GETATTR_COMPUTED = (
    "`{name}` with a name computed at run time can reach any attribute, including forbidden "
    "ones, without spelling it out; use the attribute directly (or `getattr(self, name)`)."
)
_R_REFLECTIVE_VALUE = (
    "`{name}` is used as a value here (passed around rather than called), which hides which "
    "attribute or code it will reach; call it directly with a literal name."
)
_R_STRING = (
    "This string spells the name of an interpreter or kernel internal (`{word}`), which is how "
    "getattr- and exec-tricks reach forbidden things indirectly."
)
_R_FAKE_METHOD = (
    "A class that defines `{name}` can make comparisons, truth tests, conversions or type "
    "checks in the tests report success for a wrong answer; graded work must not define it "
    "(for sorting, use a key function or tuples instead)."
)
_R_METACLASS = (
    "A custom metaclass can change how type checks like isinstance() behave in the tests; "
    "graded work must not use one."
)
_R_SUBCLASS = (
    "A subclass of `{base}` can override comparisons and arithmetic so that a wrong answer "
    "looks right to the tests; return a plain `{base}` instead."
)
_R_DYNAMIC_CLASS = (
    "type() with three arguments builds a class at run time, which hides what methods (such "
    "as __eq__) it defines; write a normal class statement."
)
_R_PRIVATE = (
    "`{target}` is a private internal of an imported library; changing or using it can alter "
    "what the tests' own code does, and ordinary solutions do not need it."
)
_R_PICKLE = (
    "Loading pickled data with `{kw}` can run arbitrary code while loading; graded work must "
    "not do it."
)
_R_HOOK = (
    "A global module hook changes the output of every PyTorch layer, including the reference "
    "layers the tests build; graded work must not install one."
)
_R_GC = (
    "The garbage collector's object lists reach every object in the kernel, including the "
    "grader's; graded work must not use them."
)
_R_NATIVE = (
    "Loading or calling native code bypasses Python and can change anything in the kernel; "
    "graded work must not do it."
)
_R_STRING_EVAL = (
    "`{name}` evaluates text as code, which hides what actually runs; graded work must not use it."
)
_R_TIMEIT_STRING = (
    "The timeit module runs code given as text, which hides what actually runs; time a "
    "function or lambda instead (or use the %timeit magic)."
)
_R_MODULE_PASSED = (
    "Handing a whole library such as `{module}` to other code lets that code change it out of "
    "sight (monkeypatching); call the functions you need directly instead."
)
_R_OUTPUT = (
    "Clearing or rewriting cell output from graded work could hide a failing test's error "
    "message from the grader; graded work must not do it."
)
_R_GRADER_FILES = (
    "This string names a notebook or grading file (`{word}`); reading or writing those files "
    "could reveal hidden tests or change grades, so graded work must not refer to them."
)
_R_COMPUTED_WRITE = (
    "Writing to a file whose path is computed at run time is how the grader's own files are "
    "reached; graded work should not write files (if you must, use a fixed name such as "
    "open('notes.txt', 'w'))."
)
_R_MOCK = (
    "`mock` (imported by a test cell) replaces functions everywhere, including in the "
    "tests; graded work must not use it."
)
_R_FILE_CODE = (
    "Writing a Python source file from graded work can replace modules that the tests import; "
    "graded work must not create code files."
)
_R_FUTURE = (
    "`from __future__ import {name}` changes the syntax of every later cell, which can hide "
    "code from the grader's checks."
)
_R_TOO_DEEP = (
    "Code or magics nested this deeply cannot be checked, so they cannot be allowed in graded "
    "work; split the expression or the cell."
)
_R_INTERNAL_MODULE = (
    "`{name}` is the {what} module, which gives access to the machinery that runs the tests; "
    "graded work must not use it."
)

# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

_ALLOWED_LINE_MAGICS = frozenset({"time", "timeit", "matplotlib", "pinfo", "pinfo2"})
_ALLOWED_CELL_MAGICS = frozenset({"time", "timeit"})
_SHELL_ALIAS_MAGICS = frozenset(
    {
        "cat",
        "cp",
        "ldir",
        "lf",
        "lk",
        "ll",
        "ls",
        "lx",
        "mkdir",
        "mv",
        "rm",
        "rmdir",
        "sx",
        "system",
        "sc",
    }
)
# Automagic one-liners that are also valid Python (e.g. ``reset -f``, ``autocall``): flagged
# only for magic names that no one uses as a variable and whose effect outlives the cell.
_RISKY_BARE_MAGICS = frozenset(
    {
        "autocall",
        "automagic",
        "autoawait",
        "doctest_mode",
        "pdb",
        "reset",
        "reset_selective",
        "xdel",
        "rerun",
        "cd",
        "pushd",
        "popd",
        "load_ext",
        "reload_ext",
        "unload_ext",
        "unalias",
        "rehashx",
        "killbgscripts",
        "logstart",
        "logon",
        "logoff",
        "logstop",
        "rm",
        "rmdir",
        "mkdir",
        "mv",
        "cp",
        "sc",
        "sx",
        "set_env",
        "alias_magic",
        "pylab",
        "gui",
        "loadpy",
        "macro",
        "store",
        "connect_info",
        "autosave",
        "subshell",
    }
)
# Line magics of a default kernel, used for automagic when IPython cannot list them.
_FALLBACK_LINE_MAGICS = (
    frozenset(
        "alias alias_magic autoawait autocall automagic bookmark cd colors conda config debug "
        "dhist dirs doctest_mode edit env gui history killbgscripts load load_ext loadpy logoff "
        "logon logstart logstate logstop lsmagic macro magic matplotlib notebook page pastebin pdb "
        "pdef pdoc pfile pinfo pinfo2 pip popd pprint precision prun psearch psource pushd pwd "
        "pycat pylab quickref recall rehashx reload_ext rerun reset reset_selective run save sc "
        "set_env sx system tb time timeit unalias unload_ext who who_ls whos xdel xmode clear less "
        "more man connect_info qtconsole autosave subshell ed hist rep".split()
    )
    | _SHELL_ALIAS_MAGICS
)

# Top-level modules whose import is flagged, with a few words on what they are.
_KERNEL_MODULES = {
    "IPython": "IPython kernel",
    "ipykernel": "Jupyter kernel",
    "jupyter_client": "Jupyter client",
    "jupyter_core": "Jupyter",
    "zmq": "kernel messaging (zmq)",
    "nbgrader": "nbgrader grading",
    "nbformat": "notebook file format",
    "nbclient": "notebook execution",
    "nbconvert": "notebook conversion",
    "traitlets": "kernel configuration (traitlets)",
    "comm": "kernel messaging (comm)",
}
_FORBIDDEN_MODULES = {
    **_KERNEL_MODULES,
    "builtins": "builtins",
    "signal": "signal (timers and process signals)",
    "atexit": "atexit",
    "subprocess": "subprocess",
    "pty": "pty",
    "ctypes": "ctypes (native code)",
    "cffi": "cffi (native code)",
    "gc": "gc (garbage collector)",
    "importlib": "importlib",
    "imp": "imp",
    "code": "code (interactive interpreter)",
    "codeop": "codeop (compiler)",
    "marshal": "marshal (code objects)",
    "pickle": "pickle",
    "dill": "dill",
    "cloudpickle": "cloudpickle",
    "joblib": "joblib (pickle-based loading)",
    "shelve": "shelve (pickle-based storage)",
    "copyreg": "copyreg (pickle hooks)",
    "sqlite3": "sqlite3 (the gradebook is a database)",
    "threading": "threading",
    "_thread": "_thread",
    "multiprocessing": "multiprocessing",
    "asyncio": "asyncio",
    "types": "types (functions, code and module objects)",
    "runpy": "runpy",
    "pkgutil": "pkgutil",
    "site": "site",
    "sitecustomize": "sitecustomize",
    "usercustomize": "usercustomize",
    "zipimport": "zipimport",
    "faulthandler": "faulthandler",
    "resource": "resource (process limits)",
    "unittest": "unittest (mock.patch replaces functions by name)",
    "mock": "mock (patch replaces functions by name)",
    "pytest": "pytest (monkeypatching)",
    "doctest": "doctest (runs code written in docstrings)",
    "pdb": "pdb (debugger)",
    "bdb": "bdb (debugger)",
    "trace": "trace",
    "profile": "profile",
    "cProfile": "cProfile",
    "pydoc": "pydoc (locates objects by name)",
    "sympy": "sympy (evaluates text as code)",
    "__main__": "__main__ (the notebook namespace)",
}
# Imports allowed from otherwise flagged modules: display helpers only.
# inspect: what describes a function or class is fine; frames and source are not (the
# visitor flags every other attribute of inspect).
_INSPECT_OK = frozenset(
    {"signature", "Signature", "Parameter", "isclass", "isfunction", "ismethod", "isgenerator",
     "iscoroutinefunction", "isabstract", "getdoc", "cleandoc", "getmro", "BoundArguments"}
)  # fmt: skip
# concurrent.futures: pools whose threads end with the ``with`` block; nothing else of it.
_CONCURRENT_OK = frozenset(
    {"futures", "ThreadPoolExecutor", "ProcessPoolExecutor", "as_completed", "wait", "Future",
     "FIRST_COMPLETED", "ALL_COMPLETED", "TimeoutError"}
)  # fmt: skip
# Objects whose attributes may be read with a name computed at run time
# (``getattr(torch.backends, name).is_available()``): libraries, not the interpreter.
_COMPUTED_GETATTR_ROOTS = frozenset({"torch", "nn", "F", "np", "numpy", "math", "string"})

_ALLOWED_FROM_IMPORTS = {
    "types": frozenset({"SimpleNamespace"}),
    "IPython.display": frozenset(
        {
            "display",
            "HTML",
            "Markdown",
            "Image",
            "Math",
            "Latex",
            "SVG",
            "Audio",
            "Video",
            "IFrame",
            "JSON",
            "Pretty",
            "Code",
            "display_html",
            "display_markdown",
            "display_latex",
            "display_svg",
            "display_png",
        }
    ),
}
_FORBIDDEN_SUBMODULES = {
    "logging.config": "logging.config (builds objects named in text)",
    "torch.library": "torch.library (replaces PyTorch operators)",
    "torch.utils.cpp_extension": "torch.utils.cpp_extension (native code)",
    "torch.package": "torch.package (loads code from archives)",
    "torch.hub": "torch.hub (loads code from repositories)",
}
_ALLOWED_FUTURE = frozenset(
    {
        "annotations",
        "division",
        "print_function",
        "absolute_import",
        "unicode_literals",
        "generators",
        "nested_scopes",
        "with_statement",
        "generator_stop",
    }
)
# Names that may be used without an import in the cell because an earlier cell imported them.
_DEFAULT_ALIASES = {
    "torch": "torch",
    "np": "numpy",
    "numpy": "numpy",
    "F": "torch.nn.functional",
    "nn": "torch.nn",
    "checks": "course_utils.checks",
    "course_utils": "course_utils",
    "sys": "sys",
    "os": "os",
    "plt": "matplotlib.pyplot",
    "matplotlib": "matplotlib",
    "mpl": "matplotlib",
    "math": "math",
    "random": "random",
    "pd": "pandas",
    "pandas": "pandas",
    "operator": "operator",
}
# ... and names of flagged modules that nobody uses as a variable: using them is flagged even
# when the import happened in another cell.
_DEFAULT_FORBIDDEN_NAMES = frozenset(
    {
        "builtins",
        "inspect",
        "importlib",
        "ctypes",
        "subprocess",
        "threading",
        "multiprocessing",
        "asyncio",
        "pickle",
        "marshal",
        "atexit",
        "IPython",
        "ipykernel",
        "nbgrader",
        "nbformat",
        "nbclient",
        "jupyter_client",
        "zmq",
        "_thread",
        "gc",
        "faulthandler",
        "runpy",
        "pkgutil",
        "codeop",
        "dill",
        "cloudpickle",
        "pdb",
        "unittest",
        "doctest",
    }
)
# Module attributes that are settings, not behaviour: assigning a literal is fine.
_ALLOWED_MODULE_SETTINGS = ("torch.backends.", "pandas.options.", "numpy.random.")

_FRAME_ATTRS = frozenset(
    {
        "f_back",
        "f_locals",
        "f_globals",
        "f_builtins",
        "f_code",
        "f_trace",
        "f_trace_lines",
        "f_trace_opcodes",
        "f_lasti",
        "tb_frame",
        "tb_next",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "_getframe",
        "_current_frames",
        "currentframe",
        "walk_stack",
        "walk_tb",
    }
)
_TRACE_ATTRS = frozenset(
    {"settrace", "setprofile", "settrace_all_threads", "setprofile_all_threads", "addaudithook"}
)
_IPYTHON_ATTRS = frozenset(
    {
        "get_ipython",
        "input_transformers_cleanup",
        "input_transformers_post",
        "input_transformer_manager",
        "ast_transformers",
        "showtraceback",
        "showsyntaxerror",
        "_showtraceback",
        "set_custom_exc",
        "custom_exceptions",
        "run_line_magic",
        "run_cell_magic",
        "run_cell",
        "run_cell_async",
        "run_code",
        "run_ast_nodes",
        "user_ns",
        "user_global_ns",
        "user_ns_hidden",
        "user_module",
        "register_magic_function",
        "magics_manager",
        "set_hook",
        "display_pub",
        "prefilter_manager",
    }
)
_HOOK_ATTRS = frozenset(
    {
        "excepthook",
        "displayhook",
        "breakpointhook",
        "unraisablehook",
        "meta_path",
        "path_hooks",
        "path_importer_cache",
    }
)
_GC_ATTRS = frozenset({"get_objects", "get_referrers", "get_referents"})
_NATIVE_ATTRS = frozenset({"pythonapi", "cpp_extension", "load_inline", "ctypeslib"})
_STRING_EVAL_ATTRS = frozenset(
    {
        "sympify",
        "parse_expr",
        "get_type_hints",
        "read_pickle",
        "add_safe_globals",
        "safe_globals",
        "unsafe_load",
        "unsafe_load_all",
        "UnsafeLoader",
        "FullLoader",
        "make_dataclass",
    }
)
_OUTPUT_ATTRS = frozenset({"clear_output", "update_display"})
_SYS_ATTRS = frozenset({"modules", "exit", "monitoring", "settrace", "setprofile"})
_SYS_STREAMS = frozenset({"stdout", "stderr", "stdin"})
_OS_ATTRS = frozenset(
    {
        "system",
        "popen",
        "fork",
        "forkpty",
        "kill",
        "killpg",
        "abort",
        "_exit",
        "startfile",
        "register_at_fork",
    }
)
_OS_EXEC_RE = re.compile(r"^(?:exec[lv]p?e?|spawn[lv]p?e?|posix_spawnp?)$")
_MODULE_NAMED_ATTRS = frozenset(
    {
        "builtins",
        "inspect",
        "importlib",
        "ctypes",
        "subprocess",
        "pickle",
        "marshal",
        "threading",
        "multiprocessing",
        "asyncio",
        "atexit",
        "pty",
        "codeop",
        "runpy",
        "pkgutil",
        "pdb",
        "bdb",
        "doctest",
        "pydoc",
        "faulthandler",
        "cffi",
        "dill",
        "cloudpickle",
        "unittest",
        "_thread",
    }
)
# Double-underscore attributes that may be read.
_DUNDER_READ_OK = frozenset(
    {
        "__init__",
        "__name__",
        "__doc__",
        "__class__",
        "__qualname__",
        "__module__",
        "__len__",
        "__call__",
        "__repr__",
        "__str__",
        "__getitem__",
        "__iter__",
        "__next__",
        "__enter__",
        "__exit__",
        "__version__",
        "__post_init__",
        "__file__",
    }
)
# ... and may be assigned on non-module objects (e.g. by a decorator).
_DUNDER_WRITE_OK = frozenset({"__name__", "__doc__", "__qualname__", "__module__"})
# Double-underscore names that may be used as plain names.
_DUNDER_NAME_OK = frozenset(
    {
        "__name__",
        "__doc__",
        "__file__",
        "__all__",
        "__version__",
        "__author__",
        "__slots__",
        "__class__",
        "__qualname__",
        "__module__",
        "__annotations__",
        "__debug__",
    }
)
_FAKE_DUNDERS = frozenset(
    {
        "__eq__",
        "__ne__",
        "__lt__",
        "__le__",
        "__gt__",
        "__ge__",
        "__bool__",
        "__torch_function__",
        "__torch_dispatch__",
        "__instancecheck__",
        "__subclasscheck__",
        "__getattribute__",
        "__getattr__",
        "__setattr__",
        "__delattr__",
        "__del__",
        "__init_subclass__",
        "__array__",
        "__array_function__",
        "__array_ufunc__",
        "__array_priority__",
        "__array_wrap__",
        "__float__",
        "__int__",
        "__index__",
        "__complex__",
        "__class__",
        "__abs__",
        "__round__",
        "__trunc__",
        "__floor__",
        "__ceil__",
        "__reduce__",
        "__reduce_ex__",
    }
)
_FORBIDDEN_BASES = frozenset(
    {
        "Tensor",
        "Parameter",
        "UninitializedParameter",
        "TensorBase",
        "_TensorBase",
        "ndarray",
        "int",
        "float",
        "complex",
        "str",
        "bytes",
        "bytearray",
        "list",
        "dict",
        "tuple",
        "bool",
        "set",
        "frozenset",
        "type",
    }
)
_ENUM_BASES = frozenset({"Enum", "IntEnum", "StrEnum", "Flag", "IntFlag"})
# Attributes that learners legitimately set on tensors, modules and their own objects.
_INDIRECT_OK = frozenset(
    {
        "data",
        "grad",
        "requires_grad",
        "weight",
        "bias",
        "training",
        "device",
        "dtype",
        "name",
        "id",
        "input",
        "type",
        "next",
        "index",
        "format",
        "mode",
        "seed",
    }
)
_TORCH_DTYPES = frozenset(
    {
        "float32",
        "float64",
        "float16",
        "bfloat16",
        "float",
        "double",
        "half",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "long",
        "int",
        "short",
        "bool",
        "complex64",
        "complex128",
    }
)
_TENSOR_FACTORIES = frozenset(
    {
        "tensor",
        "as_tensor",
        "from_numpy",
        "zeros",
        "ones",
        "empty",
        "full",
        "rand",
        "randn",
        "randint",
        "randperm",
        "arange",
        "linspace",
        "logspace",
        "eye",
        "zeros_like",
        "ones_like",
        "empty_like",
        "full_like",
        "rand_like",
        "randn_like",
        "randint_like",
        "tril",
        "triu",
        "cat",
        "stack",
        "array",
        "asarray",
    }
)
# Library modules (and core classes) that must not be handed to other code, which could then
# change them out of sight (``patch(torch)`` with ``def patch(m): m.gelu = ...``).
_PASSABLE_MODULES = frozenset(
    {
        "sys",
        "os",
        "builtins",
        "gc",
        "inspect",
        "importlib",
        "torch",
        "numpy",
        "math",
        "torch.nn",
        "torch.nn.functional",
        "torch.testing",
        "numpy.testing",
        "course_utils",
        "course_utils.checks",
    }
)
_PASSABLE_CLASSES = frozenset({"torch.Tensor", "torch.nn.Module", "numpy.ndarray"})
_MODULE_ARG_OK_CALLEES = frozenset(
    {
        "print",
        "dir",
        "help",
        "repr",
        "str",
        "type",
        "id",
        "isinstance",
        "issubclass",
        "hasattr",
        "getattr",
        "display",
        "cast",
    }
)
_MODULES_DICT_METHODS = frozenset(
    {
        "update",
        "pop",
        "popitem",
        "setdefault",
        "clear",
        "get",
        "items",
        "values",
        "keys",
        "copy",
        "__setitem__",
        "__getitem__",
        "__delitem__",
    }
)
_EXEC_NAMES = frozenset({"exec", "eval", "compile"})
_NAMESPACE_NAMES = frozenset({"globals", "locals", "vars"})
_REFLECTIVE = frozenset({"getattr", "setattr", "delattr", "hasattr"})
# Literal attribute names that getattr/hasattr/attrgetter must not be given.
_GETATTR_FORBIDDEN_LITERALS = frozenset(
    {
        "exec",
        "eval",
        "compile",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "exit",
        "quit",
        "getattr",
        "setattr",
        "delattr",
        "modules",
        "system",
        "popen",
        "kill",
        "fork",
    }
)
# Builtins that may be rebound at top level to any ordinary value (they are common variable
# names and tests do not rely on them)...
_LENIENT_BUILTINS = frozenset(
    {
        "input",
        "id",
        "format",
        "hash",
        "next",
        "iter",
        "filter",
        "map",
        "slice",
        "bytes",
        "bytearray",
        "memoryview",
        "dir",
        "open",
        "property",
        "bin",
        "oct",
        "hex",
        "pow",
        "divmod",
        "ascii",
        "chr",
        "ord",
        "help",
        "license",
        "copyright",
        "credits",
    }
)
# ... builtins that must never be rebound at top level, whatever the value ...
_STRICT_BUILTINS = frozenset(
    {
        "get_ipython",
        "exec",
        "eval",
        "compile",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "isinstance",
        "issubclass",
        "super",
        "callable",
        "breakpoint",
        "exit",
        "quit",
        "__import__",
        "__build_class__",
        "object",
        "print",
    }
)
# ... and every other builtin may be rebound only to a literal-like value (``sum = 0``).
_SAFE_VALUE_CALLS = frozenset(
    {
        "int",
        "float",
        "str",
        "bool",
        "len",
        "list",
        "dict",
        "set",
        "tuple",
        "frozenset",
        "sorted",
        "repr",
        "ord",
        "chr",
        "hex",
        "bin",
        "oct",
        "bytes",
        "range",
        "enumerate",
        "zip",
        "reversed",
        "round",
        "abs",
        "complex",
    }
)
_FORBIDDEN_WORDS = (
    "input_transformers",
    "input_transformers_cleanup",
    "input_transformers_post",
    "input_transformer_manager",
    "ast_transformers",
    "settrace",
    "setprofile",
    "_getframe",
    "_current_frames",
    "get_ipython",
    "run_line_magic",
    "run_cell_magic",
    "showtraceback",
    "user_ns",
    "pre_run_cell",
    "post_run_cell",
    "pre_execute",
    "post_execute",
    "f_back",
    "f_locals",
    "f_globals",
    "f_builtins",
    "tb_frame",
    "gi_frame",
    "cr_frame",
    "get_objects",
    "get_referrers",
    "builtins",
    "course_utils",
    "sitecustomize",
    "usercustomize",
    "__builtins__",
    "__import__",
    "__globals__",
    "__code__",
    "__subclasses__",
    "__dict__",
    "__bases__",
    "__base__",
    "__mro__",
    "__closure__",
    "__defaults__",
    "__kwdefaults__",
    "__self__",
    "__func__",
    "__wrapped__",
    "__traceback__",
    "__loader__",
    "__spec__",
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__bool__",
    "__torch_function__",
    "__torch_dispatch__",
    "__instancecheck__",
    "__subclasscheck__",
    "__getattribute__",
    "__getattr__",
    "__setattr__",
    "__delattr__",
    "__class__",
)
_FORBIDDEN_WORD_RE = re.compile(
    r"(?<![A-Za-z0-9_])("
    + "|".join(sorted(map(re.escape, _FORBIDDEN_WORDS), key=len, reverse=True))
    + r")(?![A-Za-z0-9_])|sys\.modules"
)
_GRADER_FILE_RE = re.compile(
    r"\.ipynb\b|(?<![A-Za-z0-9_])(?:gradebook|autograded|nbgrader_config)(?![A-Za-z0-9_])"
)
# Calls that open, copy, move or remove files: a grading file's name there is flagged.
_FILE_CALLS = frozenset(
    {"open", "Path", "PurePath", "read_text", "read_bytes", "write_text", "write_bytes",
     "copy", "copy2", "copyfile", "copytree", "move", "rename", "replace", "unlink", "remove",
     "rmtree", "connect", "load", "save", "loads", "glob", "rglob", "listdir", "scandir",
     "walk", "exists", "is_file"}
)  # fmt: skip
_CODE_FILE_RE = re.compile(r"\.(?:py|pyc|pyd|so)\s*$")
_CODE_FILE_CALLS = frozenset(
    {
        "open",
        "copy",
        "copyfile",
        "copy2",
        "move",
        "rename",
        "renames",
        "replace",
        "symlink",
        "link",
        "copytree",
    }
)
_MAX_MAGIC_DEPTH = 4


# --------------------------------------------------------------------------------------------
# Lazily computed tables
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _transformer() -> Any:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


@functools.lru_cache(maxsize=1)
def _builtin_names() -> frozenset[str]:
    import builtins

    names = {n for n in dir(builtins) if not n.startswith("_")}
    return frozenset(names | {"get_ipython", "exit", "quit", "__import__", "__build_class__"})


@functools.lru_cache(maxsize=1)
def _exception_names() -> frozenset[str]:
    import builtins

    return frozenset(
        n
        for n in dir(builtins)
        if isinstance(getattr(builtins, n), type)
        and issubclass(getattr(builtins, n), BaseException)
    )


@functools.lru_cache(maxsize=1)
def _line_magics() -> frozenset[str]:
    names = set(_FALLBACK_LINE_MAGICS)
    try:
        import inspect

        import IPython.core.magics as magics_pkg
        from IPython.core.magic import Magics

        for obj in vars(magics_pkg).values():
            if inspect.isclass(obj) and issubclass(obj, Magics) and obj.magics:
                names.update(obj.magics.get("line", {}))
    except Exception:  # noqa: BLE001 - the fallback list is good enough
        pass
    return frozenset(names)


# Core names that must stay protected even when torch or numpy cannot be imported here.
_FALLBACK_PROTECTED = frozenset(
    "allclose isclose equal eq ne all any abs max min sum mean where isfinite isnan nonzero "
    "argmax item tolist numel shape dtype size detach to cpu float double testing "
    "assert_close assert_allclose assert_array_equal assert_equal assert_array_almost_equal "
    "len isinstance issubclass type bool int str repr sorted zip range print tensor "
    "zeros_like unravel_index softmax forward".split()
)


@functools.lru_cache(maxsize=1)
def _protected_attrs() -> dict[str, bool]:
    """Attribute names of the libraries the tests use -> whether each is callable everywhere.

    A non-``self`` object getting one of these attributes assigned looks like monkeypatching.
    """
    found: dict[str, bool] = {}

    def add(obj: object) -> None:
        for name in dir(obj):
            if name.startswith("__") and name.endswith("__"):
                continue
            try:
                value = getattr(obj, name)
            except Exception:  # noqa: BLE001 - lazy attributes may fail
                value = None
            found[name] = found.get(name, True) and callable(value)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import builtins

        add(builtins)
        for loader in (
            lambda: __import__("torch"),
            lambda: __import__("torch").Tensor,
            lambda: __import__("torch").nn.Module,
            lambda: __import__("torch.nn.functional", fromlist=["_"]),
            lambda: __import__("torch.testing", fromlist=["_"]),
            lambda: __import__("numpy"),
            lambda: __import__("numpy.testing", fromlist=["_"]),
            lambda: __import__("course_utils.checks", fromlist=["_"]),
        ):
            try:
                add(loader())
            except Exception:  # noqa: BLE001 - a missing library just protects less
                pass
    for name in _FALLBACK_PROTECTED:
        found.setdefault(name, name not in {"shape", "dtype", "testing"})
    return found
