"""The model panel: pick from the catalogue or the starter, or type a path / hub ID; see what it is."""

from __future__ import annotations

import dataclasses
import html
import threading

import ipywidgets as w

from widgets.form import DEFAULTS, Field, Panel, table_html
from workbench import models

ALL = "all families"


class ModelPanel(Panel):
    title = "Model"

    def __init__(self, cfg=None):
        self.family = Field(w.Dropdown(options=[ALL, *models.families()]), "Family")
        self.name = Field(
            w.Dropdown(options=_choices(ALL)),
            "Model",
            key="model.name_or_path",
            tip="the bundled starter works offline; catalogue models need `workbench download`",
        )
        self.name.control.add_class("wb-model-name")
        self.path = Field(
            w.Text(placeholder="a local folder or a hub ID (owner/name)", continuous_update=False),
            "Or a path / hub ID",
        )
        self.hub = Field(w.Dropdown(options=["huggingface", "modelscope"]), "Hub", key="model.hub")
        self.info = w.HTML()
        self.download_button = w.Button(description="Download", icon="download", disabled=True)
        self.download_button.on_click(lambda _: self.download())
        # Sizing needs the adapter, precision and device memory, which the app passes in as they change.
        self.context = {"adapter": "lora", "precision": "bf16", "memory_gb": None, "device": "unknown"}
        self.base = DEFAULTS.model  # a recipe's cache_dir and revision, which the panel does not show
        super().__init__([self.family, self.name, self.path, self.hub], [self.info, self.download_button])
        self.family.control.observe(self._filter, names="value")
        self.show_config(cfg or DEFAULTS)

    def chosen(self) -> str:
        return self.path.value.strip() or self.name.value

    def overrides(self) -> dict:
        return {"model.name_or_path": self.chosen(), "model.hub": self.hub.value}

    def show_config(self, cfg) -> None:
        name, self.base = cfg.model.name_or_path, cfg.model
        spec = models.lookup(name)
        self._filling = True
        self.family.value = ALL
        self.name.value = spec.name if spec else "starter"
        self.path.value = "" if spec else name
        self.hub.value = cfg.model.hub
        self._filling = False
        self._changed()

    def set_context(self, **context) -> None:
        self.context.update(context)
        self.validate()

    def _filter(self, change) -> None:
        current = self.name.value
        choices = _choices(change["new"])
        self.name.control.options = choices
        if current in [value for _, value in choices]:
            self.name.value = current

    def validate(self) -> None:
        name = self.chosen()
        cfg = dataclasses.replace(self.base, name_or_path=name, hub=self.hub.value)
        error = None
        if name.lower() != "starter":
            try:
                models.resolve(cfg)
            except models.ModelError as problem:
                error = str(problem)
        typed, other = (self.path, self.name) if self.path.value.strip() else (self.name, self.path)
        typed.show(error=error)
        other.show()
        facts = models.describe(cfg)
        self.download_button.disabled = facts["cached"] or facts["repo_id"] is None
        self.info.value = _facts_html(facts, self.context)

    def download(self) -> None:
        """Fetch the chosen model in the background (needs the network); the panel says how it went."""
        self.download_button.disabled = True
        self.info.value += "<p>downloading…</p>"
        threading.Thread(target=self._download, args=(self.chosen(), self.hub.value), daemon=True).start()

    def _download(self, name: str, hub: str) -> None:
        from workbench import hub as hub_mod

        try:
            path = hub_mod.download(name, hub=hub)
            self.validate()
            self.info.value += f"<p>downloaded to {html.escape(path)}</p>"
        except Exception as error:  # noqa: BLE001  (the panel shows any failure; the kernel lives on)
            self.name.show(error=f"download failed: {error}")
            self.download_button.disabled = False


def _choices(family: str) -> list[tuple[str, str]]:
    names = [n for fam, group in models.families().items() if family in (ALL, fam) for n in group]
    return [(_label(n), n) for n in names]


def _label(name: str) -> str:
    spec = models.lookup(name)
    return name if name == "starter" else f"{name} ({spec.params_b:g}B)"


def _facts_html(facts: dict, context: dict) -> str:
    rows = {
        "architecture": facts["architecture"],
        "parameters": params_text(facts["params_b"]) if facts["params_b"] else "unknown",
        "chat template": facts["chat_template"] or "none (set one before training)",
        "on this machine": "yes" if facts["cached"] else f"no: `workbench download {facts['name']}`",
        "hub ID": facts["repo_id"] or "-",
    }
    if facts["needs_remote_code"]:
        rows["remote code"] = "needs model.trust_remote_code: true (runs the repo's Python)"
    rows["memory to train"] = _fit(facts["params_b"], context)
    return table_html(rows, indent=True)


def _fit(params_b: float | None, context: dict) -> str:
    """A rough estimate (weights + gradients + optimizer state, +20%) against the device's memory."""
    if not params_b:
        return "unknown (parameter count not known)"
    precision = context["precision"] if context["precision"] in models.WEIGHT_BYTES else "bf16"
    # The estimate is linear in the size but rounded to 0.01 GB: scaled up, it keeps a small model's MB.
    need = models.estimate_memory_gb(params_b * 1000, context["adapter"], precision) / 1000
    memory = context["memory_gb"]
    if memory is None:
        return (
            f"~{gb_text(need)} with {context['adapter']} (device memory unknown: detect it on the Device tab)"
        )
    verdict = "fits" if need <= memory else "does NOT fit: try qlora/lora, a smaller model, or more devices"
    device = context["device"]
    return f"~{gb_text(need)} with {context['adapter']}, {precision}; {device} has {memory:g} GB: {verdict}"


def params_text(params_b: float) -> str:
    """955,904 parameters -> "0.96 M"; 0.5e9 -> "0.5 B" (a tenth of a unit is where the next one starts)."""
    count = params_b * 1e9
    scale, unit = next((s, u) for s, u in ((1e9, "B"), (1e6, "M"), (1e3, "K"), (1, "")) if count >= s / 10)
    return f"{_digits(count / scale)} {unit}".strip()


def gb_text(gb: float) -> str:
    """Memory in GB, or in MB under 1 GB (a starter model needs a few MB, not "~0 GB")."""
    return f"{_digits(gb)} GB" if gb >= 1 else f"{_digits(gb * 1000)} MB"


def _digits(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if x < 10 else f"{x:.3g}" if x < 1000 else f"{x:,.0f}"
