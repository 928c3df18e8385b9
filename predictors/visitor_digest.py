"""A visitor as a published version knows it: the retrain trains each visitor's clicks as a user
node named by `visitor_digest`, and the live engine finds that node again by the same name.

(The visitors' live state in Redis is `livepath.state`.)
"""

from __future__ import annotations

import hashlib


def visitor_digest(visitor: str) -> str:
    """How a published version names a visitor it trained on (never the visitor id itself)."""
    return hashlib.sha256(visitor.encode()).hexdigest()[:24]
