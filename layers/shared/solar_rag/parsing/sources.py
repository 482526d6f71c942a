"""A file or an S3 object, with its metadata sidecar, to a ``SourceDocument``.

One sidecar parser and one way of failing for ``rag index`` and S3 ingestion: every way a
file or its sidecar cannot be read is a ``RagError`` of the document's own (it fails the
same way every time), never an exception that stops the run or retries the message.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from solar_rag.domain import Metadata, MetadataValue, SourceDocument
from solar_rag.errors import InvalidInput, RagError, UnsupportedDocument
from solar_rag.settings import current_limits

SIDECAR_SUFFIX = ".metadata.json"
"""``<key>.metadata.json`` describes ``<key>`` (the Bedrock Knowledge Bases convention)."""
MAX_SIDECAR_BYTES = 10 * 1024  # Bedrock's limit for a metadata file
_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_LIMITS = current_limits()
"""Read once, as the API schemas read theirs: a sidecar is held to the same metadata limits
as a document sent over HTTP."""


class FileLoader(Protocol):
    def __call__(self, data: bytes, filename: str, *, document_id: str,
                 metadata: Metadata | None = None, source: str | None = None) -> SourceDocument: ...


def document_key(key: str) -> str:
    """The document an object or file belongs to: a sidecar belongs to the one it describes."""
    if key.endswith(SIDECAR_SUFFIX) and len(key) > len(SIDECAR_SUFFIX):
        return key.removesuffix(SIDECAR_SUFFIX)
    return key


def invalid_sidecar(name: str, problem: str) -> InvalidInput:
    return InvalidInput(f"invalid metadata sidecar {name}{SIDECAR_SUFFIX}: {problem}")


def parse_sidecar(data: bytes) -> Metadata:
    """``{"metadataAttributes": {...}}`` with plain values or Bedrock's typed values."""
    if len(data) > MAX_SIDECAR_BYTES:
        raise InvalidInput(f"it is larger than {MAX_SIDECAR_BYTES} bytes")
    try:
        body = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("it is not valid UTF-8 JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("metadataAttributes"), dict):
        raise InvalidInput('it must be an object with a "metadataAttributes" object')
    attributes: dict[str, Any] = body["metadataAttributes"]
    if len(attributes) > _LIMITS.max_metadata_keys:
        raise InvalidInput(f"it has more than {_LIMITS.max_metadata_keys} attributes")
    metadata: Metadata = {}
    for key, raw in attributes.items():
        if not _METADATA_KEY.match(key):
            raise InvalidInput(f"attribute name {key[:130]!r} is not allowed (letters, digits, _.:-)")
        metadata[key] = _attribute_value(key, raw)
    return metadata


def _attribute_value(key: str, raw: object) -> MetadataValue:
    value = raw
    if isinstance(raw, dict) and isinstance(raw.get("value"), dict):  # {"value": {"type": ...}}
        typed = raw["value"]
        field = {"STRING": "stringValue", "NUMBER": "numberValue",
                 "BOOLEAN": "booleanValue"}.get(str(typed.get("type", "")).upper())
        if field is None or field not in typed:
            raise InvalidInput(f"attribute {key!r} has an unsupported typed value")
        value = typed[field]
    if isinstance(value, bool | int | float) and not (isinstance(value, float) and value != value):
        return value
    if isinstance(value, str):
        if len(value) > _LIMITS.max_metadata_value_chars:
            raise InvalidInput(f"attribute {key!r} is longer than "
                               f"{_LIMITS.max_metadata_value_chars} characters")
        return value
    raise InvalidInput(f"attribute {key!r} must be a string, number or boolean")


def read_document(load: FileLoader, data: bytes, name: str, *, document_id: str,
                  sidecar: bytes | None, source: str) -> SourceDocument:
    """The document in ``data`` (a file called ``name``) with its sidecar's metadata.

    Raises a ``RagError`` for a bad sidecar or a file its reader cannot read.
    """
    try:
        metadata = parse_sidecar(sidecar) if sidecar is not None else {}
    except InvalidInput as error:
        raise invalid_sidecar(name, error.message) from None
    try:
        return load(data, name, document_id=document_id, metadata=metadata, source=source)
    except RagError:
        raise
    except RecursionError:
        raise UnsupportedDocument("the file could not be read (RecursionError): it is nested "
                                  "too deeply") from None
    except Exception as error:  # broad on purpose: a reader is a function of the file's bytes,
        # so whatever it raises (a parser choking on a malformed file) the same file raises
        # again: it is the file's failure, recorded, never retried, never the run's end.
        raise UnsupportedDocument(f"the file could not be read ({type(error).__name__})") from None
