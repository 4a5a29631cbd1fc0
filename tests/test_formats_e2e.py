"""One folder, one file of each format, each with its own fact: indexed by the CLI, answered with its title."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import docx
import pytest
from fastapi.testclient import TestClient

from hoidap.service.app import create_app
from tests.test_formats import FONT, write_pdf

HOIDAP = str(Path(sys.executable).parent / "hoidap")

# file → (question, words the answer sentence must hold, expected title, expected page)
CASES = {
    "vinh.txt": ("Vịnh Lan Hạ nằm trong danh sách bao nhiêu vịnh đẹp nhất thế giới?", "46 vịnh", "vinh", None),
    "cau-rong.md": ("Cầu Rồng dài bao nhiêu mét?", "666 mét", "Cầu Rồng ở Đà Nẵng", None),
    "hoi-an.html": ("Phố cổ Hội An được UNESCO công nhận năm nào?", "năm 1999", "Phố cổ Hội An", None),
    "ca-phe.docx": ("Việt Nam xuất khẩu bao nhiêu tấn cà phê mỗi năm?", "1,7 triệu tấn", "Cà phê Việt Nam", None),
    "ha-tang.pdf": ("Sân bay Long Thành có công suất bao nhiêu hành khách mỗi năm?", "100 triệu hành khách",
                    "Hạ tầng giao thông", 2),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, Path]:
    if not FONT.exists():
        pytest.skip(f"no TTF font with Vietnamese letters at {FONT} to write the PDF")
    docs = tmp_path_factory.mktemp("formats")
    (docs / "vinh.txt").write_text("Vịnh Lan Hạ đã trở thành một trong 46 vịnh đẹp nhất thế giới.\n", encoding="utf-8")
    (docs / "cau-rong.md").write_text("# Cầu Rồng ở Đà Nẵng\n\nCầu Rồng dài 666 mét và phun lửa vào tối thứ Bảy.\n",
                                      encoding="utf-8")
    (docs / "hoi-an.html").write_text(
        "<html><head><title>Phố cổ Hội An</title><script>var menu = 1;</script></head><body>"
        "<nav>Trang chủ | Liên hệ | Đăng nhập</nav><article><h1>Hội An</h1>"
        "<p>Phố cổ Hội An được UNESCO công nhận là di sản văn hóa thế giới năm 1999.</p></article>"
        "<footer>Bản quyền thuộc về tòa soạn</footer></body></html>", encoding="utf-8")
    word = docx.Document()
    word.core_properties.title = "Cà phê Việt Nam"
    word.add_heading("Xuất khẩu", 1)
    word.add_paragraph("Việt Nam xuất khẩu khoảng 1,7 triệu tấn cà phê mỗi năm.")
    word.save(docs / "ca-phe.docx")
    write_pdf(docs / "ha-tang.pdf", ["Đường cao tốc Bắc - Nam đang được xây dựng qua nhiều tỉnh thành.",
                                     "Sân bay Long Thành có công suất 100 triệu hành khách mỗi năm."],
              title="Hạ tầng giao thông")
    data = tmp_path_factory.mktemp("formats-data")
    proc = subprocess.run([HOIDAP, "index", str(docs), "--data-dir", str(data)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "indexed 5 documents" in proc.stdout
    return docs, data


@pytest.mark.parametrize("name", CASES)
def test_each_format_answers_its_fact_from_the_cli(folder, name):
    docs, data = folder
    question, needle, title, page = CASES[name]
    proc = subprocess.run([HOIDAP, "ask", "--json", question, "--data-dir", str(data)], capture_output=True,
                          text=True, timeout=300)
    best = json.loads(proc.stdout)["answers"][0]
    assert needle in best["text"] and best["source"] == f"{docs.name}/{name}", "shown from the indexed folder"
    assert best["title"] == title and best["page"] == page


def test_each_format_through_the_api_and_a_folder_filter(folder):
    docs, data = folder
    shown = Path(docs.name)  # sources are shown from the indexed folder's name, and filtered so
    with TestClient(create_app(data)) as client:
        for name, (question, needle, title, page) in CASES.items():
            best = client.post("/api/v1/search", json={"query": question}).json()["answers"][0]
            assert (needle in best["text"], best["title"], best["page"]) == (True, title, page), name
        html = client.get("/search", params={"q": CASES["ha-tang.pdf"][0]}).text
        assert "Hạ tầng giao thông" in html and "trang 2" in html
        only_pdf = client.post("/api/v1/search", json={"query": "Cầu Rồng dài bao nhiêu mét?", "formats": ["pdf"]})
        assert {r["source"] for r in only_pdf.json()["results"]} == {str(shown / "ha-tang.pdf")}
        page = client.get("/search", params={"q": "Cầu Rồng dài bao nhiêu mét?", "source": str(shown / "hoi-an")}).text
        assert str(shown / "hoi-an.html") in page and str(shown / "cau-rong.md") not in page
        assert str(docs) not in page, "the server's own layout is never shown"
        assert 'name="source" value="' + str(shown / "hoi-an") in page, "the filter stays in the form"
    proc = subprocess.run([HOIDAP, "ask", "--json", "Cầu Rồng dài bao nhiêu mét?", "--source", str(Path(docs.name) / "vinh"),
                           "--data-dir", str(data)], capture_output=True, text=True, timeout=300)
    assert {r["source"] for r in json.loads(proc.stdout)["results"]} == {f"{docs.name}/vinh.txt"}
