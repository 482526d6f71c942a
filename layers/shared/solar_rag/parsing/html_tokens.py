"""A linear-time HTML tokenizer: start tags, end tags and text, nothing else.

The standard library's ``html.parser`` backtracks on unterminated constructs: on Python
3.12.1, 200 KB of ``<a<a<a...`` takes 23 s and 200 KB of ``<!--<!--...`` 12 s (quadratic;
CPython fixed some of these cases in later patch releases, not all runtimes have them). Every
step here moves forward with ``str.find`` or a regex that cannot backtrack across the input,
and an unterminated comment, tag or raw-text element runs to the end of the input (as in
the HTML standard), so each character is looked at a bounded number of times.

Tags and attribute names are lower-cased; character references in text and attribute values
are decoded; comments, doctypes and processing instructions are dropped; the content of
``<script>`` and ``<style>`` is raw text (no tags inside), as in ``html.parser``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

from solar_rag.parsing.budget import ParseBudget

Attrs = list[tuple[str, str | None]]
Token = tuple[str, str, Attrs]  # ("start" | "startend" | "end" | "data", name or text, attrs)

RAW_TEXT = frozenset({"script", "style"})
_NO_ATTRS: Attrs = []

# Every pattern below is matched at a known position (``match``) or searched for a fixed
# short string; none has two quantifiers that can trade characters over the same input.
_TAG_NAME = re.compile(r"[a-zA-Z][^\s/>]*")
_TAG_STOP = re.compile(r"=[ \t\n\r\f]*[\"']|>")
_ATTRIBUTE = re.compile(
    r"([^\s/>\"'=]+)(?:[ \t\n\r\f]*=[ \t\n\r\f]*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]*)))?"
)
_RAW_END = {name: re.compile(f"</{name}", re.IGNORECASE) for name in RAW_TEXT}


def _attributes(text: str) -> Attrs:
    attrs: Attrs = []
    for match in _ATTRIBUTE.finditer(text):
        name, double, single, bare = match.groups()
        value = double if double is not None else single if single is not None else bare
        attrs.append((name.lower(), html.unescape(value) if value is not None else None))
    return attrs


def _tag_end(text: str, position: int) -> int:
    """Index of the ``>`` closing the tag whose attributes start at ``position``, or -1.

    Quotes matter only around attribute values (after ``=``), as in the HTML standard.
    """
    while True:
        stop = _TAG_STOP.search(text, position)
        if stop is None:
            return -1
        if text[stop.start()] == ">":
            return stop.start()
        quote = text[stop.end() - 1]
        closing = text.find(quote, stop.end())
        if closing < 0:
            return -1
        position = closing + 1


def tokens(text: str, budget: ParseBudget) -> Iterator[Token]:
    """The tokens of ``text`` in order. Adjacent text pieces may come as several tokens."""
    position = 0
    size = len(text)
    while position < size:
        budget.tick(256)
        lt = text.find("<", position)
        if lt < 0:
            yield "data", html.unescape(text[position:]), _NO_ATTRS
            return
        if lt > position:
            yield "data", html.unescape(text[position:lt]), _NO_ATTRS
        following = text[lt + 1:lt + 2]
        if text.startswith("<!--", lt):
            end = text.find("-->", lt + 4)
            position = size if end < 0 else end + 3
        elif following in ("!", "?"):  # doctype, CDATA, processing instruction: dropped
            end = text.find(">", lt + 2)
            position = size if end < 0 else end + 1
        elif following == "/":
            name = _TAG_NAME.match(text, lt + 2)
            end = text.find(">", lt + 2)
            if end < 0:
                return  # an unterminated end tag swallows the rest, as in the HTML standard
            if name is not None and name.end() <= end:
                yield "end", name.group().lower(), _NO_ATTRS
            position = end + 1
        elif following.isascii() and following.isalpha():
            name = _TAG_NAME.match(text, lt + 1)
            assert name is not None  # a letter always starts a name
            end = _tag_end(text, name.end())
            if end < 0:
                return  # an unterminated start tag swallows the rest
            tag = name.group().lower()
            inner = text[name.end():end]
            closed = inner.endswith("/")
            budget.add_elements(1, "the HTML document")
            yield ("startend" if closed else "start"), tag, _attributes(inner)
            position = end + 1
            if tag in RAW_TEXT and not closed:
                raw_end = _RAW_END[tag].search(text, position)
                stop = size if raw_end is None else raw_end.start()
                if stop > position:
                    yield "data", text[position:stop], _NO_ATTRS
                position = stop
        else:  # "<" followed by anything else is text
            yield "data", "<", _NO_ATTRS
            position = lt + 1
