"""Realistic Chinese caller numbers: mobiles and landlines of several provinces, Heze first.

>>> numbers = caller_numbers(4, seed=1)
>>> len(numbers), all(n.isdigit() and len(n) in (11, 12) for n in numbers)
(4, True)
"""

from __future__ import annotations

import random

# 7-digit mobile prefixes (3 + 4 H-code digits) checked against phonenumbers' zh geocoder
# (tests/hotline/simulate/test_numbers.py keeps this table honest)
MOBILE_PREFIXES: dict[str, str] = {
    "1395301": "山东省菏泽市", "1585309": "山东省菏泽市", "1875300": "山东省菏泽市",
    "1370530": "山东省菏泽市", "1560530": "山东省菏泽市", "1825401": "山东省菏泽市",
    "1380531": "山东省济南市", "1391001": "北京市", "1360221": "广东省广州市",
}
# area code → (city, digits of a local number): Heze has 7-digit numbers, the big cities 8
LANDLINES: dict[str, tuple[str, int]] = {
    "0530": ("山东省菏泽市", 7), "0531": ("山东省济南市", 8), "010": ("北京市", 8), "021": ("上海市", 8),
}


def _landline(rng: random.Random, area: str) -> str:
    digits = LANDLINES[area][1]
    return area + str(rng.randrange(2 * 10 ** (digits - 1), 9 * 10 ** (digits - 1)))


def caller_numbers(count: int, seed: int | None = None, heze_share: float = 0.7) -> list[str]:
    """``count`` distinct numbers, most of them from Heze (the demo city)."""
    rng = random.Random(seed)
    heze_mobiles = [p for p, city in MOBILE_PREFIXES.items() if city == "山东省菏泽市"]
    other_mobiles = [p for p, city in MOBILE_PREFIXES.items() if city != "山东省菏泽市"]
    out: list[str] = []
    while len(out) < count:
        roll = rng.random()
        if roll < heze_share * 0.8:
            number = rng.choice(heze_mobiles) + f"{rng.randrange(10_000):04d}"
        elif roll < heze_share:
            number = _landline(rng, "0530")
        elif roll < 0.9:
            number = rng.choice(other_mobiles) + f"{rng.randrange(10_000):04d}"
        else:
            number = _landline(rng, rng.choice(["0531", "010", "021"]))
        if number not in out:
            out.append(number)
    return out
