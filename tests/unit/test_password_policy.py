"""The password policy of built-in accounts."""

from __future__ import annotations

import pytest

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.common.password_policy import (
    COMMON_PASSWORDS,
    MIN_LENGTH,
    check_password,
)


@pytest.mark.parametrize(
    ("password", "username", "rule"),
    [
        ("", "mia", "12 to 1024 characters"),
        ("elevenchars", "mia", "12 to 1024 characters"),
        ("x" * 1025, "mia", "12 to 1024 characters"),
        ("mia.lopez.1984", "mia.lopez.1984", "not be the username"),
        ("Mia.Lopez.1984", "mia.lopez.1984", "not be the username"),
        ("password1234", "mia", "common passwords"),
        ("Password1234", "mia", "common passwords"),
        ("qwerty 123456", "mia", "common passwords"),
        ("correct horse battery staple", "mia", "common passwords"),
    ],
)
def test_weak_passwords_are_refused_naming_the_rule(
    password: str, username: str, rule: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_password(password, username)

    assert caught.value.code == "password_weak"
    assert rule in caught.value.message
    if password:
        assert password not in caught.value.message


@pytest.mark.parametrize(
    "password", ["correct horse battery", "tidal-ochre-lantern-52", "x" * 1024]
)
def test_acceptable_passwords_pass(password: str) -> None:
    check_password(password, "mia")


def test_the_common_list_holds_only_passwords_the_length_rule_lets_through() -> None:
    assert len(COMMON_PASSWORDS) >= 50
    assert all(len(p) >= MIN_LENGTH for p in COMMON_PASSWORDS)
    assert all(p == "".join(p.split()).casefold() for p in COMMON_PASSWORDS)
