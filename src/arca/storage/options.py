"""Typed driver options: each driver declares a frozen dataclass of what it accepts.

A driver class names its options type (`Driver.options_type`); `parse_options` turns the
raw `[storage.<driver>]` table into it, refusing unknown keys, missing required ones and
values of the wrong type, each with the full key in the message
(`storage.s3.bucket is required`). Checks across fields live in the options class's
`__post_init__`, raising `OptionError(key, message)` with the bare field name; the
parser adds the section. So `arca check-config`, `arca serve` (before it binds) and the
app all refuse a bad table the same way, without touching the backend.

Fields marked `secret()` are masked wherever effective settings are printed.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

_SECRET = "arca.secret"


class OptionError(ValueError):
    """One option (or a whole section) that a driver cannot use; `key` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key} {message}")
        self.key = key
        self.message = message


class DriverUnavailable(ValueError):
    """The chosen driver's module or its optional dependency is missing."""


@dataclass(frozen=True)
class DriverOptions:
    """Base of every driver's options (a driver without options uses it as is)."""

    def as_arguments(self) -> dict[str, Any]:
        """The options as keyword arguments of the driver's constructor."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def check_object_store(options: Any, urls: tuple[str, str], noun: str) -> None:
    """The checks S3, GCS and Azure options share: retries, timeouts, the two endpoint
    URLs, and the prefix (`noun` says what it prefixes, for the message)."""
    from arca.storage.driver import InvalidPath, check_path  # driver.py imports this module

    if options.max_attempts < 1:
        raise OptionError("max_attempts", "must be at least 1")
    for key in ("connect_timeout", "read_timeout"):
        if getattr(options, key) <= 0:
            raise OptionError(key, "must be more than 0 seconds")
    for key in urls:
        url = getattr(options, key)
        if url is not None and not url.startswith(("http://", "https://")):
            raise OptionError(key, f"must be an http:// or https:// URL, not {url!r}")
    prefix = options.prefix.strip("/")
    try:
        if prefix:
            check_path(prefix)
    except InvalidPath:
        raise OptionError("prefix", f"is not a valid {noun} prefix: {options.prefix!r}") from None


def secret(default: Any = None) -> Any:
    """A field that is never printed in full (passwords, keys, tokens)."""
    return dataclasses.field(default=default, metadata={_SECRET: True})


_O = TypeVar("_O", bound=DriverOptions)


def parse_options(options_type: type[_O], raw: Mapping[str, Any], section: str) -> _O:
    """`raw` checked against `options_type`; OptionError names `<section>.<key>`."""
    fields = {f.name: f for f in dataclasses.fields(options_type)}
    hints = typing.get_type_hints(options_type)
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(sorted(fields)) or "none"
            raise OptionError(f"{section}.{key}", f"is not an option{hint}; known: {known}")
    for name, field in fields.items():
        required = (
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        )
        if required and name not in raw:
            raise OptionError(f"{section}.{name}", "is required")
    values = {key: _checked(f"{section}.{key}", hints[key], value) for key, value in raw.items()}
    try:
        return options_type(**values)
    except OptionError as error:
        key = error.key if error.key.startswith(section) else f"{section}.{error.key}"
        raise OptionError(key, error.message) from None


def masked(options: DriverOptions) -> dict[str, Any]:
    """The options as a table for printing, secrets replaced by `***`."""
    shown: dict[str, Any] = {}
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        if field.metadata.get(_SECRET) and value:
            value = "***"
        if value is not None:  # TOML has no null: an unset option is simply absent
            shown[field.name] = value
    return shown


def _checked(key: str, hint: Any, value: Any) -> Any:
    allowed = _types(hint)
    if bool in allowed and type(value) is bool:
        return value
    if int in allowed and type(value) is int:
        return value
    if float in allowed and type(value) in (int, float):
        return float(value)
    if str in allowed and isinstance(value, str):
        return value
    names = " or ".join(_NAMES.get(t, t.__name__) for t in allowed if t is not type(None))
    raise OptionError(key, f"must be {names}, not {value!r}")


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _types(hint: Any) -> tuple[type[Any], ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)
