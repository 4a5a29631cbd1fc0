from pathlib import Path

import pytest

from hoidap.index.sentences import ABBREVIATIONS, Span, paragraphs, split_sentences

CORPUS = Path(__file__).parent.parent / "corpus"


def sentences(text: str) -> list[str]:
    return [text[s.start:s.end] for s in split_sentences(text)]


def assert_covers(text: str, spans: list[Span], start: int, end: int) -> None:
    """Sentences are stripped, non-empty, ordered and leave only whitespace between them."""
    edges = [start, *(x for s in spans for x in (s.start, s.end)), end]
    for gap_start, gap_end in zip(edges[::2], edges[1::2]):
        assert gap_start <= gap_end
        assert not text[gap_start:gap_end].strip()
    for s in spans:
        piece = text[s.start:s.end]
        assert piece and piece == piece.strip()


def corpus_lines() -> list[tuple[str, str]]:
    return [(path.name, line) for path in sorted(CORPUS.glob("*.txt")) for line in path.read_text("utf-8").splitlines()]


def test_paragraphs_are_stripped_non_blank_lines():
    text = "  Một.  \n\n\t\nHai ba.\nBốn"
    assert [text[p.start:p.end] for p in paragraphs(text)] == ["Một.", "Hai ba.", "Bốn"]
    assert paragraphs(" \n\n ") == []


def test_offsets_are_absolute():
    text = "Mở đầu.\nCâu một. Câu hai."
    para = paragraphs(text)[1]
    assert split_sentences(text, para.start, para.end) == [Span(8, 16), Span(17, 25)]
    assert [text[s.start:s.end] for s in split_sentences(text, para.start)] == ["Câu một.", "Câu hai."]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Câu một. Câu hai.", ["Câu một.", "Câu hai."]),
        ("Thật sao? Đúng vậy! Ừ.", ["Thật sao?", "Đúng vậy!", "Ừ."]),
        ("Thật ư?! Ôi.", ["Thật ư?!", "Ôi."]),
        ("Xong. Ả đến. Ư hử. Ô tô.", ["Xong.", "Ả đến.", "Ư hử.", "Ô tô."]),
        ("Năm 2015 tăng. 6 tháng đầu năm.", ["Năm 2015 tăng.", "6 tháng đầu năm."]),
        ("Ông nói: “Tốt.” Bà nói.", ["Ông nói: “Tốt.”", "Bà nói."]),
        ('Ông nói "Tốt." Bà nói.', ['Ông nói "Tốt."', "Bà nói."]),
        ("(Xem hình.) Tiếp theo.", ["(Xem hình.)", "Tiếp theo."]),
        ("Ông nói ‘tốt.’ Bà nói.", ["Ông nói ‘tốt.’", "Bà nói."]),
        ("Hết rồi. “Đây là trích dẫn.”", ["Hết rồi.", "“Đây là trích dẫn.”"]),
        ("Hết rồi. (Ảnh: TTXVN)", ["Hết rồi.", "(Ảnh: TTXVN)"]),
        ("Hết rồi. (2015) là năm tốt.", ["Hết rồi.", "(2015) là năm tốt."]),
        ("Hết rồi . Câu sau", ["Hết rồi .", "Câu sau"]),
    ],
)
def test_splits_after_end_punctuation_before_a_sentence_start(text, expected):
    assert sentences(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Giá 1.500.000 đồng một suất.",
        "Thu hút FDI ước đạt 7,63 tỷ USD trong giai đoạn này.",
        "Tăng 2,4% so với năm trước.",
        "Ngày 9/11/2015 ký kết bản ghi nhớ.",
        "Hạn chót là 15.12.2025 theo kế hoạch.",
        "Tàu Northern Jaguar 8.814 TEU cập cảng.",
        "Đoàn đến Tp.HCM vào buổi sáng.",
        "Điểm thi 8.5 là cao.",
        "Ông ấy nói rằng. chưa xong",
        "Đi đâu? đi chợ.",
    ],
)
def test_does_not_split_numbers_or_before_lower_case(text):
    assert sentences(text) == [text]


@pytest.mark.parametrize(
    "text",
    [
        "Ông Nguyễn Văn A, TS. Trần B và PGS. Lê C đã đến TP. Hải Phòng ngày 9/11/2015.",
        "Về Tp. Hải Phòng, ThS. Nguyễn Hoa và GS. Phan Đức gặp BS. Lý và KS. Trần.",
        "Sách của NXB. Giáo dục, CN. Hoàng Lan biên soạn.",
        "Ông Nguyễn V. A. Đã đến dự.",
        "Tác giả J.R.R. Tolkien viết.",
        "Các loại hoa, quả, v.v. Được bày bán.",
        "Gặp Mr. Smith, Dr. Jones và St. Peter ở No. 5 rồi về.",
        "Xem tr. 15 của P. Lê Chân.",
        "Về tp. Hải Phòng và ts. Hoa.",
    ],
)
def test_does_not_split_after_abbreviations_and_initials(text):
    assert sentences(text) == [text]


