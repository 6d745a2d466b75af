"""The password policy (等保 2.0 style): long enough, three kinds of character, not the user name,
not a known weak password. Said in Chinese, one sentence per problem, so the form can show them.
"""

from __future__ import annotations

MIN_LENGTH = 10
# the passwords every dictionary attack tries first, and the demo's own (README) passwords
WEAK = frozenset({
    "password", "password1", "password123", "passw0rd", "p@ssw0rd", "p@ssword1", "qwerty123", "qwertyuiop",
    "1qaz2wsx", "1qaz@wsx", "1q2w3e4r", "1q2w3e4r5t", "abc123456", "abcd1234", "a123456789", "admin123",
    "admin@123", "administrator", "12345678", "123456789", "1234567890", "0123456789", "11111111",
    "88888888", "woaini1314", "iloveyou", "welcome1", "changeme", "letmein", "zaq12wsx", "asdfghjkl",
    "demo1024", "demo1025", "demolead", "demoqa", "demodept", "demoadmin", "hotline12345", "12345hotline",
})


def classes(password: str) -> int:
    """How many of: lower case, upper case, digits, anything else (symbols, Chinese characters)."""
    return sum((any(c.islower() and c.isascii() for c in password),
                any(c.isupper() and c.isascii() for c in password),
                any(c.isdigit() for c in password),
                any(not (c.isascii() and c.isalnum()) for c in password)))


def problems(password: str, username: str = "") -> list[str]:
    """Why ``password`` may not be used; empty when it may."""
    found = []
    if len(password) < MIN_LENGTH:
        found.append(f"密码至少 {MIN_LENGTH} 位")
    if len(password) > 128:
        found.append("密码不能超过 128 位")
    if classes(password) < 3:
        found.append("密码须包含大写字母、小写字母、数字、符号中的至少三种")
    if len(username) >= 3 and username.lower() in password.lower():  # "qa" may sit inside anything
        found.append("密码不能包含用户名")
    if password.lower() in WEAK or len(set(password)) <= 2:
        found.append("密码过于常见，请换一个")
    return found
