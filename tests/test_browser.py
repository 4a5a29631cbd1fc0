"""The search page in a real headless Chromium: type a question, press Enter, read the marked answer.

Uses Debian's /usr/bin/chromium (``make browser``) driven by Playwright; Playwright's own browser download
is never used. With ``HOIDAP_SCREENSHOT=1`` the results page is saved to docs/screenshot.png for the README.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import QUESTION_19, ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOT = ROOT / "docs" / "screenshot.png"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"{CHROMIUM} is not installed (run `make browser` as root to install it)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_ask_in_the_browser(browser, live_url: str):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1000, "height": 800}, locale="vi-VN")
    try:
        page.goto(f"{live_url}/")
        box = page.get_by_label("Câu hỏi")
        expect(box).to_be_focused()  # autofocus: staff can type straight away
        box.fill(QUESTION_19)
        box.press("Enter")
        page.wait_for_url("**/search?q=*")
        expect(page.locator("mark.best").first).to_contain_text("19 địa phương")
        phrase = page.locator(".best-answer mark.best strong.phrase")  # the reader's answer phrase, in bold
        expect(phrase).to_have_text("19 địa phương")
        assert int(phrase.evaluate("e => getComputedStyle(e).fontWeight")) >= 700
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


def ask(browser, live_url: str, question: str):  # noqa: ANN001, ANN201
    """A new page at 1000 px with ``question`` typed into the home page's box and sent with Enter."""
    page = browser.new_page(viewport={"width": 1000, "height": 800}, locale="vi-VN")
    page.goto(f"{live_url}/")
    box = page.get_by_label("Câu hỏi")
    box.fill(question)
    box.press("Enter")
    page.wait_for_url("**/search?q=*")
    return page


@pytest.mark.parametrize("question", ["Thủ đô của Pháp là gì?", "xyzzy qwerty"])
def test_the_browser_shows_no_answer(browser, live_url: str, question: str):
    from playwright.sync_api import expect

    page = ask(browser, live_url, question)
    try:
        expect(page.get_by_role("heading", name="Không tìm thấy câu trả lời trong tài liệu")).to_be_visible()
        expect(page.locator(".no-answer")).to_contain_text(question)
        expect(page.get_by_role("heading", name="Các đoạn có thể liên quan")).to_be_visible()
        expect(page.locator("mark")).to_have_count(0)  # no sentence highlighted as an answer
        expect(page.locator(".best-answer")).to_have_count(0)
        expect(page.locator("article.result").first).to_be_visible()  # the closest passages are still there
    finally:
        page.close()


def test_the_browser_offers_the_question_with_its_diacritics(browser, live_url: str):
    """Typed without marks: the page says how it read the question, and either reading is one click away."""
    from playwright.sync_api import expect

    plain, restored = "hai phong hop tac voi bao nhieu dia phuong", "hải phòng hợp tác với bao nhiêu địa phương"
    page = ask(browser, live_url, plain)
    try:
        expect(page.locator(".interpreted")).to_contain_text(f"Có phải bạn muốn hỏi: {restored}")
        expect(page.locator(".best-answer strong.phrase")).to_have_text("19 địa phương")

        page.get_by_role("link", name=plain).click()  # "Tìm chính xác": as typed
        page.wait_for_url("**exact=1**")
        expect(page.locator(".interpreted")).to_have_count(0)
        expect(page.get_by_role("searchbox", name="Câu hỏi")).to_have_value(plain)

        page.go_back()
        page.get_by_role("link", name=restored).click()  # the suggestion, searched with its marks
        page.wait_for_url("**/search?q=h%E1%BA%A3i*")
        expect(page.get_by_role("searchbox", name="Câu hỏi")).to_have_value(restored)
        expect(page.locator(".interpreted")).to_have_count(0)
    finally:
        page.close()
