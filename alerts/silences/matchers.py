"""Alertmanager-style label matchers (`=`, `!=`, `=~`, `!~`) over a breach's labels. Pure.

As in Alertmanager, a regex is fully anchored (`fraud.*` matches "fraud-v2", not "old-fraud") and a label
the breach does not carry matches as the empty string.
"""

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from watchtower.limits import SafeStr

LabelName = Literal["model", "monitor", "detector", "kind", "feature", "severity"]
LABELS: tuple[LabelName, ...] = ("model", "monitor", "detector", "kind", "feature", "severity")
Op = Literal["=", "!=", "=~", "!~"]
OPS: dict[Op, tuple[bool, bool]] = {"=": (False, True), "!=": (False, False), "=~": (True, True), "!~": (True, False)}


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class Matcher(BaseModel):
    """One matcher of a silence: Alertmanager's {name, value, isRegex, isEqual}."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: LabelName
    is_regex: bool = False  # before `value`, so the value's validator knows whether it is a regex
    is_equal: bool = True
    value: SafeStr = Field(max_length=500)

    @field_validator("value")
    @classmethod
    def _regex_compiles(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("is_regex"):
            try:
                _compiled(value)
            except re.error as exc:
                raise ValueError(f"bad regular expression {value!r}: {exc}") from exc
        return value

    @classmethod
    def of(cls, name: str, op: str, value: str) -> "Matcher":
        """A matcher from its operator form, as people write it (`model=~"fraud.*"`)."""
        if op not in OPS:
            raise ValueError(f"unknown operator {op!r}; use one of {', '.join(OPS)}")
        is_regex, is_equal = OPS[op]
        return cls.model_validate({"name": name, "value": value, "is_regex": is_regex, "is_equal": is_equal})

    @property
    def op(self) -> Op:
        return next(op for op, flags in OPS.items() if flags == (self.is_regex, self.is_equal))

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the label set satisfies this matcher (a missing label is "")."""
        seen = labels.get(self.name, "")
        hit = _compiled(self.value).fullmatch(seen) is not None if self.is_regex else seen == self.value
        return hit == self.is_equal


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """A silence's matchers are ANDed."""
    return all(m.matches(labels) for m in matchers)


def silences_everything(matchers: Sequence[Matcher]) -> bool:
    """Whether the matchers match a breach with no labels at all, so they would silence every page."""
    return matches_all(matchers, {})
