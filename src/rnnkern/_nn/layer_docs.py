"""The layers' shared docstring text (the Args of RNN, LSTM and GRU)."""

LAYER_ARGS = """
    Args:
        input_size: the number of features of the input.
        hidden_size: the number of features of the hidden state.
        num_layers: stacked layers; layer k > 0 reads layer k-1's output.
        bias: if False, no ``bias_ih_l*`` / ``bias_hh_l*``.
        batch_first: input and output are (B, T, F) instead of (T, B, F) (states stay (L*D, B, H)).
        bidirectional: add a reverse direction per layer; outputs are concatenated (D = 2).
        dropout (keyword-only): as torch.nn, in ``forward_train`` only (never in ``layer(...)``), each layer's
            output but the last's is kept with probability 1 - dropout and scaled by 1 / (1 - dropout), or
            zeroed, before the next layer reads it; masks from ``forward_train``'s ``generator``.
        device: ``"cpu"``, ``"gpu"`` or ``"auto"``.
        dtype: ``"float32"`` or ``"float64"`` (and ``"float16"`` on the GPU).
        seed: seed of the U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) initialisation and of the layer's own
            dropout generator (used by forward_train when it is given no generator).

    ONNX's RNN/LSTM/GRU options (keyword-only; the defaults run the default kernels, unchanged):
        direction: ``"forward"``, ``"reverse"`` or ``"bidirectional"``; None follows ``bidirectional``. A
            ``"reverse"`` layer has one direction, run from each sequence's last step to its first (ONNX's
            direction="reverse", Keras's go_backwards); y[t] stays at time index t; weights use ``_lk``.
        activations: ONNX activation names (case-insensitive): Sigmoid, Tanh, Relu, HardSigmoid, LeakyRelu,
            ThresholdedRelu, ScaledTanh, Elu, Softsign, Softplus, Affine; per direction RNN 1 (f), GRU 2
            (f for r and z, g for n), LSTM 3 (f for i, f, o; g for the cell input; h for the output). One
            direction's list applies to every direction; a bidirectional layer also takes both (forward's
            first). None: the defaults (the RNN's from ``nonlinearity``, which must agree if both are given).
        activation_alpha, activation_beta: consumed in order over the list, each value only by an
            activation that takes that parameter (as ONNX Runtime); the ONNX operators' defaults after
            (LeakyRelu 0.01, ThresholdedRelu 1, HardSigmoid 0.2/0.5, Elu 1, ScaledTanh 1/1, Affine 1/0).
        clip: cell clip: every gate pre-activation is clamped to [-clip, clip] before its activation
            (LSTM: i, f, o with their peepholes, and g; GRU: r, z and n's whole argument); not c in h(c).
        input_forget (LSTM): coupled gates, f = 1 - i (the f weights, bias and peephole are unused).
        peephole (LSTM): per layer and direction ``weight_p_lk`` (3*H,) in ONNX's order (p_i, p_o, p_f):
            i and f add p * c_{t-1}, o adds p * c_t (state_dict: after that direction's torch tensors;
            from_state_dict reads it off the keys). Not with proj_size.
        Attributes: ``direction``, ``activations`` (canonical names, every direction), ``activation_alpha``
        / ``activation_beta`` (every value used, defaults filled in), ``clip``, ``input_forget``,
        ``peephole``, and ``initial_state``: None, or a state (``state``'s format) used when ``state=None``.

    Inputs: ``input`` (T, B, input_size), (B, T, input_size) with batch_first, or unbatched
    (T, input_size); ``lengths``: B integers in 1..T, in any order (as packed sequences: outputs past a
    sequence's length are zero, its final state is the one after its last step, and the reverse
    direction starts at its last step).

    Weights, per layer k and direction (suffix ``_lk`` or ``_lk_reverse``): ``weight_ih_lk``
    (G*H, input_size for k = 0 else D*H), ``weight_hh_lk`` (G*H, H), ``bias_ih_lk``, ``bias_hh_lk`` (G*H,).
"""
