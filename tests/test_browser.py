"""The search page in a real headless Chromium: type a question, press Enter, read the marked answer.

Uses Debian's /usr/bin/chromium (``make browser``) driven by Playwright; Playwright's own browser download
is never used. The results page is saved at 1280 and 390 px wide (:func:`test_screenshots`): into pytest's
temporary folder, and with ``HOIDAP_SCREENSHOT=1`` into docs/ for the README.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import QUESTION_19, ROOT, serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
DOCS = ROOT / "docs"
PASSWORD = "mat-khau-trinh-duyet"
QUESTION_FDI_LONG = "Hải Phòng đã thiết lập quan hệ hữu nghị, hợp tác với bao nhiêu địa phương thuộc bao nhiêu quốc gia?"

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

    page = opened(browser, f"{live_url}/", 1000)
    try:
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

        page.locator("article.result h3 a").first.click()
        page.wait_for_url("**/documents/**")
        assert "#s-" in page.url
        target = page.locator("mark:target")
        expect(target).to_contain_text("19 địa phương")
        expect(target).to_be_in_viewport()  # the fragment scrolled the answer into view
        expect(page.get_by_role("link", name="← Quay lại kết quả")).to_be_visible()
    finally:
        page.close()


def opened(browser, url: str, width: int = 1280):  # noqa: ANN001, ANN201
    """A new page ``width`` px wide, in Vietnamese, at ``url``."""
    page = browser.new_page(viewport={"width": width, "height": 800}, locale="vi-VN")
    page.goto(url)
    return page


def ask(browser, live_url: str, question: str, width: int = 1000):  # noqa: ANN001, ANN201
    """A new page ``width`` px wide with ``question`` typed into the home page's box and sent with Enter."""
    page = opened(browser, f"{live_url}/", width)
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

    plain, restored = "hai phong hop tac voi bao nhieu dia phuong", "Hải phòng hợp tác với bao nhiêu địa phương"
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
        page.wait_for_url("**/search?q=H%E1%BA%A3i*")
        expect(page.get_by_role("searchbox", name="Câu hỏi")).to_have_value(restored)
        expect(page.locator(".interpreted")).to_have_count(0)
    finally:
        page.close()


def test_the_whole_question_fits_in_the_box(browser, live_url: str):
    """At 1280 px the results page's box shows the whole of a long question (here 91 characters)."""
    page = ask(browser, live_url, QUESTION_FDI_LONG, width=1280)
    try:
        box = page.get_by_role("searchbox", name="Câu hỏi")
        width, needed = box.evaluate("e => [e.clientWidth, e.scrollWidth]")
        assert needed <= width, f"the box shows {width} of the {needed} px the question needs"
        filters_open = page.locator("details.filters")
        filters_open.locator("summary").click()
        assert box.evaluate("e => e.clientWidth") == width, "opening the filters does not squeeze the box"
    finally:
        page.close()


def test_each_result_opens_its_own_passage(browser, live_url: str):
    """The second result's link opens the document at that result's sentence (its answer, marked, when it has
    one), not at another result's."""
    from playwright.sync_api import expect

    page = ask(browser, live_url, QUESTION_19)
    try:
        second = page.locator("article.result").nth(1)
        passage = second.locator(".passage").inner_text()
        marked = second.locator("mark")
        card_answer = marked.first.inner_text() if marked.count() else None
        second.locator("h3 a").click()
        page.wait_for_url("**/documents/**")
        target = page.locator(":target")
        expect(target).to_be_in_viewport()
        sentence = target.inner_text()
        assert sentence.strip() and sentence.strip() in passage, (sentence, passage)
        if card_answer:
            assert target.evaluate("e => e.tagName") == "MARK" and sentence.strip() == card_answer.strip()
    finally:
        page.close()


def test_filters_survive_paging_and_the_way_back(browser, live_url: str):
    from playwright.sync_api import expect

    page = opened(browser, f"{live_url}/search?q={QUESTION_19}&source=corpus/&format=txt")
    try:
        source = page.locator("input[name=source]")
        expect(source).to_have_value("corpus/")
        page.get_by_role("link", name="Trang sau →").click()
        page.wait_for_url("**offset=10**")
        expect(source).to_have_value("corpus/")
        expect(page.locator("select[name=format]")).to_have_value("txt")
        expect(page.locator(".took")).to_contain_text("Đoạn 11–")
        page.locator("article.result h3 a").first.click()
        page.wait_for_url("**/documents/**")
        page.get_by_role("link", name="← Quay lại kết quả").click()
        page.wait_for_url("**/search?**")
        expect(source).to_have_value("corpus/")
        expect(page.locator("select[name=format]")).to_have_value("txt")
        expect(page.get_by_role("searchbox", name="Câu hỏi")).to_have_value(QUESTION_19)
    finally:
        page.close()


def test_a_filter_that_empties_the_results_says_so(browser, live_url: str):
    from playwright.sync_api import expect

    page = opened(browser, f"{live_url}/search?q={QUESTION_19}&source=khong-co-thu-muc/")
    try:
        expect(page.get_by_role("heading", name="Bộ lọc đã loại hết kết quả")).to_be_visible()
        page.get_by_role("link", name="Bỏ bộ lọc và tìm lại").click()
        page.wait_for_url("**/search?**")
        expect(page.locator("input[name=source]")).to_have_value("")
        expect(page.locator(".best-answer")).to_contain_text("19 địa phương")
    finally:
        page.close()


