"""S3 keys outside the id grammar are `failed` with the reason, under the key as it is."""

from __future__ import annotations

import pytest
from solar_rag.domain import DocumentStatus
from solar_rag.lambda_edge.events import parse_notification

from tests.fakes import events
from tests.unit.test_s3_ingestion import (  # noqa: F401 (world: the same fixture)
    BUCKET,
    World,
    handle,
    seq,
    world,
)


@pytest.mark.parametrize("key", ["a/../b.txt", "./c.txt", "line\nbreak.txt", "rtl\u202etxt.md",
                                 "..", "x/" + "y" * 1030 + ".txt"])
def test_key_outside_the_grammar_is_failed_not_renamed(world: World, key: str) -> None:  # noqa: F811
    world.put(key, "some text")
    assert handle(world, events.created(key, sequencer=seq())) == ["failed"]
    record = world.registry.get(key)
    assert record is not None and record.status is DocumentStatus.FAILED
    assert "cannot be a document id" in (record.error or "")
    assert world.objects.reads == []  # decided from the key
    assert world.store.chunks == {}
    assert handle(world, events.removed(key, sequencer=seq())) == ["deleted"]


def test_batched_path_applies_the_same_rule(world: World) -> None:  # noqa: F811
    world.put("ok.txt", "fine text")
    world.put("bad/../x.txt", "text")
    bodies = [events.s3_notification(events.created(k, sequencer=seq()))
              for k in ("ok.txt", "bad/../x.txt")]
    results = world.ingestion.apply([parse_notification(body) for body in bodies])
    assert [[o.status for o in r] for r in results] == [["indexed"], ["failed"]]
