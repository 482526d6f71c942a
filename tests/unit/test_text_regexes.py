"""Every regex in ``solar_rag.text`` and ``solar_rag.parsing`` runs on user input: none may backtrack over it.

Static check of the compiled patterns (``re._parser``): no unbounded repeat inside another
(nested quantifiers), and a pattern with an unbounded backtracking repeat that is not its
last element (two quantifiers trading characters, or one followed by something that can
fail) must be listed below with the reason it is linear. Possessive repeats (``*+``, ``++``)
never backtrack and are exempt. A new regex either passes or gets a reviewed reason here.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from re import _constants as c
from re import _parser
from typing import Any

import pytest
import solar_rag.parsing
import solar_rag.text

JUSTIFIED: dict[str, str] = {
    r"^([ \t]*)(?=[-=+])":
        "MULTILINE ^: tried at line starts only, and [ \\t] cannot cross a line, so every "
        "line is scanned once",
    r"=[ \t\n\r\f]*[\"']|>":
        "the space run is entered only right after '=', which no space matches: an attempt "
        "that fails is never restarted inside the run",
    r"([^\s/>\"'=]+)(?:[ \t\n\r\f]*=[ \t\n\r\f]*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]*)))?":
        "applied to one tag's text whose quoted values the tokenizer has already closed; "
        "names, spaces, '=' and values are disjoint classes, and the whole group is optional, "
        "so no attempt fails after scanning more than one run",
}

_UNBOUNDED = c.MAXREPEAT
_REPEATS = {c.MAX_REPEAT, c.MIN_REPEAT}
_POSSESSIVE = c.POSSESSIVE_REPEAT


def _patterns() -> Iterator[tuple[str, re.Pattern[str]]]:
    modules = [f"{package.__name__}.{info.name}"
               for package in (solar_rag.text, solar_rag.parsing)
               for info in pkgutil.iter_modules(package.__path__)]
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            yield from _found(f"{module_name.rsplit('.', 1)[1]}.{name}", value)


def _found(where: str, value: object) -> Iterator[tuple[str, re.Pattern[str]]]:
    if isinstance(value, re.Pattern):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _found(f"{where}[{key!r}]", item)
    elif isinstance(value, tuple | list) and not isinstance(value, str):
        for index, item in enumerate(value):
            yield from _found(f"{where}[{index}]", item)


def _children(op: Any, arg: Any) -> list[list[Any]]:
    if op in _REPEATS or op == _POSSESSIVE:
        return [list(arg[2])]
    if op == c.SUBPATTERN:
        return [list(arg[3])]
    if op == c.BRANCH:
        return [list(branch) for branch in arg[1]]
    if op in (c.ASSERT, c.ASSERT_NOT):
        return [list(arg[1])]
    if op == c.ATOMIC_GROUP:
        return [list(arg)]
    return []


def _analyse(seq: list[Any], in_tail: bool, inside_repeat: bool,
             findings: list[str]) -> None:
    for index, (op, arg) in enumerate(seq):
        tail = in_tail and index == len(seq) - 1
        unbounded = (op in _REPEATS or op == _POSSESSIVE) and arg[1] == _UNBOUNDED
        if unbounded and inside_repeat:
            findings.append("nested unbounded repeat")
        if unbounded and op in _REPEATS and not tail:
            findings.append("backtracking repeat before something that can fail")
        nested = inside_repeat or unbounded
        for child in _children(op, arg):
            # assertions are zero-width: their end is never followed by the rest
            child_tail = tail or op in (c.ASSERT, c.ASSERT_NOT)
            _analyse(child, child_tail, nested, findings)


def findings_of(pattern: re.Pattern[str]) -> list[str]:
    findings: list[str] = []
    _analyse(list(_parser.parse(pattern.pattern, pattern.flags)), True, False, findings)
    return findings


def _anchored_single(pattern: re.Pattern[str]) -> bool:
    """``^``/``\\A`` without MULTILINE and one backtracking repeat: one attempt, O(n)."""
    parsed = list(_parser.parse(pattern.pattern, pattern.flags))
    starts = bool(parsed) and parsed[0][0] == c.AT and parsed[0][1] in (
        c.AT_BEGINNING, c.AT_BEGINNING_STRING)
    return (starts and not pattern.flags & re.MULTILINE
            and findings_of(pattern) == ["backtracking repeat before something that can fail"])


ALL = sorted(_patterns(), key=lambda item: item[0])


def test_the_scan_finds_the_patterns() -> None:
    names = {name for name, _ in ALL}
    assert {"chunking._BREAK", "html_tokens._ATTRIBUTE", "normalize._INVISIBLE"} <= names


@pytest.mark.parametrize(("where", "pattern"), ALL, ids=[name for name, _ in ALL])
def test_no_regex_can_backtrack_over_its_input(where: str, pattern: re.Pattern[str]) -> None:
    findings = findings_of(pattern)
    assert "nested unbounded repeat" not in findings, where
    if findings and not _anchored_single(pattern):
        assert pattern.pattern in JUSTIFIED, f"{where}: {findings} in {pattern.pattern!r}"


def test_justifications_are_not_stale() -> None:
    used = {p.pattern for _, p in ALL if findings_of(p) and not _anchored_single(p)}
    assert set(JUSTIFIED) <= used


@pytest.mark.parametrize("source", [
    r"(a+)+b",                      # nested
    r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$",  # the old ATX heading
    r"<!--.*?-->",                  # the old comment rule
    r"[.?!]+[)]*(?P<s>[ ]+)",       # the old sentence break
])
def test_the_check_catches_the_old_patterns(source: str) -> None:
    pattern = re.compile(source, re.DOTALL)
    assert findings_of(pattern) and not _anchored_single(pattern)
