"""The modules' machinery, below ``cells.py`` and ``layers.py``: parameters in PyTorch's names and
layouts (``params``), the module base class with state_dict, devices and dtypes (``module``),
training through time (``training``: forward_train/backward and the tape), ONNX's options on layers
and cells (``layer_options``) and the layers' shared docstring text (``layer_docs``)."""