def test_keyboard_only_from_the_home_page_to_a_document(browser, live_url: str):
    """Type, Enter, Tab to the first result (one tab stop per result), Enter: the document at its answer."""
    from playwright.sync_api import expect

    page = opened(browser, f"{live_url}/")
    try:
        page.keyboard.type(QUESTION_19)  # the box has the focus
        page.keyboard.press("Enter")
        page.wait_for_url("**/search?q=*")
        stops = []
        for _ in range(40):
            page.keyboard.press("Tab")
            focused = page.evaluate("() => [document.activeElement.tagName, document.activeElement.getAttribute('href'),"
                                    " getComputedStyle(document.activeElement).outlineStyle,"
                                    " document.activeElement.closest('article.result') !== null]")
            stops.append(focused)
            if focused[3]:
                break
        tag, href, outline, in_result = stops[-1]
        assert in_result and tag == "A", stops
        assert all(s[2] != "none" for s in stops if s[0] in ("A", "INPUT", "BUTTON", "SUMMARY")), stops
        per_result = page.evaluate("() => [...document.querySelectorAll('article.result')].map(a => "
                                   "a.querySelectorAll('a[href]:not([tabindex=\"-1\"])').length)")
        assert per_result and set(per_result) == {1}, per_result  # one link per result (and its feedback form)
        page.keyboard.press("Enter")
        page.wait_for_url("**/documents/**")
        expect(page.locator("mark:target")).to_contain_text("19 địa phương")
    finally:
        page.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_screenshots(browser, live_url: str, width: int, tmp_path_factory: pytest.TempPathFactory):
    """The results page at desktop and phone width, saved for the README (``HOIDAP_SCREENSHOT=1``) and
    checked not to scroll sideways."""
    page = ask(browser, live_url, QUESTION_19, width=width)
    try:
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        folder = DOCS if os.environ.get("HOIDAP_SCREENSHOT") == "1" else tmp_path_factory.mktemp("screenshots")
        folder.mkdir(exist_ok=True)
        page.screenshot(path=str(folder / f"screenshot-{width}.png"))
    finally:
        page.close()


def test_staff_say_an_answer_is_wrong_and_mark_the_right_one(browser, corpus_data_dir: Path, tmp_path: Path):
    """"Không đúng" under the best answer with a comment, then another sentence of its document marked as the
    answer; the admin sees both on /admin/feedback, and the marked one exports as a question `hoidap eval` runs."""
    from playwright.sync_api import expect

    from hoidap.service.app import create_app
    from hoidap.service.feedback import FeedbackStore
    from hoidap.service.settings import Settings

    data = tmp_path / "data"
    shutil.copytree(corpus_data_dir, data, symlinks=True, ignore=shutil.ignore_patterns("feedback.sqlite3*"))
    with serving(create_app(data, settings=Settings(reload_interval=0, admin_password=PASSWORD))) as url:
        page = ask(browser, url, QUESTION_19)
        try:
            card = page.locator(".best-answer")
            card.get_by_label("Góp ý (không bắt buộc)").fill("Thiếu số quốc gia")
            card.get_by_role("button", name="Không đúng").click()
            page.wait_for_url("**phan_hoi=1**")
            expect(page.locator(".thanks")).to_contain_text("phản hồi của bạn đã được ghi nhận")
            expect(page.get_by_role("searchbox", name="Câu hỏi")).to_have_value(QUESTION_19)

            page.locator(".best-answer .answer-source a").click()  # its document, at the answer
            page.wait_for_url("**/documents/**")
            best = int(page.locator("mark:target").get_attribute("id").removeprefix("s-"))
            page.get_by_role("link", name="Chọn câu trả lời").click()
            chosen = page.locator(f"#s-{best + 1}")  # the next sentence, said to be the answer
            chosen_text = chosen.inner_text()
            page.locator(f"#s-{best + 1} + button.pick").click()
            page.wait_for_url("**phan_hoi=1**")
            expect(page.locator(".thanks")).to_contain_text("đã được ghi nhận là câu trả lời")
            expect(page.locator(f"mark#s-{best + 1}")).to_be_in_viewport()

            page.goto(f"{url}/admin/feedback")  # signing in comes back here
            page.get_by_label("Mật khẩu quản trị hoặc khoá API").fill(PASSWORD)
            page.get_by_role("button", name="Đăng nhập").click()
            page.wait_for_url("**/admin/feedback**")
            rows = page.locator("table.feedback-table tbody tr")
            expect(rows).to_have_count(2)
            expect(rows.nth(0)).to_contain_text("Câu được chọn")
            expect(rows.nth(1)).to_contain_text("Không đúng")
            expect(rows.nth(1)).to_contain_text("Thiếu số quốc gia")
            expect(page.locator("section", has_text="Câu hỏi bị trả lời sai")).to_contain_text(QUESTION_19)
        finally:
            page.close()
    rows = FeedbackStore(data).latest()
    assert [(r.verdict, r.sender) for r in rows] == [("answer", "page"), ("wrong", "page")]
    assert rows[0].answer == chosen_text.strip() and "19 địa phương" in rows[1].answer

    exported = tmp_path / "phan-hoi.json"
    run = [str(ROOT / ".venv" / "bin" / "hoidap")]
    done = subprocess.run([*run, "feedback", "export", str(exported), "--data-dir", str(data)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "wrote 1 confirmed questions" in done.stdout, done.stderr
    qa = json.loads(exported.read_text(encoding="utf-8"))["data"][0]["paragraphs"][0]["qas"][0]
    assert qa["question"] == QUESTION_19 and qa["answers"][0]["text"] == rows[0].answer
    evaluated = subprocess.run([*run, "eval", str(exported), "--json"], capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 0 and json.loads(evaluated.stdout)["questions"] == 1, evaluated.stderr
