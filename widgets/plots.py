"""Training curves drawn with matplotlib into an Image widget.

The picture is the widget's value (PNG bytes), so it survives a browser reload and updates without
flicker. It is drawn at twice its on-screen size, so it stays sharp on high-density screens, and not
before a curve has two points (a lone dot says nothing). Which curves: the run's MethodSpec.curves.
Redraws are throttled so that all drawing stays within `budget` of the time since the first
draw: 1% by default, half the 2% the issue allows, since progress updates cost a little too. A draw
that took 80 ms allows the next one 8 s later. One Figure is reused; nothing grows per update except
the points themselves.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import ipywidgets as w

from workbench import config as config_mod
from workbench import launch, methods, runs

TITLES = {"learning_rate": "learning rate", "reward_mean": "reward", "margin": "reward margin",
          "kl": "KL to the reference", "reward_chosen": "reward chosen / rejected"}  # fmt: skip
PAIRED = {"reward_chosen": "reward_rejected"}  # drawn on the same axis
# Every curve some method logs: shared name -> axis title, in the methods' order (loss first).
CURVES = {
    key: TITLES.get(key, key.replace("_", " "))
    for name in methods.AVAILABLE
    for key in methods.spec(name).curves
    if key not in PAIRED.values()
}
MAX_AXES, PER_ROW = 6, 3
CSS_DPI = 100  # on-screen pixels per inch of figure; the PNG has twice as many


class Throttle:
    """Allows a redraw while all drawing so far stays within `budget` of the time since the first one.

    The first draw is always allowed (the plot should appear at once); its cost then delays the next ones.
    """

    def __init__(self, budget: float = 0.02, min_interval: float = 0.5):
        self.budget, self.min_interval = budget, min_interval
        self.first: float | None = None
        self.last, self.cost, self.spent = -float("inf"), 0.0, 0.0

    def due(self, now: float) -> bool:
        if self.first is None:
            return True
        affordable = self.spent + self.cost <= self.budget * (now - self.first)
        return affordable and now - self.last >= self.min_interval

    def record(self, started: float, finished: float) -> None:
        self.first = started if self.first is None else self.first
        self.last, self.cost = finished, finished - started
        self.spent += self.cost


class LossPlot(w.VBox):
    """Curves of one run: `add(record)` per log, `LossPlot(run_dir)` to read one, `follow=True` to watch it
    (a run started from the CLI or another kernel) until it ends."""

    def __init__(
        self,
        run_dir: str | Path | None = None,
        budget: float = 0.01,
        follow: bool = False,
        method: str | None = None,
    ):
        # Hidden until there is a picture: an empty Image shows a broken-image icon.
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%", display="none"))
        self.image.add_class("wb-plot")
        self.points: dict[str, list[tuple[float, float]]] = {}
        self.throttle = Throttle(budget)
        self.method = method  # whose curves, in its order; None: any method's
        self._figure = None
        super().__init__([self.image])
        self.following: threading.Thread | None = None
        if run_dir is not None and follow:
            self.following = threading.Thread(target=self._follow, args=(Path(run_dir),), daemon=True)
            self.following.start()
        elif run_dir is not None:
            self.load(run_dir)

    def clear(self) -> None:
        self.points = {}
        self.throttle = Throttle(self.throttle.budget, self.throttle.min_interval)  # a new run's own budget
        self.image.value = b""
        self.image.layout.display = "none"

    def load(self, run_dir: str | Path) -> None:
        """Show a run's metrics.jsonl as it is on disk now."""
        self.clear()
        self.method = self.method or _method_of(Path(run_dir))
        for record in runs.read_jsonl(Path(run_dir) / "metrics.jsonl"):
            self._keep(record)
        self.draw()

    def _follow(self, run_dir: Path, every: float = 1.0) -> None:
        self.method = self.method or _method_of(run_dir)
        for record in launch.attach(run_dir).follow(every):  # until whoever trains it has ended
            if "event" not in record:
                self.add(record)
        self.draw()

    def add(self, record: dict) -> None:
        """One log record; redraws when a curve has two points and the throttle allows."""
        self._keep(record)
        if max(map(len, self.points.values()), default=0) > 1 and self.throttle.due(time.perf_counter()):
            self.draw()

    def _keep(self, record: dict) -> None:
        step = record.get("step")
        for key in (*CURVES, *PAIRED.values()):
            if isinstance(record.get(key), int | float) and step is not None:
                self.points.setdefault(key, []).append((step, float(record[key])))

    def warm(self) -> None:
        """Load matplotlib and its fonts now (the first draw costs most), e.g. before a timed run."""
        _to_png(self._reset_figure(1))

    def draw(self) -> None:
        started = time.perf_counter()
        if self._keys():
            self.image.value = self.png()
            self.image.layout.display = None
            self.image.layout.width = f"{round(self._figure.get_figwidth() * CSS_DPI)}px"
        self.throttle.record(started, time.perf_counter())

    def _keys(self) -> list[str]:
        order = methods.spec(self.method).curves if self.method else CURVES
        return [key for key in order if key in self.points and key not in PAIRED.values()][:MAX_AXES]

    def png(self) -> bytes:
        keys = self._keys()
        figure = self._reset_figure(len(keys))
        for axis, key in zip(figure.axes, keys, strict=True):
            _curve(axis, self.points[key], key)
            if key in PAIRED and PAIRED[key] in self.points:
                _curve(axis, self.points[PAIRED[key]], PAIRED[key])
                axis.legend(fontsize=7)
            axis.set_title(CURVES.get(key, key), fontsize=9)
            _step_axis(axis)
        return _to_png(figure)

    def _reset_figure(self, n: int):
        from matplotlib.figure import Figure

        if self._figure is None:
            self._figure = Figure()
        self._figure.clear()
        columns, rows = min(max(n, 1), PER_ROW), -(-max(n, 1) // PER_ROW)
        self._figure.set_size_inches(3.0 * columns, 2.4 * rows)
        for i in range(n):
            self._figure.add_subplot(rows, columns, i + 1)
        # Fixed margins: a constrained layout would double the cost of every draw.
        self._figure.subplots_adjust(left=0.25 / columns, right=0.98, bottom=0.2 / rows, top=1 - 0.12 / rows,
                                     wspace=0.35, hspace=0.6)  # fmt: skip
        return self._figure


def _curve(axis, points: list[tuple[float, float]], label: str) -> None:
    steps, values = zip(*points, strict=True)
    axis.plot(steps, values, marker="." if len(points) < 20 else None, label=label.replace("_", " "))
    axis.set_xlabel("step", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.grid(alpha=0.3)


def _step_axis(axis) -> None:
    """Whole steps on the x axis; one step alone is shown from 0, not zoomed to 9.6-10.4."""
    from matplotlib.ticker import MaxNLocator

    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    low, high = axis.dataLim.intervalx
    if low == high:
        axis.set_xlim(0, high + 1)


def _to_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=2 * CSS_DPI)
    return buffer.getvalue()


def _method_of(run_dir: Path) -> str | None:
    try:
        return config_mod.load(run_dir / "resolved.yaml").method.name
    except config_mod.ConfigError:  # not written yet, or not a run
        return None


def overlay(curves: dict[str, list[dict]], metric: str) -> bytes:
    """One plot of `metric` for several runs (label -> metric records), e.g. DPO vs SimPO vs ORPO."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 3.2), layout="constrained")  # drawn once: the better layout is worth it
    axis = figure.subplots()
    for label, records in curves.items():
        points = [(r["step"], r[metric]) for r in records if isinstance(r.get(metric), int | float)]
        if points:
            _curve(axis, points, label)
    axis.set_title(CURVES.get(metric, metric.replace("_", " ")), fontsize=9)
    axis.legend(fontsize=7)
    _step_axis(axis)
    return _to_png(figure)
