"""Keeps Secrets Manager payloads out of botocore's DEBUG wire logs.

With its loggers at DEBUG, botocore logs every response body, ``GetSecretValue``'s included:
the Upstage key would be in the log. This filter replaces the arguments of any botocore record
that carries a ``SecretString``/``SecretBinary`` payload; everything else is left as it is.
"""

from __future__ import annotations

import logging

WIRE_LOGGERS = ("botocore.parsers", "botocore.endpoint", "botocore.hooks", "botocore.retryhandler")
_MARKERS = ("SecretString", "SecretBinary")
REDACTED_PAYLOAD = "[Secrets Manager payload redacted]"


class SecretPayloadFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            shown = f"{record.msg!r}{record.args!r}"
        except Exception:  # an argument whose repr fails: be safe
            shown = _MARKERS[0]
        if any(marker in shown for marker in _MARKERS):
            record.msg, record.args = "%s", (REDACTED_PAYLOAD,)
        return True


_FILTER = SecretPayloadFilter()


def install_secret_payload_filter() -> None:
    """Idempotent; call before the first Secrets Manager request."""
    for name in WIRE_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
