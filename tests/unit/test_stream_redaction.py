from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from solar_rag.adapters.redaction import SecretRedactor
from solar_rag.adapters.stream_redaction import StreamRedactor, pending_from

SECRET = "up_SeCrEt_0123456789"


def test_ordinary_text_is_not_held_back() -> None:
    redactor = StreamRedactor([SECRET])
    assert redactor.feed("Hello ") == "Hello "
    assert redactor.feed("world, no secrets here.") == "world, no secrets here."


def test_a_possible_beginning_of_the_secret_waits_until_it_is_decided() -> None:
    redactor = StreamRedactor([SECRET])
    assert redactor.feed("key: up_Se") == "key: "
    assert redactor.feed("CrEt_01") == ""
    assert redactor.feed("23456789 done") == "[redacted] done"
    assert redactor.feed(" and up_") == " and "
    assert redactor.feed("per") == "up_per"  # not the secret after all: sent on at once


def test_pending_from() -> None:
    assert pending_from("abc", [SECRET]) == 3
    assert pending_from("abc u", [SECRET]) == 4
    assert pending_from("abc up_S eC", [SECRET]) == 4  # gaps are tolerated, as in redaction
    assert pending_from("abc up_x", [SECRET]) == 8


@given(st.lists(st.sampled_from(["a ", "up_", "SeCrEt", "_01", "23456789", " ", "\u200b", "u", "x"]),
                max_size=30),
       st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=40))
def test_pieces_add_up_to_the_redacted_text_and_never_show_the_secret(words: list[str],
                                                                       cuts: list[int]) -> None:
    text = "".join(words) + " " + SECRET + " end"
    expected = SecretRedactor([SECRET]).redact(text)
    redactor = StreamRedactor([SECRET])
    sent, position, turn = "", 0, 0
    while position < len(text):
        size = cuts[turn % len(cuts)]
        sent += redactor.feed(text[position:position + size])
        position, turn = position + size, turn + 1
        # Whatever has been sent is final: a prefix of the redacted text, so no piece of a
        # secret occurrence ever left (a text that merely starts like the key, such as
        # "up_SeCrEt_01 ", is sent once it is known not to be the key).
        assert expected.startswith(sent), (sent, expected)
    sent += redactor.finish()
    assert sent == expected
