"""The ``rag`` command: serve the API locally and use the same services from a terminal."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from solar_rag.composition import Container
from solar_rag.domain import Change, Filters, MetadataValue, Rejection, SearchMode, Upsert
from solar_rag.errors import PayloadTooLarge, RagError
from solar_rag.evaluation import command as eval_command
from solar_rag.parsing.sources import SIDECAR_SUFFIX, FileLoader, read_document
from solar_rag.settings import Settings, get_settings


def _container() -> Container:
    return Container(get_settings())


SERVE_SWITCH_INTERVAL_SECONDS = 0.001


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from solar_rag.api.app import create_app

    settings = get_settings()
    container = Container(settings)
    app = create_app(lambda: container, max_request_bytes=settings.max_request_bytes)
    # Parsing, chunking and offline embedding run in worker threads and hold the GIL in
    # 5 ms slices by default; a health check needs the GIL several times (event loop, worker
    # thread, back), so it waited 50-270 ms behind an indexing request. 1 ms slices keep it
    # answering promptly at the cost of a few more thread switches (docs/reliability.md).
    sys.setswitchinterval(SERVE_SWITCH_INTERVAL_SECONDS)
    from solar_rag.parsing.parsers import preload

    preload()
    print(f"provider={settings.provider} vector_store={settings.vector_store} "
          f"data_dir={settings.rag_data_dir.resolve()}", file=sys.stderr)
    if settings.provider == "offline":
        print("No UPSTAGE_API_KEY set: using the offline provider (lexical embeddings, extractive "
              "answers). Set UPSTAGE_API_KEY in .env for Solar answers.", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def iter_files(paths: Sequence[str], readable: Collection[str] | None = None) -> Iterator[Path]:
    """Files named, and in directories the files of a type that can be read here
    (``readable``; default: the built-in readers' types)."""
    from solar_rag.parsing.content_types import BUILT_IN_EXTENSIONS

    extensions = BUILT_IN_EXTENSIONS if readable is None else readable
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.name.endswith(SIDECAR_SUFFIX) or any(part.startswith(".") for part in
                                                              child.relative_to(path).parts):
                    continue
                if child.suffix.lower() in extensions:
                    yield child
        else:
            yield path


def _progress(done: int, total: int, label: str, out: TextIO) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    bar = "#" * filled + "-" * (width - filled)
    out.write(f"\r[{bar}] {done}/{total} {label[:60]:<60}")
    out.flush()


INDEX_GROUP_FILES = 32
"""Files indexed together, so small files share embedding requests (100 requests a minute)."""


def file_change(path: Path, settings: Settings, load: FileLoader) -> Change:
    """A file's upsert (the file replaces what was indexed from it), or its rejection when
    it or its sidecar cannot be read (``load``: the container's file loader, which sends the
    types ``DOCUMENT_PARSE_TYPES`` names to Document Parse)."""
    document_id = document_id_for(path)
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    try:
        if path.stat().st_size > settings.max_object_bytes:
            raise PayloadTooLarge(f"larger than {settings.max_object_bytes} bytes")
        document = read_document(load, path.read_bytes(), path.name, document_id=document_id,
                                 sidecar=sidecar.read_bytes() if sidecar.exists() else None,
                                 source=str(path))
    except RagError as error:
        return Rejection(document_id, error.message, source=str(path))
    except OSError as error:
        return Rejection(document_id, str(error), source=str(path))
    return Upsert(document, replaces=True)


def document_id_for(path: Path) -> str:
    """A file's document id: its path as given, with ``/``; a path through ``..`` (which the
    id grammar refuses) is made absolute instead, without following links."""
    posix = path.as_posix()
    if ".." in posix.split("/"):
        return Path(os.path.normpath(os.path.abspath(path))).as_posix()
    return posix


def _readable(container: Container) -> frozenset[str]:
    """The types a directory walk picks: the built-in readers', and Document Parse's
    (``DOCUMENT_PARSE_TYPES``) when it is available (an Upstage key)."""
    from solar_rag.parsing.content_types import BUILT_IN_EXTENSIONS

    if container.document_parser is None:
        return BUILT_IN_EXTENSIONS
    return BUILT_IN_EXTENSIONS | container.settings.document_parse_extensions


def cmd_index(args: argparse.Namespace) -> int:
    container = _container()
    files = list(iter_files(args.paths, readable=_readable(container)))
    counts = {"indexed": 0, "unchanged": 0, "failed": 0}
    failures: list[str] = []
    for start in range(0, len(files), INDEX_GROUP_FILES):
        group = files[start:start + INDEX_GROUP_FILES]
        _progress(start, len(files), str(group[0]), sys.stderr)
        changes = [file_change(path, container.settings, container.file_loader) for path in group]
        # One outcome per file: a file that fails fails alone (recorded, with the reason).
        for path, outcome in zip(group, container.indexing_service.apply(changes), strict=True):
            if outcome.error is not None:
                failures.append(f"{path}: {getattr(outcome.error, 'message', outcome.error)}")
            counts["failed" if outcome.error else
                   "unchanged" if outcome.status == "unchanged" else "indexed"] += 1
    _progress(len(files), len(files), "done", sys.stderr)
    sys.stderr.write("\n")
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    print(f"indexed={counts['indexed']} unchanged={counts['unchanged']} failed={counts['failed']}")
    return 1 if counts["failed"] else 0


def parse_filters(pairs: Sequence[str]) -> Filters:
    filters: Filters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"filter {pair!r} must look like key=value")
        parsed: MetadataValue
        try:
            loaded = json.loads(value)
            parsed = loaded if isinstance(loaded, str | int | float | bool) else value
        except json.JSONDecodeError:
            parsed = value
        existing = filters.get(key)
        if existing is None:
            filters[key] = parsed
        elif isinstance(existing, list):
            existing.append(parsed)
        else:
            filters[key] = [existing, parsed]
    return filters


