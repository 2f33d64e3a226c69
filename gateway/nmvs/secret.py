"""A string that never shows itself: passwords, client secrets and key passphrases of the NMVS
link, whichever backend holds them."""

from __future__ import annotations


class Secret:
    """Holds a secret value; ``str``/``repr``/format print ``***``. Call :meth:`reveal` at the
    single place the value is needed (the request body, the key loader)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")
