"""The offline extractive answerer: which passages it quotes, and when it says "not found".

Texts are written for these tests (a made-up billing product, a Korean HR handbook); none
comes from the evaluation set.
"""

from __future__ import annotations

import re

import pytest
from solar_rag.adapters.extractive_answers import (
    MAX_QUOTE_CHARS,
    MAX_QUOTES,
    NOT_FOUND,
    PREFIX,
    ExtractiveAnswerGenerator,
    question_terms,
)
from solar_rag.domain import Answer, Chunk, EmbeddedChunk, SearchHit
from solar_rag.services.query import QueryService
from solar_rag.services.search import SearchService
from solar_rag.services.streaming import Delta, Done, Sources, StreamingAnswers
from solar_rag.text.passages import PassageKind, passages, sentences

from tests.fakes.memory import FakeEmbedder, MemoryStore, bag_of_words_vector

_MARKER = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")

ATLAS = (
    "Atlas 4.1 release notes\n\n"
    "Atlas is the invoicing engine built by Northwind Ledger. Release 4.1 shipped on\n"
    "9 February 2027 after a six-week beta.\n\n"
    "- Invoice exports now finish in under 3 seconds for ledgers with up to\n"
    "  20,000 lines.\n"
    "- The audit log keeps entries for 400 days."
)
ATLAS_SECTION = "Atlas 4.1 release notes"
PLANS = (
    "Support plans\n\n"
    "Plan | Monthly fee | Phone support | Reply within\n"
    "Starter | EUR 19 | no | 2 business days\n"
    "Growth | EUR 89 | yes | 8 hours\n"
    "Scale | EUR 240 | yes | 1 hour"
)
HANDBOOK = (
    "복리후생\n\n"
    "모든 직원은 매년 건강검진 비용을 최대 60만 원까지 지원받는다.건강검진은 3월부터\n"
    "11월 사이에 받아야 한다. 재택근무는 주 2일까지 가능하다.\n\n"
    "통근 버스는 강남역에서 오전 7시 40분에 출발한다."
)
OUTING = "Team outing\n\nThe spring team outing is a hike on Mount Baegun, followed by lunch."


def hit(doc: str, text: str, *, section: str | None = None, index: int = 0,
        title: str | None = None) -> SearchHit:
    chunk = Chunk(doc, f"{doc}-{index}", index, text, title, section, 0, len(text), "v")
    return SearchHit(chunk, 1.0)


def corpus() -> list[SearchHit]:
    return [
        hit("atlas", ATLAS, section=ATLAS_SECTION, title="Atlas 4.1 release notes"),
        hit("plans", PLANS, section="Support plans", title="Support plans"),
        hit("handbook", HANDBOOK, section="복리후생", title="직원 안내서"),
        hit("outing", OUTING, section="Team outing", title="Team events"),
    ]


def ask(question: str, hits: list[SearchHit] | None = None) -> Answer:
    return ExtractiveAnswerGenerator().generate(question, corpus() if hits is None else hits)


def quotes(answer: Answer) -> list[str]:
    return re.findall(r'^- "(.*)" \[\d+\]$', answer.text, flags=re.MULTILINE)


def assert_citations_valid(answer: Answer, hits: list[SearchHit]) -> None:
    markers = [int(n) for group in _MARKER.findall(answer.text) for n in re.split(r"[,;]", group)]
    cited = {c.index for c in answer.citations}
    assert set(markers) == cited
    for citation in answer.citations:
        assert citation.hit == hits[citation.index - 1]


# --- passages ----------------------------------------------------------------------------


def test_a_hard_wrapped_paragraph_is_one_text() -> None:
    found = passages(ATLAS, section=ATLAS_SECTION)
    assert found[0].kind is PassageKind.HEADING
    assert [p.text for p in found[1:]] == [
        "Atlas is the invoicing engine built by Northwind Ledger.",
        "Release 4.1 shipped on 9 February 2027 after a six-week beta.",
        "Invoice exports now finish in under 3 seconds for ledgers with up to 20,000 lines.",
        "The audit log keeps entries for 400 days.",
    ]


def test_blank_lines_headings_items_labels_and_rules_end_a_paragraph() -> None:
    text = ("Intro line one\nline two.\n\n## Details\nOwner: Ana Ruiz\nDue: Friday\n"
            "1. first step\n2) second\n   step\n---\nAfter the rule")
    found = passages(text)
    assert [(p.kind, p.text) for p in found] == [
        (PassageKind.SENTENCE, "Intro line one line two."),
        (PassageKind.HEADING, "Details"),
        (PassageKind.SENTENCE, "Owner: Ana Ruiz"),
        (PassageKind.SENTENCE, "Due: Friday"),
        (PassageKind.SENTENCE, "first step"),
        (PassageKind.SENTENCE, "second step"),
        (PassageKind.SENTENCE, "After the rule"),
    ]


