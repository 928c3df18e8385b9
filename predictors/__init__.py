"""Serving the trained models: recommend, similar items, the live path and the retrain.

This file imports nothing, so any layer above can read its constants cheaply.
"""

# How the click log writes an event's time (UTC, microseconds; text that sorts as time), the
# first half of every sort key and watermark: the web app writes it, the live workers read it.
# Here because its users are `movie` and `predictors`: `predictors` may not import `eventstore`
# (which stores the text without parsing it), and `pytorch_models` knows no click log.
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# Events are read again from this far behind a visitor's watermark, so one written late (a slow
# request whose timestamp was taken before a newer event's) is still applied, once
# (predictors.watermark). The web app keeps its retries and forwarded events inside it
# (movie.tracking.events, movie.tracking.moves). Here for the reason TS_FORMAT is: the
# engine that reads behind the watermark may import neither eventstore nor movie, and
# livepath stores the watermark without reading events.
GRACE_S = 60
# The model whose item table answers "More like this" (the movie page); a version of it is
# published with each movie's nearest movies (`predictors.versions`, `pytorch_models.serving.neighbours`).
SIMILAR_MODEL = "pinsage"
