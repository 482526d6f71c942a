"""Pause Python's cyclic garbage collector while a document is parsed.

Parsing a hostile 2 MB Markdown document creates hundreds of thousands of short-lived tokens.
They are freed by reference counting (they form no cycles), but while they live every
automatic full collection walks all of them with the GIL held: 88-288 ms pauses, during which
``rag serve`` could not answer a health check. With the collector paused they are never
walked. Nested and concurrent parses share one pause (a counter under a lock); the collector
runs again as soon as the last of them ends, so cyclic garbage of other threads waits at most
one parse (itself bounded by the time budget).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_active = 0
_was_enabled = True


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    global _active, _was_enabled
    with _lock:
        if _active == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _was_enabled:
                gc.enable()
