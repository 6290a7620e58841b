"""The device panel: what the machine has (found by `workbench doctor` in a subprocess), the choice, warnings.

Detection runs in a child process so that the kernel never imports torch (or torch_npu, which can hang
without CANN) before Train, and the app still displays in well under a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import typing
from collections.abc import Callable

import ipywidgets as w

from widgets.form import DEFAULTS, Field, Panel, blank_if_none, none_if_blank, note_html, table_html
from workbench.config import DeviceType


class DevicePanel(Panel):
    title = "Device"

    def __init__(self, cfg=None):
        fields = [
            Field(
                w.Dropdown(options=typing.get_args(DeviceType)),
                "Device",
                key="device.type",
                tip="auto picks the best found: npu, cuda, xpu, mps, then cpu",
            ),
            Field(w.Dropdown(options=["auto", "bf16", "fp16", "fp32"]), "Precision", key="device.precision"),
            Field(w.IntText(), "Device index", key="device.index"),
            Field(w.Dropdown(options=["cpu", "error"]), "If it is missing", key="device.fallback"),
            Field(w.Checkbox(), "Allow TF32 / HF32 matmuls", key="device.allow_tf32"),
            Field(w.IntText(), "Processes (devices)", key="distributed.num_processes"),
            Field(
                w.Text(continuous_update=False, placeholder="e.g. 0,1,2,3"),
                "Visible devices",
                key="distributed.visible_devices",
                to_config=none_if_blank,
                from_config=blank_if_none,
            ),
        ]
        self.detect_button = w.Button(description="Detect devices", icon="search")
        self.detect_button.on_click(lambda _: self.detect())
        self.found = w.HTML("<i>not detected yet: detection runs `workbench doctor` in a child process</i>")
        self.detected: dict | None = None
        self.listeners: list[Callable[[dict], None]] = []
        self._thread: threading.Thread | None = None
        super().__init__(fields, [self.detect_button, self.found])
        self.show_config(cfg or DEFAULTS)

    def kind(self) -> str:
        """The device type a run would use: the one asked for, else the one found, else cpu."""
        asked = self.fields["device.type"].value
        return asked if asked != "auto" else (self.detected or {}).get("type", "cpu")

    def memory_gb(self) -> float | None:
        found = self.detected or {}
        same = found.get("type") == self.kind()
        return round(found["memory_total"] / 1e9, 1) if same and found.get("memory_total") else None

    def on_detected(self, callback: Callable[[dict], None]) -> None:
        self.listeners.append(callback)

    def detect(self, wait: bool = False) -> None:
        """Run the doctor in a child process; `wait=True` blocks until it answered (for scripts and tests)."""
        if self._thread is None or not self._thread.is_alive():
            self.detect_button.disabled = True
            self.found.value = "<i>detecting…</i>"
            self._thread = threading.Thread(target=self._detect, daemon=True)
            self._thread.start()
        if wait:
            self._thread.join()

    def _detect(self) -> None:
        command = [sys.executable, "-m", "workbench", "doctor", "--json"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=180)
            report = json.loads(done.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            self.found.value = note_html(
                "detection failed: `workbench doctor` took over 3 minutes", "#b00020"
            )
            return
        except (ValueError, IndexError):
            why = f"`workbench doctor --json` exited with {done.returncode}: {done.stderr.strip()[-1500:]}"
            self.found.value = note_html(f"detection failed: {why}", "#b00020")
            return
        finally:
            self.detect_button.disabled = False
        self.detected = report["device"] or {}
        self.found.value = _report_html(report)
        self.validate()
        for callback in self.listeners:
            callback(self.detected)

    def validate(self) -> None:
        processes = self.fields["distributed.num_processes"]
        processes.show(error=None if processes.value == 1 else "runs use one device for now; set 1")
        kind = self.fields["device.type"]
        found = self.detected
        missing = found is not None and kind.value not in ("auto", "cpu", found.get("type"))
        fallback = self.fields["device.fallback"].value
        problem = f"no {kind.value} here (found {found.get('type') if found else '?'})"
        kind.show(
            error=problem if missing and fallback == "error" else None,
            hint=f"{problem}: the run falls back to cpu" if missing else None,
        )


def _report_html(report: dict) -> str:
    rows = dict(report["rows"])
    memory = (report["device"] or {}).get("memory_total")
    rows |= {"memory": f"{memory / 1e9:.1f} GB"} if memory else {}
    warnings = "".join(note_html(f"! {text}", "#b00020", indent=False) for text in report["warnings"])
    return table_html(rows) + (warnings or note_html("no known problems", "#2e7d32", indent=False))
