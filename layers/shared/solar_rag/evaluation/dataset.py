"""The questions file: JSON Lines, one question per line, validated strictly.

Every problem is reported with its line number, all of them at once, so a file can be fixed
in one pass. The format is documented in docs/evaluation.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_QUESTION_CHARS = 4000
MAX_GRADE = 10
MAX_ERRORS_SHOWN = 50
KNOWN_KEYS = frozenset({"id", "question", "expected_documents", "expected_facts", "answerable",
                        "language", "filters", "tags"})


class DatasetError(ValueError):
    """The questions file is not valid; ``problems`` holds ``(line, message)`` pairs."""

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source = source
        self.problems = problems
        shown = [f"{source}:{line}: {message}" for line, message in problems[:MAX_ERRORS_SHOWN]]
        if len(problems) > MAX_ERRORS_SHOWN:
            shown.append(f"... and {len(problems) - MAX_ERRORS_SHOWN} more problems")
        super().__init__("invalid questions file:\n" + "\n".join(shown))


FilterScalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    question: str
    line: int
    expected: Mapping[str, int] = field(default_factory=dict)
    """Relevant document ids and their grades (1 = relevant; higher = more relevant)."""
    expected_facts: tuple[tuple[str, ...], ...] = ()
    """Facts the answer should state; each one a tuple of accepted spellings (any one counts)."""
    answerable: bool = True
    language: str | None = None
    filters: Mapping[str, FilterScalar | list[FilterScalar]] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


def load_questions(path: Path) -> list[Question]:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DatasetError(str(path), [(0, f"cannot read the file: {error.strerror or error}")]) from None
    return parse_questions(raw, source=str(path))


def parse_questions(raw: bytes, *, source: str = "<questions>") -> list[Question]:
    problems: list[tuple[int, str]] = []
    questions: list[Question] = []
    seen: dict[str, int] = {}
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DatasetError(source, [(raw[: error.start].count(b"\n") + 1, "not valid UTF-8")]) from None
    for number, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            item = json.loads(content, parse_constant=_refuse_constant)
        except (json.JSONDecodeError, ValueError) as error:
            problems.append((number, f"not valid JSON ({error})"))
            continue
        line_problems: list[str] = []
        question = _question(item, number, line_problems)
        if question is not None and question.id in seen:
            line_problems.append(f"duplicate id {question.id!r} (first on line {seen[question.id]})")
        problems.extend((number, message) for message in line_problems)
        if question is not None and not line_problems:
            seen[question.id] = number
            questions.append(question)
    if not problems and not questions:
        problems.append((0, "no questions (the file is empty)"))
    if problems:
        raise DatasetError(source, problems)
    return questions


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _question(item: object, line: int, problems: list[str]) -> Question | None:
    if not isinstance(item, dict):
        problems.append("each line must be a JSON object")
        return None
    unknown = sorted(set(item) - KNOWN_KEYS)
    if unknown:
        problems.append(f"unknown field(s) {', '.join(map(repr, unknown))}; known: "
                        + ", ".join(sorted(KNOWN_KEYS)))
    text = item.get("question")
    if not isinstance(text, str) or not text.strip():
        problems.append("`question` must be a non-blank string")
        text = ""
    elif len(text) > MAX_QUESTION_CHARS:
        problems.append(f"`question` is longer than {MAX_QUESTION_CHARS} characters")
    identifier = item.get("id", f"line-{line}")
    if not isinstance(identifier, str) or not identifier.strip():
        problems.append("`id` must be a non-blank string")
        identifier = f"line-{line}"
    answerable = item.get("answerable", True)
    expected = _expected_documents(item.get("expected_documents"), problems)
    facts = _facts(item.get("expected_facts"), problems)
    if not isinstance(answerable, bool):
        problems.append("`answerable` must be true or false")
    elif answerable and item.get("expected_documents") in (None, [], {}):
        problems.append("an answerable question needs `expected_documents` (a list of document ids "
                        "or an object {id: grade}); mark it `\"answerable\": false` otherwise")
    elif not answerable and (expected or facts):
        problems.append("an unanswerable question (`\"answerable\": false`) must not list "
                        "`expected_documents` or `expected_facts`")
    language = item.get("language")
    if language is not None and (not isinstance(language, str) or not language.strip()):
        problems.append("`language` must be a non-blank string, e.g. \"en\" or \"ko\"")
        language = None
    filters = _filters(item.get("filters"), problems)
    tags = _strings(item.get("tags"), "tags", problems)
    if problems:
        return None
    return Question(id=identifier, question=text, line=line, expected=expected,
                    expected_facts=facts, answerable=answerable, language=language,
                    filters=filters, tags=tuple(tags))


def _expected_documents(value: object, problems: list[str]) -> dict[str, int]:
    if value is None:
        return {}
    if isinstance(value, list):
        ids = _strings(value, "expected_documents", problems)
        if len(set(ids)) != len(ids):
            problems.append("`expected_documents` lists a document twice")
        return dict.fromkeys(ids, 1)
    if isinstance(value, dict):
        grades: dict[str, int] = {}
        for key, grade in value.items():
            if not key.strip():
                problems.append("`expected_documents` has a blank document id")
            elif isinstance(grade, bool) or not isinstance(grade, int) or not 1 <= grade <= MAX_GRADE:
                problems.append(f"grade of {key!r} in `expected_documents` must be an integer "
                                f"1..{MAX_GRADE}")
            else:
                grades[key] = grade
        return grades
    problems.append("`expected_documents` must be a list of document ids or an object {id: grade}")
    return {}


def _facts(value: object, problems: list[str]) -> tuple[tuple[str, ...], ...]:
    if value is None:
        return ()
    message = ("`expected_facts` must be a list whose items are a non-blank string or a non-empty "
               "list of accepted spellings ([\"5일\", \"5 days\"])")
    if not isinstance(value, list):
        problems.append(message)
        return ()
    facts: list[tuple[str, ...]] = []
    for fact in value:
        spellings = [fact] if isinstance(fact, str) else fact
        if (not isinstance(spellings, list) or not spellings
                or not all(isinstance(s, str) and s.strip() for s in spellings)):
            problems.append(message)
            return ()
        facts.append(tuple(spellings))
    return tuple(facts)


def _strings(value: object, name: str, problems: list[str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f"`{name}` must be a list of non-blank strings")
        return []
    return list(value)


def _scalar(value: object) -> bool:
    return isinstance(value, str | bool | int) or (isinstance(value, float) and math.isfinite(value))


def _filters(value: object, problems: list[str]) -> dict[str, FilterScalar | list[FilterScalar]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append("`filters` must be an object {key: value or [values]}")
        return {}
    filters: dict[str, FilterScalar | list[FilterScalar]] = {}
    for key, item in value.items():
        if _scalar(item):
            filters[key] = item
        elif isinstance(item, list) and item and all(_scalar(v) for v in item):
            filters[key] = list(item)
        else:
            problems.append(f"filter {key!r} must be a string, number, boolean or a non-empty list "
                            "of them")
    return filters
