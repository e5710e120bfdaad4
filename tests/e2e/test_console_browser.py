"""The console in a real browser: Debian's `chromium` driven by Playwright.

Against `make run`'s server with a champion, a day of traffic with outcomes
and a drift report: every console page and every link on it opens with 200,
logs no console error, shows no broken image and does not scroll sideways at
phone width; the champion shown is `/model`'s. Screenshots at 1280 and 390 px
go to `.local/screenshots/` for people to look at.

Needs `chromium` on PATH (`make setup` installs it) and the `playwright`
package; without them the tests skip locally and fail with CI=true.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest

from tests.conftest import IN_CI, ROOT, require_module
from tests.e2e.server import LocalServer

sync_api = require_module("playwright.sync_api")

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
PAGES = ["/console/", "/console/models", "/console/experiments", "/console/drift-reports", "/console/predictions"]
WIDTHS = {"desktop": 1280, "phone": 390}
SCREENSHOTS = ROOT / ".local" / "screenshots"
MAX_LINKS = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tools.drift_demo import send_day, trigger_drift_check

    data = tmp_path_factory.mktemp("console") / "data"
    running = LocalServer({"LOCAL_DATA_DIR": str(data), "TRAINING_ROWS": "4000"}).start()
    try:
        start = datetime.now(timezone.utc)
        send_day(running.url, 300, seed=101, shifted=False, outcomes=True)
        trigger_drift_check(running.url, start, datetime.now(timezone.utc))
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        message = "chromium is not on PATH: `make setup` installs it (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def open_page(browser, url: str, width: int):
    """(page, response, console errors) for `url` at `width` px."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = page.goto(url, wait_until="load")
    return page, response, errors


def broken_images(page) -> list[str]:
    return page.evaluate("""() => Array.from(document.images)
        .filter(image => !image.complete || image.naturalWidth === 0).map(image => image.alt || image.src)""")


def sideways_overflow(page) -> int:
    """How many px the page is wider than the window (0: no horizontal scroll)."""
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


def console_links(page, base_url: str) -> set[str]:
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(link => link.href)")
    return {href.split("#")[0] for href in hrefs
            if href.startswith(base_url) and urlsplit(href).path.startswith("/console")}


@pytest.mark.slow
def test_every_console_page_and_link_opens_cleanly_at_desktop_and_phone_width(server, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    seen, queue, problems = set(), [server.url + path for path in PAGES], []
    while queue and len(seen) < MAX_LINKS:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        for name, width in WIDTHS.items():
            page, response, errors = open_page(browser, url, width)
            where = f"{urlsplit(url).path}?{urlsplit(url).query} at {width} px"
            if response is None or response.status != 200:
                problems.append(f"{where}: status {response.status if response else 'none'}")
            if errors:
                problems.append(f"{where}: console errors {errors}")
            if broken := broken_images(page):
                problems.append(f"{where}: broken images {broken}")
            if (overflow := sideways_overflow(page)) > 0:
                problems.append(f"{where}: {overflow} px of horizontal scroll")
            if url in [server.url + path for path in PAGES] or url.endswith("/report.html"):
                slug = ("drift-report" if url.endswith("/report.html")
                        else urlsplit(url).path.strip("/").replace("/", "-"))
                page.screenshot(path=str(SCREENSHOTS / f"{slug}-{width}.png"), full_page=True)
            if name == "desktop":
                queue += sorted(console_links(page, server.url) - seen)
            page.context.close()
    assert problems == []
    assert any("/report.html" in url for url in seen), "no drift report was linked from the console"
    assert any(url.endswith("/console/predictions") for url in seen)


@pytest.mark.slow
def test_a_browser_at_the_server_root_lands_on_the_console(server, browser):
    page, response, errors = open_page(browser, server.url + "/", WIDTHS["desktop"])
    assert response.status == 200 and errors == []
    assert urlsplit(page.url).path == "/console/" and page.title().startswith("Overview")
    page.context.close()


@pytest.mark.slow
def test_the_champion_shown_is_the_one_model_serves(server, browser):
    status, model = server.request("/model")
    assert status == 200
    page, response, errors = open_page(browser, server.url + "/console/", WIDTHS["desktop"])
    assert response.status == 200 and errors == []
    assert page.get_attribute("[data-champion]", "data-champion") == model["version"]
    assert model["version"] in page.inner_text("#champion")
    page.context.close()
