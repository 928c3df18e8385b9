"""Floor 4, serving a published version: score functions, fold-in, explanations, the
visitors' graph. Imports the models, `pytorch_models.checkpoint` and the data below them.
"""
