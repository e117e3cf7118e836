"""Model: features, training samples, the LSTM network, the fit loop, ONNX export and model files.

Layer 1. May import :mod:`lstm_plugin.core`. With :mod:`lstm_plugin.training`, the only layer that
imports torch (and only inside the functions that train or export). No file I/O beyond the model file.
"""
