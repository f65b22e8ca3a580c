"""Tests for hatchery.domain.moderation: the prompt deny-list."""

from __future__ import annotations

from pathlib import Path

import pytest

from hatchery.domain.moderation import MODERATION_ERROR, DenyList


def test_word_does_not_match_inside_another_word() -> None:
    deny = DenyList.parse("ass")
    assert not deny.matches("a classic painting")
    assert not deny.matches("assassin", "bass", "passage")


@pytest.mark.parametrize("text", ["ASS!", "you ass", "Ass.", "(ass)", "ass", "an ass-like shape"])
def test_word_matches_case_insensitively_on_boundaries(text: str) -> None:
    assert DenyList.parse("ass").matches(text)


def test_underscore_and_digits_count_as_word_characters() -> None:
    deny = DenyList.parse("ass")
    assert not deny.matches("ass_1", "ass2", "_ass")


@pytest.mark.parametrize(
    "text",
    ["a red door here", "A RED   DOOR", "a red\tdoor", "a red\n door", "the red door."],
)
def test_phrase_matches_across_any_whitespace(text: str) -> None:
    assert DenyList.parse("  red   door  ").matches(text)


@pytest.mark.parametrize("text", ["reddoor", "red doors", "a red-door", "bored door"])
def test_phrase_respects_boundaries_and_separators(text: str) -> None:
    assert not DenyList.parse("red door").matches(text)


def test_entries_are_literal_not_regex() -> None:
    deny = DenyList.parse("a.b\nc++")
    assert deny.matches("see a.b now", "use c++ today")
    assert not deny.matches("axb", "cc")


def test_regex_entries() -> None:
    deny = DenyList.parse(r"/bl[ao]od\d+/")
    assert deny.matches("BLOOD42")
    assert deny.matches("xxblaod7x")  # no implicit word boundaries for regexes
    assert not deny.matches("blood", "blud1")


def test_slashes_of_two_characters_or_fewer_are_a_plain_entry() -> None:
    deny = DenyList.parse("//")
    assert len(deny) == 1
    assert deny.matches("see // here")
    assert not deny.matches("anything else")


def test_comments_and_blank_lines_are_ignored() -> None:
    text = "# a comment\n\n   \n  # indented comment\nbadword\n\n/evil+/\n"
    deny = DenyList.parse(text)
    assert len(deny) == 2
    assert deny.matches("BadWord")
    assert deny.matches("EVILLL")
    assert not deny.matches("a comment", "indented comment")


@pytest.mark.parametrize("deny", [DenyList.empty(), DenyList.parse(""), DenyList.parse("# x\n\n")])
def test_empty_list_matches_nothing(deny: DenyList) -> None:
    assert len(deny) == 0
    assert not deny.matches("anything at all", "", None)


def test_matches_any_of_several_texts_and_skips_none() -> None:
    deny = DenyList.parse("forbidden")
    assert deny.matches(None, "fine", "Forbidden!")
    assert not deny.matches(None, "fine", "")
    assert not deny.matches()


def test_invalid_regex_raises_value_error_naming_the_entry() -> None:
    with pytest.raises(ValueError, match=r"invalid deny-list regex '/\(unclosed/'"):
        DenyList.parse("fine\n/(unclosed/\n")


def test_load_none_is_empty() -> None:
    deny = DenyList.load(None)
    assert len(deny) == 0
    assert not deny.matches("anything")


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "deny.txt"
    path.write_text("# words\nnaughty\n/x{3,}/\n", encoding="utf-8")
    deny = DenyList.load(path)
    assert len(deny) == 2
    assert deny.matches("so NAUGHTY")
    assert deny.matches("xxxx")
    assert not deny.matches("xx nice")


def test_moderation_error_message() -> None:
    assert MODERATION_ERROR.startswith("Content moderation:")


def test_an_unreadable_denylist_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the moderation deny-list"):
        DenyList.load(tmp_path / "missing.txt")
