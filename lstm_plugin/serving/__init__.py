"""Serving: the model registry, onnxruntime inference, the forecast service and the backtest tape.

Layer 3. May import :mod:`lstm_plugin.core`, :mod:`lstm_plugin.model` (model files, features,
samples) and :mod:`lstm_plugin.plugins`. No torch: a served model is an ONNX file.
"""
