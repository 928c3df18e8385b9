"""Serving the trained models: recommend, similar items, the live path and the retrain.

This file imports nothing, so any layer above can read its constants cheaply.
"""

# How the click log writes an event's time (UTC, microseconds; text that sorts as time), the
# first half of every sort key and watermark: the web app writes it, the live workers read it.
# Here because its users are `movie` and `predictors`: `predictors` may not import `eventstore`
# (which stores the text without parsing it), and `pytorch_models` knows no click log.
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
