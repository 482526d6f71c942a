import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solar_rag.domain import ParsedDocument, SourceDocument
from solar_rag.errors import UnsupportedDocument
from solar_rag.parsing.parsers import parse_document


def parse(text: str, content_type: str, title: str | None = None) -> ParsedDocument:
    parsed = parse_document(SourceDocument(id="d", text=text, title=title,
                                           content_type=content_type))
    for section in parsed.sections:
        assert parsed.text[section.start:section.start + len(section.text)] == section.text
        assert section.text == section.text.strip()
    return parsed


def headings(parsed: ParsedDocument) -> list[str | None]:
    return [s.heading for s in parsed.sections]


# -- plain text ---------------------------------------------------------------------------

def test_plain_text_is_one_section() -> None:
    parsed = parse("Hello\r\n\r\n\r\n# not a heading\u200b", "text/plain", title="T")
    assert parsed.title == "T"
    assert parsed.text == "Hello\n\n# not a heading"
    assert len(parsed.sections) == 1
    assert parsed.sections[0].heading is None
    assert parsed.sections[0].start == 0


def test_plain_text_without_title() -> None:
    assert parse("x", "text/plain").title is None


@pytest.mark.parametrize("content_type", ["text/plain", "text/markdown", "text/html"])
@pytest.mark.parametrize("text", ["", "  \n\t ", "\u200b\ufeff"])
def test_empty_documents_are_refused(content_type: str, text: str) -> None:
    with pytest.raises(UnsupportedDocument, match="document has no text"):
        parse_document(SourceDocument(id="d", text=text, content_type=content_type))


def test_html_without_visible_text_is_refused() -> None:
    with pytest.raises(UnsupportedDocument, match="no text"):
        parse("<html><script>var a = 1;</script><nav>Menu</nav></html>", "text/html")


@pytest.mark.parametrize("content_type", ["application/pdf", "text/csv", "", "image/png"])
def test_unknown_content_type(content_type: str) -> None:
    with pytest.raises(UnsupportedDocument, match="unsupported content type"):
        parse_document(SourceDocument(id="d", text="hello", content_type=content_type))


def test_content_type_parameters_are_ignored() -> None:
    parsed = parse("# Hi\n\nthere", "text/markdown; charset=utf-8")
    assert parsed.title == "Hi"


# -- markdown -----------------------------------------------------------------------------

MARKDOWN = """\
---
author: someone
---
Preamble text.

# Guide

Intro with **bold**, _italic_, *stars*, ~~gone~~ and a [link](https://example.com).
![diagram](img.png) An image was here. `<inline code>` and snake_case_name stay.
Escaped \\*star\\* and 2 * 3 * 4.

## Setup

### Install

* first
+ second
- third

> quoted line

| col a | col b |
|-------|:-----:|
| 1     | 2     |

```python
# not a heading
x = a * b  # *kept*
```

Other part
----------

Final words.
***
[ref]: https://example.com/ref
"""


def test_markdown_sections_and_nested_headings() -> None:
    parsed = parse(MARKDOWN, "text/markdown")
    assert headings(parsed) == [None, "Guide", "Guide > Setup > Install", "Guide > Other part"]
    assert parsed.title == "Guide"
    preamble, guide, install, other = parsed.sections
    assert preamble.text == "Preamble text."
    assert guide.text.startswith("Guide\n\nIntro with bold, italic, stars, gone and a link.")
    # a heading without body text is folded into the next section, not lost
    assert install.text.startswith("Setup\n\nInstall\n\n")
    assert other.text == "Other part\n\nFinal words."


def test_markdown_inline_noise_is_stripped() -> None:
    text = parse(MARKDOWN, "text/markdown").text
    assert "**" not in text
    assert "https://example.com" not in text
    assert "img.png" not in text and "diagram" not in text
    assert "<inline code> and snake_case_name stay." in text
    assert "Escaped *star* and 2 * 3 * 4." in text
    assert "- first\n- second\n- third" in text
    assert "quoted line" in text and "> quoted" not in text
    assert "col a | col b\n1 | 2" in text
    assert "---" not in text and "***" not in text
    assert "author" not in text


def test_markdown_code_fences_are_kept_as_text() -> None:
    text = parse(MARKDOWN, "text/markdown").text
    assert "# not a heading\nx = a * b # *kept*" in text
    assert "```" not in text


def test_markdown_title_sources() -> None:
    assert parse("# One\n\n# Two", "text/markdown", title="Given").title == "Given"
    assert parse("---\ntitle: \"From Front\"\n---\n# H\n\nx", "text/markdown").title == "From Front"
    assert parse("## Second level\n\nx\n\n# Top\n\ny", "text/markdown").title == "Top"
    assert parse("## Only\n\nx", "text/markdown").title == "Only"
    assert parse("no heading at all", "text/markdown").title is None


def test_markdown_setext_needs_a_paragraph() -> None:
    parsed = parse("Title\n=====\n\ntext\n\n---\n\nafter rule", "text/markdown")
    assert headings(parsed) == ["Title"]
    assert parsed.text == "Title\n\ntext\n\nafter rule"


def test_markdown_heading_levels_pop_the_stack() -> None:
    parsed = parse("# A\na\n## B\nb\n### C\nc\n## D\nd\n# E\ne", "text/markdown")
    assert headings(parsed) == ["A", "A > B", "A > B > C", "A > D", "E"]
    assert [s.text for s in parsed.sections] == ["A\n\na", "B\n\nb", "C\n\nc", "D\n\nd", "E\n\ne"]


