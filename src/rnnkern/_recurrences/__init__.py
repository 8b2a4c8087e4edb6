"""The recurrences, written once for every device.

- ``semantics``: ``CellMath``, one direction's math (activations, clip, input_forget, peepholes), the
  key of every compiled kernel; ONNX's option rules;
- ``activations``: the activation table (names, alpha/beta, derivatives) NumPy computes with;
- ``cells``: one step of each cell (RNN, LSTM, GRU): the recurrent GEMM and the backend's fused step,
  and what a training step saves;
- ``projection``: the LSTM's ``proj_size`` around the LSTM recurrence;
- ``sequence``: unrolling a direction over time (the input projection in chunks, packed lengths);
- ``bptt``: the training forward of a direction and backpropagation through time;
- ``dropout``: dropout between layers; ``ieee``: NaN from infinities without NumPy's warning;
- ``layernorm_math`` / ``layernorm``: the layer-normalised LSTM and GRU (Haste's, with zoneout): the step
  API's types, the input side's row LayerNorm, and their recurrences on the hooks of ``cells._Recurrence``.

The backends (``rnnkern._backend``) supply the arrays, the GEMMs and the fused steps.
"""
