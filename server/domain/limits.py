"""How big the values a request stores on a run or a flow group may be.

Without bounds, one request could store 15 MB of parameters or 100,000 labels on a run, which
every agent poll and UI page then reads back, or a 1 MB idempotency key, which Postgres refuses
for its unique index (an index row holds at most ~2.7 kB). Each check names the field and its
limit. Text is also refused when it holds U+0000, which Postgres cannot store in text or jsonb.
"""

from __future__ import annotations

import json
import re
from typing import Any

from headwater.server.domain.errors import InvalidInput

# A run may carry this many labels (agents match them as a set; real ones have a handful)...
MAX_LABELS = 100
# ...each at most this long.
MAX_LABEL_LENGTH = 255
# A flow run's or task run's name.
MAX_NAME_LENGTH = 1000
# In characters; 255 four-byte characters still fit the (idempotency_key, flow_id) index.
MAX_IDEMPOTENCY_KEY_LENGTH = 255

# A `\u0000` escape in JSON text, not preceded by an escaped backslash (`\\u0000` is text).
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def check_text(value: str | None, what: str, max_length: int) -> None:
    """A string field: at most `max_length` characters, without NUL."""
    if value is None:
        return
    if len(value) > max_length:
        raise InvalidInput(f"`{what}` is {len(value)} characters long; the limit is {max_length}.")
    if "\x00" in value:
        raise InvalidInput(f"`{what}` contains a NUL character (\\u0000), which cannot be stored.")


def check_labels(labels: list[Any] | None, what: str = "labels") -> None:
    """Labels: non-empty strings, at most MAX_LABELS of them, each at most MAX_LABEL_LENGTH."""
    if labels is None:
        return
    if len(labels) > MAX_LABELS:
        raise InvalidInput(f"`{what}` has {len(labels)} labels; the limit is {MAX_LABELS}.")
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            # Prefect Server's words for labels; other lists (tags) are named.
            raise InvalidInput("Labels must be non-empty strings." if what == "labels"
                               else f"`{what}` must hold non-empty strings.")
        if len(label) > MAX_LABEL_LENGTH:
            raise InvalidInput(
                f"`{what}` holds a label of {len(label)} characters; the limit is {MAX_LABEL_LENGTH}."
            )
        if "\x00" in label:
            raise InvalidInput(f"`{what}` holds a label with a NUL character (\\u0000), which cannot be stored.")


def check_payload(value: Any, what: str, max_bytes: int) -> None:
    """A JSON value stored as given (parameters, context, run config): at most `max_bytes`
    serialized, and no NUL in any string."""
    if value is None:
        return
    try:
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except RecursionError:
        raise InvalidInput(f"`{what}` is nested too deeply.") from None
    except ValueError:
        raise InvalidInput(f"`{what}` contains NaN or Infinity, which JSON cannot hold.") from None
    size = len(encoded.encode())
    if size > max_bytes:
        raise InvalidInput(f"`{what}` is {size} bytes as JSON; the limit is {max_bytes} bytes.")
    if has_nul_escape(encoded):
        raise InvalidInput(f"`{what}` contains a NUL character (\\u0000), which cannot be stored.")


def has_nul_escape(json_text: str) -> bool:
    """Whether JSON text (as json.dumps writes it) holds a string with U+0000."""
    return _NUL_ESCAPE.search(json_text) is not None
