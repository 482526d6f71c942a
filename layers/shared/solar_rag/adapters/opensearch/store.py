"""The VectorStore port on OpenSearch (managed domain, AOSS NextGen, AOSS Classic)."""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from solar_rag.adapters.opensearch import queries
from solar_rag.adapters.opensearch.bootstrap import (
    NO_FILTER_MARKER,
    IndexState,
    ensure_index,
    index_mappings_by_name,
    pipeline_name,
    vector_config,
    verify_index,
)
from solar_rag.adapters.opensearch.bulk import (
    BulkAction,
    BulkLimits,
    BulkWriter,
    ItemResult,
    encode_line,
    failure_summary,
)
from solar_rag.adapters.opensearch.capabilities import Capabilities, capabilities_for
from solar_rag.adapters.opensearch.client import (
    INIT_HINT,
    build_client,
    error_reason,
    error_type,
    translated,
)
from solar_rag.adapters.opensearch.mapping import VectorConfig, engine_refusal
from solar_rag.adapters.opensearch.spaces import check_space
from solar_rag.domain import (
    DocumentWrite,
    EmbeddedChunk,
    SearchHit,
    SearchMode,
    SearchQuery,
    WriteResult,
)
from solar_rag.embedding_space import EmbeddingSpace
from solar_rag.errors import (
    InvalidInput,
    NotConfigured,
    RagError,
    SpaceMismatch,
    VectorStoreError,
)
from solar_rag.retrieval.fusion import DEFAULT_CANDIDATES, CandidatePolicy, reciprocal_rank_fusion
from solar_rag.retrieval.vectors import l2_normalise
from solar_rag.retrieval.write_plan import require_unique_documents

if TYPE_CHECKING:
    from solar_rag.settings import Settings

log = logging.getLogger(__name__)

SWEEP_LIMIT = 10_000
READ_RECHECK_SECONDS = 30.0
"""How often a store with a space asks where its alias points before a search."""
STALE_DOCUMENTS_PER_QUERY = 256
"""Documents per stale-chunk ``_delete_by_query``: two clauses each, well below the default
``indices.query.bool.max_clause_count`` (1024)."""


