"""The run panel: Train, Stop, Resume; progress with ETA, speed and memory; live curves; the final summary.

Runs start through the engine's run handle (workbench.launch) and are shown by following their run
directory, in a thread of this kernel or a child process alike; the panel holds only UI code.
"""

from __future__ import annotations

import base64
import html
import threading
from collections.abc import Callable
from pathlib import Path

import ipywidgets as w

from widgets.form import note_html, table_html
from widgets.plots import LossPlot
from widgets.profile_view import ProfileView
from workbench import config as config_mod
from workbench import launch, lines, runs
from workbench.errors import describe

MODES = [("auto", "auto"), ("in this kernel", "kernel"), ("in a subprocess", "subprocess")]
UNMEASURED = {"stopped": "not measured: a stopped run skips it (Resume finishes and measures)"}
KERNEL_PLOT_BUDGET, SUBPROCESS_PLOT_BUDGET = 0.01, 0.05  # share of the run's time spent drawing
LAUNCH_MODES = {"kernel": "thread", "subprocess": "subprocess"}  # the panel's words -> the engine's


class RunPanel(w.VBox):
    """Runs `cfg` (or what `config()` returns: the app's panels) and shows it live."""

    def __init__(
        self,
        cfg=None,
        config: Callable | None = None,
        runner: Callable | None = None,
        device_kind: Callable[[], str] = lambda: "cpu",
    ):
        """`runner(cfg, mode, resume=, recipe=)` returns a run handle; workbench.launch.start by default."""
        self.config = config or (lambda: cfg)
        self.runner, self.device_kind = runner or launch.start, device_kind
        self.mode = w.Dropdown(options=MODES, description="Run", style={"description_width": "40px"})
        self.train_button = _button("Train", "play", "success", "wb-train", lambda _: self.train())
        self.stop_button = _button("Stop", "stop", "danger", "wb-stop", lambda _: self.stop())
        self.resume_button = _button(
            "Resume", "step-forward", "", "wb-resume", lambda _: self.train(resume=True)
        )
        self.progress = w.IntProgress(min=0, max=1, layout=w.Layout(width="560px"))
        self.progress.add_class("wb-progress")
        self.status = w.HTML("ready")
        self.status.add_class("wb-status")
        self.plot = LossPlot()
        self.summary = w.HTML()
        self.profile_box = w.Checkbox(description="profile a few steps (profile.enabled)", indent=False)
        self.where = ProfileView()  # where the time went: filled when a run ends
        self.console_log = w.HTML()  # the run's console.log, last lines
        self.handle, self.run_dir, self.state, self.problems = None, None, "ready", []
        self.watcher: threading.Thread | None = None
        self.how = "run"  # how the run was started, and why, for the status line
        self.ended: list[Callable[[str], None]] = []  # told the final state (the app refreshes Runs and Chat)
        self._first: tuple[int, float] | None = None  # (step, elapsed) of the first log, for the ETA
        buttons = w.HBox(
            [self.mode, self.train_button, self.stop_button, self.resume_button, self.profile_box]
        )
        where = w.Accordion([self.where, self.console_log], titles=["Where the time went", "Log"])
        super().__init__([buttons, self.progress, self.status, self.plot, self.summary, where])
        self._buttons()

    # --- actions (buttons call these; so can code) -----------------------------------------------------

    def train(self, resume: bool = False) -> None:
        """Start a run (or resume the last one) with the current config; a problem ends it as failed."""
        if self.running or self.problems:
            return
        self.state, self._first = "starting", None  # first, so a second click does nothing
        self._buttons()
        if not resume:
            self.run_dir = None  # a new run must never offer to resume the previous one
        try:
            cfg, recipe = self._config(resume)
            if self.profile_box.value and not cfg.profile.enabled:
                cfg = config_mod.override(cfg, {"profile.enabled": True})
            mode, why = (
                (LAUNCH_MODES[self.mode.value], "")
                if self.mode.value != "auto"
                else launch.choose_mode(cfg, self.device_kind())
            )
            self.how = f"{mode} run{f' ({why})' if why else ''}"
            self._clear()
            self.plot.method = cfg.method.name  # that method's curves, in its order
            # Drawing shares the CPU with a run in this kernel: 1% of its time. A child process trains
            # elsewhere, so the curves may keep up with the status line (5%).
            self.plot.throttle.budget = SUBPROCESS_PLOT_BUDGET if mode == "subprocess" else KERNEL_PLOT_BUDGET
            self._follow(self.runner(cfg, mode, resume=resume, recipe=recipe))
        except Exception as error:  # noqa: BLE001  (a run that cannot start says why, here)
            self._end("failed", describe(error))

    def attach(self, run_dir) -> None:
        """Show a run that is already training (started by the CLI, another kernel, or before a reload)."""
        if not self.running:
            self.state, self.how = "starting", "attached"
            self._clear()
            self._follow(launch.attach(run_dir))

    def _follow(self, handle) -> None:
        self.handle = handle
        self._started(handle.run_dir)
        self.watcher = threading.Thread(target=self._watch, name="workbench-follow", daemon=True)
        self.watcher.start()

    def _watch(self) -> None:
        """Everything the run directory says, until the run ends (a thread: the kernel stays free)."""
        try:
            for record in self.handle.follow():
                if "event" in record:
                    self._event(record)
                else:
                    self._logged(record)
            status, message = self.handle.wait(), self.handle.error
        except Exception as error:  # noqa: BLE001  (whatever happens here, the panel must hear the end)
            status, message = "failed", describe(error)
        self._end(status, message)

    def _clear(self) -> None:
        self.plot.clear()
        self.plot.warm()  # matplotlib loads now, not inside the first timed training step
        self.summary.value = ""
        self.progress.value, self.progress.bar_style = 0, ""

    def stop(self) -> None:
        """Ask the run to stop after this step; it saves a checkpoint first, so Resume continues it."""
        if self.running:
            self.state = "stopping"
            self.status.value = "stopping after this step (saving a checkpoint)…"
            self.handle.stop()
            self._buttons()

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run ends (for notebooks run unattended); returns its state."""
        if self.watcher is not None:
            self.watcher.join(timeout)
        return self.state

    def block(self, problems: list[str]) -> None:
        """Disable Train while the settings have problems (the app passes them in)."""
        self.problems = problems
        self._buttons()

    @property
    def running(self) -> bool:
        return self.state in ("starting", "running", "stopping")

    # --- what the run directory says -------------------------------------------------------------------

    def _event(self, event: dict) -> None:
        if event["event"] in ("start", "checkpoint", "stop", "error", "finish"):
            self.console_log.value = "<pre>" + html.escape("\n".join(self.handle.console(12))) + "</pre>"

    def _started(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        if self.state == "starting":  # a Stop pressed meanwhile stays in force
            self.state = "running"
            self.status.value = f"running ({html.escape(self.how)}): {html.escape(str(run_dir))}"

    def _logged(self, record: dict) -> None:
        try:
            step, total = record.get("step", 0), record.get("max_steps") or self.progress.max
            self.progress.max, self.progress.value = max(total, 1), min(step, total)
            if self.state == "running":
                self.status.value = self._progress_text(record, step, total)
            self.plot.add(record)
        except Exception as error:  # noqa: BLE001  (a display glitch must not end the training it shows)
            self.summary.value = note_html(f"the live view failed: {error!r}", "#b00020", indent=False)

    def _end(self, status: str, message: str | None) -> None:
        if self.run_dir is not None and not self.run_dir.is_dir():
            self.run_dir = None  # a new run its checks refused leaves no folder behind
        self.plot.draw()
        self.progress.bar_style = {"finished": "success", "stopped": "warning"}.get(status, "danger")
        where = f" {html.escape(str(self.run_dir))}" if self.run_dir else ""
        if status == "failed":
            error = note_html(message or "unknown error", "#b00020", indent=False)
            self.status.value = f"<b>failed</b>{where}{error}"
        else:
            can = self.run_dir is not None and runs.resumable(self.run_dir)
            resumable = " (Resume continues from its checkpoint)" if status == "stopped" and can else ""
            self.status.value = f"<b>{status}</b>{where}{resumable}"
        self.summary.value = _summary_html(runs.summary(self.run_dir)) if self.run_dir else ""
        if self.run_dir:
            self.where.show(self.run_dir)
        self.state = status  # last: until now Train stays off, so a new run cannot be overwritten by this one
        self._buttons()
        for callback in self.ended:
            callback(status)

    # --- helpers ---------------------------------------------------------------------------------------

    def _config(self, resume: bool):
        if resume and self.run_dir is not None:  # the stopped run's own config, so it continues exactly
            recipe = self.run_dir / "resolved.yaml"
            return config_mod.load(recipe), recipe
        return self.config(), None

    def _progress_text(self, record: dict, step: int, total: int) -> str:
        eta, elapsed = None, record.get("elapsed_s")
        if self._first is None and elapsed is not None:
            self._first = (step, elapsed)
        elif elapsed is not None and step > self._first[0]:
            per_step = (elapsed - self._first[1]) / (step - self._first[0])
            eta = _duration(per_step * max(total - step, 0))
        return lines.progress({**record, "step": step}, total, eta, sep=" · ")

    def _buttons(self) -> None:
        self.train_button.disabled = self.running or bool(self.problems)
        self.stop_button.disabled = self.state not in ("starting", "running")
        resumable = self.run_dir is not None and runs.resumable(self.run_dir)
        self.resume_button.disabled = self.running or self.state not in ("stopped", "failed") or not resumable

    def report(self):
        """A static view of the result (summary and curves) for the saved notebook: display() it."""
        from IPython.display import HTML

        picture = base64.b64encode(self.plot.image.value).decode() if self.plot.image.value else ""
        image = f'<img src="data:image/png;base64,{picture}"/>' if picture else ""
        return HTML(f"<p><b>{self.state}</b> {html.escape(str(self.run_dir))}</p>{self.summary.value}{image}")


def _button(label: str, icon: str, style: str, css: str, click: Callable) -> w.Button:
    button = w.Button(description=label, icon=icon, button_style=style)
    button.add_class(css)
    button.on_click(click)
    return button


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


def _summary_html(summary: dict) -> str:
    """The figures a user looks at first: speed, memory, and each held-out effect before -> after."""
    if not summary:
        return ""
    rows = {
        "steps": summary.get("steps"),
        "wall time": _number(summary.get("wall_time_s"), "{:,.1f} s"),
        "tokens/s": _number(summary.get("tokens_per_second"), "{:,.0f}"),
        "MFU": _number(summary.get("mfu"), "{:.1%}"),
        "peak memory": _number(summary.get("peak_memory_mb"), "{:,.0f} MB"),
        "final loss": _number(summary.get("final_loss"), "{:.4f}"),
        "device": summary.get("device"),
        "held-out effect": ", ".join(lines.effects(summary)) or UNMEASURED.get(summary.get("status"), "-"),
    }
    return table_html(rows)


def _number(value, fmt: str) -> str:
    return fmt.format(value) if isinstance(value, int | float) else "-"
