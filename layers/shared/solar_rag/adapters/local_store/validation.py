"""Input checks shared by the local store and registry (they raise ``InvalidInput``)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from solar_rag import errors


def validate_metadata(metadata: Mapping[str, object], *, where: str = "metadata") -> None:
    """Metadata values must be str, int, float (finite) or bool, keys non-empty strings."""
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise errors.InvalidInput(f"{where}: keys must be non-empty strings")
        if isinstance(value, float) and not math.isfinite(value):
            raise errors.InvalidInput(f"{where}[{key!r}]: numbers must be finite")
        if not isinstance(value, str | int | float | bool):
            raise errors.InvalidInput(
                f"{where}[{key!r}]: values must be strings, numbers or booleans, "
                f"not {type(value).__name__}"
            )