class OpenSearchVectorStore:
    def __init__(
        self,
        client: OpenSearch,
        *,
        index: str,
        dimensions: int,
        capabilities: Capabilities,
        pipeline: str | None = None,
        bulk_limits: BulkLimits | None = None,
        sleep: Callable[[float], None] = time.sleep,
        vector: VectorConfig | None = None,
        space: EmbeddingSpace | None = None,
        read_recheck_seconds: float = READ_RECHECK_SECONDS,
        candidates: CandidatePolicy = DEFAULT_CANDIDATES,
    ) -> None:
        """``space``: checked against the space the index records (reads and writes refuse
        another one). With it, reads go to the concrete index verified first (so a container
        keeps answering from it after `rag reindex` swaps the alias to an index of another
        space) and every write first asks where the alias points."""
        self.client = client
        self._candidates = candidates
        self.index = index
        self.space = space
        self._verified: str | None = None
        """The concrete index behind the alias whose space was checked (with ``space``)."""
        self._read_recheck = read_recheck_seconds
        self._read_checked = 0.0
        self.dimensions = dimensions
        self.vector = vector or VectorConfig(dimensions)
        if self.vector.dimensions != dimensions:
            raise ValueError("vector config and dimensions disagree")
        self.capabilities = capabilities
        self._ef_search = self.vector.ef_search if capabilities.query_ef_search else None
        self.pipeline = pipeline or pipeline_name(index)
        self.bulk_limits = bulk_limits or BulkLimits()
        self._writer = BulkWriter(
            client, index, self.bulk_limits, require_alias=capabilities.require_alias,
            sleep=sleep,
        )
        self._pipeline_available = capabilities.search_pipeline
        self._index_checked = False

    @property
    def kind(self) -> str:
        return "opensearch"

    def ensure_index(self) -> IndexState:
        state = ensure_index(self.client, self.index, self.dimensions, self.capabilities,
                             config=self.vector)
        self._index_checked = True
        return state

    # -- writes ---------------------------------------------------------------------------

    def upsert_document(
        self,
        document_id: str,
        version: str,
        chunks: Sequence[EmbeddedChunk],
        *,
        previous_chunk_ids: Sequence[str] = (),
    ) -> list[str]:
        (result,) = self.upsert_documents(
            [DocumentWrite(document_id, version, chunks, previous_chunk_ids)]
        )
        if result.error is not None:
            raise result.error
        return result.stored_ids

    def upsert_documents(self, writes: Sequence[DocumentWrite]) -> list[WriteResult]:
        """One bulk for every chunk of every document, then one stale-chunk sweep.

        A refresh and a ``_delete_by_query`` per document made ingestion wait on the store
        (per-document cost grows with the index); per call they are paid once.
        """
        require_unique_documents(writes)
        results: dict[int, WriteResult] = {}
        actions, owners = self._index_actions(writes, results)
        if len(results) == len(writes):
            return [results[i] for i in range(len(writes))]
        self._check_index_once()
        with translated(index=self.index, action="bulk upsert"):
            item_results = self._writer.run(actions) if actions else []
        per_write: dict[int, list[ItemResult]] = defaultdict(list)
        for owner, item in zip(owners, item_results, strict=True):
            per_write[owner].append(item)
        if any((r.error or "").startswith("index_not_found_exception") for r in item_results):
            self._roll_back_unaddressable(item_results)
            raise NotConfigured(f"OpenSearch alias {self.index!r} does not exist: {INIT_HINT}")
        written: dict[int, list[str]] = {}
        for position, write in enumerate(writes):
            if position in results:
                continue
            items = per_write.get(position, [])
            failures = [r for r in items if not r.ok]
            if failures:
                self._roll_back_unaddressable(items)
                results[position] = WriteResult(write.document_id, error=VectorStoreError(
                    f"{len(failures)} of {len(items)} chunks of document "
                    f"{write.document_id!r} were not written; the previous version was kept: "
                    f"{failure_summary(failures)}"
                ))
            else:
                written[position] = [r.doc_id or r.action.key for r in items]
        errors = self._remove_stale({p: (writes[p], ids) for p, ids in written.items()})
        for position, stored in written.items():
            results[position] = WriteResult(
                writes[position].document_id, stored, error=errors.get(position)
            )
        return [results[i] for i in range(len(writes))]

    def _index_actions(
        self, writes: Sequence[DocumentWrite], rejected: dict[int, WriteResult]
    ) -> tuple[list[BulkAction], list[int]]:
        """The bulk actions of every valid write, and the write position of each action.
        Writes with an invalid chunk are left out and get their error in ``rejected``."""
        actions: list[BulkAction] = []
        owners: list[int] = []
        for position, write in enumerate(writes):
            try:
                own = [self._index_action(write.document_id, write.version, item)
                       for item in write.chunks]
            except InvalidInput as error:
                rejected[position] = WriteResult(write.document_id, error=error)
                continue
            actions.extend(own)
            owners.extend([position] * len(own))
        return actions, owners

    def delete_document(self, document_id: str, *, chunk_ids: Sequence[str] = ()) -> int:
        if self.capabilities.delete_by_query:
            with translated(index=self.index, action="document delete"):
                self.client.indices.refresh(index=self.index)
                response = self.client.delete_by_query(
                    index=self.index,
                    body={"query": {"term": {"document_id": document_id}}},
                    refresh=True,
                    conflicts="proceed",
                )
            self._raise_on_query_failures(response, "document delete")
            return int(response.get("deleted", 0))
        # No _delete_by_query on Serverless: the ids recorded by the registry, plus whatever
        # search already sees (chunks of crashed runs whose ids were never recorded).
        ids = list(dict.fromkeys([*chunk_ids, *self._visible_ids(document_id)]))
        results = self._delete_ids(ids, action="document delete")
        failures = [r for r in results if not r.ok]
        if failures:
            raise VectorStoreError(
                f"could not delete {len(failures)} chunks of document {document_id!r}: "
                f"{failure_summary(failures)}"
            )
        return sum(1 for r in results if r.status == 200)

    # -- inventory (StoreInventory, for `rag doctor`) -------------------------------------

    def document_versions(self, document_id: str | None = None) -> dict[str, dict[str, int]]:
        from solar_rag.adapters.opensearch import inventory

        return inventory.document_versions(self, document_id)

    def remove_versions(self, document_id: str, *, keep: str | None) -> int:
        from solar_rag.adapters.opensearch import inventory

        return inventory.remove_versions(self, document_id, keep=keep)

    def _check_index_once(self) -> None:
        """Before the first write of this container: the alias must resolve to our mapping.

        Without it a write before `rag opensearch init` would auto-create a concrete index
        with a dynamic (non-k-NN) mapping under the alias name.
        """
        if self.space is not None:
            self._check_alias_target()
        if self._index_checked:
            return
        with translated(index=self.index, action="index check"):
            found = index_mappings_by_name(self.client, self.index)
        if found is None:
            raise NotConfigured(f"OpenSearch index {self.index!r} does not exist: {INIT_HINT}")
        for name, mappings in found.items():
            verify_index(self.client, name, mappings, self.vector, self.capabilities)
            check_space(name, mappings, self.space)
        self._index_checked = True

    def _check_alias_target(self) -> None:
        """Before a write: the alias must still point at an index in our space (``rag
        reindex`` may have swapped it since). One ``GET <alias>/_mapping`` per write call
        (the request init and the first write already rely on, on every target)."""
        self._verify_reads()

    def _verify_reads(self) -> str:
        """Check the space of what the alias resolves to; the index reads go to."""
        with translated(index=self.index, action="index check"):
            found = index_mappings_by_name(self.client, self.index)
        if found is None:
            raise NotConfigured(f"OpenSearch index {self.index!r} does not exist: {INIT_HINT}")
        for name, mappings in found.items():
            check_space(name, mappings, self.space)
        self._verified = next(iter(found)) if len(found) == 1 else self.index
        return self._verified

    @property
    def _read_index(self) -> str:
        """Where searches go: with a ``space``, the concrete index verified last. Every
        ``read_recheck_seconds`` the alias is asked again: an index of the same space behind
        it is followed; one of another space is not (this container keeps answering from the
        index it verified, kept by `rag reindex` for rollback, until it is restarted with
        the new settings), so queries never fail across a swap."""
        if self.space is None:
            return self.index
        now = time.monotonic()
        if self._verified is None:
            self._read_checked = now
            return self._verify_reads()
        if now - self._read_checked >= self._read_recheck:
            self._read_checked = now
            verified = self._verified
            try:
                return self._verify_reads()
            except SpaceMismatch:
                self._verified = verified
                log.warning("alias %r now points at an index of another embedding space; "
                            "searching %r until restarted with the new settings",
                            self.index, verified)
        return self._verified

    def _index_action(self, document_id: str, version: str, item: EmbeddedChunk) -> BulkAction:
        chunk = item.chunk
        if chunk.document_id != document_id or chunk.version != version:
            raise InvalidInput(
                f"chunk {chunk.chunk_id} belongs to {chunk.document_id!r} version "
                f"{chunk.version!r}, not {document_id!r} version {version!r}"
            )
        vector = self._checked_vector(item.vector)
        doc_id = chunk.chunk_id if self.capabilities.custom_ids else None
        source = queries.chunk_source_json(chunk, vector)
        action = BulkAction.index(chunk.chunk_id, source, doc_id)
        self._writer.check_size(action)
        return action

    def _checked_vector(self, vector: Sequence[float]) -> Sequence[float]:
        if len(vector) != self.dimensions:
            raise InvalidInput(
                f"vector has {len(vector)} dimensions, the OpenSearch index expects "
                f"{self.dimensions} (EMBEDDING_DIMENSIONS)"
            )
        length = math.hypot(*vector)
        if not math.isfinite(length):
            raise InvalidInput("vector contains NaN or infinity")
        if length == 0.0 or abs(length - 1.0) <= 1e-4:
            return vector
        return l2_normalise(vector)  # inner product ranks as cosine only on unit vectors

    def _remove_stale(
        self, written: Mapping[int, tuple[DocumentWrite, list[str]]]
    ) -> dict[int, RagError]:
        """Remove every older chunk of the written documents; the errors by write position."""
        if not written:
            return {}
        if self.capabilities.delete_by_query:
            return self._remove_stale_by_query(written)
        return self._remove_stale_by_ids(written)

    def _remove_stale_by_query(
        self, written: Mapping[int, tuple[DocumentWrite, list[str]]]
    ) -> dict[int, RagError]:
        errors: dict[int, RagError] = {}
        positions = list(written)
        with translated(index=self.index, action="stale chunk removal"):
            # Chunks written less than a refresh interval ago are invisible to the
            # query below: refresh first so a quick re-upsert leaves nothing behind.
            self.client.indices.refresh(index=self.index)
            for start in range(0, len(positions), STALE_DOCUMENTS_PER_QUERY):
                group = positions[start: start + STALE_DOCUMENTS_PER_QUERY]
                clauses = [_older_versions(written[p][0]) for p in group]
                query = clauses[0] if len(clauses) == 1 else {
                    "bool": {"should": clauses, "minimum_should_match": 1}}
                response = self.client.delete_by_query(
                    index=self.index, body={"query": query}, refresh=True, conflicts="proceed",
                )
                try:
                    self._raise_on_query_failures(response, "stale chunk removal")
                except VectorStoreError as error:
                    errors.update(dict.fromkeys(group, error))
        return errors

    def _remove_stale_by_ids(
        self, written: Mapping[int, tuple[DocumentWrite, list[str]]]
    ) -> dict[int, RagError]:
        """No _delete_by_query on Serverless: the ids recorded for the old version, plus
        whatever search already sees of the document besides what was just written
        (duplicates of a crashed run, chunks whose ids were never recorded). Search lags
        writes on Serverless, so the recorded ids are the primary source."""
        positions = list(written)
        visible = self._visible_ids_many(
            [(written[p][0].document_id, written[p][1]) for p in positions]
        )
        owner_of: dict[str, int] = {}
        for position, seen in zip(positions, visible, strict=True):
            write, stored = written[position]
            keep = set(stored)
            for chunk_id in (*write.previous_chunk_ids, *seen):
                if chunk_id not in keep:
                    owner_of.setdefault(chunk_id, position)
        if not owner_of:
            return {}
        try:
            results = self._delete_ids(list(owner_of), action="stale chunk removal")
        except VectorStoreError as error:
            results = [ItemResult(BulkAction.delete(i), 0, i, error.message) for i in owner_of]
        failed: dict[int, list[ItemResult]] = defaultdict(list)
        for result in results:
            if not result.ok:
                failed[owner_of[result.action.key]].append(result)
        errors: dict[int, RagError] = {}
        for position, failures in failed.items():
            document_id = written[position][0].document_id
            if not self.capabilities.custom_ids:
                # AOSS Classic: a retry would write the chunks again under new ids, so report
                # the new ids; the leftovers are found by delete_document's search sweep.
                log.error("%d stale chunks of %r left behind: %s", len(failures), document_id,
                          failure_summary(failures))
                continue
            errors[position] = VectorStoreError(  # a retry rewrites the same ids, then sweeps
                f"could not remove {len(failures)} stale chunks of document "
                f"{document_id!r}: {failure_summary(failures)}"
            )
        return errors

    def _roll_back_unaddressable(self, results: Sequence[ItemResult]) -> None:
        """On AOSS Classic, chunks of a failed upsert get ids nobody records: delete them."""
        if self.capabilities.custom_ids:
            return  # deterministic ids: the retry overwrites them
        written = [r.doc_id for r in results if r.ok and r.doc_id]
        if not written:
            return
        try:
            self._delete_ids(written, action="rollback")
        except VectorStoreError:
            log.exception("rollback of %d partially written chunks failed", len(written))

    def _delete_ids(self, ids: Sequence[str], *, action: str) -> list[ItemResult]:
        with translated(index=self.index, action=action):
            return self._writer.run([BulkAction.delete(i) for i in ids])

    def _visible_ids(self, document_id: str) -> list[str]:
        (found,) = self._visible_ids_many([(document_id, [])])
        return found

    def _visible_ids_many(
        self, documents: Sequence[tuple[str, Sequence[str]]]
    ) -> list[list[str]]:
        """The chunk ids search sees for each document, minus the given ids (one _msearch)."""
        bodies = []
        for document_id, exclude in documents:
            query: dict[str, Any] = {"term": {"document_id": document_id}}
            if exclude:
                query = {"bool": {"filter": [query],
                                  "must_not": [{"ids": {"values": list(exclude)}}]}}
            bodies.append({"size": SWEEP_LIMIT, "_source": False, "query": query})
        responses = self._msearch(bodies, action="document lookup")
        return [[str(hit["_id"]) for hit in response.get("hits", {}).get("hits", [])]
                for response in responses]

    @staticmethod
    def _raise_on_query_failures(response: Mapping[str, Any], action: str) -> None:
        failures = response.get("failures") or []
        if failures:
            first = failures[0]
            cause = first.get("cause", {}) if isinstance(first, Mapping) else {}
            raise VectorStoreError(
                f"OpenSearch {action} reported {len(failures)} failures: "
                f"{cause.get('type', 'error')}: {cause.get('reason', first)}"
            )

    # -- reads ----------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> list[SearchHit]:
        if query.top_k < 1:
            raise InvalidInput("top_k must be at least 1")
        vector = None if query.vector is None else self._checked_vector(query.vector)
        if query.mode is SearchMode.VECTOR:
            if vector is None:
                raise InvalidInput("vector search needs a query vector")
            body = queries.vector_search_body(vector, query.top_k, query.filters,
                                              ef_search=self._ef_search)
            return queries.hits_from_response(self._search(body), vector_scores=True)
        if query.mode is SearchMode.KEYWORD or vector is None:
            body = queries.keyword_search_body(query.text, query.top_k, query.filters)
            return queries.hits_from_response(self._search(body), vector_scores=False)
        return self._hybrid(query, vector)

    def _hybrid(self, query: SearchQuery, vector: Sequence[float]) -> list[SearchHit]:
        size = self._candidates.count(query.top_k)
        if self._pipeline_available:
            body = queries.hybrid_search_body(query.text, vector, size, query.filters,
                                              ef_search=self._ef_search)
            try:
                response = self._search(body, search_pipeline=self.pipeline)
            except _PipelineMissing:
                log.warning(
                    "search pipeline %r is missing (%s); fusing hybrid results client-side",
                    self.pipeline, INIT_HINT,
                )
                self._pipeline_available = False
            else:
                hits = queries.hits_from_response(response, vector_scores=False)
                return hits[: query.top_k]
        keyword_body = queries.keyword_search_body(query.text, size, query.filters)
        vector_body = queries.vector_search_body(vector, size, query.filters,
                                                 ef_search=self._ef_search)
        keyword_response, vector_response = self._msearch([keyword_body, vector_body],
                                                          index=self._read_index)
        fused = reciprocal_rank_fusion(
            [
                queries.hits_from_response(keyword_response, vector_scores=False),
                queries.hits_from_response(vector_response, vector_scores=True),
            ],
            key=_chunk_id,
            top_k=query.top_k,
        )
        return [SearchHit(hit.chunk, score) for hit, score in fused]

    def _search(self, body: Mapping[str, Any], **params: str) -> Mapping[str, Any]:
        index = self._read_index
        with translated(index=index, action="search"):
            try:
                response: Mapping[str, Any] = self.client.search(
                    index=index, body=body, params=params or None
                )
            except TransportError as exc:
                if "search_pipeline" in params and _is_missing_pipeline(exc):
                    raise _PipelineMissing(error_reason(exc)) from exc
                if NO_FILTER_MARKER in error_reason(exc).lower():
                    raise NotConfigured(engine_refusal(
                        self.index, "nmslib", self.capabilities)) from exc
                raise
        return response

    def _msearch(
        self, bodies: Sequence[Mapping[str, Any]], *, action: str = "search",
        index: str | None = None,
    ) -> list[Mapping[str, Any]]:
        payload = b"".join(encode_line({}) + encode_line(body) for body in bodies)
        index = index or self.index
        with translated(index=index, action=action):
            response = self.client.msearch(
                body=payload, index=index, headers={"content-type": "application/x-ndjson"}
            )
        answers: list[Mapping[str, Any]] = list(response.get("responses") or [])
        if len(answers) != len(bodies):
            raise VectorStoreError("OpenSearch _msearch answered the wrong number of responses")
        for answer in answers:
            error = answer.get("error")
            if error is None:
                continue
            kind = error.get("type", "") if isinstance(error, Mapping) else str(error)
            if kind == "index_not_found_exception":
                raise NotConfigured(f"OpenSearch index {self.index!r} does not exist: {INIT_HINT}")
            reason = error.get("reason", kind) if isinstance(error, Mapping) else kind
            if NO_FILTER_MARKER in str(reason).lower():
                raise NotConfigured(engine_refusal(self.index, "nmslib", self.capabilities))
            raise VectorStoreError(f"OpenSearch {action} failed ({answer.get('status')}): {reason}")
        return answers


def _older_versions(write: DocumentWrite) -> dict[str, Any]:
    return {"bool": {
        "filter": [{"term": {"document_id": write.document_id}}],
        "must_not": [{"term": {"version": write.version}}],
    }}


class _PipelineMissing(Exception):
    pass


def _is_missing_pipeline(exc: TransportError) -> bool:
    if exc.status_code not in (400, 404):
        return False
    if error_type(exc) == "index_not_found_exception":
        return False
    return "pipeline" in error_reason(exc).lower()


def build_opensearch_store(
    settings: Settings, *, bulk_limits: BulkLimits | None = None,
    space: EmbeddingSpace | None = None,
) -> OpenSearchVectorStore:
    """The store for ``settings`` (client per target: URL + basic auth, or SigV4)."""
    return OpenSearchVectorStore(
        build_client(settings),
        index=settings.opensearch_index,
        dimensions=settings.embedding_dimensions,
        capabilities=capabilities_for(settings.opensearch_target),
        bulk_limits=bulk_limits,
        vector=vector_config(settings),
        space=space,
        candidates=settings.candidate_policy,
    )


def _chunk_id(hit: SearchHit) -> str:
    return hit.chunk.chunk_id
