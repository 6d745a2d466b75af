"""What every flow shares: the caller's number, asking for one key, saying numbers in Chinese."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from agi.channel import Channel
from ticketing.callers import normalize_number

log = logging.getLogger("agi.flows")

OnSurvey = Callable[[str, str, "int | None"], Awaitable[None]]
OnCallbackRequest = Callable[[str, str, str, str], Awaitable[None]]  # uniqueid, caller, reason, message


def clean_number(raw: str, area_code: str = "0530") -> str:
    """A callable number in normal form, or "" (withheld, letters, absurd lengths).

    >>> clean_number("+86 139-5301-2345"), clean_number("5551234"), clean_number("anonymous")
    ('13953012345', '05305551234', '')
    >>> clean_number("1" * 40), clean_number("'; DROP TABLE caller;--"), clean_number("110")
    ('', '', '')
    """
    if not raw or len(raw) > 40 or any(c.isalpha() for c in raw):
        return ""
    n = normalize_number(raw, area_code)
    return n if 5 <= len(n) <= 15 else ""


def say_digits(text: str) -> list[str]:
    """Sound files saying each digit ("8001" → 八零零一).

    >>> say_digits("8a01")
    ['digits/8', 'digits/0', 'digits/1']
    """
    return [f"digits/{c}" for c in text if c.isdigit()]


def say_number(n: int) -> list[str]:
    """Sound files saying 0–99 the Chinese way (hours, months, days).

    >>> say_number(8), say_number(10), say_number(12), say_number(20)
    (['digits/8'], ['digits/10'], ['digits/10', 'digits/2'], ['digits/2', 'digits/10'])
    >>> say_number(31)
    ['digits/3', 'digits/10', 'digits/1']
    """
    if not 0 <= n <= 99:
        return say_digits(str(n))
    if n < 10:
        return [f"digits/{n}"]
    tens, ones = divmod(n, 10)
    out = ([] if tens == 1 else [f"digits/{tens}"]) + ["digits/10"]
    return out + ([f"digits/{ones}"] if ones else [])


def say_clock(hour: int, minute: int) -> list[str]:
    """'8点' or '8点30分' (24:00 is said 24点).

    >>> say_clock(8, 30)
    ['digits/8', 'hotline/hour', 'digits/3', 'digits/10', 'hotline/minute']
    """
    out = [*say_number(hour), "hotline/hour"]
    return out + ([*say_number(minute), "hotline/minute"] if minute else [])


@dataclass(frozen=True)
class Asked:
    key: str | None  # the valid key pressed, or None after the last try
    tries: int


async def ask(ch: Channel, sound: str, valid: Collection[str], *, tries: int = 3, timeout_ms: int = 6000,
              invalid_sound: str = "hotline/invalid") -> Asked:
    """Play ``sound`` and wait for one key; an invalid key or silence asks again, ``tries`` times in all."""
    for n in range(1, tries + 1):
        key = await ch.get_data(sound, timeout_ms, 1)
        if key in valid:
            return Asked(key, n)
        if key and n < tries:
            await ch.play(invalid_sound)
    return Asked(None, tries)
