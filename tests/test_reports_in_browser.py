"""The study report and the explain report as a reader sees them: rendered by headless Chromium
(Debian's chromium, driven by Playwright) at 1280x800, the headline and the first figure are
visible without scrolling, and no table cell says NaN or None. The screenshots go to
$CLASSWISE_SCREENSHOTS when it is set (the closing notes attach them)."""

import os
import shutil
from pathlib import Path

import pytest

from classwise.study import preset_config, run_study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
VIEW = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "study"
    cfg = preset_config("smoke", dataset="digits", methods=["standard", "fgsm-rs"], epochs=1, train_limit=200,
                        eval_subset=30, eval_steps=1, test_steps=2, test_limit=100)
    run_study(cfg.model_copy(update={"sanity": False, "resamples": 100}), out, device="cpu", estimate=False)
    return out


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield b
        b.close()


def _visible_at_first_sight(page, selector: str) -> dict:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not rendered"
    assert box["y"] >= 0 and box["y"] + min(box["height"], 80) <= VIEW["height"], f"{selector} starts below the fold"
    return box


@pytest.mark.parametrize("page_name", ["report.html", "explain/explain.html"])
def test_the_answer_and_the_first_figure_are_seen_first(study, browser, page_name):
    page = browser.new_page(viewport=VIEW)
    page.goto((study / page_name).as_uri())
    headline = _visible_at_first_sight(page, ".headline .answer")
    assert page.locator(".headline .answer").count() <= 5
    assert page.locator(".headline .answer").first.inner_text().strip()
    figure = _visible_at_first_sight(page, "img")
    assert figure["y"] > headline["y"]  # the answer first, then the figure
    cells = page.locator("td").all_inner_texts()
    assert cells and not any(c.strip() in ("NaN", "nan", "None") for c in cells)
    # the detail is folded: closed <details> until a reader opens them
    assert page.locator("details").count() >= 1 and page.locator("details[open]").count() == 0
    shots = os.environ.get("CLASSWISE_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / page_name.replace("/", "-").replace(".html", ".png")))
    page.close()
