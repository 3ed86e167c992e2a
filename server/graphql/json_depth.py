"""How deeply a JSON text nests, measured on the raw text before anything parses it.

Deep nesting is a cheap attack: `[[[[...]]]]` a few kilobytes long makes `json.loads`, and every
recursive walk after it (coercion, serialization, Postgres' jsonb parser), hit a recursion limit.
Counting brackets outside strings bounds all of them at once. The common case (a request with
fewer brackets than the limit, which cannot nest deeper than that) costs two `count` calls; the
rest is a few passes of C-level bytes operations, linear in the size whatever the input.
"""

from __future__ import annotations

from itertools import accumulate

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
for _open in b"[{":
    _STEP[_open] = 1
for _close in b"]}":
    _STEP[_close] = -1


def json_depth(text: bytes | str, limit: int) -> int:
    """The deepest bracket nesting in `text`, or 0 when it cannot exceed `limit` (fast path).

    Meaningful for valid JSON; for anything else it is just a number (the parser refuses it)."""
    if isinstance(text, str):
        if text.count("[") + text.count("{") <= limit:
            return 0
        text = text.encode("utf-8", "surrogatepass")
    elif text.count(b"[") + text.count(b"{") <= limit:
        return 0
    # Drop escaped backslashes, then escaped quotes: every `"` left opens or closes a string,
    # so the even pieces between quotes are the text outside strings.
    unescaped = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    brackets = outside.translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)
