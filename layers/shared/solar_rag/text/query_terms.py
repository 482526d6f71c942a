"""Word forms for matching questions to passages (the offline extractive answerer, which
builds its terms from them: solar_rag.adapters.extractive_answers).

Latin words are lower-cased and lightly stemmed (plural, ``-ed``, ``-ing`` and a final ``e``
removed, so "released" and "release" meet); numbers keep their separators (``3.2``,
``1,240``); Hangul/CJK runs become character bigrams (Korean writes particles and endings onto
its words, and Chinese/Japanese have no spaces, so bigrams are what two spellings share).

Questions lose more than passages: interrogatives ("how long", "what colour", 언제, 몇) and Korean question
endings (…인가요, …하나요) say what is asked, not what the answer is about, and a particle at
the end of a Korean question word (연차*는*) would otherwise be a bigram the answer need not
contain. Stripping only ever removes bigrams of a word, so a question term is always one the
same word in a passage also yields.
"""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    "a an and are as at be but by can did do does for from had has have how i if in into is it "
    "its me my no not of on or our so than that the their them then there these they this to "
    "was we were what when where which who whom why will with you your about tell please give "
    "explain describe show list much many am been being both could each he her here him his "
    "just may might more most must other own same shall she should some such those through "
    "too under until very would whose yours any all also again out over up us let know find "
    "something anything take took taken get got".split()
)
# The head of a wh-phrase names the kind of answer, not what it is about, and the answer need
# not contain it ("what colour is the sky" / "the sky is blue"): "how long", "how often", and
# the common noun after "what"/"which" (a capitalised name there is kept: "which Orion ...").
WH_HEAD = re.compile(r"\b(?:[Hh]ow\s++(?:long|often|far|old|soon|big|large|early|late)"
                     r"|(?<=[Ww]hat )[a-z]++|(?<=[Ww]hich )[a-z]++)\b")
# A number with separators (3.2, 1,000.50: digits, single separators between digits) or a run
# of letters and digits; written as ``[0-9]+(?:[.,][0-9]+)+|[0-9a-z]+`` without nested repeats.
LATIN_TOKEN = re.compile(r"(?=[0-9]++[.,][0-9])[0-9](?:[0-9]|[.,](?=[0-9]))*+|[0-9a-z]++")
_VOWELS = frozenset("aeiouy")

# Korean interrogatives (a question word starting with one of them is dropped; 몇 is dropped
# from the front of its word: 몇시간 keeps 시간).
_KO_INTERROGATIVES = ("누구", "누가", "무엇", "무슨", "언제", "어디", "어떻", "어떤", "어느", "얼마",
                      "며칠", "알려", "설명해", "주세요")
_KO_ONE_SYLLABLE_INTERROGATIVES = frozenset(("뭐", "왜"))
# Question endings, longest first: removed from the end of a question word.
_KO_QUESTION_ENDINGS = tuple(sorted(
    ("인가요", "인가", "인지", "인지요", "입니까", "습니까", "합니까", "했나요", "였나요", "었나요",
     "았나요", "하나요", "한가요", "나요", "까요", "가요", "니까", "는가", "은가", "인데요"),
    key=len, reverse=True))
# Particles, longest first: removed from the end of a question word when two syllables remain.
_KO_PARTICLES = tuple(sorted(
    ("은", "는", "이", "가", "을", "를", "의", "에", "에서", "에게", "께서", "으로", "로", "와",
     "과", "도", "만", "까지", "부터", "보다", "이나", "나", "랑", "이랑", "하고", "처럼", "마다",
     "에는", "에서는", "으로는", "로는", "와의", "과의", "에의", "이란", "란"),
    key=len, reverse=True))


def stem(word: str) -> str:
    """A light English stemmer: enough for inflections of one word to meet."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and not word.endswith("eed"):
            base = word[: -len(suffix)]
            if len(base) >= 3 and _VOWELS & set(base):
                if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz" + "aeiou":
                    base = base[:-1]  # stopped -> stop
                word = base
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def korean_question_word(word: str) -> str:
    """A Korean question word without interrogative, question ending and particle ("" when
    it is only an interrogative)."""
    if word.startswith("몇"):
        word = word[1:]
    if word in _KO_ONE_SYLLABLE_INTERROGATIVES or word.startswith(_KO_INTERROGATIVES):
        return ""
    for ending in _KO_QUESTION_ENDINGS:
        if word.endswith(ending) and len(word) > len(ending):
            word = word[: -len(ending)]
            break
    for particle in _KO_PARTICLES:
        if word.endswith(particle) and len(word) - len(particle) >= 2:
            return word[: -len(particle)]
    return word
