"""Floor 2, the models: the list of recommenders, losses, the nn.Modules and their configs.

Imports only the data floor and `pytorch_models.linalg`. This file imports nothing, so the
Django settings can read `models.names` without loading torch.
"""
