"""Floor 1, the data: MovieLens parsing, interactions and their splits, the DGL graph.

Imports nothing else of pytorch_models (tests/test_layers.py checks every floor's imports).
"""
