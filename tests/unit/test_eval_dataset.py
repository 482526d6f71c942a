"""The questions file of rag eval: strict validation with line numbers, and the shipped set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from solar_rag.evaluation.dataset import DatasetError, load_questions, parse_questions
from solar_rag.parsing.files import SUPPORTED_EXTENSIONS

EXAMPLE = Path(__file__).resolve().parents[2] / "eval" / "example"


def _problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(DatasetError) as caught:
        parse_questions(text.encode("utf-8"), source="q.jsonl")
    return caught.value.problems


def test_a_valid_file_with_every_field() -> None:
    text = "\n".join([
        json.dumps({"id": "a", "question": "How many days?", "expected_documents": ["d1.md"],
                    "expected_facts": ["25 days", ["5일", "5 days"]], "language": "en",
                    "filters": {"team": "hr", "year": [2025, 2026]}, "tags": ["number"]}),
        "",  # blank lines are allowed
        json.dumps({"question": "몇 명?", "expected_documents": {"d2.md": 2, "d3.md": 1}}),
        json.dumps({"id": "u", "question": "Unknown?", "answerable": False}),
    ])
    first, second, third = parse_questions(text.encode("utf-8"))
    assert first.expected == {"d1.md": 1}
    assert first.expected_facts == (("25 days",), ("5일", "5 days"))
    assert first.filters == {"team": "hr", "year": [2025, 2026]}
    assert (second.id, second.line, second.expected) == ("line-3", 3, {"d2.md": 2, "d3.md": 1})
    assert third.answerable is False and third.expected == {}


@pytest.mark.parametrize(("line", "fragment"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"question": "q", "expected_documents": ["d"], "extra": 1}', "unknown field(s) 'extra'"),
    ('{"question": "   ", "expected_documents": ["d"]}', "`question` must be a non-blank string"),
    ('{"question": 5, "expected_documents": ["d"]}', "`question` must be a non-blank string"),
    ('{"question": "q"}', "needs `expected_documents`"),
    ('{"question": "q", "expected_documents": []}', "needs `expected_documents`"),
    ('{"question": "q", "expected_documents": "d.md"}', "list of document ids or an object"),
    ('{"question": "q", "expected_documents": ["d", "d"]}', "twice"),
    ('{"question": "q", "expected_documents": {"d": 0}}', "integer 1..10"),
    ('{"question": "q", "expected_documents": {"d": true}}', "integer 1..10"),
    ('{"question": "q", "expected_documents": {"d": 1.5}}', "integer 1..10"),
    ('{"question": "q", "answerable": "no"}', "true or false"),
    ('{"question": "q", "answerable": false, "expected_documents": ["d"]}', "must not list"),
    ('{"question": "q", "answerable": false, "expected_facts": ["x"]}', "must not list"),
    ('{"question": "q", "expected_documents": ["d"], "expected_facts": "x"}', "expected_facts"),
    ('{"question": "q", "expected_documents": ["d"], "expected_facts": [[]]}', "expected_facts"),
    ('{"question": "q", "expected_documents": ["d"], "filters": {"a": null}}', "filter 'a'"),
    ('{"question": "q", "expected_documents": ["d"], "filters": {"a": []}}', "filter 'a'"),
    ('{"question": "q", "expected_documents": ["d"], "id": ""}', "`id` must be"),
    ('{"question": "q", "expected_documents": ["d"], "score": NaN}', "not valid JSON"),
])
def test_each_problem_is_reported_with_its_line(line: str, fragment: str) -> None:
    valid = json.dumps({"id": "ok", "question": "fine?", "expected_documents": ["d"]})
    problems = _problems(f"{valid}\n\n{line}\n")
    assert [number for number, _ in problems] == [3], problems
    assert fragment in problems[0][1]


def test_all_problems_at_once_and_duplicate_ids() -> None:
    text = "\n".join([
        json.dumps({"id": "x", "question": "a", "expected_documents": ["d"]}),
        "{broken",
        json.dumps({"id": "x", "question": "b", "expected_documents": ["d"]}),
        json.dumps({"question": ""}),
    ])
    with pytest.raises(DatasetError) as caught:
        parse_questions(text.encode("utf-8"), source="q.jsonl")
    lines = [number for number, _ in caught.value.problems]
    assert lines == [2, 3, 4, 4]
    assert "duplicate id 'x' (first on line 1)" in caught.value.problems[1][1]
    assert "q.jsonl:2: not valid JSON" in str(caught.value)


def test_empty_file_bad_encoding_and_missing_file(tmp_path: Path) -> None:
    assert "empty" in _problems("\n  \n")[0][1]
    with pytest.raises(DatasetError, match=r"<questions>:2: not valid UTF-8"):
        parse_questions(b'{"question": "a", "expected_documents": ["d"]}\n\xff\xfe')
    with pytest.raises(DatasetError, match="cannot read"):
        load_questions(tmp_path / "missing.jsonl")
    assert isinstance(DatasetError("x", [(1, "y")]), ValueError)  # the CLI's exit code 2


def test_the_shipped_example_set_is_valid_and_names_its_own_documents() -> None:
    questions = load_questions(EXAMPLE / "questions.jsonl")
    documents = {p.relative_to(EXAMPLE / "documents").as_posix()
                 for p in (EXAMPLE / "documents").rglob("*") if p.suffix in SUPPORTED_EXTENSIONS}
    assert 20 <= len(questions) <= 30
    assert {q.language for q in questions} == {"en", "ko"}
    assert sum(not q.answerable for q in questions) >= 4
    assert sum("cross-language" in q.tags for q in questions) >= 4
    assert any(len(set(q.expected.values())) > 1 for q in questions)  # graded relevance is used
    for question in questions:
        assert set(question.expected) <= documents, question.id
    text = "".join(p.read_text(encoding="utf-8") for p in (EXAMPLE / "documents").rglob("*.md"))
    for question in questions:
        for fact in question.expected_facts:
            assert fact[0] in text, (question.id, fact)  # the first spelling is the document's own