def test_markdown_korean_and_closing_hashes() -> None:
    parsed = parse("# 소개 #\n\n한국어 **본문**입니다.\n\n## 설치 ##\n\n설명", "text/markdown")
    assert headings(parsed) == ["소개", "소개 > 설치"]
    assert parsed.sections[0].text == "소개\n\n한국어 본문입니다."


def test_markdown_trailing_heading_without_body_is_kept() -> None:
    parsed = parse("# A\n\ntext\n\n# Empty", "text/markdown")
    assert headings(parsed) == ["A", "Empty"]
    assert parsed.sections[-1].text == "Empty"


# -- HTML ---------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head><title>Page &amp; Title</title>
<style>body { color: red }</style><script>var secret = "script text";</script></head>
<body>
<header><a href="/">Site logo</a></header>
<nav><ul><li>Home</li><li>About</li></ul></nav>
<main>
<h1>Main heading</h1>
<p>First   paragraph with <b>bold</b> and a <a href="x">link</a>.<br>Second line &lt;ok&gt;.</p>
<div>Block one</div><div>Block two</div>
<h2>Lists</h2>
<ul><li>apple</li>
    <li>banana <em>split</em></li></ul>
<ol><li>first</li><li>second</li></ol>
<h2>Table</h2>
<table>
  <thead><tr><th>Name</th><th>Value</th></tr></thead>
  <tbody><tr><td>alpha</td><td>1</td></tr><tr><td>beta</td><td><p>2</p></td></tr></tbody>
</table>
<p hidden>hidden text</p>
<noscript>enable javascript</noscript>
<svg><title>icon title</title><text>svg text</text></svg>
<template><p>template text</p></template>
<iframe src="x">frame text</iframe>
<h3>Deep</h3><p>deep text</p>
</main>
<aside>Related links</aside>
<footer>Copyright footer</footer>
</body></html>"""


def test_html_drops_scripts_and_page_chrome() -> None:
    text = parse(HTML, "text/html").text
    for gone in ("script text", "color: red", "Site logo", "Home", "About", "hidden text",
                 "enable javascript", "icon title", "svg text", "template text",
                 "frame text", "Related links", "Copyright footer"):
        assert gone not in text


def test_html_keeps_headings_lists_tables_and_title() -> None:
    parsed = parse(HTML, "text/html")
    assert parsed.title == "Page & Title"
    assert headings(parsed) == ["Main heading", "Main heading > Lists",
                                "Main heading > Table", "Main heading > Table > Deep"]
    main, lists, table, deep = parsed.sections
    assert main.text == ("Main heading\n\nFirst paragraph with bold and a link.\n"
                         "Second line <ok>.\n\nBlock one\nBlock two")
    assert lists.text == "Lists\n\n- apple\n- banana split\n\n1. first\n2. second"
    assert table.text == "Table\n\nName | Value\nalpha | 1\nbeta | 2"
    assert deep.text == "Deep\n\ndeep text"


def test_html_title_falls_back_to_first_h1() -> None:
    assert parse("<h2>sub</h2><p>x</p><h1>Top</h1><p>y</p>", "text/html").title == "Top"
    assert parse("<p>no headings</p>", "text/html").title is None
    assert parse("<title>T</title><h1>H</h1>", "text/html", title="Given").title == "Given"


def test_html_article_header_is_content() -> None:
    parsed = parse("<header>chrome</header><article><header><h1>Post</h1></header>"
                   "<p>body</p></article>", "text/html")
    assert parsed.title == "Post"
    assert parsed.text == "Post\n\nbody"


def test_html_malformed_markup_does_not_crash() -> None:
    parsed = parse("<p>open <b>bold <i>both</p><li>loose item<td>cell</td><h2>unclosed"
                   "<p>after", "text/html")
    assert "open bold both" in parsed.text
    assert "after" in parsed.text


def test_html_pre_keeps_lines() -> None:
    parsed = parse("<pre>line one\nline two</pre>", "text/html")
    assert parsed.text == "line one\nline two"


# -- robustness ---------------------------------------------------------------------------

MARKUP = ["#", "## ", "\n", "\n\n", "===", "---", "```", "*", "_", "[", "](", ")", "!", "|", ">",
          "<p>", "</p>", "<h1>", "</h1>", "<h2>", "<li>", "<table>", "<tr>", "<td>", "</td>",
          "<script>", "</script>", "<br/>", "&amp;", "&#x41;", "\\", "`", "text", "한국어", " "]


@settings(max_examples=150, deadline=None)
@given(pieces=st.lists(st.sampled_from(MARKUP), max_size=80),
       content_type=st.sampled_from(["text/plain", "text/markdown", "text/html"]))
def test_parsers_never_crash_and_keep_offsets(pieces: list[str], content_type: str) -> None:
    text = "".join(pieces)
    try:
        parse(text, content_type)
    except UnsupportedDocument:
        with pytest.raises(UnsupportedDocument, match="document has no text"):
            parse(text, content_type)


def test_html_list_items_with_paragraphs_and_nesting() -> None:
    parsed = parse("<p>before</p><ul><li><p>para item</p></li><li>\n <p>second</p>\n</li><li></li>"
                   "</ul><ol><li><div><b>bold</b> item</div></li><li>two<ul><li>nested</li></ul>"
                   "</li><li>three</li></ol>after", "text/html")
    assert parsed.text == ("before\n\n- para item\n- second\n\n"
                           "1. bold item\n2. two\n- nested\n3. three\n\nafter")
