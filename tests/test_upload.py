"""The document-upload pages: signing in, CSRF, uploading files of every kind, removing, escaping.

Apps that need no model run on an empty data directory; the upload flow runs on a copy of the
session's corpus index, so it can write.
"""

from __future__ import annotations

import io
import re
import shutil
import time
from pathlib import Path
from urllib.parse import unquote

import docx
import pytest
from fastapi.testclient import TestClient

from hoidap.index.documents import document_id
from hoidap.service import admin_pages
from hoidap.service.app import create_app
from hoidap.service.settings import ConfigError, Settings
from hoidap.service.uploads import MAX_FILES, request_limit

from .conftest import QUESTION_19
from .test_pages import XSS, Page

PASSWORD, KEY = "mat-khau-quan-tri-thu-nghiem", "khoa-api-thu-nghiem"
SECRET = "s" * 32
MAX_MB = 0.1  # about 100 KB: a python-docx file (about 40 KB) fits, the oversized test file does not
TXT_NAME = "Thông báo phòng họp.txt"
TXT_FACT = "Phòng họp số 7 ở tầng năm được sơn màu tím từ tháng Ba."
DOCX_FACT = "Nhân viên gửi xe máy ở tầng hầm B2 của toà nhà Hoa Sen."


def csrf_of(html: str) -> str:
    return next(i["value"] for i in Page(html).inputs if i.get("name") == "csrf")


def docx_bytes(heading: str, text: str) -> bytes:
    document = docx.Document()
    document.add_heading(heading, 1)
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def upload(client: TestClient, csrf: str | None, *files: tuple[str, bytes]):
    data = {"csrf": csrf} if csrf is not None else {}
    return client.post("/admin/documents", data=data,
                       files=[("files", (name, content, "application/octet-stream")) for name, content in files])


def documents_of(client: TestClient) -> dict[str, dict]:
    return {d["id"]: d for d in client.get("/api/v1/documents", params={"limit": 500}).json()["documents"]}


def sign_in(client: TestClient, password: str = PASSWORD) -> str:
    """Sign in; returns the CSRF token of the admin page."""
    r = client.post("/admin/login", data={"password": password})
    assert r.status_code == 200 and "Tải tài liệu lên" in r.text, r.text[:500]
    return csrf_of(r.text)


# --- signing in (no model needed) -------------------------------------------------------------------------

def no_index_app(tmp_path: Path, **settings) -> TestClient:
    return TestClient(create_app(tmp_path, settings=Settings(reload_interval=0, **settings)))


def test_uploads_are_off_without_a_password_or_keys(tmp_path: Path):
    with no_index_app(tmp_path) as client:
        for r in (client.get("/admin"), client.post("/admin/login", data={"password": ""}),
                  client.post("/admin/login", data={"password": "anything"})):
            assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
            assert "HOIDAP_ADMIN_PASSWORD" in r.text and 'name="password"' not in r.text
            assert "set-cookie" not in r.headers
        r = upload(client, "x", ("a.txt", b"abc"))
        assert r.status_code == 403 and "HOIDAP_ADMIN_PASSWORD" in r.text


def test_wrong_password_is_a_401_without_a_cookie(tmp_path: Path):
    with no_index_app(tmp_path, admin_password=PASSWORD, api_keys=(KEY,)) as client:
        r = client.get("/admin")
        assert r.status_code == 200 and 'name="password"' in r.text and 'href="/admin"' in r.text  # footer link
        for wrong in ("", "sai", PASSWORD + "x", PASSWORD.upper(), "khoá"):
            r = client.post("/admin/login", data={"password": wrong})
            assert r.status_code == 401 and "Mật khẩu hoặc khoá không đúng." in r.text
            assert "set-cookie" not in r.headers and 'name="password"' in r.text