def cmd_search(args: argparse.Namespace) -> int:
    hits = _container().search_service.search(args.query, top_k=args.top_k,
                                              mode=SearchMode(args.mode),
                                              filters=parse_filters(args.filter))
    if args.json:
        print(json.dumps([{"document_id": h.chunk.document_id, "chunk_id": h.chunk.chunk_id,
                           "score": h.score, "text": h.chunk.text} for h in hits],
                         ensure_ascii=False, indent=2))
        return 0
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.chunk.text.split())[:160]
        print(f"{rank:>2}. {hit.score:.4f} {hit.chunk.document_id} — {snippet}")
    if not hits:
        print("no results")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from solar_rag.parsing.pages import location

    answer = _container().query_service.ask(args.question, top_k=args.top_k,
                                            mode=SearchMode(args.mode),
                                            filters=parse_filters(args.filter))
    print(answer.text)
    if answer.citations:
        print()
        for citation in answer.citations:
            chunk = citation.hit.chunk
            where = location(chunk)
            print(f"[{citation.index}] {chunk.title or chunk.document_id} ({chunk.document_id})"
                  + (f", {where}" if where else ""))
    return 0


def cmd_documents(args: argparse.Namespace) -> int:
    container = _container()
    if args.action == "list":
        cursor = None
        while True:
            page = container.settings.max_list_limit
            records, cursor = container.document_catalog.list(limit=page, cursor=cursor)
            for record in records:
                print(f"{record.status.value:<8} {record.chunks:>5} {record.id}"
                      + (f"  ({record.error})" if record.error else ""))
            if not cursor:
                return 0
    if not args.id:
        raise ValueError(f"`rag documents {args.action}` needs a document id")
    if args.action == "show":
        from solar_rag.api.presenters import document_out

        print(document_out(container.document_catalog.get(args.id)).model_dump_json(indent=2))
        return 0
    container.indexing_service.delete(args.id)
    print(f"deleted {args.id}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Report where the index and the registry disagree; ``--fix`` repairs it (exit 1 while
    anything is left)."""
    from solar_rag.ports import StoreInventory
    from solar_rag.services.doctor import Doctor

    container = _container()
    store = container.store
    if not isinstance(store, StoreInventory):
        raise ValueError(f"the {container.vector_store_kind} store cannot list its contents")
    doctor = Doctor(store=store, registry=container.registry)
    findings = doctor.examine()
    repaired = doctor.fix(findings) if args.fix and findings else []
    left = doctor.examine() if repaired else findings
    if args.json:
        print(json.dumps({"found": [vars_of(f) for f in findings],
                          "repaired": [vars_of(f) for f in repaired],
                          "left": [vars_of(f) for f in left]}, ensure_ascii=False, indent=2))
    else:
        for finding in findings:
            print(f"{finding.kind:<21} {finding.document_id!r}: {finding.detail}")
        if repaired:
            print(f"repaired {len(repaired)} findings")
        print(f"found={len(findings)} repaired={len(repaired)} left={len(left)}")
    return 1 if left else 0


def vars_of(finding: object) -> dict[str, str]:
    return {name: str(getattr(finding, name)) for name in ("kind", "document_id", "detail")}


def cmd_opensearch(args: argparse.Namespace) -> int:
    from solar_rag.adapters.opensearch.bootstrap import init_opensearch

    settings = get_settings()
    if settings.vector_store != "opensearch":
        settings = Settings(**{**settings.model_dump(by_alias=True), "vector_store": "opensearch"})
    print(json.dumps(init_opensearch(settings), indent=2, default=str))
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    """Rebuild the corpus in the configured embedding space beside the live index, then swap
    (or ``--rollback``); exit 1 when it did not swap."""
    from solar_rag.reindexing import ProgressBar, reindex_status, run_reindex

    if args.status:
        print(json.dumps(reindex_status(get_settings()), indent=2, default=str))
        return 0
    bar = ProgressBar(sys.stderr)
    report = run_reindex(get_settings(), rollback=args.rollback, force=args.force,
                         on_progress=bar)
    bar.end()
    for document_id, reason in sorted(report.failed.items()):
        print(f"failed: {document_id}: {reason}", file=sys.stderr)
    if report.failed and not report.swapped:
        print(f"not swapped: {len(report.failed)} documents failed (the live index is "
              "unchanged; run again to retry them, or --force to swap without them)",
              file=sys.stderr)
    print(json.dumps({"swapped": report.swapped, "documents": report.documents,
                      "already_built": report.already_built, "rebuilt": report.rebuilt,
                      "unchanged": report.unchanged,
                      "deleted": report.deleted,
                      "failed": len(report.failed), "passes": report.passes, **report.detail},
                     default=str))
    return 0 if report.swapped else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    index = sub.add_parser("index", help="index files and folders (.txt .md .html .json .pdf .docx)")
    index.add_argument("paths", nargs="+")
    index.set_defaults(func=cmd_index)

    for name, func, positional in (("search", cmd_search, "query"), ("ask", cmd_ask, "question")):
        command = sub.add_parser(name, help=f"{name} the indexed documents")
        command.add_argument(positional)
        command.add_argument("--top-k", type=int, default=5)
        command.add_argument("--mode", choices=[m.value for m in SearchMode], default="hybrid")
        command.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE")
        command.add_argument("--json", action="store_true")
        command.set_defaults(func=func)

    documents = sub.add_parser("documents", help="list, show or delete indexed documents")
    documents.add_argument("action", choices=["list", "show", "delete"])
    documents.add_argument("id", nargs="?")
    documents.set_defaults(func=cmd_documents)

    doctor = sub.add_parser("doctor", help="find (and --fix) where the index and the registry "
                                           "disagree: orphaned chunks, interrupted writes")
    doctor.add_argument("--fix", action="store_true", help="repair what was found")
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(func=cmd_doctor)

    reindex = sub.add_parser("reindex", help="rebuild the index with the current parser, "
                                             "chunker and embedding settings, then swap")
    reindex.add_argument("--rollback", action="store_true",
                         help="make the previous index live again (with its settings)")
    reindex.add_argument("--force", action="store_true",
                         help="swap even if some documents failed (they are left out)")
    reindex.add_argument("--status", action="store_true",
                         help="print the unfinished run's progress (built/total, target, "
                              "failures) and exit")
    reindex.set_defaults(func=cmd_reindex)

    opensearch = sub.add_parser("opensearch", help="OpenSearch administration")
    opensearch.add_argument("action", choices=["init"])
    opensearch.set_defaults(func=cmd_opensearch)

    eval_command.add_parser(sub)  # rag eval: solar_rag/evaluation/
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except RagError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
