"""Lexical matching: syllables, bigrams, accent folding; and what kind of answer a question wants."""


from pathlib import Path

import numpy as np
import pytest

from hoidap.index import lexical
from hoidap.index.lexical import FOLDED, LexicalIndex, lexical_terms
from hoidap.index.question import Expected, offers
from hoidap.index.text import normalize
from tests.conftest import QUESTION_19

ACCENTLESS_19 = "hai phong thiet lap quan he huu nghi hop tac voi bao nhieu dia phuong"


def test_terms_hold_syllables_bigrams_and_folded_forms():
    terms = lexical_terms("Đầu tư nước ngoài")
    assert {"đầu", "tư", "đầu_tư", "~dau", "~dau_tu", "~nuoc_ngoai"} <= set(terms)


def test_exact_tones_rank_above_folded_matches():
    [index] = LexicalIndex.build(["Hai phòng họp lớn", "Hải Phòng là thành phố cảng"])
    exact = index.scores(index.ids(lexical_terms("Hải Phòng")))
    assert exact[1] > exact[0] > 0, "both fold to 'hai phong'; the right tones win"
    folded = index.scores(index.ids(lexical_terms("hai phong")))
    assert folded[0] > 0 and folded[1] > 0


def test_unknown_terms_score_zero():
    [index] = LexicalIndex.build(["Hải Phòng", "Hà Nội"])
    assert not np.any(index.scores(index.ids(lexical_terms("xyzzy"))))
    assert not np.any(index.scores(index.ids([])))


def test_indexes_built_together_number_terms_alike():
    """Passages and sentences share one vocabulary, so a question's terms are looked up once for both."""
    passages, sentences = LexicalIndex.build(["Hải Phòng. Hà Nội."], ["Hải Phòng.", "Hà Nội."])
    ids = passages.ids(lexical_terms("hà nội"))
    assert passages.vocabulary is sentences.vocabulary
    assert passages.scores(ids)[0] > 0 and sentences.scores(ids).tolist()[0] == 0 < sentences.scores(ids)[1]


def test_scoring_some_rows_gives_their_scores_of_all_rows():
    [index] = LexicalIndex.build(["hải phòng", "hà nội", "hải phòng và hà nội", "đà nẵng"])
    ids = index.ids(lexical_terms("hà nội hải phòng"))
    everything = index.scores(ids)
    assert index.scores(ids, np.array([1, 2, 3])).tolist() == everything[[1, 2, 3]].tolist()
    assert everything[3] == 0 and index.scores(ids, np.array([], dtype=np.int64)).size == 0


@pytest.mark.parametrize("question,answer", [
    (ACCENTLESS_19, "19 địa phương"),
    ("hai phong hop tac voi bao nhieu dia phuong", "19 địa phương"),  # the README's example, short
    ("von fdi thu hut giai doan 2010 2015 la bao nhieu", "7,63 tỷ USD"),
])
def test_accent_free_question_finds_the_answer(engine, question, answer):
    assert answer in engine.search(question).answers[0].text


def test_a_question_typed_plainly_leans_on_the_folded_words(engine):
    """Without diacritics, and not restored, the dense signal is scaled down (Weights.plain_dense); another
    language is not; restored, the question is searched as if typed with its marks."""
    assert engine.candidates("hai phong hop tac voi bao nhieu dia phuong", restore=False).plain
    assert not engine.candidates("hai phong hop tac voi bao nhieu dia phuong").plain
    assert not engine.candidates(QUESTION_19).plain
    assert not engine.candidates("How many localities has the city cooperated with?").plain


def test_hybrid_fuses_both_retrievers(engine):
    """The candidate pool holds the dense and the lexical top passages, each measured both ways."""
    c = engine.candidates(QUESTION_19)
    assert len(c.passage_ids) == len(c.passage_dense) == len(c.passage_lexical)
    assert c.passage_lexical.max() > 0 and np.all(c.passage_dense > 0)
    assert len(c.sentence_ids) == len(c.sentence_dense) == len(c.sentence_lexical) == len(c.sentence_passage) \
        == len(c.sentence_coverage)


@pytest.mark.parametrize("question,kind", [
    (QUESTION_19, "number"),
    (ACCENTLESS_19, "number"),
    ("hai phong ket nghia voi kitakyushu khi nao", "time"),
    ("bao cao nam 2020 noi gi ve dau tu", None),  # "báo cáo", a report, not "bao cao" (how high)
    ("ai la giam doc so ngoai vu", None),  # folded "ai" is also "ái": one-syllable question words need their marks
    ("Hải Phòng kết nghĩa với Kitakyushu khi nào?", "time"),
    ("Ai là Giám đốc Sở Ngoại vụ Hải Phòng?", "person"),
    ("Lễ hội Hoa Phượng đỏ được tổ chức ở đâu?", "place"),
    ("Công tác đối ngoại có vai trò gì?", None),
])
def test_answer_kind(question, kind):
    assert Expected.of(question).kind == kind


