"""Models from elsewhere, into rnnkern's layers and back.

- ``methods``: ``from_onnx``, ``to_onnx`` and ``from_keras`` on the layers (a mixin);
- ``torch``: ``from_torch`` (a torch.nn module's own configuration with its state_dict);
- ``onnx_import`` / ``onnx_export``: ONNX RNN/GRU/LSTM nodes to layers and back;
- ``keras``: Keras layers, configs and weights;
- ``convert``: what the importers share (the layer spec, stacking, activation names).

onnx, torch and keras are never imported by rnnkern itself, only when a converter is called.
"""
