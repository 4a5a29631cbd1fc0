import unicodedata

import pytest

from hoidap.index.text import NORMALIZATION_VERSION, fold, normalize, to_display, tokens


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_version_is_an_int():
    assert isinstance(NORMALIZATION_VERSION, int)


@pytest.mark.parametrize("text", ["Việt Nam", "một", "nặng", "Hải Phòng đối ngoại", "HOÀ BÌNH", "thuỷ"])
def test_nfd_and_nfc_normalize_alike(text):
    assert nfd(text) != text
    assert normalize(nfd(text)) == normalize(text)
    assert normalize(nfd(text)) == unicodedata.normalize("NFC", normalize(text))


@pytest.mark.parametrize(
    "variant, canonical",
    [
        ("hoà", "hòa"),
        ("thuý", "thúy"),
        ("khoẻ", "khỏe"),
        ("Hoà", "Hòa"),
        ("HOÀ BÌNH", "HÒA BÌNH"),
        ("hoá học", "hóa học"),
        ("Uỷ ban nhân dân", "Ủy ban nhân dân"),
        ("thuỵ", "thụy"),
        ("toạ đàm", "tọa đàm"),
        ("hoà.", "hòa."),
    ],
)
def test_tone_mark_goes_on_first_vowel_of_open_oa_oe_uy(variant, canonical):
    assert normalize(variant) == canonical
    assert normalize(canonical) == canonical
    assert normalize(nfd(variant)) == canonical


@pytest.mark.parametrize(
    "word",
    ["quý", "quà", "quẻ", "QUÝ", "Quý", "hoàng", "thuyết", "khoảng", "hoài", "khuya", "ngoẻo", "huệ", "thuở",
     "hoặc", "HOẶC", "ngoằn", "khoẳng"],  # "ặ" is ă with a mark: its NFD puts the dot before the breve
)
def test_unambiguous_syllables_are_unchanged(word):
    assert normalize(word) == word
    assert normalize(nfd(word)) == word


def test_case_is_kept():
    assert normalize("Hải Phòng") == "Hải Phòng"


@pytest.mark.parametrize(
    "invisible", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\x07", "\x00"]
)
def test_invisible_characters_are_removed(invisible):
    assert normalize(f"Hải{invisible}Phòng") == "HảiPhòng"
    assert normalize(f"ho{invisible}à") == "hòa"


@pytest.mark.parametrize("space", ["\u00a0", "\u2002", "\u2009", "\u200a", "\u3000", "\t", "\n", "\r\n", "  \n\t "])
def test_whitespace_runs_collapse_to_one_space(space):
    assert normalize(f"{space}Hải{space}Phòng{space}") == "Hải Phòng"


def test_normalize_is_idempotent():
    text = "  Ngày 9/11/2015,\u00a0ông Lê Văn Thành hoà\u200b giải… \n"
    assert normalize(normalize(text)) == normalize(text)


def test_to_display_keeps_every_character_but_line_endings_and_bom():
    text = "\ufeffHo\u0300a\u00a0bi\u0300nh\r\nDo\u0300ng 2\rzero\u200bwidth\u00adsoft\tend  "
    shown = to_display(text)
    nfc = unicodedata.normalize("NFC", text)
    assert shown == "Hòa\u00a0bình\nDòng 2\nzero\u200bwidth\u00adsoft\tend  "
    assert len(shown) == len(nfc) - 1 - nfc.count("\r\n")  # minus the BOM and one char per CRLF


def test_to_display_keeps_bom_inside_the_text():
    assert to_display("a\ufeffb") == "a\ufeffb"


def test_to_display_keeps_tone_placement():
    assert to_display("hoà") == "hoà"


@pytest.mark.parametrize(
    "text, folded",
    [
        ("Hải Phòng ĐÃ thiết lập", "hai phong da thiet lap"),
        ("Đầu tư nước ngoài", "dau tu nuoc ngoai"),
        ("ĐỒNG BẰNG SÔNG HỒNG", "dong bang song hong"),
        ("Việt", "viet"),
        ("hoà", "hoa"),
    ],
)
def test_fold(text, folded):
    assert fold(text) == folded
    assert fold(nfd(text)) == folded


def test_tokens_are_lower_case_syllables():
    assert tokens("Hải Phòng: đối ngoại, hội nhập!") == ["hải", "phòng", "đối", "ngoại", "hội", "nhập"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("khoảng 1.500.000 đồng", ["khoảng", "1.500.000", "đồng"]),
        ("đạt 7,63 tỷ USD.", ["đạt", "7,63", "tỷ", "usd"]),
        ("Ngày 9/11/2015, ông", ["ngày", "9/11/2015", "ông"]),
        ("tăng 2,4%", ["tăng", "2,4"]),
        ("34,42%/năm", ["34,42", "năm"]),
        ("Kế hoạch số 5403/KH-UBND", ["kế", "hoạch", "số", "5403", "kh", "ubnd"]),
        ("năm 2015, thành phố", ["năm", "2015", "thành", "phố"]),
        ("Tp.HCM", ["tp", "hcm"]),
        ("snake_case", ["snake", "case"]),
        ("", []),
        (" … | ", []),
    ],
)
def test_tokens_keep_numbers_together(text, expected):
    assert tokens(text) == expected


def test_tokens_are_normalized():
    assert tokens(nfd("HOÀ\u200b bình")) == tokens("hòa bình") == ["hòa", "bình"]
    assert [fold(t) for t in tokens("Hải Phòng")] == ["hai", "phong"]