@pytest.mark.parametrize(("paragraph", "expected"), [
    ("Version 2.5 is out. It is faster.", ["Version 2.5 is out.", "It is faster."]),
    ("Use a key, e.g. the admin key. Then retry.", ["Use a key, e.g. the admin key.", "Then retry."]),
    ("Ask Dr. Lee first. Or Mr. Chu!", ["Ask Dr. Lee first.", "Or Mr. Chu!"]),
    ("It works... mostly. Does it? Yes.", ["It works... mostly.", "Does it?", "Yes."]),
    ("계약은 1년이다.갱신은 자동이다. 정말인가요? 네.", ["계약은 1년이다.", "갱신은 자동이다.", "정말인가요?", "네."]),
    ("会議は10時です。場所は本社です。", ["会議は10時です。", "場所は本社です。"]),
    ("see https://x.example/a?b=1 now.", ["see https://x.example/a?b=1 now."]),
])
def test_sentences(paragraph: str, expected: list[str]) -> None:
    assert sentences(paragraph) == expected


def test_a_table_row_is_read_against_its_header() -> None:
    found = passages(PLANS, section="Support plans")
    assert [p.kind for p in found] == [PassageKind.HEADING] + [PassageKind.ROW] * 3
    assert found[2].text == "Plan: Growth | Monthly fee: EUR 89 | Phone support: yes | Reply within: 8 hours"


def test_a_ruled_markdown_table_with_escaped_pipes_and_empty_cells() -> None:
    text = "| Code | Meaning |\n|:---|---:|\n| `a\\|b` | either |\n| E2 | |"
    assert [p.text for p in passages(text)] == ["Code: `a|b` | Meaning: either", "Code: E2"]


def test_a_table_that_continues_from_an_earlier_chunk_has_no_header_here() -> None:
    rest = "Growth | EUR 89 | yes | 8 hours\nScale | EUR 240 | yes | 1 hour\n\nPrices exclude VAT."
    found = passages(rest, section="Support plans", continues_section=True)
    assert [p.text for p in found] == ["Growth | EUR 89 | yes | 8 hours", "Scale | EUR 240 | yes | 1 hour",
                                       "Prices exclude VAT."]
    # the same rows opening a document: the first is its header
    assert [p.text for p in passages(rest)][:1] == ["Growth: Scale | EUR 89: EUR 240 | yes: yes | 8 hours: 1 hour"]


def test_a_single_line_with_a_pipe_is_prose() -> None:
    assert [p.kind for p in passages("Choose A | B at install time.")] == [PassageKind.SENTENCE]


# --- question terms ------------------------------------------------------------------------


def test_question_terms_drop_what_only_says_what_is_asked() -> None:
    assert question_terms("How long did the exports take?") == {"export": 1.0}
    assert question_terms("What colour is the logo?") == {"logo": 1.0}
    assert set(question_terms("Which Atlas release shipped exports?")) == {"atla", "releas", "ship", "export"}
    assert question_terms("what is it?") == {}


def test_korean_question_words_lose_interrogatives_endings_and_particles() -> None:
    terms = question_terms("통근 버스는 언제 출발하나요?")
    assert terms == {"통근": 1.0, "버스": 1.0, "출발": 1.0}
    assert question_terms("건강검진 비용은 얼마인가요?") == pytest.approx(
        {"건강": 1 / 3, "강검": 1 / 3, "검진": 1 / 3, "비용": 1.0})
    assert question_terms("몇 시간인가요?") == {"시간": 1.0}


def test_a_name_counts_as_one_word() -> None:
    assert question_terms("Who founded Northwind Ledger?") == {"found": 1.0, "northwind": 0.5, "ledger": 0.5}
    # a Korean particle written onto a name stays Korean
    assert question_terms("Northwind Ledger의 지원 언어") == {"northwind": 0.5, "ledger": 0.5, "지원": 1.0,
                                                          "언어": 1.0}


def test_inflections_meet() -> None:
    assert set(question_terms("released invoices stopped")) == set(question_terms("release invoice stop"))


# --- answers -------------------------------------------------------------------------------


def test_the_date_after_a_line_break_is_quoted() -> None:
    answer = ask("When did Atlas 4.1 ship?")
    assert answer.text.startswith(PREFIX)
    assert quotes(answer) == ["Release 4.1 shipped on 9 February 2027 after a six-week beta."]
    assert [c.hit.chunk.document_id for c in answer.citations] == ["atlas"]


def test_the_row_asked_about_is_quoted_not_the_header() -> None:
    answer = ask("How fast does the Growth plan reply?")
    assert quotes(answer) == [
        "Plan: Growth | Monthly fee: EUR 89 | Phone support: yes | Reply within: 8 hours"]
    answer = ask("What is the monthly fee of the Scale plan?")
    assert quotes(answer)[0].startswith("Plan: Scale | Monthly fee: EUR 240")


