"""Text with half an emoji (a lone UTF-16 surrogate) is counted, and can be made storable."""

from __future__ import annotations

import random

import pytest

from smsbridge.core.segments import SegmentCount, count_segments, replace_lone_surrogates

HIGH = "\ud83d"  # the first half of U+1F600, as a carrier that split the emoji sends it
LOW = "\ude00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(HIGH, SegmentCount("UCS-2", 1, 1), id="lone-high"),
        pytest.param("ok " + LOW, SegmentCount("UCS-2", 4, 1), id="lone-low"),
        pytest.param("a" * 69 + HIGH, SegmentCount("UCS-2", 70, 1), id="fills-one-part"),
        pytest.param("a" * 70 + HIGH, SegmentCount("UCS-2", 71, 2), id="spills-to-two"),
    ],
)
def test_lone_surrogates_count_as_one_utf16_unit(text: str, expected: SegmentCount) -> None:
    assert count_segments(text) == expected


def test_count_segments_never_raises_on_any_code_point_mix() -> None:
    rng = random.Random(5)
    alphabet = ["a", "€", "ç", HIGH, LOW, "\U0001f600", "\x00", "\n"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 400)))
        count = count_segments(text)
        assert count.segments >= 1 and count.units >= len(text) - text.count("\U0001f600")


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        pytest.param("plain text", "plain text", id="untouched"),
        pytest.param("smile " + HIGH, "smile \ufffd", id="lone-high"),
        pytest.param(LOW + " after", "\ufffd after", id="lone-low"),
        pytest.param(HIGH + LOW, "\U0001f600", id="halves-that-pair-are-joined"),
        pytest.param("\U0001f600 " + HIGH + HIGH, "\U0001f600 \ufffd\ufffd", id="mixed"),
        pytest.param("nul\x00kept", "nul\x00kept", id="nul-is-not-a-surrogate"),
    ],
)
def test_replace_lone_surrogates_gives_text_utf8_can_hold(text: str, cleaned: str) -> None:
    out = replace_lone_surrogates(text)
    assert out == cleaned
    out.encode("utf-8")  # what both database drivers need
