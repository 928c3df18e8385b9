"""Serving the trained models: recommend, similar items, the live path and the retrain."""
