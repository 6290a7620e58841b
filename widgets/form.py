"""What every settings panel shares: labelled fields with a note line, mapped onto RunConfig keys.

A panel is a list of `Field`s, each bound to a dotted config key (`adapter.r`). `Panel.overrides()`
gives those keys with the values shown, for `workbench.override`, the same strict function the CLI
uses; `Panel.show_config(cfg)` fills the fields from a RunConfig. A problem is shown under its field
and listed by `Panel.problems()`, which the app uses to keep Train disabled until it is fixed.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from workbench import config as config_mod

LABEL = {"description_width": "170px"}
WIDTH = "560px"
DEFAULTS = config_mod.RunConfig()


class Field(w.VBox):
    """One control with its label and a note line under it (an error in red, or a hint)."""

    def __init__(self, control: w.Widget, label: str, key: str | None = None, tip: str = "", **convert):
        control.description, control.style, control.layout = label, LABEL, w.Layout(width=WIDTH)
        control.tooltip = tip or None
        self.control, self.key, self.label, self.error = control, key, label, None
        # How a shown value becomes a config value and back (e.g. "" <-> None, "a, b" <-> tuple).
        self.to_config: Callable = convert.get("to_config", lambda v: v)
        self.from_config: Callable = convert.get("from_config", lambda v: v)
        self.note = w.HTML()
        super().__init__([control, self.note])

    @property
    def value(self) -> Any:
        return self.control.value

    @value.setter
    def value(self, value: Any) -> None:
        self.control.value = value

    def show(self, error: str | None = None, hint: str | None = None) -> None:
        self.error = error
        if error:
            self.note.value = note_html(f"✖ {error}", "#b00020")
        else:
            self.note.value = note_html(hint, "#555") if hint else ""


def note_html(text: str, colour: str, indent: bool = True) -> str:
    """A coloured line; indented to sit under a field's control, or flush for app-level messages."""
    margin = "margin-left:174px;" if indent else ""
    return f'<div style="{margin}color:{colour};font-size:90%;white-space:pre-wrap">{html.escape(text)}</div>'


def none_if_blank(value: str) -> str | None:
    return value.strip() or None


def blank_if_none(value: Any) -> str:
    return "" if value is None else str(value)


def get(cfg: config_mod.RunConfig, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


class Panel(w.VBox):
    """A titled group of fields bound to config keys; subclasses add checks in `validate()`."""

    title = ""

    def __init__(self, fields: list[Field], extra: list[w.Widget] = ()):
        self.every = list(fields)
        self.fields = {f.key: f for f in fields if f.key}
        self._listeners: list[Callable[[], None]] = []
        self._filling = False  # while show_config sets many fields, check once at the end
        super().__init__([*fields, *extra])
        for f in fields:
            f.control.observe(self._changed, names="value")

    def on_change(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _changed(self, _change: Any = None) -> None:
        if self._filling:
            return
        self.validate()
        for callback in self._listeners:
            callback()

    def overrides(self) -> dict[str, Any]:
        """Dotted config keys with the values shown, for workbench.override."""
        return {key: f.to_config(f.value) for key, f in self.fields.items() if f.layout.display != "none"}

    def show_config(self, cfg: config_mod.RunConfig) -> None:
        """Fill the fields from `cfg` (a recipe loaded into the panels)."""
        self._filling = True
        try:
            for key, f in self.fields.items():
                f.value = f.from_config(get(cfg, key))
        finally:
            self._filling = False
        self._changed()

    def validate(self) -> None:
        """Show what is wrong next to each field; panels override this."""

    def problems(self) -> list[str]:
        return [f"{self.title} / {f.label}: {f.error}" for f in self.every if f.error]


def showing(field: Field, visible: bool) -> None:
    field.layout.display = None if visible else "none"
