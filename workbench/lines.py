"""How a run reads as text, the same in the CLI and the panels: progress lines and held-out effects."""

from __future__ import annotations

# A held-out figure: key -> (label, format)
FIGURES = {
    "accuracy": ("exact match", ".1%"),
    "preference_accuracy": ("preference accuracy", ".1%"),
    "margin": ("margin", ".3f"),
    "reward_mean": ("mean reward", ".3f"),
    "reward_std": ("reward std", ".3f"),
    "well_formed": ("well-formed", ".0%"),
}
EFFECTS = ("accuracy", "preference_accuracy", "reward_mean")  # summary figures shown as before -> after

# What a progress line shows of a logged record, in order
PROGRESS = (
    ("loss", "loss {:.4f}"),
    ("learning_rate", "lr {:.2e}"),
    ("reward_mean", "reward {:.3f}"),
    ("preference_accuracy", "pref acc {:.0%}"),
    ("tokens_per_second", "{:,.0f} tok/s"),
    ("memory_peak_mb", "peak memory {:,.0f} MB"),
)


def figures(result: dict) -> str:
    """A measurement's figures: "exact match 50.0%, well-formed 90%"."""
    shown = [
        f"{FIGURES[k][0]} {v:{FIGURES[k][1]}}" for k, v in result.items() if k in FIGURES and v is not None
    ]
    return ", ".join(shown)


def effects(summary: dict) -> list[str]:
    """Each held-out figure a run moved: "exact match: 0.0% -> 50.0%"."""
    shown = []
    for key in EFFECTS:
        before, after = summary.get(f"{key}_before"), summary.get(f"{key}_after")
        if before is not None and after is not None:
            label, fmt = FIGURES[key]
            shown.append(f"{label}: {before:{fmt}} -> {after:{fmt}}")
    return shown


def progress(record: dict, max_steps: int, eta: str | None = None, sep: str = "  ") -> str:
    """One readable line per log: step, ETA, loss, learning rate, the method's figures, speed, memory."""
    step = f"{record.get('step', 0):>{len(str(max_steps))}}"  # aligned, so the columns line up in a log
    parts = [f"step {step}/{max_steps}", *([f"ETA {eta}"] if eta else [])]
    parts += [fmt.format(record[key]) for key, fmt in PROGRESS if isinstance(record.get(key), int | float)]
    return sep.join(parts)
