"""What every settings panel shares: labelled fields with a note line, mapped onto RunConfig keys.

A panel is a list of `Field`s, each bound to a dotted config key (`adapter.r`). `Panel.overrides()`
gives those keys with the values shown, for `workbench.override`, the same strict function the CLI
uses; `Panel.show_config(cfg)` fills the fields from a RunConfig. A problem is shown under its field
and listed by `Panel.problems()`, which the app uses to keep Train disabled until it is fixed.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w
import yaml

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
        # Three sources of an error, each recomputed on its own: the panel's validate() (via show), the
        # field's own check, and the whole config's check (flag); the note shows the first there is.
        self._shown: tuple[str | None, str | None] = (None, None)
        self.checked: str | None = None
        self.flagged: str | None = None
        # How a shown value becomes a config value and back (e.g. "" <-> None, "a, b" <-> tuple).
        self.to_config: Callable = convert.get("to_config", lambda v: v)
        self.from_config: Callable = convert.get("from_config", lambda v: v)
        self.check: Callable | None = convert.get("check")  # value -> error or None, run after validate()
        self.note = w.HTML()
        super().__init__([control, self.note])

    @property
    def value(self) -> Any:
        return self.control.value

    @value.setter
    def value(self, value: Any) -> None:
        self.control.value = value

    def show(self, error: str | None = None, hint: str | None = None) -> None:
        self._shown = (error, hint)
        self.render()

    def flag(self, error: str | None) -> None:
        """An error the whole config found for this key (a range the config layer checks)."""
        self.flagged = error
        self.render()

    def render(self) -> None:
        error, hint = self._shown
        self.error = error or self.checked or self.flagged
        if self.error:
            self.note.value = note_html(f"✖ {self.error}", "#b00020")
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


def text(label: str, key: str, tip: str = "", placeholder: str = "") -> Field:
    """An optional text setting: an empty box means None."""
    box = w.Text(continuous_update=False, placeholder=placeholder)
    return Field(box, label, key, tip, to_config=none_if_blank, from_config=blank_if_none)


def number(label: str, key: str, tip: str = "", placeholder: str = "") -> Field:
    """A float typed as text, so 1e-4 reads as in a recipe; an empty box means None (the default)."""
    box = w.Text(continuous_update=False, placeholder=placeholder)
    return Field(box, label, key, tip, to_config=parse_number, from_config=number_text, check=number_problem)


def parse_number(text: str) -> float | str | None:
    """A float, None for blank, or the text itself, which the strict config check then names."""
    text = str(text).strip()
    try:
        return float(text) if text else None
    except ValueError:
        return text


def number_text(value: float | None) -> str:
    return "" if value is None else repr(value)


def number_problem(text: str) -> str | None:
    value = parse_number(text)
    return f"'{text}' is not a number" if isinstance(value, str) or value != value else None  # NaN too


def get(cfg: config_mod.RunConfig, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


class Panel(w.VBox):
    """A titled group of fields bound to config keys; subclasses add checks in `validate()`.

    `uses` maps a field's key to the choices (adapter types, methods) that read it; `show_used(choice)`
    hides the others.
    """

    title = ""
    uses: dict[str, set[str]] = {}

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
        for f in self.every:
            if f.check is not None:  # recomputed each time, so a fixed value clears its error
                f.checked = f.check(f.value) if visible(f) else None
                f.render()
        for callback in self._listeners:
            callback()

    def overrides(self) -> dict[str, Any]:
        """Dotted config keys with the values shown, for workbench.override."""
        return {key: f.to_config(f.value) for key, f in self.fields.items() if visible(f)}

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
        """Errors of the fields shown (a hidden field is not part of the config)."""
        return [f"{self.title} / {f.label}: {f.error}" for f in self.every if f.error and visible(f)]

    def show_used(self, choice: str) -> None:
        for key, choices in self.uses.items():
            showing(self.fields[key], choice in choices)


def visible(field: Field) -> bool:
    return field.layout.display != "none"


def showing(field: Field, shown: bool) -> None:
    field.layout.display = None if shown else "none"
    if not shown:  # a hidden field's old error must not keep Train disabled
        field.checked = field.flagged = None
        field.show()


def table_html(rows: dict[str, Any], indent: bool = False) -> str:
    """A two-column table of label -> value, escaped."""
    cells = "".join(
        f"<tr><td><b>{html.escape(str(k))}</b></td><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows.items()
    )
    margin = ' style="margin-left:174px"' if indent else ""
    return f"<table{margin}>{cells}</table>"


def changes(cfg: config_mod.RunConfig, base: config_mod.RunConfig) -> dict[str, Any]:
    """Dotted keys whose value in `cfg` differs from `base`, in config order (sections are one deep)."""
    out = {}
    for section in dataclasses.fields(cfg):
        new, old = getattr(cfg, section.name), getattr(base, section.name)
        for f in dataclasses.fields(new):
            if getattr(new, f.name) != getattr(old, f.name):
                out[f"{section.name}.{f.name}"] = getattr(new, f.name)
    return out


def plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def yaml_value(value: Any) -> str:
    """A value as a `key=value` override writes it (the CLI parses it as YAML)."""
    return yaml.safe_dump(plain(value), default_flow_style=True, width=10**6).removesuffix("\n...\n").strip()


def recipe_text(cfg: config_mod.RunConfig, path: str) -> str:
    """A recipe as the shipped ones are: a header with the command, then only what differs from defaults."""
    nested: dict[str, dict] = {}
    for dotted, value in changes(cfg, DEFAULTS).items():
        section, key = dotted.split(".")
        nested.setdefault(section, {})[key] = plain(value)
    body = yaml.safe_dump(nested, sort_keys=False) if nested else ""
    return f"# Saved from the Workbench panels; only what differs from the defaults.\n#   workbench train {path}\n{body}"


def shown_path(path: str | Path) -> str:
    """A path as the app shows it: relative to the current folder when under it (no machine paths)."""
    resolved = Path(path).expanduser()
    try:
        return str(resolved.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
