"""The adapter panel: full / freeze / LoRA / QLoRA / DoRA / GaLore and their main settings."""

from __future__ import annotations

import typing

import ipywidgets as w

from widgets.form import DEFAULTS, Field, Panel, note_html
from workbench import devices
from workbench.config import AdapterType

# Which settings each adapter type uses; the rest are hidden.
USES = {
    "adapter.r": {"lora", "qlora", "dora"},
    "adapter.lora_alpha": {"lora", "qlora", "dora"},
    "adapter.lora_dropout": {"lora", "qlora", "dora"},
    "adapter.target_modules": {"lora", "qlora", "dora", "galore"},
    "adapter.bnb_4bit_quant_type": {"qlora"},
    "adapter.freeze_trainable_layers": {"freeze"},
    "adapter.galore_rank": {"galore"},
    "adapter.galore_update_proj_gap": {"galore"},
}
ABOUT = {
    "full": "trains every weight: the most memory (weights, gradients and Adam state for all)",
    "freeze": "trains only the last blocks and the norm; the rest stays frozen",
    "lora": "trains small low-rank matrices beside the frozen weights (~1% of parameters)",
    "qlora": "LoRA over 4-bit quantised weights (bitsandbytes): the least memory",
    "dora": "LoRA that learns magnitude and direction apart; a little slower, often better",
    "galore": "full training with gradients projected to a low rank, so Adam's state is small",
}


class AdapterPanel(Panel):
    title = "Adapter"
    uses = USES

    def __init__(self, cfg=None):
        kinds = typing.get_args(AdapterType)
        self.type = Field(
            w.ToggleButtons(options=kinds, style={"button_width": "70px"}), "Adapter", key="adapter.type"
        )
        self.type.control.style = {"button_width": "70px", "description_width": "170px"}
        targets_tip = "auto (the model's projections), all-linear, or names: q_proj, v_proj"
        fields = [
            self.type,
            Field(w.IntText(), "Rank r", "adapter.r"),
            Field(
                w.IntText(), "lora_alpha", "adapter.lora_alpha", tip="the update is scaled by lora_alpha / r"
            ),
            Field(w.FloatText(step=0.05), "lora_dropout", "adapter.lora_dropout"),
            Field(
                w.Text(continuous_update=False),
                "Target modules",
                "adapter.target_modules",
                tip=targets_tip,
                to_config=_targets,
                from_config=_targets_text,
            ),
            Field(w.Dropdown(options=["nf4", "fp4"]), "4-bit type", "adapter.bnb_4bit_quant_type"),
            Field(w.IntText(), "Trainable last blocks", "adapter.freeze_trainable_layers"),
            Field(w.IntText(), "GaLore rank", "adapter.galore_rank"),
            Field(w.IntText(), "GaLore projection gap", "adapter.galore_update_proj_gap"),
        ]
        self.device_kind = "cpu"
        self.unavailable = w.HTML()
        super().__init__(fields, [self.unavailable])
        self.show_config(cfg or DEFAULTS)

    def set_device(self, kind: str) -> None:
        """The device the run will use (the Device panel calls this); disables what it cannot do."""
        self.device_kind = kind
        self.validate()

    def show_config(self, cfg) -> None:
        self.type.control.options = typing.get_args(AdapterType)  # all, so any recipe's type can be set
        super().show_config(cfg)

    def validate(self) -> None:
        kind = self.type.value
        self.show_used(kind)
        unavailable = {k: why for k in ("qlora",) if (why := devices.four_bit_problem(self.device_kind))}
        # What the device cannot do is taken off the buttons (kept while chosen, so its error shows).
        options = tuple(k for k in typing.get_args(AdapterType) if k not in unavailable or k == kind)
        if options != self.type.control.options:
            self.type.control.options = options
            self.type.control.value = kind
        self.type.control.tooltips = [ABOUT[k] for k in options]
        self.unavailable.value = "".join(
            note_html(f"{k} is unavailable on {self.device_kind}: {why}", "#8a6d00")
            for k, why in unavailable.items()
        )
        self.type.show(error=unavailable.get(kind), hint=ABOUT[kind])
        targets = self.fields["adapter.target_modules"]
        targets.show(error=None if targets.value.strip() else "give auto, all-linear, or module names")


def _targets(text: str):
    text = text.strip()
    return (
        text if text in ("auto", "all-linear", "") else tuple(t.strip() for t in text.split(",") if t.strip())
    )


def _targets_text(value) -> str:
    return value if isinstance(value, str) else ", ".join(value)