def offered(sentence: str) -> dict[str, list[str]]:
    """What the index stores of a sentence for answer cues."""
    return offers(normalize(sentence))


def test_evidence_wants_something_new_of_the_kind():
    how_many = Expected.of(QUESTION_19)
    assert how_many.unit == "dia"
    assert how_many.evidence(offered("Thành phố đã hợp tác với 19 địa phương thuộc 13 quốc gia.")) == 2, "number + asked unit"
    assert how_many.evidence(offered("Thành phố có 13 quốc gia bạn.")) == 1, "a number, not of the asked unit"
    assert how_many.evidence(offered("Hải Phòng đã thiết lập quan hệ hữu nghị.")) == 0
    who = Expected.of("Ai là thủ quân lớn tuổi nhất chơi trong trận Super Bowl?")
    assert who.evidence(offered("Năm đó, Peyton Manning là thủ quân lớn tuổi nhất.")) == 1
    assert who.evidence(offered("Anh ấy là thủ quân lớn tuổi nhất chơi trong trận Super Bowl.")) == 0, "names only what was asked"
    assert Expected.of("Công tác đối ngoại có vai trò gì?").evidence(offered("Năm 2015 có 19 địa phương.")) == 0


def test_offers_keep_the_words_after_every_number():
    offer = offered("Vốn FDI đạt 7,63 tỷ USD, với 1.500.000 lao động và 19 địa phương.")
    assert {"ty", "usd", "lao", "dong", "dia", "phuong"} <= set(offer["units"])
    assert {"7,63", "1.500.000", "19"} <= set(offer["number"])
    assert "usd" in offer["name"], "capitalized words are names"


def test_coverage_counts_the_questions_content_words_here_or_just_before():
    named = "Kỷ lục trước đó do John Elway nắm giữ."
    restated = "Anh ấy là thủ quân lớn tuổi nhất chơi trong trận Super Bowl."
    [index] = LexicalIndex.build([normalize(t) for t in (named, restated, named)])
    passage_of = np.array([0, 1, 1])  # the second "named" follows "restated" in its passage

    def coverage(question: str) -> list[float]:
        expected = Expected.of(question)
        held = index.holding(index.ids([FOLDED + t for t in expected.terms]), np.arange(3))
        return expected.coverage(held, passage_of).tolist()

    who = "Ai là thủ quân lớn tuổi nhất chơi trong trận Super Bowl?"
    assert "ai" not in Expected.of(who).terms and "la" not in Expected.of(who).terms, "question words do not count"
    assert coverage(who) == [0.0, 1.0, 1.0], "the sentence before says what this one is about"
    assert coverage("ai la thu quan lon tuoi nhat") == [0.0, 1.0, 1.0], "typed without accents"
    assert coverage("Ai là thủ quân của Broncos?") == pytest.approx([0, 2 / 3, 2 / 3]), "a word no sentence holds counts"
    assert coverage("Ai là ai?") == [0.0, 0.0, 0.0], "nothing to cover"


def test_holding_reads_the_postings_of_the_rows_asked_for():
    [index] = LexicalIndex.build(["hải phòng", "hà nội", "hải phòng và hà nội"])
    held = index.holding(index.ids(["~hai", "~noi", "~xyzzy"]), np.array([1, 2]))
    assert held.tolist() == [[False, True], [True, True]], "an unknown term has no column"


def marked_syllables(n: int) -> list[str]:
    """``n`` distinct syllables with tone marks ("tà0", "tá1", ...), commonest first."""
    return [f"t{'àáảãạ'[i % 5]}{i}" for i in range(n)]


def zipf_texts(rng: np.random.Generator, syllables: list[str], n: int) -> list[str]:
    """``n`` texts of 10-59 ``syllables`` drawn Zipf-distributed: a few frequent ones hold most postings, as
    "của", "là", "năm" do."""
    weights = 1 / np.arange(1, len(syllables) + 1) ** 1.1
    return [" ".join(syllables[i] for i in rng.choice(len(syllables), rng.integers(10, 60), p=weights / weights.sum()))
            for _ in range(n)]


