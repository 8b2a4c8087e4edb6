"""The numba kernels of one CellMath: ``steps`` (the one source of every cell's kernels and time
loops) with that CellMath's options compiled in, as a module cached on disk.

``steps`` takes its options (the activations, clip, input_forget, peephole, what training saves)
from one import block, ``from .options import ...``: ``options`` holds the defaults, so
the default kernels are ``steps`` itself, compiled and cached by numba as any module. For
another CellMath, ``steps(m)`` writes a copy of ``steps`` whose import block is replaced by the
generated definitions (``options_source``: the activations as ``inline='always'`` scalar functions
with their alpha and beta as constants, the options as module constants), once, under a user cache
folder, named by a hash of its text and of every module compiled into it, and imports it. numba keys
its disk cache on a function's file, so every combination a user runs is compiled once per machine
(numba cannot cache closures, which is why the kernels are not built as such). Where no folder is
writable (a read-only install), the copy is compiled in memory, once per process.

Options are module constants to numba: branches on them are folded away, so each combination runs
code with no per-element branch on an activation and nothing for an option it does not use.
``options.py`` is this generator's output for the defaults (``write_default_options``; a test
checks that it is up to date).
"""

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
import types
from pathlib import Path

import numba


BEGIN, END = "# <options>\n", "# </options>\n"
HERE = Path(__file__).resolve().parent
# Every module compiled into the kernels: a change to any of them names a new file (numba itself checks
# only the timestamp of the kernel's own file).
COMPILED_IN = ("steps.py", "scalar.py", "blas.py", "units.py", "simd.py", "rowgemm.py", "specialise.py")

# ONNX's activations as numba scalar code (the formulas of _activations.py; x is the pre-activation,
# A and B its alpha and beta in x's type): (f, f'(x)). One table for the defaults and every option.
FORMULAS = {
    "Sigmoid": ("return sigmoid(x)", "s = sigmoid(x)\n    return s * (ONE - s)"),
    "Tanh": ("return tanh(x)", "y = tanh(x)\n    return ONE - y * y"),
    "Relu": ("return ZERO if x < ZERO else x",  # NaN propagates, as np.maximum
             "return ZERO if x <= ZERO else ONE"),  # 1 at NaN, as torch's relu backward
    "HardSigmoid": ("y = A * x + B\n    return ZERO if y < ZERO else (ONE if y > ONE else y)",
                    "y = A * x + B\n    return A if (y > ZERO and y < ONE) else ZERO"),
    "LeakyRelu": ("return x if x >= ZERO else A * x", "return ONE if x >= ZERO else A"),
    "ThresholdedRelu": ("return x if x > A else ZERO", "return ONE if x > A else ZERO"),
    "ScaledTanh": ("return A * tanh(B * x)", "y = tanh(B * x)\n    return A * B * (ONE - y * y)"),
    "Elu": ("return x if x >= ZERO else A * like(x, math.expm1(x))",
            "return ONE if x >= ZERO else A * like(x, math.exp(x))"),
    "Softsign": ("return x / (ONE + abs(x))", "d = ONE + abs(x)\n    return ONE / (d * d)"),
    "Softplus": ("return (x if x > ZERO else ZERO) + like(x, math.log1p(math.exp(-abs(x))))",
                 "return sigmoid(x)"),
    "Affine": ("return A * x + B", "return A"),
}
# d * f' from the output y = f(x), for the activations the default maths save (saves_activations)
FROM_OUTPUT = {
    "Sigmoid": "return d * (y * (ONE - y))",
    "Tanh": "return d * (ONE - y * y)",
    "Relu": "return ZERO if y <= ZERO else d",  # torch's threshold_backward, a select: NaN passes dh on
}
# f' at x given y = f(x) as well, where y gives it cheaper (the LSTM's h at c)
AT_BOTH = {"Sigmoid": "return y * (ONE - y)", "Tanh": "return ONE - y * y"}
DEFAULT_ACTS = {"RNN_F": "Tanh", "F": "Sigmoid", "G": "Tanh", "HC": "Tanh"}
SLOTS = {"RNN": ("RNN_F",), "LSTM": ("F", "G", "HC"), "GRU": ("F", "G")}


def module_options(m):
    """What a module's text depends on for CellMath ``m``: (name, value) pairs; the slots of other
    cells keep the defaults, so maths of different cells with the same options share one module."""
    acts = {slot: (name, None, None) for slot, name in DEFAULT_ACTS.items()}
    for slot, act in zip(SLOTS[m.kind], m.acts):
        acts[slot] = (act.name, act.alpha, act.beta)
    return (tuple(sorted(acts.items())), ("SAVES_ACTIVATIONS", bool(m.saves_activations)),
            ("CLIP", None if m.clip is None else float(m.clip)), ("INPUT_FORGET", bool(m.input_forget)),
            ("PEEPHOLE", bool(m.peephole)))


