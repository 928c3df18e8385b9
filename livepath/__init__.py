"""The live path's state in Redis: one owner for what the live workers share between clicks.

- `store`: the Redis client every module here (and the recommendation cache) uses.
- `queue`: the work queue (`<prefix>:waiting`) and the workers' fenced claims.
- `state`: each visitor's live state (watermark, history, per-version parameters), and
  which visitors hold parameters of each version.
- `latency`: the click → fresh-list timings the workers record and the dashboard reads.

It imports nothing of ours but settings: `predictors` (the engine that folds visitors in) and
`workers` import it, and the web app reaches it only through `eventstore.live`, never by
writing its keys. This file imports nothing.
"""
