"""Issue 17: the chunker before and after its speed-up, in one process, on the bench corpus.

    .venv/bin/python -m bench.chunking_before_after

"Before" is the chunker of commit df53043, kept verbatim as ``tests/reference/chunking_v1.py``
(the reference of the equivalence tests). Runs are interleaved, best of 5, and the chunks of
both are compared (they must be identical). Standalone: not part of ``run_all``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from solar_rag.domain import Chunk
from solar_rag.parsing.parsers import parse_document
from solar_rag.text.chunking import Chunker

from bench import corpus
from tests.reference.chunking_v1 import ReferenceChunker

REPEATS = 5


def main() -> None:
    docs = corpus.documents(2000, seed=23)  # bench/chunking.py's corpus at full scale
    parsed = [(d, parse_document(d)) for d in docs]
    megabytes = sum(len(p.text.encode("utf-8")) for _, p in parsed) / 1e6
    before, after = ReferenceChunker(400, 60), Chunker(400, 60)
    runs: dict[str, Callable[[], list[list[Chunk]]]] = {
        "before (df53043)": lambda: [before.chunk(d, p, "v1") for d, p in parsed],
        "after": lambda: [after.chunk(d, p, "v1") for d, p in parsed],
    }
    wall = dict.fromkeys(runs, float("inf"))
    cpu = dict.fromkeys(runs, float("inf"))
    chunks: dict[str, list[list[Chunk]]] = {}
    for _ in range(REPEATS):
        for name, run in runs.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            chunks[name] = run()
            wall[name] = min(wall[name], time.perf_counter() - started)
            cpu[name] = min(cpu[name], time.process_time() - started_cpu)
    same = chunks["before (df53043)"] == chunks["after"]
    print(f"{len(docs)} documents, {megabytes:.1f} MB; identical chunks: {same}")
    for name in runs:
        print(f"{name:18s} {megabytes / wall[name]:6.1f} MB/s wall, "
              f"{megabytes / cpu[name]:6.1f} MB/s CPU")
    print(f"after ÷ before: {wall['before (df53043)'] / wall['after']:.2f}× (wall)")


if __name__ == "__main__":
    main()