def test_case_sensitive_abbreviations_do_not_swallow_words():
    assert "No" in ABBREVIATIONS
    assert sentences("Tôi đã ăn no. Bạn thì sao?") == ["Tôi đã ăn no.", "Bạn thì sao?"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Điều 1. Phạm vi điều chỉnh", ["Điều 1. Phạm vi điều chỉnh"]),
        ("Khoản 2. Đối tượng áp dụng", ["Khoản 2. Đối tượng áp dụng"]),
        ("Chương II. Quy định chung", ["Chương II. Quy định chung"]),
        ("Mục 1.2. Tổng quan", ["Mục 1.2. Tổng quan"]),
        ("PHẦN 3. Phụ lục", ["PHẦN 3. Phụ lục"]),
        ("Theo tiêu chuẩn ISO 37120. Thành phố cũng vậy.", ["Theo tiêu chuẩn ISO 37120.", "Thành phố cũng vậy."]),
    ],
)
def test_numbered_clause_headings(text, expected):
    assert sentences(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("như LG, Bridgestone... Đây là nguồn vốn.", ["như LG, Bridgestone...", "Đây là nguồn vốn."]),
        ("Lễ hội Hoa phượng đỏ… thu hút du khách.", ["Lễ hội Hoa phượng đỏ… thu hút du khách."]),
        ("Sun Group... đem lại sinh khí.", ["Sun Group... đem lại sinh khí."]),
        ("Thủ tướng Lào,… Ngoài ra, thành phố.", ["Thủ tướng Lào,…", "Ngoài ra, thành phố."]),
        ("Chờ đã…” Rồi đi.", ["Chờ đã…”", "Rồi đi."]),
    ],
)
def test_ellipsis_ends_a_sentence_only_before_a_capital(text, expected):
    assert sentences(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Ông Thành tiếp Đại sứ Mỹ tại Việt Nam. |", ["Ông Thành tiếp Đại sứ Mỹ tại Việt Nam. |"]),
        ("Toàn cảnh hội nghị |", ["Toàn cảnh hội nghị |"]),
        ("Ảnh hội nghị | nội dung bài viết.", ["Ảnh hội nghị |", "nội dung bài viết."]),
        ("Ảnh hội nghị. | Nội dung bài viết.", ["Ảnh hội nghị. |", "Nội dung bài viết."]),
        ("Câu một. Ảnh: TL | Câu hai.", ["Câu một.", "Ảnh: TL |", "Câu hai."]),
        ("Tỷ lệ a|b không tách.", ["Tỷ lệ a|b không tách."]),
    ],
)
def test_caption_bars_end_the_caption(text, expected):
    assert sentences(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Chú thích | | Nội dung.", ["Chú thích | |", "Nội dung."]),
        ("... Xin chào.", ["... Xin chào."]),
        ("Xin chào. “…” Tạm biệt.", ["Xin chào. “…”", "Tạm biệt."]),
        ("***", ["***"]),
    ],
)
def test_punctuation_only_pieces_join_a_neighbour(text, expected):
    assert sentences(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Triển khai đồng bộ các hoạt động", ["Triển khai đồng bộ các hoạt động"]),
        ("của thành phố.Đây là chủ trương.", ["của thành phố.", "Đây là chủ trương."]),
        ("Về Tp.Hải Phòng, tp.Hà Nội.", ["Về Tp.Hải Phòng, tp.Hà Nội."]),
        ("", []),
        ("   ", []),
    ],
)
def test_lines_without_a_sentence_end(text, expected):
    assert sentences(text) == expected


def test_range_is_stripped_and_covered():
    text = "xx   Câu một.   Câu hai!  yy"
    spans = split_sentences(text, 2, len(text) - 2)
    assert [text[s.start:s.end] for s in spans] == ["Câu một.", "Câu hai!"]
    assert_covers(text, spans, 2, len(text) - 2)


@pytest.mark.parametrize("name, line", corpus_lines())
def test_corpus_lines_are_recovered(name, line):
    spans = split_sentences(line)
    assert_covers(line, spans, 0, len(line))
    assert bool(spans) == bool(line.strip())
    may_start_lower = spans[:1] if line.lstrip()[:1].islower() else []
    assert [s for s in spans if line[s.start].islower()] == may_start_lower, name


def test_corpus_is_split_into_many_sentences():
    assert sum(len(split_sentences(line)) for _, line in corpus_lines()) > 2 * len(corpus_lines())


@pytest.mark.parametrize("needle", ["7,63 tỷ USD", "19 địa phương", "8.814 TEU", "9/11/2015", "132.000 tấn"])
def test_corpus_numbers_stay_inside_one_sentence(needle):
    lines = [line for _, line in corpus_lines() if needle in line]
    assert lines
    for line in lines:
        at = line.index(needle)
        assert any(s.start <= at and at + len(needle) <= s.end for s in split_sentences(line))


def test_corpus_captions_are_sentences_of_their_own():
    captions = [line for _, line in corpus_lines() if line.endswith(" |")]
    assert captions
    for line in captions:
        assert sentences(line)[-1].endswith(". |")


def test_wordless_lines_make_no_passage():
    """A "***" separator has nothing to answer with, and its vector sits near every vague question."""
    from hoidap.index.passages import build_passages

    text = "Hải Phòng hợp tác với 19 địa phương.\n\n***\n\nVốn FDI đạt 7,63 tỷ USD.\n---"
    passages = build_passages(text, lambda t: len(t.split()) + 2, 100, 200)
    assert [text[p.start:p.end] for p in passages] == ["Hải Phòng hợp tác với 19 địa phương.", "Vốn FDI đạt 7,63 tỷ USD."]
