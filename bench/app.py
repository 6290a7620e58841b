"""The Jupyter app's two numbers (issue 4), measured side by side in one run.

1. `Workbench()` displayed within 1 s of `import widgets`, with no torch import: a fresh Python per try.
2. Training with the live plot on vs off: the quickstart recipe trained from a RunPanel in this process
   (progress, status and the throttled live plot all updating) against workbench.train with nothing
   listening, alternating (A B A B ...) so machine noise hits both. Target ratio >= 0.98.
   Both sides train in a worker thread, as the panel does: on CPU, torch work in the main thread leaves
   an OpenMP thread team behind that slows a later run in another thread by ~20%, which would be
   measured as the plot's cost (it is not; the README says how to avoid it).
    python bench/app.py [--steps 300] [--repeats 3] [--opens 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import workbench

ROOT = Path(__file__).resolve().parents[1]

OPEN = """
import time, sys, json
started = time.perf_counter()
import widgets
app = widgets.Workbench()
app._repr_mimebundle_()  # what Jupyter calls to display it
print(json.dumps({"seconds": time.perf_counter() - started, "torch": "torch" in sys.modules}))
app.device.detect(wait=True)  # the background device check ends here, not during the next try
"""


def open_times(tries: int) -> list[dict]:
    return [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", OPEN], capture_output=True, text=True, check=True, cwd=ROOT
            ).stdout.splitlines()[-1]
        )
        for _ in range(tries)
    ]


def config(steps: int, out: str) -> workbench.RunConfig:
    overrides = [
        f"train.max_steps={steps}",
        "train.save_steps=100000",
        f"output.root={out}",
        "eval.before=false",
        "eval.after=false",
    ]
    return workbench.load_config(ROOT / "recipes" / "quickstart.yaml", overrides)


def with_panel(cfg: workbench.RunConfig) -> tuple[float, float]:
    """tokens/s trained from a RunPanel (live plot on), and the share of the wall time spent drawing."""
    from widgets import RunPanel

    panel = RunPanel(cfg)
    panel.mode.value = "kernel"
    panel.train()
    assert panel.wait() == "finished", panel.status.value
    summary = workbench.runs.summary(panel.run_dir)
    return summary["tokens_per_second"], panel.plot.throttle.spent / summary["wall_time_s"]


def without_panel(cfg: workbench.RunConfig) -> float:
    done = {}
    worker = threading.Thread(target=lambda: done.update(result=workbench.train(cfg, echo=False)))
    worker.start()
    worker.join()
    return done["result"].summary["tokens_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--opens", type=int, default=5)
    args = parser.parse_args()

    opens = open_times(args.opens)
    seconds = statistics.median(o["seconds"] for o in opens)
    each = ", ".join(f"{o['seconds']:.2f}" for o in opens)
    torch = any(o["torch"] for o in opens)
    verdict = "PASS" if seconds < 1 and not torch else "FAIL"
    print(
        f"import widgets + Workbench() displayed: median {seconds:.2f} s over {args.opens} fresh processes "
        f"({each}); torch imported: {torch} -> {verdict} (target < 1 s, no torch)"
    )

    on, off, drawing = [], [], []
    with tempfile.TemporaryDirectory() as out:
        for i in range(args.repeats):
            off.append(without_panel(config(args.steps, out)))
            speed, share = with_panel(config(args.steps, out))
            on.append(speed)
            drawing.append(share)
            print(
                f"round {i + 1}: plot off {off[-1]:.0f} tok/s, plot on {on[-1]:.0f} tok/s "
                f"(drawing took {share:.2%} of the run)",
                flush=True,
            )
    ratio = statistics.median(on) / statistics.median(off)
    print(f"median tokens/s: plot on {statistics.median(on):.0f}, plot off {statistics.median(off):.0f}")
    print(f"ratio on / off: {ratio:.3f} (target >= 0.98) -> {'PASS' if ratio >= 0.98 else 'FAIL'}")
    print(f"{args.steps} steps x {args.repeats} rounds, alternating; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
