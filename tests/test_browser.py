"""The search page in a real headless Chromium: type a question, press Enter, read the marked answer.

Uses Debian's /usr/bin/chromium (``make browser``) driven by Playwright; Playwright's own browser download
is never used. With ``HOIDAP_SCREENSHOT=1`` the results page is saved to docs/screenshot.png for the README.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from service.app import create_app

from .conftest import QUESTION_19, ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOT = ROOT / "docs" / "screenshot.png"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"{CHROMIUM} is not installed (run `make browser` as root to install it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(corpus_data_dir: Path):
    """The app served by uvicorn in a background thread, ready once the health check answers."""
    port = free_port()
    config = uvicorn.Config(create_app(corpus_data_dir), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail("the app did not start serving")
        time.sleep(0.2)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_ask_in_the_browser(browser, base_url: str):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1000, "height": 800}, locale="vi-VN")
    try:
        page.goto(f"{base_url}/")
        box = page.get_by_label("Câu hỏi")
        expect(box).to_be_focused()  # autofocus: staff can type straight away
        box.fill(QUESTION_19)
        box.press("Enter")
        page.wait_for_url("**/search?q=*")
        expect(page.locator("mark.best").first).to_contain_text("19 địa phương")
        expect(page.get_by_role("searchbox", name="Câu hỏi")).to_have_value(QUESTION_19)
        if os.environ.get("HOIDAP_SCREENSHOT") == "1":
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))

        page.get_by_role("link", name="Xem toàn văn").first.click()
        page.wait_for_url("**/documents/**")
        assert "#s-" in page.url
        target = page.locator("mark:target")
        expect(target).to_contain_text("19 địa phương")
        expect(target).to_be_in_viewport()  # the fragment scrolled the answer into view
        expect(page.get_by_role("link", name="← Quay lại kết quả")).to_be_visible()
    finally:
        page.close()
