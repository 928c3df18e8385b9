"""Floor 5, evaluation: ranking metrics, blends and the metrics of a checkpoint folder.
Imports serving and the floors below it.
"""
