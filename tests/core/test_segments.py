"""GSM-7 / UCS-2 segment counting and splitting (facts: shared/providers/segments.md)."""

from __future__ import annotations

import itertools
import random

import pytest

from smsbridge.core.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SegmentCount,
    count_segments,
    split_segments,
)

GRIN = "\U0001f600"  # outside the BMP: a surrogate pair, 2 UTF-16 units
LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


def _size(part: str, encoding: str) -> int:
    """Size of a part as the carrier counts it: septets or UTF-16 code units."""
    if encoding == "GSM-7":
        return sum(2 if ch in GSM7_EXTENSION else 1 for ch in part)
    return len(part.encode("utf-16-le")) // 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", SegmentCount("GSM-7", 0, 1), id="empty"),
        pytest.param("a" * 160, SegmentCount("GSM-7", 160, 1), id="gsm-160"),
        pytest.param("a" * 161, SegmentCount("GSM-7", 161, 2), id="gsm-161"),
        pytest.param("a" * 306, SegmentCount("GSM-7", 306, 2), id="gsm-306"),
        pytest.param("a" * 307, SegmentCount("GSM-7", 307, 3), id="gsm-307"),
        pytest.param("é" * 70, SegmentCount("GSM-7", 70, 1), id="accent-in-table-is-gsm"),
        pytest.param("ç" * 70, SegmentCount("UCS-2", 70, 1), id="ucs2-70"),
        pytest.param("ç" * 71, SegmentCount("UCS-2", 71, 2), id="ucs2-71"),
        pytest.param("ç" * 134, SegmentCount("UCS-2", 134, 2), id="ucs2-134"),
        pytest.param("ç" * 135, SegmentCount("UCS-2", 135, 3), id="ucs2-135"),
        pytest.param("€", SegmentCount("GSM-7", 2, 1), id="euro-costs-2"),
        pytest.param("€" * 80, SegmentCount("GSM-7", 160, 1), id="80-euros-fit-one"),
        pytest.param("€" * 81, SegmentCount("GSM-7", 162, 2), id="81-euros-need-two"),
        pytest.param("a" * 159 + "€", SegmentCount("GSM-7", 161, 2), id="escape-over-160"),
        pytest.param("`", SegmentCount("UCS-2", 1, 1), id="backtick-forces-ucs2"),
        pytest.param("ç", SegmentCount("UCS-2", 1, 1), id="lowercase-c-cedilla-forces-ucs2"),
        pytest.param("Ç", SegmentCount("GSM-7", 1, 1), id="uppercase-c-cedilla-is-gsm"),
        pytest.param("line\r\nnext\n", SegmentCount("GSM-7", 11, 1), id="cr-lf-are-gsm"),
        pytest.param("\u2019", SegmentCount("UCS-2", 1, 1), id="curly-quote-forces-ucs2"),
        pytest.param(GRIN, SegmentCount("UCS-2", 2, 1), id="emoji-is-2-units"),
        pytest.param(GRIN * 35, SegmentCount("UCS-2", 70, 1), id="35-emoji-fit-one"),
        pytest.param("a" * 69 + GRIN, SegmentCount("UCS-2", 71, 2), id="emoji-over-70"),
    ],
)
def test_count_segments_boundaries(text: str, expected: SegmentCount) -> None:
    assert count_segments(text) == expected


def test_one_non_gsm_character_switches_a_long_text_to_ucs2() -> None:
    gsm = "a" * 150
    assert count_segments(gsm) == SegmentCount("GSM-7", 150, 1)
    mixed = gsm + "ç"
    assert count_segments(mixed) == SegmentCount("UCS-2", 151, 3)
    assert [len(part) for part in split_segments(mixed)] == [67, 67, 17]


@pytest.mark.parametrize(
    ("text", "lengths"),
    [
        pytest.param("a" * 161, [153, 8], id="gsm-153-per-part"),
        pytest.param("a" * 307, [153, 153, 1], id="gsm-three-parts"),
        pytest.param("ç" * 71, [67, 4], id="ucs2-67-per-part"),
    ],
)
def test_split_segments_part_lengths(text: str, lengths: list[int]) -> None:
    parts = split_segments(text)
    assert [len(part) for part in parts] == lengths
    assert "".join(parts) == text


def test_escape_pair_is_not_split_across_parts() -> None:
    # The '€' would take septets 153 and 154: ESC alone would end part one.
    text = "a" * 152 + "€" + "b" * 10
    parts = split_segments(text)
    assert parts == ["a" * 152, "€" + "b" * 10]
    assert count_segments(text) == SegmentCount("GSM-7", 164, 2)


def test_escape_pair_that_fits_exactly_stays_in_the_part() -> None:
    text = "a" * 151 + "€" + "b" * 10
    assert split_segments(text) == ["a" * 151 + "€", "b" * 10]


def test_escape_pair_pushes_a_third_part() -> None:
    # 306 septets would be 2 parts, but the escape at 153/154 shifts one septet over.
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text) == SegmentCount("GSM-7", 306, 3)
    parts = split_segments(text)
    assert parts == ["a" * 152, "€" + "a" * 151, "a"]
    assert [_size(part, "GSM-7") for part in parts] == [152, 153, 1]


def test_surrogate_pair_is_not_split_across_parts() -> None:
    # The emoji would take units 67 and 68: its high surrogate alone would end part one.
    text = "a" * 66 + GRIN + "b" * 10
    parts = split_segments(text)
    assert parts == ["a" * 66, GRIN + "b" * 10]
    assert count_segments(text) == SegmentCount("UCS-2", 78, 2)


def test_surrogate_pair_that_fits_exactly_stays_in_the_part() -> None:
    text = "a" * 65 + GRIN + "b" * 10
    assert split_segments(text) == ["a" * 65 + GRIN, "b" * 10]


def test_parts_are_in_order_and_join_back() -> None:
    text = "".join(f"{n:03d} " for n in range(100))
    parts = split_segments(text)
    assert len(parts) == 3
    assert parts[0].startswith("000 ")
    assert parts[-1].endswith("099 ")
    assert "".join(parts) == text


def _random_text(rng: random.Random) -> str:
    """A text mixing the default alphabet, the extension table and, sometimes, emoji."""
    alphabet = sorted(GSM7_BASIC) * 4 + sorted(GSM7_EXTENSION)
    if rng.random() < 0.5:
        alphabet += ["ç", "\u2019", GRIN, "\U0001f44d", "\u00e1"]
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 700)))


def test_generated_texts_split_consistently() -> None:
    rng = random.Random(23038)
    encodings = set()
    for _ in range(400):
        text = _random_text(rng)
        result = count_segments(text)
        parts = split_segments(text)
        encodings.add(result.encoding)
        assert "".join(parts) == text
        assert result.segments == len(parts)
        assert result.units == _size(text, result.encoding)
        single, each = LIMITS[result.encoding]
        if len(parts) == 1:
            assert result.units <= single
        else:
            assert result.units > single
            assert all(0 < _size(part, result.encoding) <= each for part in parts)
            # Greedy packing: the next character would not have fit in the part before.
            for before, after in itertools.pairwise(parts):
                assert _size(before + after[0], result.encoding) > each
    assert encodings == {"GSM-7", "UCS-2"}
