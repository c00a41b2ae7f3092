"""One key=value log line per event: values quoted only when they must be."""
from __future__ import annotations

import json


def quote(value) -> str:
    """A log value: bare when it is one word, else JSON-quoted (key=value logs stay parseable)."""
    text = str(value)
    return text if text and all(c.isalnum() or c in "._-/:" for c in text) else json.dumps(text)
