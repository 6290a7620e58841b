"""The Workbench: every panel in one app, a recipe round trip, and Train kept off until the settings work."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as w

from widgets.adapter_panel import AdapterPanel
from widgets.dataset_panel import DatasetPanel
from widgets.device_panel import DevicePanel
from widgets.form import DEFAULTS, note_html
from widgets.method_panel import MethodPanel
from widgets.model_panel import ModelPanel
from widgets.run_panel import RunPanel
from workbench import config as config_mod


class Workbench(w.VBox):
    """`Workbench()` or `Workbench("recipes/quickstart.yaml", ["train.max_steps=50"])`.

    `root` is where runs go (output.root); `runner` swaps how runs start (tests inject a fake).
    """

    def __init__(self, recipe: str | Path | None = None, overrides=(), root: str | None = None, runner=None):
        # Keys no panel shows (eval, profile...) come from `base`: the defaults, or the loaded recipe.
        self.model, self.dataset = ModelPanel(), DatasetPanel()
        self.adapter, self.method, self.device = AdapterPanel(), MethodPanel(), DevicePanel()
        self.settings = [self.model, self.dataset, self.adapter, self.method, self.device]
        self.run = RunPanel(config=self.config, runner=runner, device_kind=self.device.kind)
        self.recipe_path = w.Text(
            placeholder="recipes/my_experiment.yaml", description="Recipe", layout=w.Layout(width="420px")
        )
        self.overwrite = w.Checkbox(description="overwrite", indent=False, layout=w.Layout(width="100px"))
        load, save = (
            w.Button(description="Load", icon="folder-open"),
            w.Button(description="Save", icon="save"),
        )
        load.on_click(lambda _: self.load(self.recipe_path.value))
        save.on_click(lambda _: self.save(self.recipe_path.value, self.overwrite.value))
        self.recipe_note, self.problems = w.HTML(), w.HTML()
        self.problems.add_class("wb-problems")
        self.tabs = w.Tab(children=[*self.settings, self.run, *self._extra_tabs(root)])
        self.tabs.titles = ["Model", "Dataset", "Adapter", "Method", "Device", "Run", *self._extra_titles]
        self.tabs.observe(self._tab_opened, names="selected_index")
        top = w.HBox([self.recipe_path, load, save, self.overwrite])
        super().__init__([top, self.recipe_note, self.tabs, self.problems])
        self.add_class("wb-app")
        for panel in self.settings:
            panel.on_change(self.refresh)
        self.device.on_detected(lambda _found: self.refresh())
        self.run.ended.append(lambda _state: (self.runs.refresh(), self.chat.refresh()))
        self.root = root
        self.base = self._rooted(DEFAULTS)
        if recipe:
            self.load(recipe, overrides)
        self.refresh()

    def _extra_tabs(self, root: str | None) -> list[w.Widget]:
        from widgets.chat_panel import ChatPanel
        from widgets.runs_panel import RunsPanel

        root = root or DEFAULTS.output.root
        self.runs, self.chat = RunsPanel(root), ChatPanel(root)
        self._extra_titles = ["Runs", "Chat"]
        return [self.runs, self.chat]

    # --- the config the panels make ---------------------------------------------------------------------

    def config(self) -> config_mod.RunConfig:
        """The RunConfig the panels show, through the strict override function the CLI uses."""
        overrides = {}
        for panel in self.settings:
            overrides.update(panel.overrides())
        return config_mod.override(self.base, overrides)

    def refresh(self) -> None:
        """Pass each panel what it depends on, collect problems, and keep Train off until there are none."""
        if self.dataset.method != self.method.name.value:
            self.dataset.set_method(self.method.name.value)
        self._pass_device()
        problems = [p for panel in self.settings for p in panel.problems()]
        if not problems:
            try:
                self.config()
            except config_mod.ConfigError as error:
                problems.append(str(error))
        self.problems.value = "".join(note_html(p, "#b00020", indent=False) for p in problems)
        self.run.block(problems)

    def _pass_device(self) -> None:
        kind = self.device.kind()
        if self.adapter.device_kind != kind:
            self.adapter.set_device(kind)
        precision = self.device.fields["device.precision"].value
        if precision == "auto":
            precision = (self.device.detected or {}).get("precision", "bf16")
        context = {
            "adapter": self.adapter.type.value,
            "memory_gb": self.device.memory_gb(),
            "device": kind,
            "precision": precision,
        }
        if context != self.model.context:
            self.model.set_context(**context)

    def _rooted(self, cfg: config_mod.RunConfig) -> config_mod.RunConfig:
        return config_mod.override(cfg, {"output.root": self.root}) if self.root else cfg

    def _tab_opened(self, change) -> None:
        if self.tabs.children[change["new"]] is self.device and self.device.detected is None:
            self.device.detect()  # on first look, so the app itself opens without starting torch

    # --- recipes ----------------------------------------------------------------------------------------

    def load(self, path: str | Path, overrides=()) -> None:
        """Fill the panels from a recipe; a broken recipe is reported here and changes nothing."""
        try:
            cfg = config_mod.load(path, overrides)
        except config_mod.ConfigError as error:
            self.recipe_note.value = note_html(f"✖ {error}", "#b00020", indent=False)
            return
        self.base = self._rooted(cfg)
        self.recipe_path.value = str(path)
        for panel in self.settings:
            panel.show_config(cfg)
        self.refresh()
        self.recipe_note.value = note_html(f"loaded {path}", "#2e7d32", indent=False)

    def save(self, path: str | Path, overwrite: bool = False) -> Path | None:
        """Write the panels' config as a YAML recipe; never replaces a file unless asked to."""
        target = Path(str(path).strip() or "recipe.yaml")
        try:
            cfg = self.config()
        except config_mod.ConfigError as error:
            self.recipe_note.value = note_html(f"✖ not saved: {error}", "#b00020", indent=False)
            return None
        if target.exists() and not overwrite:
            self.recipe_note.value = note_html(
                f"✖ {target} exists: tick overwrite or pick a new name", "#b00020", indent=False
            )
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        header = f"# saved from the Workbench panels\n#   workbench train {target}\n"
        target.write_text(header + config_mod.dump(cfg), encoding="utf-8")
        self.recipe_note.value = note_html(f"saved {target}", "#2e7d32", indent=False)
        return target
