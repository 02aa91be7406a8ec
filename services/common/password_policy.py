"""What a password of a built-in account must be.

Three rules, each refused with the code ``password_weak`` and a sentence
naming the rule, never the password: at least 12 characters, not the
username, and not one of the common passwords below.
"""

from __future__ import annotations

from strongroom.services.common.errors import InvalidArgument

MIN_LENGTH = 12
MAX_LENGTH = 1024

# Frequent choices of 12 characters or more, from published breach
# frequency lists; shorter ones are refused by the length rule already.
# Compared without case and without spaces.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456123456",
        "123123123123",
        "111111111111",
        "000000000000",
        "121212121212",
        "987654321098",
        "123456654321",
        "qwertyuiopas",
        "qwertyuiop123",
        "qwerty123456",
        "qwertyqwerty",
        "1qaz2wsx3edc",
        "1q2w3e4r5t6y",
        "asdfghjkl123",
        "zxcvbnm12345",
        "password1234",
        "password12345",
        "password123!",
        "passwordpassword",
        "password123456",
        "mypassword123",
        "p@ssw0rd1234",
        "passw0rd1234",
        "changeme1234",
        "changemenow!",
        "letmein12345",
        "welcome12345",
        "welcome123456",
        "iloveyou1234",
        "iloveyou12345",
        "administrator",
        "administrator1",
        "admin1234567",
        "adminadmin123",
        "superman1234",
        "batman123456",
        "football1234",
        "baseball1234",
        "basketball12",
        "princess1234",
        "sunshine1234",
        "starwars1234",
        "trustno1trustno1",
        "monkey123456",
        "dragon123456",
        "abcdefghijkl",
        "abc123abc123",
        "abcd1234abcd",
        "aaaaaaaaaaaa",
        "correcthorsebatterystaple",
        "strongroom123",
        "strongroom1234",
        "secret123456",
        "default12345",
        "summer2024!!",
        "winter2024!!",
        "spring2024!!",
        "autumn2024!!",
    }
)


def check_password(password: str, username: str) -> None:
    """Refuse a password that breaks one of the rules.

    Raises:
        InvalidArgument: ``password_weak``, naming the rule it breaks.
    """
    if len(password) < MIN_LENGTH or len(password) > MAX_LENGTH:
        raise InvalidArgument(
            f"A password must have {MIN_LENGTH} to {MAX_LENGTH} characters.",
            code="password_weak",
        )
    folded = _fold(password)
    if username and folded == _fold(username):
        raise InvalidArgument(
            "A password must not be the username.", code="password_weak"
        )
    if folded in COMMON_PASSWORDS:
        raise InvalidArgument(
            "That password is on the list of common passwords; choose another.",
            code="password_weak",
        )


def _fold(text: str) -> str:
    return "".join(text.split()).casefold()
