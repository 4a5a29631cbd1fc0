"""Each supported format, read from small real files through the public ``load_document``."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest

from hoidap.index.documents import load_document, page_of, section_of
from hoidap.index.errors import DocumentError
from tests.test_cli import to_cp1258

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
needs_font = pytest.mark.skipif(not FONT.exists(), reason=f"no TTF font with Vietnamese letters at {FONT} "
                                                          "(Debian package fonts-dejavu-core)")
PAGE_1 = ("Năm 2016, Hải Phòng đã thiết lập quan hệ hữu nghị, hợp tác với 19 địa phương của các nước "
          "trên thế giới, mở rộng giao lưu văn hoá và thương mại với nhiều đối tác trong khu vực.")
PAGE_2 = "Vốn FDI thu hút giai đoạn 2010 - 2015 đạt 7,63 tỷ USD."


def write_docx(path: Path, title: str | None = None) -> Path:
    document = docx.Document()
    if title:
        document.core_properties.title = title
    document.add_heading("Các thành phố lớn", 0)
    document.add_heading("Dân số", 1)
    document.add_paragraph("Thủ đô có dân số đông thứ hai cả nước.")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("Thành phố", "Dân số"), ("Hà Nội", "8,4 triệu dân")]):
        for cell, text in zip(row.cells, cells):
            cell.text = text
    document.add_paragraph("Số liệu năm 2022.")
    document.save(path)
    return path


def write_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    fpdf = pytest.importorskip("fpdf", reason="fpdf2 (in the test extra) writes the test PDFs")
    pdf = fpdf.FPDF()
    pdf.add_font("DejaVu", fname=str(FONT))
    pdf.set_font("DejaVu", size=12)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def test_docx_paragraphs_headings_and_table_rows_in_document_order(tmp_path):
    doc = load_document(write_docx(tmp_path / "thanh-pho.docx"))
    assert doc.format == "docx" and doc.title == "Các thành phố lớn"
    assert doc.text.split("\n") == ["Các thành phố lớn", "Dân số", "Thủ đô có dân số đông thứ hai cả nước.",
                                    "Thành phố | Dân số", "Hà Nội | 8,4 triệu dân", "Số liệu năm 2022."]
    assert [heading for _, heading in doc.headings] == ["Các thành phố lớn", "Dân số"]
    assert section_of(doc.headings, doc.text.index("Hà Nội")) == "Dân số"
    assert section_of(doc.headings, 0) == "Các thành phố lớn"


def test_docx_title_prefers_core_properties(tmp_path):
    assert load_document(write_docx(tmp_path / "a.docx", title="Niên giám thống kê")).title == "Niên giám thống kê"


@needs_font
def test_pdf_pages_title_and_rejoined_lines(tmp_path):
    doc = load_document(write_pdf(tmp_path / "bao-cao.pdf", [PAGE_1, PAGE_2], title="Báo cáo Hải Phòng"))
    assert doc.format == "pdf" and doc.title == "Báo cáo Hải Phòng"
    assert len(doc.pages) == 2
    assert PAGE_1 in doc.text.split("\n"), "lines wrapped by the PDF are one paragraph again"
    assert page_of(doc.pages, doc.text.index("7,63 tỷ USD")) == 2
    assert page_of(doc.pages, doc.text.index("19 địa phương")) == 1


@needs_font
def test_pdf_without_metadata_title_is_named_after_the_file(tmp_path):
    assert load_document(write_pdf(tmp_path / "bao-cao.pdf", [PAGE_2])).title == "bao-cao"


def test_pdf_without_text_layer_is_refused_as_scanned(tmp_path):
    fpdf = pytest.importorskip("fpdf", reason="fpdf2 (in the test extra) writes the test PDFs")
    pdf = fpdf.FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 150, style="F")
    pdf.output(str(tmp_path / "scan.pdf"))
    with pytest.raises(DocumentError, match=r"scan\.pdf: scanned PDF with no text layer \(run OCR first\)"):
        load_document(tmp_path / "scan.pdf")


HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Hải Phòng – Tin tức</title>
<style>body { color: red }</style><script>var menu = "Đăng nhập";</script></head>
<body>
<header><a href="/">Trang chủ báo</a></header>
<nav><ul><li>Thời sự</li><li>Thể thao</li></ul></nav>
<main><article>
  <h1>Quan hệ đối ngoại</h1>
  <p>Hải Phòng đã thiết lập quan hệ với <b>19 địa phương</b>
     của các nước.</p>
  <div>Thành phố có cảng biển lớn.</div>
  <table><tr><td>Hà Nội</td><td>8,4 triệu dân</td></tr></table>
  <h2>Kinh tế</h2><ul><li>Vốn FDI đạt 7,63 tỷ USD.</li></ul>
</article></main>
<aside>Tin liên quan</aside>
<footer>Bản quyền thuộc về báo</footer>
</body></html>"""


