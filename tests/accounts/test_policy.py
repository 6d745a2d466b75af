"""The password policy, in Chinese, one sentence per problem."""

from __future__ import annotations

import pytest

from accounts.policy import problems
from accounts.store import temporary_password


@pytest.mark.parametrize(("password", "says"), [
    ("Ab1!", "至少 10 位"),
    ("abcdefghijk", "至少三种"),
    ("Zhangmin-2026x", "不能包含用户名"),
    ("Password123", "过于常见"),
    ("aaaaaaaaaaaa", "过于常见"),
])
def test_weak_passwords_are_refused_with_a_reason(password: str, says: str) -> None:
    assert any(says in p for p in problems(password, "zhangmin"))


@pytest.mark.parametrize("password", ["Tiao-guo-7!x", "热线Hotline2026", "q8#Lm2vZ9p"])
def test_good_passwords_pass(password: str) -> None:
    assert problems(password, "zhangmin") == []


def test_temporary_passwords_meet_the_policy_and_differ() -> None:
    made = {temporary_password() for _ in range(50)}
    assert len(made) == 50 and all(problems(p) == [] for p in made)
