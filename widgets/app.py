"""The Workbench: every panel in one app, a recipe round trip, and Train kept off until the settings work."""

from __future__ import annotations

import html
import re
import shlex
from pathlib import Path

import ipywidgets as w
from traitlets import TraitError

from widgets.adapter_panel import AdapterPanel
from widgets.chat_panel import ChatPanel
from widgets.dataset_panel import DatasetPanel
from widgets.device_panel import DevicePanel
from widgets.form import DEFAULTS, changes, note_html, recipe_text, shown_path, visible, yaml_value
from widgets.method_panel import MethodPanel
from widgets.model_panel import ModelPanel
from widgets.run_panel import RunPanel
from widgets.runs_panel import RunsPanel
from workbench import config as config_mod
from workbench import launch

TITLES = ["Model", "Dataset", "Adapter", "Method", "Device", "Run", "Runs", "Chat"]


class Workbench(w.VBox):
    """`Workbench()` or `Workbench("recipes/quickstart.yaml", ["train.max_steps=50"])`.

    `root` is where runs go (output.root; else the recipe's). `detect_device` looks for the device in a
    child process as the app opens (torch stays out of the kernel). `runner` swaps how runs start (tests).
    """

    def __init__(self, recipe=None, overrides=(), root: str | None = None, runner=None, detect_device=True):
        self.root, self._loading = root, False
        self.base = self._rooted(DEFAULTS)  # keys no panel shows (eval, profile...) come from here
        self.recipe, self.loaded = None, DEFAULTS  # the command line is measured against these
        self.model, self.dataset = ModelPanel(), DatasetPanel()
        self.adapter, self.method, self.device = AdapterPanel(), MethodPanel(self.base), DevicePanel()
        self.settings = [self.model, self.dataset, self.adapter, self.method, self.device]
        self.run = RunPanel(config=self.config, runner=runner, device_kind=self._device_for_run)
        self.runs, self.chat = RunsPanel(shown_path(self.base.output.root)), ChatPanel(self.base.output.root)
        self.recipe_note, self.problems, self.command = w.HTML(), w.HTML(), w.HTML()
        self.problems.add_class("wb-problems")
        self.command.add_class("wb-command")
        tabs = w.Tab(children=[*self.settings, self.run, self.runs, self.chat], titles=TITLES)
        super().__init__([self._recipe_bar(), self.recipe_note, self.command, tabs, self.problems])
        self.add_class("wb-app")
        for panel in self.settings:
            panel.on_change(self.refresh)
        self.device.on_detected(lambda _found: self.refresh())
        self.run.ended.append(
            lambda _state: (self.runs.refresh(), self.chat.refresh(), self.method.refresh_runs())
        )
        if recipe:
            self.load(recipe, overrides)
        self.refresh()
        if live := launch.live(self.base.output.root):  # a reloaded page shows the run still training
            self.run.attach(live)
        if detect_device:
            self.device.detect()

    def _recipe_bar(self) -> w.HBox:
        self.recipe_path = w.Text(placeholder="recipes/my_experiment.yaml", description="Recipe")
        self.overwrite = w.Checkbox(description="overwrite", indent=False, layout=w.Layout(width="100px"))
        load, save = (
            w.Button(description="Load", icon="folder-open"),
            w.Button(description="Save", icon="save"),
        )
        load.on_click(lambda _: self.load(self.recipe_path.value))
        save.on_click(lambda _: self.save(self.recipe_path.value, self.overwrite.value))
        return w.HBox([self.recipe_path, load, save, self.overwrite])

    # --- the config the panels make ---------------------------------------------------------------------

    def config(self) -> config_mod.RunConfig:
        """The RunConfig the panels show, through the strict override function the CLI uses."""
        overrides = {}
        for panel in self.settings:
            overrides.update(panel.overrides())
        return config_mod.override(self.base, overrides)

    def refresh(self) -> None:
        """Pass each panel what it depends on, collect problems, and keep Train off until there are none."""
        if self._loading:
            return
        if self.dataset.method != self.method.name.value:
            self.dataset.set_method(self.method.name.value)
        self._pass_device()
        for panel in self.settings:
            for f in panel.fields.values():
                f.flag(None)  # the config's own errors are found afresh below, so a fixed value clears
        problems, cfg = [p for panel in self.settings for p in panel.problems()], None
        if not problems:
            try:
                cfg = self.config()
            except config_mod.ConfigError as error:
                problems.append(self._flag(error))
        self.problems.value = "".join(note_html(p, "#b00020", indent=False) for p in problems)
        self.run.block(problems)
        self.command.value = self._command(cfg)

    def _command(self, cfg: config_mod.RunConfig | None) -> str:
        """The same run from a terminal: the recipe loaded and what the panels changed from it."""
        if cfg is None:
            line = "(fix the problems below first)"
        else:
            changed = [shlex.quote(f"{k}={yaml_value(v)}") for k, v in changes(cfg, self.loaded).items()]
            line = " ".join(
                ["workbench train", *([shown_path(self.recipe)] if self.recipe else []), *changed]
            )
        return f'<div style="font-size:90%">same run from a terminal: <code>{html.escape(line)}</code></div>'

    def _flag(self, error: config_mod.ConfigError) -> str:
        """Put a config error under the field whose key it names; returns the line for the problem list."""
        text = str(error).replace(" in the overrides", "")  # the panels are the overrides here
        for panel in self.settings:
            for key, f in panel.fields.items():
                if visible(f) and re.search(rf"'{re.escape(key)}[.']", text):
                    f.flag(text)
                    return f"{panel.title} / {f.label}: {text}"
        return str(error)

    def _pass_device(self) -> None:
        kind = self.device.kind()
        if self.adapter.device_kind != kind:
            self.adapter.set_device(kind)
        precision = self.device.fields["device.precision"].value
        if precision == "auto":
            precision = (self.device.detected or {}).get("precision", "bf16")
        context = {"adapter": self.adapter.type.value, "memory_gb": self.device.memory_gb(), "device": kind}
        if context | {"precision": precision} != self.model.context:
            self.model.set_context(**context, precision=precision)

    def _device_for_run(self) -> str:
        """The device type for choosing the run mode: found first if needed (an NPU runs in a subprocess)."""
        if self.device.detected is None and self.device.fields["device.type"].value == "auto":
            self.run.status.value = "finding the device…"
            self.device.detect(wait=True)
        return self.device.kind()

    def _rooted(self, cfg: config_mod.RunConfig) -> config_mod.RunConfig:
        return config_mod.override(cfg, {"output.root": self.root}) if self.root else cfg

    # --- recipes ----------------------------------------------------------------------------------------

    def load(self, path: str | Path, overrides=()) -> None:
        """Fill the panels from a recipe; a broken recipe is reported here and changes nothing."""
        try:
            plain = config_mod.load(path)
            cfg = self._rooted(config_mod.override(plain, overrides) if overrides else plain)
        except config_mod.ConfigError as error:
            self.recipe_note.value = note_html(f"✖ {error}", "#b00020", indent=False)
            return
        before, self.base, self._loading = self.base, cfg, True
        try:
            for panel in self.settings:
                panel.show_config(cfg)
        except (TraitError, ValueError) as error:  # a value no panel can show: put the old config back
            self.base = before
            for panel in self.settings:
                panel.show_config(before)
            self.recipe_note.value = note_html(f"✖ {shown_path(path)}: {error}", "#b00020", indent=False)
            return
        finally:
            self._loading = False
        self.recipe, self.loaded = path, plain
        self.recipe_path.value = shown_path(path)
        self.runs.root.value, self.chat.root = shown_path(cfg.output.root), Path(cfg.output.root)
        self.chat.refresh()
        self.refresh()
        self.recipe_note.value = note_html(f"loaded {shown_path(path)}", "#2e7d32", indent=False)

    def save(self, path: str | Path, overwrite: bool = False) -> Path | None:
        """Write what the panels change from the defaults as a YAML recipe; never replaces a file unless asked."""
        target = Path(str(path).strip() or "recipe.yaml")
        try:
            cfg = self.config()
        except config_mod.ConfigError as error:
            self.recipe_note.value = note_html(f"✖ not saved: {error}", "#b00020", indent=False)
            return None
        if target.exists() and not overwrite:
            why = f"✖ {shown_path(target)} exists: tick overwrite or pick a new name"
            self.recipe_note.value = note_html(why, "#b00020", indent=False)
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(recipe_text(cfg, shown_path(target)), encoding="utf-8")
        self.recipe, self.loaded = target, config_mod.load(target)  # the command now starts from it
        self.refresh()
        self.recipe_note.value = note_html(f"saved {shown_path(target)}", "#2e7d32", indent=False)
        return target
