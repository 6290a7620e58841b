"""The Jupyter app in a real browser (chromium + playwright; support code in tests/browser.py).

JupyterLab: run the workbench notebook, pick the starter model and a bundled dataset, train, watch the
loss plot and the step count move, stop. Voila: the same notebook served as an app, and a profiled run's
ProfileView.
Screenshots of the app land in each test's tmp_path; `make screenshots` also copies them into docs/.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from browser import (
    ROOT,
    image_shown,
    jupyter_lab,
    page,
    part,
    progress,
    require,
    reveal,
    run_all_cells,
    step,
    voila,
    wait_for_app,
    wait_until,
)

NOTEBOOK = Path(os.environ.get("WB_NOTEBOOK", ROOT / "notebooks" / "00_workbench.ipynb"))
SCREENSHOTS = os.environ.get("WB_SCREENSHOTS")  # a folder the app screenshots are copied into
APP_TIMEOUT_S = 120  # kernel start, first imports and the panels' checks, on a busy 2-core CPU
TRAIN_TIMEOUT_S = 120  # model load, tokenising and the first logged steps (every 10 in the quickstart)
STOP_TIMEOUT_S = 60  # a Stop lands between steps, then the run saves and winds down

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def browser_stack():
    """Skip (or fail, in CI) before starting a server when chromium or playwright is missing."""
    require()


def screenshot(app, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    app.screenshot(path=shot)
    if SCREENSHOTS:
        folder = ROOT / SCREENSHOTS
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, folder / name)


@pytest.mark.slow
def test_lab_trains_the_starter_and_stops(tmp_path):
    from playwright.sync_api import expect

    with jupyter_lab(NOTEBOOK, tmp_path) as lab, page(tmp_path) as pg:
        run_all_cells(pg, lab.url)
        app = wait_for_app(pg, APP_TIMEOUT_S)
        reveal(part(pg, "wb-model-name", "select")).select_option(label="starter")
        reveal(part(pg, "wb-dataset-source", "select")).select_option(label="bundled:reverse/sft_train")
        expect(pg.locator(".wb-problems")).to_have_text("")
        train = reveal(part(pg, "wb-train", "button"))
        expect(train).to_be_enabled()

        train.click()
        expect(train).to_be_disabled()
        wait_until(lambda: step(pg) > 0, TRAIN_TIMEOUT_S, '"step N" in the status')
        first = step(pg)
        wait_until(lambda: step(pg) > first, TRAIN_TIMEOUT_S, f"a step after {first}")
        assert progress(pg) > 0
        wait_until(lambda: image_shown(pg, "wb-plot"), TRAIN_TIMEOUT_S, "the loss plot")
        wait_until(lambda: step(pg) >= 40, TRAIN_TIMEOUT_S, "step 40")  # a few points, for the screenshot

        reveal(part(pg, "wb-stop", "button")).click()
        expect(pg.locator(".wb-status")).to_contain_text("stopped", timeout=STOP_TIMEOUT_S * 1000)
        expect(train).to_be_enabled(timeout=STOP_TIMEOUT_S * 1000)
        screenshot(app, tmp_path, "workbench.png")


def test_voila_serves_the_app(tmp_path):
    from playwright.sync_api import expect

    with voila(ROOT / "notebooks" / "app.ipynb", tmp_path) as server, page(tmp_path) as pg:
        pg.goto(server.url)
        app = wait_for_app(pg, APP_TIMEOUT_S)
        expect(pg.locator(".cm-editor")).to_have_count(0)  # app mode: outputs only, no code
        expect(pg.locator(".jp-RenderedMarkdown")).to_have_count(0)  # the app alone: no tutorial text
        assert str(tmp_path) not in pg.locator("body").inner_text()  # no machine path on show
        models = part(pg, "wb-model-name", "select")
        assert "starter" in models.locator("option").all_inner_texts()
        reveal(models).select_option(label="starter")
        reveal(part(pg, "wb-dataset-source", "select")).select_option(label="bundled:reverse/sft_train")
        expect(reveal(part(pg, "wb-train", "button"))).to_be_enabled()
        screenshot(app, tmp_path, "workbench_voila.png")


PROFILED = """\
import os
if not os.path.isdir("recipes"):
    os.chdir("..")
import workbench
from widgets import ProfileView

overrides = ["output.root=runs", "train.max_steps=12", "train.logging_steps=2", "data.sample_cost_ms=20",
             "profile.enabled=true", "profile.profile_memory=true"]
run = workbench.train(workbench.load_config("recipes/profile_slow_dataloader_starter.yaml", overrides), echo=False)
ProfileView(run.run_dir)
"""


def test_voila_shows_where_a_profiled_runs_time_went(tmp_path):
    from playwright.sync_api import expect

    notebook = tmp_path / "profiled.ipynb"
    cell = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": PROFILED}
    notebook.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    with voila(notebook, tmp_path) as server, page(tmp_path) as pg:
        pg.goto(server.url, wait_until="commit")  # Voila streams the page while the run trains
        view = wait_for_app(pg, APP_TIMEOUT_S + TRAIN_TIMEOUT_S, ".wb-profile")
        expect(view).to_contain_text("the data loader takes")
        expect(view).to_contain_text("MFU")
        expect(view.locator("table")).to_contain_text("aten::mm")
        images = view.locator("img")
        expect(images).to_have_count(2)  # the step split and the memory timeline
        for i in range(2):
            wait_until(lambda i=i: images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"),
                       30, f"picture {i + 1} of the profile view")  # fmt: skip
        pg.set_viewport_size({"width": 1280, "height": 2000})  # the whole view on screen for its picture
        screenshot(view, tmp_path, "profile_view.png")
