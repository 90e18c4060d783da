"""`--describe` descriptors, derived from a command's real click parameters.

A descriptor is `{"name", "description", "input_schema", "output_schema"}` with JSON Schema
(draft 2020-12) for both schemas. The input schema is built from the parameters the command
actually parses, so it cannot drift from the CLI; the output schema is attached to the
command function with `@output_schema(...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ibdesk.config import SECRET_FIELDS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_OUTPUT_ATTR = "__ibdesk_output_schema__"
_HIDDEN_PARAMS = frozenset({"describe", "help"})

F = TypeVar("F", bound=Callable[..., Any])

TEXT_OUTPUT: dict[str, Any] = {
    "type": "string",
    "description": "human-readable text on the terminal",
}


def output_schema(schema: dict[str, Any]) -> Callable[[F], F]:
    """Attach the JSON Schema of what a command prints or writes."""

    def mark(func: F) -> F:
        setattr(func, _OUTPUT_ATTR, schema)
        return func

    return mark


def _type_schema(param: click.Parameter) -> dict[str, Any]:
    ptype = param.type
    schema: dict[str, Any]
    if isinstance(ptype, click.Choice):
        schema = {"type": "string", "enum": [str(c) for c in ptype.choices]}
    elif isinstance(ptype, click.types.IntParamType):
        schema = {"type": "integer"}
        if isinstance(ptype, click.IntRange):
            if ptype.min is not None:
                schema["minimum"] = ptype.min
            if ptype.max is not None:
                schema["maximum"] = ptype.max
    elif isinstance(ptype, click.types.FloatParamType):
        schema = {"type": "number"}
    elif isinstance(ptype, click.types.BoolParamType) or (
        isinstance(param, click.Option) and param.is_flag
    ):
        schema = {"type": "boolean"}
    elif isinstance(ptype, click.Path | click.File):
        schema = {"type": "string", "format": "path"}
    elif isinstance(ptype, click.DateTime):
        schema = {"type": "string", "format": "date-time"}
    else:
        schema = {"type": "string"}
    if param.multiple or (param.nargs not in (1, None)):
        return {"type": "array", "items": schema}
    return schema


def _json_default(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_json_default(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def is_secret_param(param: click.Parameter) -> bool:
    name = (param.name or "").lower()
    return name in SECRET_FIELDS or "password" in name or "api_key" in name


def visible_params(command: click.Command) -> list[click.Parameter]:
    """The parameters a user can pass, without `--describe` and `--help`."""
    return [
        p
        for p in command.params
        if p.name not in _HIDDEN_PARAMS and not getattr(p, "hidden", False)
    ]


def input_schema(command: click.Command) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in visible_params(command):
        name = param.name or ""
        prop = _type_schema(param)
        help_text = getattr(param, "help", None)
        prop["description"] = (help_text or name.replace("_", " ")).strip()
        if isinstance(param, click.Option):
            prop["x-cli-flags"] = list(param.opts) + list(param.secondary_opts)
        else:
            prop["x-cli-argument"] = True
        default = param.default
        shows_default = not param.required and not callable(default)
        if (
            shows_default
            and not is_secret_param(param)
            and (default is not None or not param.multiple)
        ):
            prop["default"] = _json_default(default)
        properties[name] = prop
        if param.required:
            required.append(name)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def describe_command(command: click.Command, name: str) -> dict[str, Any]:
    callback = command.callback
    out = getattr(callback, _OUTPUT_ATTR, None) if callback is not None else None
    out_schema = dict(out) if out is not None else dict(TEXT_OUTPUT)
    out_schema.setdefault("$schema", JSON_SCHEMA_DIALECT)
    help_text = (command.help or command.short_help or "").strip()
    description = help_text.split("\n\n")[0].replace("\n", " ").strip() or name
    return {
        "name": name,
        "description": description,
        "input_schema": input_schema(command),
        "output_schema": out_schema,
    }


def catalog(group: click.Group, prefix: str = "") -> list[dict[str, Any]]:
    """Descriptors of every leaf command under `group`, `name` being the words typed."""
    entries: list[dict[str, Any]] = []
    ctx = click.Context(group)
    for sub_name in group.list_commands(ctx):
        sub = group.get_command(ctx, sub_name)
        if sub is None or sub.hidden:
            continue
        full = f"{prefix} {sub_name}".strip()
        if isinstance(sub, click.Group):
            entries.extend(catalog(sub, full))
        else:
            entries.append(describe_command(sub, full))
    return entries


def command_name(ctx: click.Context) -> str:
    """The words typed after `ibdesk` to reach the command of `ctx`."""
    names: list[str] = []
    current: click.Context | None = ctx
    while current is not None and current.parent is not None:
        names.append(current.info_name or "")
        current = current.parent
    return " ".join(reversed(names))
