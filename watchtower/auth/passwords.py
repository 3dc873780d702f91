"""Password hashing: argon2id through argon2-cffi; only the hash is stored, never the password."""

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from watchtower.errors import Invalid, field_error

MIN_LENGTH, MAX_LENGTH = 10, 1024  # NIST 800-63B: long passphrases welcome; a bound keeps hashing cheap


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the library's current (RFC 9106 low-memory) parameters


@cache
def _dummy_hash() -> str:
    """What an unknown account is checked against, so it costs as long as a wrong password."""
    return _hasher().hash("no account has this password")


def check_strength(password: str, field: str = "password") -> None:
    """Invalid (naming `field`) unless the password is MIN_LENGTH to MAX_LENGTH characters."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise Invalid(f"{field} must be {MIN_LENGTH} to {MAX_LENGTH} characters long",
                      errors=[field_error(field, f"must be {MIN_LENGTH} to {MAX_LENGTH} characters long")])


def hash_password(password: str) -> str:
    """The argon2id hash to store (salted, with its parameters encoded in it)."""
    return _hasher().hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; without a stored hash a dummy is verified, so timing does not tell."""
    try:
        return _hasher().verify(stored or _dummy_hash(), password[:MAX_LENGTH]) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a hash was made with older parameters than the library's current ones (re-hash on sign-in)."""
    return _hasher().check_needs_rehash(stored)
