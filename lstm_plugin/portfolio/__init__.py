"""Portfolio: technical scores, the LSTM blend, selection, weights, rebalance rules and performance maths.

Layer 5. May import every layer below. Pure Python and pandas: no Backtrader, no torch. The original
names (``PortfolioManager``, ``LSTMEnhancedPortfolioManager``, ``LSTMIntegration``) live here.
"""
