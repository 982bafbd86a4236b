"""The strict ``Content-Range`` parser: examples, then properties over generated input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphattach.protocol.content_range import (
    ContentRange,
    ContentRangeError,
    format_content_range,
    parse_content_length,
    parse_content_range,
)

MAX = 10**19 - 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes 0-2097151/3483322", ContentRange(0, 2097151, 3483322)),
        ("bytes 2097152-3483321/3483322", ContentRange(2097152, 3483321, 3483322)),
        ("BYTES 0-0/1", ContentRange(0, 0, 1)),
        ("  bytes 5-9/10\t", ContentRange(5, 9, 10)),
        ("bytes 007-008/010", ContentRange(7, 8, 10)),
    ],
)
def test_valid_headers(header: str, expected: ContentRange) -> None:
    assert parse_content_range(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "",
        "bytes",
        "bytes=0-9/10",  # the Range request syntax, not Content-Range
        "bytes 0-9",
        "bytes 0-9/*",
        "bytes */10",
        "bytes 0 - 9/10",
        "bytes  0-9/10",
        "bytes -1-9/10",
        "bytes +0-9/10",
        "bytes 0-+9/10",
        "bytes 0x0-9/10",
        "bytes 0-9/10, 10-19/20",
        "bytes 0-9/10/10",
        "items 0-9/10",
        "bytes 0_0-9/10",
        "bytes ٠-٩/١٠",  # Arabic-Indic digits: int() would take them
        "bytes 9-0/10",  # start after end
        "bytes 0-10/10",  # end past the total
        "bytes 10-10/10",
        "bytes 0-0/0",
        "bytes 0-9/10\n",
        "bytes 0-9/10\x00",
        f"bytes 0-1/{10**19}",  # more than 19 digits
    ],
)
def test_malformed_headers_are_refused(header: str) -> None:
    with pytest.raises(ContentRangeError):
        parse_content_range(header)


def test_missing_header_is_refused() -> None:
    with pytest.raises(ContentRangeError, match="missing"):
        parse_content_range(None)


def test_error_message_names_the_expected_form_and_hides_control_characters() -> None:
    with pytest.raises(ContentRangeError) as info:
        parse_content_range("bytes 0-9\x07/10")
    assert "bytes {start}-{end}/{total}" in str(info.value)
    assert "\x07" not in str(info.value)


@st.composite
def valid_triples(draw: st.DrawFn) -> tuple[int, int, int]:
    total = draw(st.integers(min_value=1, max_value=MAX))
    start = draw(st.integers(min_value=0, max_value=total - 1))
    end = draw(st.integers(min_value=start, max_value=total - 1))
    return start, end, total


@given(valid_triples())
def test_format_then_parse_round_trips(triple: tuple[int, int, int]) -> None:
    start, end, total = triple
    parsed = parse_content_range(format_content_range(start, end, total))
    assert (parsed.start, parsed.end, parsed.total) == triple
    assert parsed.length == end - start + 1
    assert str(parsed) == format_content_range(start, end, total)


@given(st.text(max_size=60))
def test_any_text_parses_to_a_valid_range_or_is_refused(text: str) -> None:
    try:
        parsed = parse_content_range(text)
    except ContentRangeError:
        return
    assert 0 <= parsed.start <= parsed.end < parsed.total
    # what was accepted is exactly the canonical form, up to case, zero padding and outer blanks
    assert text.strip(" \t").lower().startswith("bytes ")
    assert parse_content_range(str(parsed)) == parsed


@given(
    st.integers(min_value=0, max_value=MAX),
    st.integers(min_value=0, max_value=MAX),
    st.integers(min_value=0, max_value=MAX),
)
def test_numbers_are_accepted_exactly_when_ordered(start: int, end: int, total: int) -> None:
    header = format_content_range(start, end, total)
    if start <= end < total:
        assert parse_content_range(header) == ContentRange(start, end, total)
    else:
        with pytest.raises(ContentRangeError):
            parse_content_range(header)


@given(valid_triples(), st.sampled_from([" ", "-", "/", "+", "x", ",", "*", "\n"]), st.data())
def test_inserting_a_stray_character_is_refused(triple: tuple[int, int, int], stray: str, data: st.DataObject) -> None:
    header = format_content_range(*triple)
    # anywhere after "bytes " except at the very end (a trailing blank is allowed whitespace)
    position = data.draw(st.integers(min_value=6, max_value=len(header) - 1))
    mutated = header[:position] + stray + header[position:]
    with pytest.raises(ContentRangeError):
        parse_content_range(mutated)


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_content_length_reads_every_decimal_length(n: int) -> None:
    assert parse_content_length(str(n)) == n
    assert parse_content_length(f" {n}\t") == n


@pytest.mark.parametrize("raw", ["", "-1", "+5", "1_000", "1 2", "0x10", "١٢", "1" * 20])
def test_content_length_refuses_what_is_not_1_digit(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_content_length(raw)
    assert parse_content_length(None) is None