def test_korean_answers() -> None:
    hits = corpus()
    answer = ask("통근 버스는 언제 출발하나요?", hits)
    assert quotes(answer) == ["통근 버스는 강남역에서 오전 7시 40분에 출발한다."]
    assert_citations_valid(answer, hits)
    answer = ask("건강검진 비용은 얼마까지 지원되나요?", hits)
    assert quotes(answer)[0] == "모든 직원은 매년 건강검진 비용을 최대 60만 원까지 지원받는다."
    assert ask("재택근무는 일주일에 며칠 가능한가요?").text.count("주 2일까지") == 1


@pytest.mark.parametrize("question", [
    "What does an Atlas 4.1 licence cost?",  # the product is there, its price is not
    "Who founded Northwind Ledger?",
    "Which plan includes on-site training?",
    "사내 식당의 저녁 메뉴는 무엇인가요?",  # handbook topics, not this one
    pytest.param("통근 버스 요금은 얼마인가요?", marks=pytest.mark.xfail(
        strict=True, reason="known limit: 2 of 3 words match (commuter bus) and only the fare "
        "is missing, which a lexical score cannot tell from a paraphrase (docs/decisions.md)")),
    "quantum chromodynamics",
])
def test_unanswerable_questions_are_not_found(question: str) -> None:
    answer = ask(question)
    assert answer.text == NOT_FOUND and answer.citations == ()


def test_a_heading_alone_does_not_make_a_sentence_quotable() -> None:
    hits = [hit("outing", OUTING, section="Team outing")]
    assert ask("When is the team outing?", hits).citations != ()  # "team outing" in the sentence
    lunch = "Team lunch\n\nBring a badge."
    assert ask("Where is the team lunch?", [hit("lunch", lunch, section="Team lunch")]).text == NOT_FOUND


def test_terms_every_chunk_shares_weigh_less_than_the_one_that_differs() -> None:
    hits = [hit(f"r{i}", f"Region {name} keeps backups for {days} days.")
            for i, (name, days) in enumerate([("north", 7), ("south", 14), ("east", 30)])]
    answer = ask("How many days does region east keep backups?", hits)
    assert quotes(answer) == ["Region east keeps backups for 30 days."]
    assert [c.index for c in answer.citations] == [3]


def test_markers_map_to_sources_even_when_a_document_contains_brackets() -> None:
    hits = [hit("a", "Unrelated text about tea."),
            hit("b", "The retention period is 90 days [2][7], see note [1, 3]."),
            hit("c", "The retention period was 60 days before 2020.")]
    answer = ask("What is the retention period?", hits)
    assert "［2］［7］" in answer.text and "［1, 3］" in answer.text
    assert [c.index for c in answer.citations] == [2, 3]
    assert_citations_valid(answer, hits)


def test_passages_repeated_by_overlapping_chunks_are_quoted_once_and_at_most_three() -> None:
    text = "\n\n".join(f"Backup rule {n}: keep backups of tier {n} offsite." for n in range(6))
    hits = [hit("doc", text, index=0), hit("doc", text, index=1)]
    answer = ask("Which backups do we keep offsite?", hits)
    assert len(quotes(answer)) == MAX_QUOTES == len(set(quotes(answer)))
    assert [c.index for c in answer.citations] == [1]


def test_a_long_sentence_is_cut_at_a_word() -> None:
    long = "The archive policy says " + "that archived invoices stay readable " * 20 + "forever."
    answer = ask("What does the archive policy say?", [hit("p", long)])
    (quote,) = quotes(answer)
    assert quote.endswith("…") and len(quote) <= MAX_QUOTE_CHARS + 1 and not quote[-2].isspace()


def test_no_hits_or_no_content_terms() -> None:
    assert ask("When did Atlas ship?", []).text == NOT_FOUND
    assert ask("What is it, and how?").text == NOT_FOUND


# --- the streamed answer is the same answer ------------------------------------------------


@pytest.mark.parametrize("question", ["When did Atlas 4.1 ship?", "Who founded Northwind Ledger?"])
def test_streamed_and_plain_offline_answers_agree(question: str) -> None:
    store = MemoryStore()
    for h in corpus():
        store.upsert_document(h.chunk.document_id, "v",
                              [EmbeddedChunk(h.chunk, bag_of_words_vector(h.chunk.text))])
    search = SearchService(embedder=FakeEmbedder(), store=store, max_query_chars=500,
                           max_top_k=50)
    generator = ExtractiveAnswerGenerator()
    query = QueryService(search=search, generator=generator, model="offline-extractive")
    plain = query.ask(question)
    events = list(StreamingAnswers(query=query, chat_model=None, max_tokens=None,
                                   max_chat_chars=1000, max_messages=100).ask(question))
    assert isinstance(events[0], Sources) and isinstance(events[1], Delta)
    assert isinstance(events[2], Done) and len(events) == 3
    assert events[1].text == events[2].answer.text == plain.text
    assert events[2].answer.citations == plain.citations
    assert_citations_valid(plain, list(events[0].hits))