DEFAULT_OPTIONS = (tuple(sorted((slot, (name, None, None)) for slot, name in DEFAULT_ACTS.items())),
                   ("SAVES_ACTIVATIONS", True), ("CLIP", None), ("INPUT_FORGET", False), ("PEEPHOLE", False))


def _function(name, args, body, alpha, beta):
    consts = "".join(f"    {k} = like(x, {v!r})\n" for k, v in (("A", alpha), ("B", beta)) if v is not None and k in body)
    return f"@njit(inline='always', **JIT)\ndef {name}({args}):\n{consts}    {body}\n"


def options_source(options, cache):
    """The text that replaces ``steps``' options import block, for ``module_options(m)``;
    ``cache`` is the source of numba's ``cache=`` flag."""
    acts, (_, saves), (_, clip), (_, input_forget), (_, peephole) = options
    head = ("import math\n\nfrom numba import njit\n\n"
            "from .scalar import JIT as _JIT, ONE, ZERO, like, sigmoid, tanh  # noqa: F401\n\n"
            f"JIT = dict(_JIT, cache={cache})\n"
            f"SAVES_ACTIVATIONS = {saves!r}  # the gates in gate form are the activations (else pre-activations)\n"
            f"CLIPPED = {clip is not None!r}\nLIM = {float(clip or 0.0)!r}  # the clip, in the kernel's dtype (like)\n"
            f"INPUT_FORGET = {input_forget!r}\nPEEPHOLE = {peephole!r}\n")
    blocks = [head]
    for slot, (name, alpha, beta) in acts:
        f, df = FORMULAS[name]
        functions = [_function(slot, "x", f, alpha, beta)]
        if slot == "HC":  # h's derivative at c, given y = h(c) too (c is always kept)
            functions.append(_function("DHC", "x, y", AT_BOTH.get(name, df), alpha, beta))
        else:
            functions.append(_function("D" + slot, "x", df, alpha, beta))
            # d * f' from the output; unused where the pre-activations are kept, but typed as called
            back = FROM_OUTPUT[name] if saves else f"return d * D{slot}(y)"
            functions.append(_function(slot + "_BACK", "y, d", back, None, None))
        params = "".join(f" {k}={v!r}" for k, v in (("alpha", alpha), ("beta", beta)) if v is not None)
        blocks.append(f"# {slot}: {name}{params}\n" + "\n\n".join(functions))
    return "\n\n".join(blocks)


def module_source(options, cache):
    """``steps``' text with the options import block replaced by ``options_source``."""
    text = (HERE / "steps.py").read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    note = f"# Generated by {__name__} from steps.py for {options!r}: do not edit.\n"
    return note + head + BEGIN + options_source(options, cache) + END + tail


def default_options_source():
    """The text of ``options.py``: the generated options of the defaults."""
    return ('"""The default CellMaths\' options, compiled into steps: generated by\n'
            'specialise.options_source (``python -m rnnkern._backend.numba.specialise`` rewrites it, a\n'
            "test checks that it is up to date). The kernels' caches follow every file of this folder\n"
            '(cachekey)."""\n\n' + options_source(DEFAULT_OPTIONS, "_JIT['cache']"))


def write_default_options():
    (HERE / "options.py").write_text(default_options_source())


def cache_folder():
    """Where generated modules are kept: $NUMBA_CACHE_DIR/rnnkern, else the user cache folder
    ($XDG_CACHE_HOME/rnnkern or ~/.cache/rnnkern on Linux)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]) / "rnnkern"
    from numba.misc.appdirs import user_cache_dir
    return Path(user_cache_dir("rnnkern", appauthor=False))


def _write_once(path, text):
    """Write ``text`` to ``path`` unless it is there: a new file appears whole (a link to a finished
    temporary file) and an existing one is never rewritten (numba's cache checks its timestamp)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process wrote the same text first
        except OSError:
            os.replace(tmp, path)  # no hard links here
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _key(options, package):
    digest = hashlib.sha256(repr((options, package, numba.__version__)).encode())
    for name in COMPILED_IN:
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()[:20]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _in_memory(name, options):
    module = types.ModuleType(name)
    module.__package__ = __package__
    exec(compile(module_source(options, cache="False"), f"<rnnkern: {name}>", "exec"), module.__dict__)
    return module


@functools.lru_cache(maxsize=None)
def _module(options):
    if options == DEFAULT_OPTIONS:
        from . import steps
        return steps
    name = f"{__package__}.steps_{_key(options, __package__)}"
    try:
        path = cache_folder() / f"{name.rsplit('.', 1)[1]}.py"
        _write_once(path, module_source(options, cache="True"))
        return _load(name, path)
    except (OSError, RuntimeError):  # no writable folder; numba: "cannot cache function ..."
        return _in_memory(name, options)


@functools.lru_cache(maxsize=None)
def steps(m):
    """The module of compiled kernels and time loops for CellMath ``m`` (``steps`` for the
    defaults); made once per process, compiled once per machine where a cache folder is writable."""
    return _module(module_options(m))


if __name__ == "__main__":
    write_default_options()
