"""Seeded random layer configurations for the differential fuzz (tests/test_fuzz_layers.py).

``draw(index)`` is a pure function of the index (numpy's Generator seeded with (SEED, index)), so a
failing case is reproduced by its index alone, and adding cases never changes the earlier ones.
The draws lean towards the shapes where defects hide: size-1 dimensions, batches at the compiled
loop's edge (LOOP_MAX_BATCH = 16), initial states that are views with odd strides.
"""

import dataclasses

import numpy as np

SEED = 15  # issue 15

# (class, constructor options that select the cell's variant)
KINDS = [("RNN", {"nonlinearity": "tanh"}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}),
         ("GRU", {"linear_before_reset": True}), ("GRU", {"linear_before_reset": False})]
BATCHES = [1, 2, 3, 4, 7, 15, 16, 17]  # 15, 16, 17: both sides of the compiled loop's edge
CONSTRUCTORS = ("class", "state_dict", "onnx", "keras", "deepcopy", "pickle")
# how the initial state is passed: see fuzz_arrays.state_view
STATES = ("none", "given", "broadcast", "reversed", "strided", "overlapping", "fortran", "readonly")
INPUTS = ("contiguous", "fortran", "strided", "reversed", "readonly")  # see fuzz_arrays.input_view
# The ONNX-options slice: one fixed variant per cell (activations and clip), because the numba
# backend compiles each combination anew in every process (about 2 s for a GRU or LSTM); the
# fuzz varies the shapes around them. Kinks (clip, HardSigmoid) are met with probability ~1e-6.
ONNX_VARIANTS = {"RNN": ["Softsign"], "GRU": ["HardSigmoid", "Softsign"], "LSTM": ["HardSigmoid", "Softsign", "Elu"]}
CLIP = 1.5


@dataclasses.dataclass(frozen=True)
class Config:
    index: int
    kind: str
    cell: dict             # nonlinearity / linear_before_reset
    dtype: str
    input_size: int
    hidden_size: int
    proj_size: int
    num_layers: int
    bidirectional: bool
    bias: bool
    batch_first: bool
    batch: int             # 1 when unbatched
    steps: int
    unbatched: bool
    lengths: bool
    state: str
    input: str
    constructor: str
    onnx_options: dict     # clip, activations, direction='reverse' (a slice of the cases)

    @property
    def id(self):
        return f"c{self.index:03d}-{self.kind}-{self.constructor}"

    def constructor_kwargs(self):
        """The class's keyword arguments beyond input_size and hidden_size."""
        kwargs = dict(num_layers=self.num_layers, bias=self.bias, batch_first=self.batch_first,
                      bidirectional=self.bidirectional, **self.cell, **self.onnx_options)
        if self.proj_size:
            kwargs["proj_size"] = self.proj_size
        return kwargs


def _size(rng, one=0.3, high=6):
    """1 with probability ``one``, else 2..high."""
    return 1 if rng.random() < one else int(rng.integers(2, high + 1))


def _onnx_options(rng, kind, bidirectional):
    options = {"clip": CLIP, "activations": ONNX_VARIANTS[kind]}
    if not bidirectional and rng.random() < 0.3:
        options["direction"] = "reverse"
    return options


def draw(index):
    """The fuzz case ``index``: a Config, deterministic."""
    rng = np.random.default_rng([SEED, index])
    kind, cell = KINDS[rng.integers(len(KINDS))]
    constructor = str(rng.choice(CONSTRUCTORS))
    hidden_size = _size(rng)
    proj = kind == "LSTM" and hidden_size > 1 and constructor not in ("onnx", "keras") and rng.random() < 0.3
    options = constructor in ("class", "state_dict") and not proj and rng.random() < 0.15
    bidirectional = bool(rng.random() < 0.5)
    unbatched = bool(rng.random() < 0.08)
    if options:
        options = _onnx_options(rng, kind, bidirectional)
        cell = {k: v for k, v in cell.items() if k != "nonlinearity"} if "activations" in options else cell
    return Config(
        index=index, kind=kind, cell=dict(cell), dtype=str(rng.choice(["float32", "float64"])),
        input_size=_size(rng), hidden_size=hidden_size,
        proj_size=int(rng.integers(1, hidden_size)) if proj else 0,
        num_layers=int(rng.choice([1, 1, 2, 3])), bidirectional=bidirectional, bias=bool(rng.random() < 0.85),
        batch_first=constructor == "keras" or bool(rng.random() < 0.5),  # Keras layers are batch-major
        batch=1 if unbatched else int(rng.choice(BATCHES)), steps=_size(rng, 0.2, 7), unbatched=unbatched,
        lengths=not unbatched and bool(rng.random() < 0.2), state=str(rng.choice(STATES)),
        input=str(rng.choice(INPUTS)), constructor=constructor, onnx_options=options or {})