def test_html_main_content_without_menus_scripts_or_footer(tmp_path):
    (tmp_path / "tin.html").write_text(HTML, encoding="utf-8")
    doc = load_document(tmp_path / "tin.html")
    assert doc.title == "Hải Phòng – Tin tức"
    assert doc.text.split("\n") == ["Quan hệ đối ngoại", "Hải Phòng đã thiết lập quan hệ với 19 địa phương của các nước.",
                                    "Thành phố có cảng biển lớn.", "Hà Nội | 8,4 triệu dân", "Kinh tế",
                                    "Vốn FDI đạt 7,63 tỷ USD."]
    for noise in ("Trang chủ", "Thời sự", "Đăng nhập", "color", "Tin liên quan", "Bản quyền"):
        assert noise not in doc.text
    assert section_of(doc.headings, doc.text.index("7,63")) == "Kinh tế"


def test_html_meta_charset_is_honoured(tmp_path):
    page = '<html><head><meta charset="windows-1258"></head><body><h1>Thủ đô</h1><p>Hà Nội.</p></body></html>'
    (tmp_path / "cu.htm").write_bytes(to_cp1258(page))
    doc = load_document(tmp_path / "cu.htm")
    assert doc.text == "Thủ đô\nHà Nội." and doc.title == "Thủ đô", "without <title>, the first <h1>"


@pytest.mark.parametrize("suffix", [".txt", ".md"])
def test_a_first_line_that_reads_as_a_heading_is_the_title(tmp_path, suffix):
    (tmp_path / f"bao-cao{suffix}").write_text("\n  Báo cáo tình hình kinh tế quý I  \n\nNăm 2015, thành phố đạt 7,63 tỷ USD.\n",
                                             encoding="utf-8")
    assert load_document(tmp_path / f"bao-cao{suffix}").title == "Báo cáo tình hình kinh tế quý I"
    for text in ("Năm 2015, thành phố đạt 7,63 tỷ USD.\nDân số 2 triệu.",  # a sentence, not a heading
                 "Chỉ một dòng không dấu chấm",  # the whole document
                 "Điều đó được khẳng định qua Báo cáo chính trị trình Đại hội Đảng bộ thành phố lần thứ 15 với "
                 "nhiều nội dung quan trọng về công tác đối ngoại\nTiếp theo."):  # too long for a title
        (tmp_path / f"van-ban{suffix}").write_text(text, encoding="utf-8")
        assert load_document(tmp_path / f"van-ban{suffix}").title == "van-ban"


def test_markdown_headings_lose_their_markup(tmp_path):
    (tmp_path / "ghi-chu.md").write_text("# Hải Phòng\n\nThành phố cảng.\n\n## Đối ngoại ##\n\n"
                                         "Quan hệ với **19 địa phương**.\n\n```\n# không phải tiêu đề\n```\n",
                                         encoding="utf-8")
    doc = load_document(tmp_path / "ghi-chu.md")
    assert doc.title == "Hải Phòng"
    assert doc.text.split("\n")[:5] == ["Hải Phòng", "", "Thành phố cảng.", "", "Đối ngoại"]
    assert "# không phải tiêu đề" in doc.text
    assert doc.headings == ((0, "Hải Phòng"), (doc.text.index("Đối ngoại"), "Đối ngoại"))
    assert section_of(doc.headings, doc.text.index("19 địa phương")) == "Đối ngoại"


@pytest.mark.parametrize("encode", [lambda text: text.encode("utf-16"), to_cp1258], ids=["utf-16", "cp1258"])
def test_text_in_legacy_encodings(tmp_path, encode):
    (tmp_path / "cu.txt").write_bytes(encode("Hà Nội là thủ đô của Việt Nam.\nDân số 8,4 triệu."))
    doc = load_document(tmp_path / "cu.txt")
    assert doc.text == "Hà Nội là thủ đô của Việt Nam.\nDân số 8,4 triệu."
    assert doc.title == "cu" and doc.pages == () and page_of(doc.pages, 0) is None and section_of(doc.headings, 0) is None


def test_a_file_of_symbols_is_an_empty_document(tmp_path):
    (tmp_path / "sao.txt").write_text("***\n\n---\n", encoding="utf-8")
    with pytest.raises(DocumentError, match=r"sao\.txt: empty document"):
        load_document(tmp_path / "sao.txt")


def test_empty_docx_is_an_empty_document(tmp_path):
    docx.Document().save(tmp_path / "rong.docx")
    with pytest.raises(DocumentError, match=r"rong\.docx: empty document"):
        load_document(tmp_path / "rong.docx")


@pytest.mark.parametrize("name", ["hong.docx", "hong.pdf", "hong.html"])
def test_corrupt_files_are_one_line_errors_naming_the_file(tmp_path, name):
    (tmp_path / name).write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DocumentError) as caught:
        load_document(tmp_path / name)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / name}: ") and "\n" not in message
