"""The cursor of ``DocumentRegistry.list`` (``GET /v1/documents?cursor=``), one format for every
registry: base64url, without padding, of the JSON object ``{"after": <last id returned>}``.

Clients treat it as opaque. Decoding is strict: anything that is not such an object is
``InvalidInput`` (HTTP 400), never a silently different page. Cursors of earlier versions: the
DynamoDB registry's (the same object, padded) are still accepted; the local registry's (the
bare id) are refused with that 400 and its hint, to list again from the start.
"""

from __future__ import annotations

import base64
import binascii
import json

from solar_rag.document_ids import MAX_DOCUMENT_ID_CHARS
from solar_rag.errors import InvalidInput

_INVALID = "cursor is not valid: use next_cursor as returned, or list again without a cursor"
_OVERHEAD = len('{"after":""}')
MAX_CURSOR_CHARS = -(-(MAX_DOCUMENT_ID_CHARS * 6 + _OVERHEAD) * 4 // 3)
"""The longest cursor of an id: 1,024 characters of at most six bytes in the JSON (four-byte
UTF-8, or ``\u0001`` for a control character of an id stored before the id grammar)."""


def encode_cursor(last_id: str) -> str:
    body = json.dumps({"after": last_id}, ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode("utf-8", "surrogatepass")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The last id of the previous page; ``InvalidInput`` for anything but a cursor."""
    try:
        raw = base64.b64decode(cursor.rstrip("=") + "=" * (-len(cursor.rstrip("=")) % 4),
                               altchars=b"-_", validate=True)
        body = json.loads(raw.decode("utf-8", "surrogatepass"))
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidInput(_INVALID) from None
    if not isinstance(body, dict) or body.keys() != {"after"}:
        raise InvalidInput(_INVALID)
    after = body["after"]
    if not isinstance(after, str) or not after:
        raise InvalidInput(_INVALID)
    return after