@pytest.mark.parametrize("secret", [PASSWORD, KEY], ids=["password", "api-key"])
def test_sign_in_sets_a_strict_http_only_cookie(tmp_path: Path, secret: str):
    with no_index_app(tmp_path, admin_password=PASSWORD, api_keys=(KEY,)) as client:
        r = client.post("/admin/login", data={"password": secret}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/admin"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/admin" in cookie
        page = client.get("/admin")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert 'enctype="multipart/form-data"' in page.text and 'accept=".docx,.htm,.html,.md,.pdf,.txt"' in page.text
        cookie = client.cookies["hoidap_admin"]
        r = client.post("/admin/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
        assert r.status_code == 303 and 'hoidap_admin=""' in r.headers["set-cookie"]
        assert 'name="password"' in client.get("/admin").text
        client.cookies.set("hoidap_admin", cookie, path="/admin")  # the cookie replayed after signing out
        assert 'name="password"' in client.get("/admin").text, "signing out ended the session on the server"
        with no_index_app(tmp_path, admin_password=PASSWORD, api_keys=(KEY,)) as other:  # another worker
            other.cookies.set("hoidap_admin", cookie, path="/admin")
            assert 'name="password"' in other.get("/admin").text


def test_a_session_ends_with_its_secret(tmp_path: Path):
    """A cookie from another secret key, or for a password since changed, signs nobody in."""
    with no_index_app(tmp_path, admin_password=PASSWORD, secret_key=SECRET) as client:
        sign_in(client)
        cookie = client.cookies["hoidap_admin"]
    for settings in ({"admin_password": PASSWORD + "-moi", "secret_key": SECRET},
                     {"admin_password": PASSWORD, "secret_key": "t" * 32}):
        with no_index_app(tmp_path, **settings) as client:
            client.headers["cookie"] = f"hoidap_admin={cookie}"
            assert 'name="password"' in client.get("/admin").text
            assert upload(client, "x", ("a.txt", b"abc")).status_code == 401
    with no_index_app(tmp_path, admin_password=PASSWORD, secret_key=SECRET) as client:
        client.headers["cookie"] = f"hoidap_admin={cookie}"
        assert "Đăng xuất" in client.get("/admin").text  # the same secrets still accept it


def test_upload_settings_from_the_environment():
    settings = Settings.from_env({"HOIDAP_ADMIN_PASSWORD": " mk ", "HOIDAP_SECRET_KEY": SECRET,
                                  "HOIDAP_MAX_UPLOAD_MB": "2.5"})
    assert (settings.admin_password, settings.secret_key, settings.max_upload_mb) == ("mk", SECRET, 2.5)
    default = Settings.from_env({})
    assert default.admin_password == "" and default.max_upload_mb == 20 and len(default.secret_key) >= 32
    assert default.secret_key != Settings.from_env({}).secret_key
    assert SECRET not in repr(settings) and "mk" not in repr(settings)
    for env in ({"HOIDAP_SECRET_KEY": "ngan"}, {"HOIDAP_MAX_UPLOAD_MB": "0"}, {"HOIDAP_MAX_UPLOAD_MB": "nhieu"}):
        with pytest.raises(ConfigError, match=next(iter(env))):
            Settings.from_env(env)


# --- uploading to a real index ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(corpus_data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("upload") / "data"
    shutil.copytree(corpus_data_dir, data_dir, symlinks=True)
    app = create_app(data_dir, settings=Settings(admin_password=PASSWORD, max_upload_mb=MAX_MB, reload_interval=0))
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def uploaded(client: TestClient) -> dict:
    """A .txt and a .docx added; a fake .pdf, an .exe and an oversized file skipped, all in one upload."""
    csrf = sign_in(client)
    before = documents_of(client)
    r = upload(client, csrf, (f"C:\\Users\\An\\{TXT_NAME}", TXT_FACT.encode()),
               ("gui-xe.docx", docx_bytes("Quy định gửi xe", DOCX_FACT)),
               ("bao-cao.pdf", "Đây không phải là PDF.".encode()),
               ("chuong-trinh.exe", b"MZ\x90\x00"),
               ("qua-lon.txt", ("Một câu rất dài. " * 8000).encode()))
    return {"response": r, "before": before, "csrf": csrf_of(r.text)}


def test_upload_adds_the_good_files_and_says_why_others_were_skipped(client: TestClient, uploaded: dict):
    r = uploaded["response"]
    assert r.status_code == 200, r.text[:1000]
    assert "Đã lập chỉ mục 2 tài liệu (2 mới)" in r.text and "Đã bỏ qua 3 tệp" in r.text
    assert "bao-cao.pdf: tệp bị hỏng hoặc không phải tệp PDF" in r.text
    assert "chuong-trinh.exe: định dạng “.exe” không được hỗ trợ" in r.text
    assert f"qua-lon.txt: tệp lớn hơn giới hạn {MAX_MB:g} MB" in r.text
    assert "/tmp" not in r.text and "Users" not in r.text  # neither our temporary path nor the client's folders
    docs = documents_of(client)
    added = {i: d for i, d in docs.items() if i not in uploaded["before"]}
    assert {(d["title"], d["source"], d["format"]) for d in added.values()} == {
        ("Thông báo phòng họp", f"upload:{TXT_NAME}", "txt"), ("Quy định gửi xe", "upload:gui-xe.docx", "docx")}


@pytest.mark.parametrize("question, fact, title", [
    ("Phòng họp số 7 được sơn màu gì?", "màu tím", "Thông báo phòng họp"),
    ("Nhân viên gửi xe máy ở đâu?", "tầng hầm B2", "Quy định gửi xe")])
def test_uploaded_facts_are_answered(client: TestClient, uploaded: dict, question: str, fact: str, title: str):
    best = client.get("/api/v1/search", params={"q": question}).json()["answers"][0]
    assert fact in best["text"] and best["title"] == title and best["source"].startswith("upload:")
    r = client.get("/search", params={"q": question})
    best_marks = [text for attrs, text in Page(r.text).marks if "best" in (attrs.get("class") or "")]
    assert r.status_code == 200 and fact in best_marks[0] and title in r.text


def test_same_name_replaces_the_earlier_upload(client: TestClient, uploaded: dict):
    count = len(documents_of(client))
    r = upload(client, uploaded["csrf"], (TXT_NAME, TXT_FACT.replace("màu tím", "màu xanh lá").encode()))
    assert r.status_code == 200 and "1 thay bản cũ" in r.text
    assert len(documents_of(client)) == count
    doc = client.get(f"/api/v1/documents/{document_id('upload:' + TXT_NAME)}").json()
    assert "màu xanh lá" in doc["text"]


def test_nothing_to_add_is_a_422_with_a_message(client: TestClient, uploaded: dict):
    r = upload(client, uploaded["csrf"], ("rong.txt", b"  \n "))
    assert r.status_code == 422 and "rong.txt: tài liệu trống" in r.text
    r = upload(client, uploaded["csrf"], ("", b""))  # the browser's part when no file was chosen
    assert r.status_code == 422 and "Hãy chọn ít nhất một tệp" in r.text


def test_too_large_a_request_is_refused_before_reading(client: TestClient, uploaded: dict):
    r = upload(client, uploaded["csrf"], ("a.txt", b"a" * request_limit(MAX_MB)))
    assert r.status_code == 413 and r.headers["content-type"].startswith("text/html")  # a page, for the browser
    assert "Dữ liệu gửi lên vượt quá" in r.text


def test_remove_from_the_page(client: TestClient, uploaded: dict):
    doc_id = document_id("upload:gui-xe.docx")
    page = client.get("/admin")
    assert f'href="/admin/documents/{doc_id}/delete"' in page.text and "<form action=\"/admin/documents" not in page.text
    confirm = client.get(f"/admin/documents/{doc_id}/delete")  # asks first: nothing is removed yet
    assert confirm.status_code == 200 and "Xoá tài liệu này khỏi chỉ mục?" in confirm.text
    assert f'action="/admin/documents/{doc_id}/delete"' in confirm.text and doc_id in documents_of(client)
    r = client.post(f"/admin/documents/{doc_id}/delete", data={"csrf": uploaded["csrf"]})
    assert r.status_code == 200 and "Đã xoá “Quy định gửi xe” khỏi chỉ mục." in r.text
    assert doc_id not in documents_of(client)
    r = client.post(f"/admin/documents/{doc_id}/delete", data={"csrf": uploaded["csrf"]})
    assert r.status_code == 404 and "Không tìm thấy tài liệu này" in r.text
    assert "19 địa phương" in client.get("/api/v1/search", params={"q": QUESTION_19}).json()["answers"][0]["text"]


@pytest.mark.parametrize("csrf", [None, "", "sai-ma", "ma-khong-phai-ascii-ệ"], ids=["missing", "empty", "wrong",
                                                                                     "non-ascii"])
def test_forms_without_the_right_token_are_refused(client: TestClient, uploaded: dict, csrf: str | None):
    data = {"csrf": csrf} if csrf is not None else {}
    doc_id = document_id("upload:" + TXT_NAME)
    for r in (upload(client, csrf, ("csrf.txt", "Tài liệu không được phép thêm.".encode())),
              client.post(f"/admin/documents/{doc_id}/delete", data=data),
              client.post("/admin/logout", data=data)):
        assert r.status_code == 403 and "mã xác nhận" in r.text and r.headers["content-type"].startswith("text/html")
    assert doc_id in documents_of(client) and document_id("upload:csrf.txt") not in documents_of(client)
    assert "Đăng xuất" in client.get("/admin").text  # still signed in


def test_forms_without_a_session_are_refused(client: TestClient, uploaded: dict):
    stranger = TestClient(client.app)
    doc_id = document_id("upload:" + TXT_NAME)
    for r in (upload(stranger, uploaded["csrf"], ("x.txt", b"abc")),
              stranger.post(f"/admin/documents/{doc_id}/delete", data={"csrf": uploaded["csrf"]})):
        assert r.status_code == 401 and '<a class="button" href="/admin">Đăng nhập</a>' in r.text
    assert doc_id in documents_of(client)


def test_the_list_is_paged(client: TestClient, uploaded: dict, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(admin_pages, "PAGE_SIZE", 1)
    total = len(documents_of(client))
    r = client.get("/admin", params={"page": 2})
    assert r.status_code == 200 and f"Trang 2 / {total}" in r.text and r.text.count("/delete") == 1
    assert 'href="/admin?"' in r.text and 'href="/admin?page=3"' in r.text
    r = client.get("/admin", params={"page": 2, "sort": "title", "find": "docx"})  # paging keeps search and order
    assert 'href="/admin?find=docx&amp;sort=title"' in r.text or "Trang 2" not in r.text
    assert client.get("/admin", params={"page": 0}).status_code == 422


def test_uploaded_markup_is_escaped(client: TestClient, uploaded: dict):
    name = "<img src=x onerror=alert(1)>.txt"
    r = upload(client, uploaded["csrf"], (name, f"Đoạn văn có mã {XSS} trong tài liệu thử nghiệm về an toàn.".encode()))
    assert r.status_code == 200
    search = client.get("/search", params={"q": "mã trong tài liệu thử nghiệm an toàn"})
    for page in (r, client.get("/admin"), search):
        assert "<script>" not in page.text and "<img" not in page.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text  # the title, from the file name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in search.text


def test_password_guessing_is_slowed_per_address(tmp_path: Path):
    """Five wrong passwords a minute from one address, then it must wait (the right one is not even checked
    meanwhile); another address is unaffected."""
    app = create_app(tmp_path, settings=Settings(reload_interval=0, admin_password=PASSWORD))
    with TestClient(app, client=("203.0.113.7", 50000)) as guesser, \
            TestClient(app, client=("198.51.100.2", 50000)) as colleague:
        statuses = [guesser.post("/admin/login", data={"password": f"sai {n}"}).status_code for n in range(5)]
        assert statuses == [401] * 5
        r = guesser.post("/admin/login", data={"password": PASSWORD}, follow_redirects=False)
        assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 60
        assert "thử lại sau" in r.text and "set-cookie" not in r.headers
        assert colleague.post("/admin/login", data={"password": PASSWORD}, follow_redirects=False).status_code == 303


def test_folders_left_by_a_killed_upload_are_removed_at_start(tmp_path: Path):
    import os
    import tempfile

    from hoidap.service import uploads

    old = Path(tempfile.mkdtemp(prefix=uploads.TEMP_PREFIX))
    (old / "nửa tệp.pdf").write_bytes(b"%PDF-1.4 ...")
    hour_ago = time.time() - uploads.LEFTOVER_SECONDS - 60
    os.utime(old, (hour_ago, hour_ago))
    running = Path(tempfile.mkdtemp(prefix=uploads.TEMP_PREFIX))  # another process's upload, in progress
    try:
        with no_index_app(tmp_path):
            assert not old.exists() and running.exists()
    finally:
        shutil.rmtree(running, ignore_errors=True)


def test_the_list_can_be_searched_and_sorted_and_shows_dates(client: TestClient, uploaded: dict):
    r = client.get("/admin", params={"find": "PHÒNG HỌP"})  # any case, Vietnamese letters included
    assert r.status_code == 200 and "Thông báo phòng họp" in r.text and "hai-phong-doi-ngoai-2016" not in r.text
    assert "Tài liệu trong chỉ mục (1 có “PHÒNG HỌP”)" in r.text
    today = time.strftime("%d/%m/%Y", time.gmtime())
    assert today in r.text  # indexed today
    titles = re.findall(r'<td><a href="/documents/[^"]+">([^<]+)</a></td>', client.get("/admin", params={"sort": "title"}).text)
    assert titles == sorted(titles, key=str.casefold) and len(titles) > 2
    assert "Không có tài liệu nào có" in client.get("/admin", params={"find": "khong-co-dau"}).text
    assert client.get("/admin", params={"sort": "size"}).status_code == 422


def test_too_many_files_are_refused_in_vietnamese(client: TestClient, uploaded: dict):
    files = [("files", (f"t{i}.txt", b"abc", "text/plain")) for i in range(MAX_FILES + 1)]
    r = client.post("/admin/documents", data={"csrf": uploaded["csrf"]}, files=files)
    assert r.status_code == 400 and f"gửi quá nhiều tệp một lần (tối đa {MAX_FILES})" in r.text
    assert "Too many" not in r.text


def test_an_upload_can_be_downloaded_as_sent(client: TestClient, uploaded: dict):
    sent = "Thư viện mở cửa đến 21 giờ các ngày thứ Năm.".encode()
    assert upload(client, uploaded["csrf"], ("Lịch thư viện.txt", sent)).status_code == 200
    r = client.get(f"/documents/{document_id('upload:Lịch thư viện.txt')}/original")
    assert r.status_code == 200 and r.content == sent
    assert r.headers["content-type"].startswith("text/plain") and "attachment" in r.headers["content-disposition"]
    assert "filename*=utf-8''" in r.headers["content-disposition"]  # the Vietnamese name, encoded
    xss = upload(client, uploaded["csrf"], ("trang.html", f"<html><body><p>Trang có {XSS} bên trong.</p></body></html>".encode()))
    assert xss.status_code == 200
    r = client.get(f"/documents/{document_id('upload:trang.html')}/original")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")  # never shown as our page


def test_pages_can_be_put_behind_the_sign_in(corpus_data_dir: Path):
    """HOIDAP_PAGES_AUTH: every page needs the /admin sign-in, which then comes back to the page asked for;
    the stylesheet and the API (its own keys) are not affected, and signing out closes the pages again."""
    settings = Settings(admin_password=PASSWORD, pages_auth=True, reload_interval=0)
    with TestClient(create_app(corpus_data_dir, settings=settings)) as c:
        asked = f"/search?q={QUESTION_19}"
        for path in ("/", asked, "/documents/abc", "/documents/abc/original"):
            r = c.get(path)
            assert r.status_code == 401 and "Hãy đăng nhập để tìm kiếm" in r.text, path
            assert "19 địa phương" not in r.text
        assert "/admin?next=/search%3Fq%3D" in c.get(asked).text
        assert c.get("/static/style.css").status_code == 200 and c.get("/api/v1/health").status_code == 200
        r = c.post("/admin/login", data={"password": PASSWORD, "next": asked}, follow_redirects=False)
        assert r.status_code == 303 and unquote(r.headers["location"]) == asked
        assert "; Path=/;" in r.headers["set-cookie"] or r.headers["set-cookie"].endswith("Path=/")
        page = c.get(asked)
        assert page.status_code == 200 and "19 địa phương" in page.text
        csrf = csrf_of(c.get("/admin").text)
        c.post("/admin/logout", data={"csrf": csrf})
        assert c.get(asked).status_code == 401


@pytest.mark.parametrize("elsewhere", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_signing_in_never_sends_the_browser_elsewhere(tmp_path: Path, elsewhere: str):
    with no_index_app(tmp_path, admin_password=PASSWORD) as c:
        r = c.post("/admin/login", data={"password": PASSWORD, "next": elsewhere}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/admin"
