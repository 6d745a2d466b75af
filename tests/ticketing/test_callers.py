"""Caller numbers in one normal form, and where they belong."""

from __future__ import annotations

import pytest

from ticketing.callers import location_of, normalize_number


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("+86 138-5301-2345", "13853012345"),
        ("008613853012345", "13853012345"),
        ("13853012345", "13853012345"),
        ("5551234", "05305551234"),  # bare local number: Heze's area code
        ("0530-5551234", "05305551234"),
        ("+86 530 5551234", "05305551234"),
        ("", ""),
    ],
)
def test_normalize(raw, want):
    assert normalize_number(raw) == want


def test_locations_in_chinese():
    assert location_of("05305551234") == "山东省菏泽市"
    assert location_of("abc") == ""


def test_doctests():
    import doctest

    import ticketing.callers

    result = doctest.testmod(ticketing.callers)
    assert result.attempted >= 3 and result.failed == 0
