"""Floor 6, training: options, the epoch loops, samplers, initialisations and a full training
run with its publication. Imports evaluation and every floor below it; nothing imports it but
the `python -m pytorch_models.train` command and the callers outside pytorch_models.
"""
