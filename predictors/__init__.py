"""Serving the trained models: recommend, similar items, and the graph worker's state."""
