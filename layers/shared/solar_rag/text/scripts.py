"""Unicode ranges of the scripts written without spaces between words (Han, kana, Hangul).

Every module that treats these scripts specially (sentence ends, keyword bigrams, offline
features and answers) takes its ranges from here. Each constant is the body of a regex
character class (``f"[{CJK}]"``), so it can be combined (``f"[^\\W_{CJK}]"``).

:data:`CJK` is *the* set: the whole blocks, every extension. Use it for anything new. Two
narrower sets remain because something built with them is stored, and widening one would
make new queries stop meeting what was stored before:

- :data:`OFFLINE_HASH_V1_CJK`: the offline embedder's ``offline-hash-v1`` features. Its
  vectors are stored (local store, OpenSearch); it changes only together with the embedder's
  model name (a new embedding space, so a re-index).
- :data:`LOCAL_FTS_V1_CJK`: the local store's keyword tokens (bigrams of these characters),
  stored in its FTS5 table; it changes only with a rebuild of that table.

``tests/unit/test_text_scripts.py`` pins each set to the code points it had when written.
"""

from __future__ import annotations

HANGUL_JAMO = "\u1100-\u11ff"
KANA = "\u3040-\u30ff"  # hiragana and katakana
HANGUL_COMPATIBILITY_JAMO = "\u3130-\u318f"
KATAKANA_PHONETIC_EXTENSIONS = "\u31f0-\u31ff"
CJK_EXTENSION_A = "\u3400-\u4dbf"
CJK_UNIFIED_IDEOGRAPHS = "\u4e00-\u9fff"
HANGUL_JAMO_EXTENDED_A = "\ua960-\ua97f"
HANGUL_SYLLABLES_ASSIGNED = "\uac00-\ud7a3"  # 가..힣, the 11,172 syllables
HANGUL_SYLLABLES = "\uac00-\ud7af"  # the whole block (its last 12 code points unassigned)
HANGUL_JAMO_EXTENDED_B = "\ud7b0-\ud7ff"
CJK_COMPATIBILITY_IDEOGRAPHS = "\uf900-\ufaff"
HALFWIDTH_KATAKANA = "\uff66-\uff9f"  # NFKC turns these into KANA
SUPPLEMENTARY_IDEOGRAPHIC_PLANE = "\U00020000-\U0002ffff"  # CJK extensions B to F
CJK_EXTENSION_G = "\U00030000-\U0003134f"

CJK = (
    HANGUL_JAMO
    + KANA
    + HANGUL_COMPATIBILITY_JAMO
    + KATAKANA_PHONETIC_EXTENSIONS
    + CJK_EXTENSION_A
    + CJK_UNIFIED_IDEOGRAPHS
    + HANGUL_JAMO_EXTENDED_A
    + HANGUL_SYLLABLES
    + HANGUL_JAMO_EXTENDED_B
    + CJK_COMPATIBILITY_IDEOGRAPHS
    + HALFWIDTH_KATAKANA
    + SUPPLEMENTARY_IDEOGRAPHIC_PLANE
    + CJK_EXTENSION_G
)
"""Han ideographs (all extensions), kana and Hangul: the chunker's sentence-end rule
(:mod:`solar_rag.text.chunking`) and the offline answers' terms."""

CJK_CHAR = f"[{CJK}]"
"""One character of :data:`CJK`, as a regex."""

OFFLINE_HASH_V1_CJK = (
    HANGUL_JAMO
    + KANA
    + HANGUL_COMPATIBILITY_JAMO
    + CJK_EXTENSION_A
    + CJK_UNIFIED_IDEOGRAPHS
    + HANGUL_SYLLABLES
    + CJK_COMPATIBILITY_IDEOGRAPHS
)
"""Frozen with the ``offline-hash-v1`` vectors (see the module docstring): :data:`CJK` without
the katakana phonetic extensions, the extended Hangul jamo and the supplementary-plane
ideographs (half-width katakana do not matter: the embedder applies NFKC first)."""

LOCAL_FTS_V1_CJK = (
    HANGUL_JAMO
    + KANA
    + HANGUL_COMPATIBILITY_JAMO
    + CJK_EXTENSION_A
    + CJK_UNIFIED_IDEOGRAPHS
    + HANGUL_JAMO_EXTENDED_A
    + HANGUL_SYLLABLES_ASSIGNED
    + HANGUL_JAMO_EXTENDED_B
    + CJK_COMPATIBILITY_IDEOGRAPHS
    + SUPPLEMENTARY_IDEOGRAPHIC_PLANE
)
"""Frozen with the local store's FTS5 rows (see the module docstring): :data:`CJK` without the
katakana phonetic extensions and extension G (the tokenizer applies NFKC first, so
half-width katakana and the unassigned end of the Hangul block do not matter)."""
