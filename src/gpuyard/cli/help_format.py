"""Help screens in the conventions users know from other CLIs (`--cpu NUMBER`, `IMAGE`,
flags without a type), instead of the Python annotations recent Typer versions print
(`<float>`, `<list[str]>`, `{image}`, `<bool>` after every flag).

Typer has no setting for this, so its three display methods are wrapped, once, when the CLI
is imported; on a Typer without them nothing changes (the help is only less tidy)."""

from __future__ import annotations

from typing import Any

from typer import core as typer_core

#: Python type names and what a help screen says instead.
_TYPE_WORDS = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "NUMBER",
    "datetime": "DATETIME",
    "Path": "PATH",
    "file": "FILE",
    "directory": "DIRECTORY",
}


def conventional_type(label: str | None) -> str | None:
    """`<float>` -> NUMBER, `<list[str]>` -> TEXT (the option repeats), `<a|b>` -> a|b,
    `<bool>` -> nothing."""
    if not label:
        return label
    inner = label[1:-1] if label.startswith("<") and label.endswith(">") else label
    if inner.startswith("list[") and inner.endswith("]"):
        inner = inner[5:-1]
    if inner == "bool":
        return None
    if "|" in inner:
        return inner  # the choices themselves
    return _TYPE_WORDS.get(inner, inner.upper())


def use_conventional_help() -> None:
    """Wrap Typer's display methods (idempotent)."""
    parameter: Any = getattr(typer_core, "_TyperParameter", None)
    option: Any = getattr(typer_core, "TyperOption", None)
    argument: Any = getattr(typer_core, "TyperArgument", None)
    if parameter is None or getattr(parameter, "_gpuyard_help", False):
        return
    original_type = getattr(parameter, "display_type", None)
    if original_type is not None:

        def display_type(self: Any, ctx: Any) -> str | None:
            if getattr(self, "is_flag", False):
                return None
            return conventional_type(original_type(self, ctx))

        parameter.display_type = display_type
    if option is not None and hasattr(option, "display_type_rich"):
        original_rich = option.display_type_rich

        def display_type_rich(self: Any, ctx: Any) -> str | None:
            if getattr(self, "is_flag", False):
                return None
            shown = original_rich(self, ctx)
            return None if shown in (None, "None", "None...") else shown

        option.display_type_rich = display_type_rich
    if argument is not None and hasattr(argument, "_usage_display_name"):

        def usage_display_name(self: Any) -> str:
            name = str(self.display_name_raw).upper()
            name = name if self.required else f"[{name}]"
            return f"{name}..." if self.nargs != 1 else name

        def rich_display_name(self: Any) -> str:
            name = str(self.display_name_raw).upper()
            return f"{name}..." if self.metavar is None and self.nargs != 1 else name

        argument._usage_display_name = usage_display_name
        argument._rich_display_name = rich_display_name
    parameter._gpuyard_help = True
