"""Caller numbers: one normal form for lookups, and the place a number belongs to."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import geocoder

_NON_DIGITS = re.compile(r"[^\d]")


def normalize_number(raw: str, area_code: str = "0530") -> str:
    """Digits only, without the country prefix; bare local numbers get the local area code.

    >>> normalize_number('+86 138-0013-8000')
    '13800138000'
    >>> normalize_number('5551234')
    '05305551234'
    >>> normalize_number('0086530 5551234')
    '05305551234'
    """
    digits = _NON_DIGITS.sub("", raw or "")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) >= 10:
            digits = digits[len(prefix) :]
            if not digits.startswith("1"):
                digits = "0" + digits  # +86 530 … is 0530 … at home
            break
    if len(digits) in (7, 8) and not digits.startswith(("0", "1")):
        digits = area_code + digits
    return digits


@lru_cache(maxsize=4096)
def location_of(number: str) -> str:
    """Province and city of a mobile or landline number ("山东省菏泽市"), or ""."""
    if not number or not number.isdigit():
        return ""
    try:
        parsed = phonenumbers.parse(number, "CN")
    except phonenumbers.NumberParseException:
        return ""
    return geocoder.description_for_number(parsed, "zh") or ""
