"""A fast, deliberately conservative estimate of Solar tokenizer token counts.

Solar's tokenizer (a SentencePiece/BPE vocabulary published on Hugging Face) is not
available offline and would be a heavy import for a Lambda function, so chunk sizes are
budgeted with this estimate instead. It is meant to *over*-estimate, so that a chunk the
estimate accepts is never too long for the embedding model (4,000-token context) even though
it may be somewhat shorter than the budget allows. The rules:

* Hangul (syllables and jamo), CJK ideographs and kana: 1 token per character. Solar's
  vocabulary has many Korean syllables and multi-syllable pieces, so real Korean text is
  usually well below one token per syllable; rare syllables may fall back to bytes but are
  averaged out by the common ones.
* Latin-script letter runs (ASCII and Latin-1/Extended letters): ceil(len / 3.5) per run.
  English BPE averages about 4 characters per token including the leading space; short
  common words are one token, so this over-counts ordinary prose by 20-40 %.
* Every digit, punctuation mark, symbol, emoji and letter of any other script (Cyrillic,
  Greek, Arabic, Thai, ...): 1 token per character. Llama-family tokenizers split numbers
  into single digits, and scripts with small vocabulary coverage cost at least a token
  per character.
* Newlines: 1 token each (they are byte tokens). Other whitespace: free (SentencePiece folds
  a single space into the following piece; normalised text has no runs of spaces).

The estimate is additive over pieces split at whitespace (the count of ``a + " " + b`` equals
the counts of ``a`` and ``b`` added), which the chunker relies on to budget chunks from the
counts of their sentences. Splitting inside a letter run can only raise the total.
"""

from __future__ import annotations

import re

LATIN_RUN = re.compile(r"[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]+")


def estimate_tokens(text: str) -> int:
    """Conservative estimate of the number of Solar tokens in ``text`` (see module doc)."""
    if not text:
        return 0
    lengths = list(map(len, LATIN_RUN.findall(text)))
    # ceil(n / 3.5) == ceil(2n / 7) == (2n + 6) // 7
    latin_tokens = sum((2 * n + 6) // 7 for n in lengths)
    # Every non-space character outside a Latin run is one token (CJK, digits, symbols,
    # other scripts alike), so CJK needs no count of its own; str.split() splits on exactly
    # the characters ``\s`` matches.
    non_space = sum(map(len, text.split()))
    return latin_tokens + non_space - sum(lengths) + text.count("\n")