@pytest.fixture(scope="module")
def large_index(tmp_path_factory: pytest.TempPathFactory) -> LexicalIndex:
    """20,000 passages of Zipf-distributed syllables (a few frequent ones hold most postings, as "của",
    "là", "năm" do), saved and loaded back as the store loads it: large enough that a few rows are looked
    up in the postings rather than read through."""
    texts = zipf_texts(np.random.default_rng(7), marked_syllables(4000), 20_000)
    folder = tmp_path_factory.mktemp("lexical")
    LexicalIndex.build(texts, into=(folder,))
    return LexicalIndex.load(folder)


def test_the_best_rows_are_those_scoring_best(large_index: LexicalIndex):
    """The best rows by BM25, best first, ties to the first row, with their scores; of some rows only if asked;
    and the most a row could score, the sum of each term's best score."""
    rng = np.random.default_rng(3)
    words = [w for w in large_index.vocabulary if w.startswith("t") and "_" not in w]
    for n in range(30):
        ids = large_index.ids(lexical_terms(" ".join(rng.choice(words, int(rng.integers(1, 12))).tolist())))
        every = large_index.scores(ids)
        held = np.flatnonzero(every > 0)
        for k in (1, 10, 50):
            rows, scores = large_index.top(ids, k)
            expected = held[np.lexsort((held, -every[held]))][:k]
            assert rows.tolist() == expected.tolist() and scores.tolist() == every[expected].tolist()
        starts, ends = large_index._spans(ids)
        best = [float(large_index.postings["data"][a:b].max()) for a, b in zip(starts, ends) if b > a]
        assert np.isclose(large_index.most(ids), sum(best), rtol=1e-6)
        among = np.arange(n, large_index.size, 7)
        rows, scores = lexical.best(large_index.scores(ids, among), 5, among)
        inside = held[np.isin(held, among)]
        assert rows.tolist() == inside[np.lexsort((inside, -every[inside]))][:5].tolist()
    tied = large_index.ids(["tà0"])  # one term: every row holding it once, in texts of one length, scores alike
    rows, scores = large_index.top(tied, 3)
    assert list(rows) == sorted(rows, key=lambda r: (-large_index.scores(tied)[r], r))


def test_the_best_of_many_rows_are_chosen_above_a_sampled_bar(large_index: LexicalIndex):
    """Asked for many of many rows (LexicalIndex.top's candidates), the best are chosen among the rows reaching a
    bar that a sample of the scores sets: the same rows, best first and ties to the first row, as among every row."""
    rng = np.random.default_rng(5)
    common = marked_syllables(100)  # held by thousands of rows each
    sampled = 0
    for _ in range(20):
        every = large_index.scores(large_index.ids(lexical_terms(" ".join(rng.choice(common, 6).tolist()))))
        held = np.flatnonzero(every > 0)
        for k in (300, 1_000):
            rows, scores = lexical.best(every, k)
            expected = held[np.lexsort((held, -every[held]))][:k]
            assert rows.tolist() == expected.tolist() and scores.tolist() == every[expected].tolist()
            sampled += lexical._likely_best(every, k) is not None
    assert sampled >= 30  # the bar was used, not every row held
    tied = rng.integers(0, 4, 50_000).astype(np.float32)  # few values: ties at the bar, and zeros
    assert lexical._likely_best(tied, 1_000) is not None
    rows, scores = lexical.best(tied, 1_000)
    assert rows.tolist() == np.flatnonzero(tied == 3)[:1_000].tolist() and set(scores.tolist()) == {3.0}


