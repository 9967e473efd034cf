"""Turn TOML and pydantic failures into one line that names the file, the key and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ValidationError


def _field_at(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[type[BaseModel], str] | None:
    """The model class and field name that `loc` points at, walking nested models."""
    current = model
    for depth, part in enumerate(loc):
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        if depth == len(loc) - 1:
            return current, str(part)
        annotation = field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        current = annotation
    return None


def _allowed_range(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    found = _field_at(model, loc)
    if found is None:
        return ""
    owner, name = found
    low = high = ""
    for rule in owner.model_fields[name].metadata:
        if isinstance(rule, Ge):
            low = f"{rule.ge} <= "
        elif isinstance(rule, Gt):
            low = f"{rule.gt} < "
        elif isinstance(rule, Le):
            high = f" <= {rule.le}"
        elif isinstance(rule, Lt):
            high = f" < {rule.lt}"
    return f" (allowed: {low}{name}{high})" if low or high else ""


def _known_keys(model: type[BaseModel], parent: tuple[Any, ...]) -> str:
    owner: type[BaseModel] | None = model
    if parent:
        found = _field_at(model, parent)
        annotation = found[0].model_fields[found[1]].annotation if found else None
        owner = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return ", ".join(owner.model_fields) if owner else ""


def describe_validation_error(error: ValidationError, model: type[BaseModel], source: Path | str) -> str:
    """All problems of one file, each naming its key, joined on one line."""
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(part) for part in loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            known = _known_keys(model, loc[:-1])
            problems.append(f"unknown key '{key}' (known keys: {known})")
        elif item["type"] == "missing":
            problems.append(f"missing key '{key}'")
        else:
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{key} = {item.get('input')!r}: {message}{_allowed_range(model, loc)}")
    return f"{source}: " + "; ".join(problems)
