"""Real-browser support: JupyterLab or Voila on 127.0.0.1, driven by Debian's chromium through playwright.

Never `playwright install`: the browser is the system chromium (apt), passed as `executable_path`.
Servers run from a throwaway root (`stage`) with their own Jupyter config, data and settings dirs, so
neither the committed notebook nor the user's Jupyter setup is touched, and each is stopped at teardown.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:  # playwright is a dev extra: without it the tests skip (or fail in CI)
    from playwright.sync_api import Locator, Page

ROOT = Path(__file__).resolve().parents[1]
NOT_STAGED = {".git", ".venv", "notebooks", "runs"}  # runs land in the stage; notebooks are copied
START_TIMEOUT_S = 90  # until a server answers: its first start imports a lot, on a busy CPU
KERNEL_TIMEOUT_S = 90  # until a fresh kernel is idle

# What JupyterLab would otherwise pop over the page: the news/update toast. Full (not windowed)
# notebook rendering keeps every output in the DOM; autosave off keeps the staged copy as staged.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
}


def unavailable(reason: str) -> NoReturn:
    """A local run without the browser stack skips; CI (.ci/run installs it) must not skip silently."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests, but: {reason}")
    pytest.skip(reason)


def require() -> str:
    """The system chromium's path, once playwright imports too; called before any server starts."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[dev]')")
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or unavailable("no chromium on PATH (apt-get install chromium)")


def stage(notebook: Path, root: Path) -> Path:
    """A server root mirroring the repo: `notebook` copied into notebooks/, the rest linked.

    Returns the copy. The copy names the venv's `python3` kernel, so JupyterLab asks no kernel question.
    """
    root.mkdir(parents=True, exist_ok=True)
    for entry in ROOT.iterdir():
        if entry.name not in NOT_STAGED:
            (root / entry.name).symlink_to(entry)
    nb = json.loads(notebook.read_text())
    nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    copy = root / "notebooks" / notebook.name
    copy.parent.mkdir()
    copy.write_text(json.dumps(nb, indent=1))
    return copy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str  # the page to open, token included
    proc: subprocess.Popen
    log: Path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def jupyter_env(tmp: Path) -> dict[str, str]:
    """Jupyter dirs under tmp: no user config, kernelspec or lab settings leak in (or out)."""
    dirs = {
        "JUPYTER_CONFIG_DIR": tmp / "config",
        "JUPYTER_DATA_DIR": tmp / "data",
        "JUPYTER_RUNTIME_DIR": tmp / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": tmp / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": tmp / "lab-workspaces",
    }
    for plugin, values in LAB_SETTINGS.items():
        path = dirs["JUPYTERLAB_SETTINGS_DIR"] / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    # the kernel trains on a shared CPU next to the browser: one thread unless the caller says otherwise
    return {
        **os.environ,
        **{k: str(v) for k, v in dirs.items()},
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }


@contextmanager
def serve(args: list[str], cwd: Path, tmp: Path, port: int, ready: str, path: str) -> Iterator[Server]:
    """Run `python -m <args>` (its own process group) for the block, once it answers HTTP on `ready`.

    Yields the server with the url of `path`; a failing block prints the server's log (pytest shows it).
    """
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=cwd,
            env=jupyter_env(tmp),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    origin = f"http://127.0.0.1:{port}"
    server = Server(origin + path, proc, log)
    try:
        wait_http(server, origin + ready)
        yield server
    except BaseException:
        print(f"--- {args[0]} log ({log}) ---\n{server.log_tail()}")
        raise
    finally:
        stop(proc)


def wait_http(server: Server, url: str) -> None:
    """Until `url` gives any HTTP answer (an error status counts: the server is listening)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"the server exited with {server.proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"no answer from {url} in {START_TIMEOUT_S} s")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM first: Jupyter then shuts its kernels down (they run in sessions of their own)."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def jupyter_lab(notebook: Path, tmp: Path) -> Iterator[Server]:
    """JupyterLab serving a staged copy of `notebook`; the url opens it."""
    root = tmp / "root"
    copy = stage(notebook, root)
    port, token = free_port(), secrets.token_hex(16)
    args = [
        "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    path = f"/lab/tree/{copy.relative_to(root).as_posix()}?token={token}"
    with serve(args, root, tmp, port, f"/api/status?token={token}", path) as server:
        yield server


@contextmanager
def voila(notebook: Path, tmp: Path) -> Iterator[Server]:
    """Voila serving a staged copy of `notebook` (run from the stage root, as Jupyter would)."""
    root = tmp / "root"
    copy = stage(notebook, root)
    port, token = free_port(), secrets.token_hex(16)
    args = [
        "voila", str(copy.relative_to(root)), "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}",
        "--Voila.port_retries=0", f"--token={token}", "--show_tracebacks=True",
    ]  # fmt: skip
    # any path but / answers without starting a kernel: / itself runs the notebook
    with serve(args, root, tmp, port, "/ready-probe", f"/?token={token}") as server:
        yield server


@contextmanager
def page(tmp: Path) -> Iterator[Page]:
    """A chromium page; its last state is saved as tmp/page.png whatever happens (for a failure)."""
    executable = require()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # no sandbox: CI runs as root; no /dev/shm: it is tiny in containers
        flags = ["--no-sandbox", "--disable-dev-shm-usage"]
        browser = p.chromium.launch(executable_path=executable, args=flags)
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.set_default_timeout(30_000)
        try:
            yield pg
        finally:
            pg.screenshot(path=tmp / "page.png", full_page=True)
            browser.close()


def run_all_cells(pg: Page, url: str) -> None:
    """Open the notebook in JupyterLab and run it from the Run menu, as a user would."""
    pg.goto(url)
    # Cells run before the kernel is ready can be lost with the kernel's first websocket (seen:
    # every cell left at "[ ]"), so wait for "Idle" in the status bar first.
    idle = pg.locator("#jp-main-statusbar").get_by_text(re.compile(r"\| Idle$"))
    idle.wait_for(timeout=KERNEL_TIMEOUT_S * 1000)
    pg.get_by_role("menuitem", name="Run", exact=True).click()
    pg.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def wait_for_app(pg: Page, timeout_s: float, selector: str = ".wb-app") -> Locator:
    """The app (or another widget's `selector`) once shown; a traceback in an output fails at once."""
    app = pg.locator(selector).first
    traceback = pg.locator('[data-mime-type="application/vnd.jupyter.stderr"]', has_text="Traceback")
    deadline = time.monotonic() + timeout_s
    while not app.is_visible():
        if traceback.count():
            raise AssertionError(f"the notebook failed:\n{traceback.first.inner_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {selector} after {timeout_s} s")
        time.sleep(0.5)
    return app


# --- the widgets' DOM (ipywidgets 8) ------------------------------------------------------------------


def part(pg: Page, cls: str, tag: str) -> Locator:
    """The `tag` element of the widget carrying `cls`. ipywidgets puts the class on the <button> or
    <img> itself, but on a box around a Dropdown's <select>; the CSS union finds either."""
    return pg.locator(f"{tag}.{cls}, .{cls} {tag}")


# The tab <li> that hides an element inside an ipywidgets Tab (the outermost, if nested), or null.
HIDING_TAB = """el => {
  let tab = null;
  for (let node = el; node.parentElement; node = node.parentElement) {
    const panel = node.parentElement;
    if (panel.classList.contains("widget-tab-contents") && node.classList.contains("lm-mod-hidden")) {
      const index = Array.from(panel.children).indexOf(node);
      tab = panel.parentElement.querySelectorAll(":scope > .lm-TabBar .lm-TabBar-tab")[index];
    }
  }
  return tab;
}"""


def reveal(target: Locator) -> Locator:
    """Click the tabs hiding `target`, as a user would: playwright only acts on visible elements."""
    for _ in range(5):  # tabs within tabs, outermost first
        tab = target.evaluate_handle(HIDING_TAB).as_element()
        if tab is None:
            break
        tab.click()
    return target


def status(pg: Page) -> str:
    """The status line (read even on a hidden tab); a failed run fails the test at once, with why."""
    text = pg.locator(".wb-status").text_content()
    if "failed" in text:
        raise AssertionError(f"the run failed: {text}")
    return text


def step(pg: Page) -> int:
    """The N of "step N/M" in the status line (0 before the first)."""
    found = re.search(r"step (\d+)", status(pg))
    return int(found.group(1)) if found else 0


def progress(pg: Page) -> float:
    """An IntProgress shows its value only as the bar's width, in percent of max."""
    width = pg.locator(".wb-progress .progress-bar").evaluate("bar => bar.style.width")
    return float(width.rstrip("%") or 0)


def image_shown(pg: Page, cls: str) -> bool:
    """An ipywidgets Image always has a blob: src, even empty; it shows once a picture decoded."""
    return part(pg, cls, "img").evaluate("img => img.complete && img.naturalWidth > 0")


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.5)
