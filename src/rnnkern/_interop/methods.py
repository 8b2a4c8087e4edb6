"""Bring models from elsewhere: ``from_onnx``, ``to_onnx`` and ``from_keras`` on RNN, LSTM and GRU.

The converters live in _onnx.py, _onnx_export.py and _keras.py; onnx and keras are imported only
when one of these is called.
"""


class InteropMixin:
    @classmethod
    def from_onnx(cls, model, node=None, *, batch_first=None, device="cpu", dtype=None):
        """The layer of an ONNX model's RNN/GRU/LSTM node (the class's own op type).

        Args:
            model: an ``onnx.ModelProto`` or the path of a .onnx file.
            node: the node's name or index among the model's nodes of this op type; optional when
                there is exactly one. A list of them builds a stacked layer (node k feeds node k+1).
            batch_first: the layer's layout; None (the default) reads it off the graph: True for a
                node with layout=1, or whose input X is a Transpose with perm [1, 0, 2], which is
                what ``to_onnx`` writes in front of a batch_first layer (and torch.onnx.export in
                front of a batch_first module), so that ``from_onnx(layer.to_onnx())`` keeps it.
                True or False overrides what the graph says.
            device, dtype: as the constructor's; dtype defaults to the weights'.

        W, R, B and P come from initializers (or Constant nodes), gate blocks reordered (ONNX LSTM
        i, o, f, c -> i, f, g, o; GRU z, r, h -> r, z, n), B split into ``bias_ih`` / ``bias_hh``;
        every attribute maps to an option (layout=1 -> batch_first, direction, activations with their
        alpha/beta, clip, input_forget, linear_before_reset); constant initial_h / initial_c become
        ``layer.initial_state``. sequence_lens is a call argument: ``layer(x, lengths=...)``.
        Needs the ``onnx`` package (``pip install 'rnnkern[onnx]'``).
        """
        from .onnx_import import from_onnx

        return from_onnx(cls, model, node, device, dtype, batch_first)

    def to_onnx(self, path=None, *, opset=None, state_inputs=False, lengths_input=False):
        """This layer as an ONNX model (one node per layer), written to ``path`` when given.

        Graph inputs: ``input`` in the layer's layout, plus ``h_0`` (and ``c_0``) (L*D, B, H) with
        ``state_inputs=True`` and ``lengths`` (B,) int32 with ``lengths_input=True``; outputs
        ``output``, ``h_n`` (and ``c_n``), shaped as the layer's. ``opset`` defaults to 14.
        Returns the ``onnx.ModelProto``.
        """
        from .onnx_export import layer_to_onnx

        return layer_to_onnx(self, path, opset, state_inputs, lengths_input)

    @classmethod
    def from_keras(cls, layer, weights=None, *, device="cpu", dtype=None):
        """The layer of a Keras 3 ``LSTM`` / ``GRU`` / ``SimpleRNN`` (for ``RNN``), a ``Bidirectional``
        wrapper of one, or a list of them stacked; ``layer`` is the Keras layer object, or its
        ``get_config()`` dict (or a list of them) with ``weights`` its ``get_weights()``.
        Keras itself is needed only for layer objects, never to import from configs.
        """
        from .keras import from_keras

        return from_keras(cls, layer, weights, device, dtype)
