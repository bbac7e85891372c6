"""attrs validators the value objects share: text, optional text, counts, flags.

Each names the field it checks (``attribute.name``) and the value, so a bad value raises a
:class:`~salesflow.errors.ValidationError` a person can act on.
"""

from __future__ import annotations

from typing import Any

import attrs

from salesflow.errors import InvalidTypeError, ValidationError

__all__ = ["check_bool", "check_count", "check_optional_text", "check_positive", "check_text"]


def check_text(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A non-empty string (blank text is refused)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(attribute.name, value, "a non-empty string")


def check_optional_text(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None`` or a non-empty string."""
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValidationError(attribute.name, value, "a non-empty string or None")


def check_count(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A whole number, 0 or more (``bool`` is not a number here)."""
    if type(value) is not int or value < 0:
        raise ValidationError(attribute.name, value, "a whole number, 0 or more")


def check_positive(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A whole number, 1 or more."""
    if type(value) is not int or value < 1:
        raise ValidationError(attribute.name, value, "a whole number, 1 or more")


def check_bool(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``True`` or ``False``."""
    if not isinstance(value, bool):
        raise InvalidTypeError(attribute.name, value, "True or False")