def test_common_terms_are_read_through_their_best_postings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A term held by more rows than IMPACT_PREFIX is read, for the best rows of the whole index, only through
    its best-scoring postings (kept beside the index, as a build keeps them); the candidates found so are scored
    exactly: whatever the best rows, their scores are every posting's, and for most questions they are the
    best rows of exhaustive scoring."""
    monkeypatch.setattr(lexical, "IMPACT_PREFIX", 1_500)
    monkeypatch.setattr(lexical, "CANDIDATES", 200)
    rng = np.random.default_rng(11)
    syllables = marked_syllables(2000)
    [built] = LexicalIndex.build(zipf_texts(rng, syllables, 8_000), into=(tmp_path,))
    built.save_impacts(tmp_path)  # as the store's writer does for the passages' index
    index = LexicalIndex.load(tmp_path)
    assert (tmp_path / lexical.IMPACTS.format("indptr")).exists() and "impacts" in vars(index)  # read, not worked out
    indptr, prefixes = np.asarray(index.postings["indptr"]), index.impacts
    held = np.diff(indptr)
    common = np.flatnonzero(held > 1_500)
    assert common.size > 20 and np.array_equal(np.flatnonzero(np.diff(prefixes["indptr"])), common)
    for term in common[:5].tolist():  # its 1,500 best postings, rows ascending; none left out scores more
        a, b = int(prefixes["indptr"][term]), int(prefixes["indptr"][term + 1])
        rows, kept = prefixes["indices"][a:b], prefixes["data"][a:b]
        every = index.postings["data"][indptr[term]:indptr[term + 1]]
        assert b - a == 1_500 and np.all(np.diff(rows) > 0)
        assert kept.min() >= np.sort(every)[-1_500] and np.isin(rows, index.postings["indices"][indptr[term]:indptr[term + 1]]).all()
    same, asked = 0, 40
    for _ in range(asked):
        asking = [*rng.choice(syllables[:10], 2), *rng.choice(syllables[10:600], int(rng.integers(2, 10)))]
        ids = index.ids(lexical_terms(" ".join(rng.permutation(asking).tolist())))
        assert np.isin(ids, common).any()  # the pruned path is taken
        rows, scores = index.top(ids, 50)
        assert scores.tolist() == index.scores(ids)[rows].tolist()  # exact scores, bit for bit
        exhaustive = index.top(ids, 50, exact=True)
        assert exhaustive[0].tolist() == lexical.best(index.scores(ids), 50)[0].tolist()
        same += rows.tolist() == exhaustive[0].tolist()
    assert same >= 0.9 * asked


def test_some_rows_score_as_they_do_among_every_row(large_index: LexicalIndex):
    """Rows asked for are looked up in each term's postings: a few rows against long postings, many rows against
    short ones, the first and last rows, and none; each scores what it scores among every row, bit for bit, and
    holds what its postings say."""
    rng = np.random.default_rng(9)
    ids = large_index.ids(lexical_terms("tà0 tá1 tả2 tã3 tạ4 tà1000 tá3999 tả2_tã3"))
    every = large_index.scores(ids)
    indptr = np.asarray(large_index.postings["indptr"])
    holders = [set(large_index.postings["indices"][indptr[t]:indptr[t + 1]].tolist()) for t in ids.tolist()]
    for rows in (np.array([3, 17, 250, 19_999]), np.array([0]), np.arange(0, large_index.size, 2),
                 np.sort(rng.choice(large_index.size, 300, replace=False)), np.array([], dtype=np.int64)):
        assert large_index.scores(ids, rows).tolist() == every[rows].tolist()
        held = large_index.holding(ids, rows)
        assert held.tolist() == [[row in h for h in holders] for row in rows.tolist()]
    assert any(len(h) > 5_000 for h in holders) and any(len(h) < 20 for h in holders)


def test_the_index_is_the_one_bm25s_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Built here chunk by chunk (8 bytes a posting, where bm25s holds 36), each score matrix is bm25s's own,
    float for float, for two corpora numbering terms alike (the second with terms the first lacks), and
    bm25s reads the saved files back."""
    import bm25s

    from tests.conftest import CORPUS

    monkeypatch.setattr(lexical, "CHUNK_TOKENS", 300)  # dozens of chunks, as a large build has
    lines = [normalize(line) for path in sorted(CORPUS.glob("*.txt"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    corpora = [lines, [*(s for line in lines for s in line.split(". ")), "Zzyzx qwerty", "|"]]
    built = LexicalIndex.build(*corpora, into=(tmp_path / "passages", tmp_path / "sentences"))  # as a build does
    vocabulary: dict[str, int] = {"": 0}
    ids = [[[vocabulary.setdefault(t, len(vocabulary)) for t in lexical_terms(text)] or [0] for text in texts]
           for texts in corpora]
    assert built[0].vocabulary == vocabulary and "zzyzx" not in {t for i in ids[0] for t in i}
    for index, texts_ids in zip(built, ids):
        plain = bm25s.BM25(k1=lexical.K1, b=lexical.B)
        plain.index((texts_ids, vocabulary), show_progress=False)
        for key in ("data", "indices", "indptr"):
            assert np.array_equal(index.postings[key], plain.scores[key]), key
    assert np.array_equal(bm25s.BM25.load(str(tmp_path / "passages")).scores["indptr"], built[0].postings["indptr"])
    read = bm25s.BM25.load(str(tmp_path / "sentences"))
    question = built[1].ids(lexical_terms(normalize("Hải Phòng hợp tác với bao nhiêu địa phương?")))
    # the same postings summed (bm25s in float32, term by term; here in float64): equal to float32's precision
    assert np.allclose(read.get_scores(question.tolist()), built[1].scores(question), rtol=1e-6, atol=0)
    assert read.vocab_dict == vocabulary and read.scores["num_docs"] == len(corpora[1])
