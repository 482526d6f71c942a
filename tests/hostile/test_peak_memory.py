"""Peak memory of ``rag index`` on each hostile document, in its own process.

The bound (``PEAK_BOUND_MB``, stated in docs/reliability.md) covers the whole command: the
interpreter and its imports, reading the file, parsing within the budgets, chunking, the
offline embedder and the local store. It is below the indexer Lambda's memory whatever the
input: the old parsers took 830 MB on a 0.7 MB PDF and 2.2 GB on a 2 MB one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.hostile_inputs import HOSTILE, Hostile
from infra_cdk.config import load_config

PEAK_BOUND_MB = 512
ROOT = Path(__file__).resolve().parents[2]
# VmHWM (the peak RSS of this process's own address space) rather than ru_maxrss, which
# Linux carries over from the parent across fork + exec (the test process is large).
_WRAPPER = (
    "import re, resource, sys\n"
    "from solar_rag.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "status = open('/proc/self/status').read()\n"
    "found = re.search(r'VmHWM:\\s+(\\d+) kB', status)\n"
    "peak = found.group(1) if found else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print(f'MAXRSS_KB={peak}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def rag_index(path: Path, workdir: Path) -> tuple[int, str, str, float]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("UPSTAGE_", "PARSE_", "MAX_", "VECTOR_STORE"))}
    env |= {"RAG_DATA_DIR": str(workdir / "data"), "EMBEDDING_DIMENSIONS": "256",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "shared"), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", _WRAPPER, "index", str(path)], cwd=workdir,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    found = re.search(r"MAXRSS_KB=(\d+)", done.stderr)
    assert found, done.stderr[-2000:]
    return done.returncode, done.stdout, done.stderr, int(found.group(1)) / 1024


def test_the_bound_is_below_the_indexer_memory() -> None:
    config = load_config(lambda key: None, environ={})
    assert config.indexer.memory_mb > PEAK_BOUND_MB


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h.name for h in HOSTILE])
def test_indexing_a_hostile_file_stays_under_the_bound(hostile: Hostile, tmp_path: Path) -> None:
    path = tmp_path / hostile.filename
    path.write_bytes(hostile.data())
    code, out, err, peak_mb = rag_index(path, tmp_path)
    if hostile.outcome == "parses":
        assert code == 0 and "indexed=1 unchanged=0 failed=0" in out, err[-2000:]
    else:
        assert code == 1 and "indexed=0 unchanged=0 failed=1" in out, err[-2000:]
        assert f"failed: {path}" in err and "Traceback" not in err
    assert peak_mb < PEAK_BOUND_MB, f"{hostile.name}: {peak_mb:.0f} MB"
