"""Core: errors, clocks, dates, files, JSON, the config and the data sources — what every layer shares.

Layer 0. Imports nothing else from ``lstm_plugin``; no torch, no onnxruntime, no Backtrader
(the layer rule is in ``docs/architecture.md`` and tested by ``tests/test_layers.py``).
"""
