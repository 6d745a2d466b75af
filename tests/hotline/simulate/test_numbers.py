import phonenumbers
from phonenumbers import geocoder

from hotline.simulate.numbers import LANDLINES, MOBILE_PREFIXES, caller_numbers


def test_prefix_table_matches_the_geocoder() -> None:
    for prefix, city in MOBILE_PREFIXES.items():
        assert geocoder.description_for_number(phonenumbers.parse(prefix + "1234", "CN"), "zh") == city
    for area, (city, digits) in LANDLINES.items():
        local = "5" + "3" * (digits - 1)
        assert geocoder.description_for_number(phonenumbers.parse(area + local, "CN"), "zh") == city


def test_numbers_are_distinct_reproducible_and_mostly_heze() -> None:
    numbers = caller_numbers(200, seed=7)
    assert len(set(numbers)) == 200 and numbers == caller_numbers(200, seed=7)
    cities = [geocoder.description_for_number(phonenumbers.parse(n, "CN"), "zh") for n in numbers]
    assert all(cities)
    assert 0.55 < cities.count("山东省菏泽市") / len(cities) < 0.85
