"""Train the reader of issue 15 (hoidap.index.reader): answer-sentence scoring and answer spans.

The committed ``index/models/reader.safetensors`` and its record ``reader.json`` were made with
(see ``reader.json`` for the exact command, figures and time; run from the repository root):

    .venv/bin/python train/reader.py --max-questions 28000 --seed 0 --layers 6 --threads 2 --log-every 100 --out index/models

Data (read from ``../shared/train/``, never copied; CC BY-SA): SQuAD v1.1 train (English) and MLQA-vi
dev (Vietnamese). MLQA-vi is split by article: ``--holdout`` (100) questions' articles are held out for
the figures in the record, the rest is trained on, repeated ``--vi-repeat`` times. SQuAD questions whose
answer text occurs several times in the paragraph (``squad-v1.1.train.ambiguous-answer-start.txt``;
their ``answer_start`` is a guess) are left out, and ``--holdout-squad`` questions from held-out
articles give English figures. XQuAD-vi (``../shared/eval/``) is the test set: never read here.

Examples: each question is a group of 4 sentences of its context, split with the project's splitter:
the one holding ``answer_start`` (positive) and up to 3 others of the same paragraph, the group filled
(and, one time in four, one of them replaced) with sentences of other paragraphs of the same article.
Loss: softmax cross-entropy over the group's answer logits + binary cross-entropy on each (so that the
sigmoid is a probability on its own) + cross-entropy of the start and end tokens on the positive.

Deterministic given ``--seed`` (data order, adapter init, dropout; ``torch.use_deterministic_algorithms``)
on the same kind of CPU and thread count (2): run twice on this machine (AMD EPYC), it gave the same tensors
(the record's ``tensors_sha256``); a reader trained on another CPU was not reproduced here. ``--smoke`` runs
a few steps on a tiny slice (the tests do).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "train"
GROUP = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DATA, help="folder of the training data")
    p.add_argument("--max-questions", type=int, default=28000, help="SQuAD questions trained on (sampled)")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the sampled questions")
    p.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: from --epochs)")
    p.add_argument("--batch", type=int, default=8, help="questions per step (x4 sentences)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--chunk", type=int, default=8, help="rows per forward pass, sorted by length")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layers", type=int, default=6, help="transformer layers of the default model kept")
    p.add_argument("--rank", type=int, default=16, help="LoRA rank")
    p.add_argument("--vi-repeat", type=int, default=4, help="times the MLQA-vi training questions are seen")
    p.add_argument("--holdout", type=int, default=100, help="MLQA-vi questions held out (whole articles)")
    p.add_argument("--holdout-squad", type=int, default=500, help="SQuAD questions held out (whole articles)")
    # one thread: on this shared machine a step took 1 s with one and 2-3.5 s with two when others ran
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--erase", type=float, default=0.5,
                   help="share of groups whose negatives include the positive with its answer erased")
    p.add_argument("--no-baseline", action="store_true", help="skip the e5 vector baseline of the figures")
    p.add_argument("--out", type=Path, default=ROOT / "index" / "models", help="folder for reader.safetensors/.json")
    p.add_argument("--evaluate", type=Path, help="only compute the held-out figures of these saved weights")
    p.add_argument("--smoke", action="store_true", help="a few steps on a tiny slice (tests)")
    p.add_argument("--log-every", type=int, default=25)
    args = p.parse_args(argv)
    if args.smoke:
        args.max_questions, args.steps, args.batch, args.holdout, args.holdout_squad = 16, 3, 2, 6, 6
        args.vi_repeat, args.log_every = 1, 1
    return args


# ------------------------------------------------------------------------------------------------- data
def load_articles(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["data"]


def article_examples(article: dict, skip: set[str]) -> list[dict]:
    """One example per usable question: its sentences (texts), the positive's index, the answer's offsets in it."""
    from hoidap.index.sentences import split_sentences

    paragraphs = []
    for para in article["paragraphs"]:
        ctx = para["context"]
        paragraphs.append((ctx, split_sentences(ctx), para["qas"]))
    examples = []
    for p_index, (ctx, spans, qas) in enumerate(paragraphs):
        for qa in qas:
            if qa["id"] in skip or not qa["answers"]:
                continue
            ans = qa["answers"][0]
            a0 = ans["answer_start"]
            a1 = a0 + len(ans["text"])
            if ctx[a0:a1] != ans["text"]:
                continue
            pos = [k for k, s in enumerate(spans) if s.start <= a0 and a1 <= s.end]
            if not pos:  # the answer crosses a sentence boundary
                continue
            k = pos[0]
            examples.append({
                "id": qa["id"], "question": qa["question"], "paragraph": p_index,
                "sentences": [ctx[s.start:s.end] for s in spans], "positive": k,
                "answer": (a0 - spans[k].start, a1 - spans[k].start), "answer_text": ans["text"],
            })
    others = [[ctx[s.start:s.end] for s in spans] for ctx, spans, _ in paragraphs]
    for ex in examples:
        ex["elsewhere"] = [s for n, sents in enumerate(others) if n != ex["paragraph"] for s in sents]
    return examples


def split_by_article(articles: list[dict], n_held: int, rng: random.Random) -> tuple[list[dict], list[dict]]:
    """Articles in a seeded order: the first ones until ``n_held`` questions are held out, the rest trained on."""
    order = list(articles)
    rng.shuffle(order)
    held, train, count = [], [], 0
    for a in order:
        n = sum(len(p["qas"]) for p in a["paragraphs"])
        if count < n_held:
            held.append(a)
            count += n
        else:
            train.append(a)
    return held, train


VAGUE = {"en": ["", "", "many", "some", "several", "a number of", "the"],
         "vi": ["", "", "nhiều", "một số", "các", "những", "một vài"]}


def erased(ex: dict, rng: random.Random) -> str:
    """The positive sentence with its answer cut out or replaced by a vague word ("19 địa phương" -> "nhiều
    địa phương"): a near-duplicate that does not answer, the confusion the reader must not make."""
    sentence = ex["sentences"][ex["positive"]]
    a0, a1 = ex["answer"]
    words = VAGUE["vi" if ex["id"].startswith("mlqa") or not ex["question"].isascii() else "en"]
    text = " ".join(f"{sentence[:a0].rstrip()} {rng.choice(words)} {sentence[a1:].lstrip()}".split())
    return re.sub(r"\s+([,.;:!?])", r"\1", text)


def make_group(ex: dict, rng: random.Random, erase: float = 0.0) -> tuple[list[str], int]:
    """The positive and 3 negatives (same paragraph first, then other paragraphs), shuffled; the positive's index.

    With probability ``erase`` one negative is the positive with its answer erased (:func:`erased`).
    """
    same = [s for k, s in enumerate(ex["sentences"]) if k != ex["positive"]]
    rng.shuffle(same)
    negatives = same[: GROUP - 1]
    if len(negatives) == GROUP - 1 and ex["elsewhere"] and rng.random() < 0.25:
        negatives[-1] = rng.choice(ex["elsewhere"])
    if erase and rng.random() < erase:
        negatives = [erased(ex, rng), *negatives][: GROUP - 1]
    pool = list(ex["elsewhere"])
    while len(negatives) < GROUP - 1 and pool:
        negatives.append(pool.pop(rng.randrange(len(pool))))
    while len(negatives) < GROUP - 1:  # an article of one paragraph and few sentences: repeat one
        negatives.append(negatives[-1] if negatives else ".")
    group = [ex["sentences"][ex["positive"]], *negatives]
    order = list(range(GROUP))
    rng.shuffle(order)
    return [group[i] for i in order], order.index(0)


def token_span(encoding, a0: int, a1: int) -> tuple[int, int] | None:  # noqa: ANN001
    """The first and last sentence tokens overlapping characters ``[a0, a1)``, or None if cut off."""
    idx = [i for i, (s, (a, b)) in enumerate(zip(encoding.sequence_ids, encoding.offsets))
           if s == 1 and b > a and b > a0 and a < a1]
    if not idx:
        return None
    last_char = max(b for s, (a, b) in zip(encoding.sequence_ids, encoding.offsets) if s == 1)
    if last_char < a1:  # the sentence was truncated before the answer's end
        return None
    return idx[0], idx[-1]


# ----------------------------------------------------------------------------------------------- scoring
# SQuAD's answer normalization and F1, as `hoidap eval` computes them (one definition for both)
from hoidap.index.evaluate import f1_score, normalize_answer  # noqa: E402


def evaluate(net, tokenizer, examples: list[dict], threshold: float, e5=None) -> dict:  # noqa: ANN001
    """Sentence selection among the paragraph's sentences, and spans read from the gold sentence
    (and from the reader's first sentence: ``top_*``); ``threshold_sweep`` gives the share of spans
    given and their F1 at several span thresholds.

    With ``e5`` (an Embedder), also the default model's own sentence selection (query-passage cosine)
    and an untuned fusion of both: log softmax(cosine / 0.02) over the paragraph + log sigmoid(reader logit).
    """
    import torch

    from hoidap.index import reader as R

    net.eval()
    rows = []
    with torch.no_grad():
        for ex in examples:
            sents = ex["sentences"]
            encs = R.pair_encodings(tokenizer, [ex["question"]] * len(sents), sents)
            ids, mask = R.pad(encs, tokenizer.token_id("<pad>"))
            answer, start, end = (t.numpy() for t in net(torch.from_numpy(ids), torch.from_numpy(mask)))
            top = int(np.argmax(answer))
            row = {"right": top == ex["positive"], "single": len(sents) == 1}
            if e5 is not None:
                cos = e5.encode(sents, "passage") @ e5.encode([ex["question"]], "query")[0]
                z = cos / 0.02
                fused = z - z.max() - np.log(np.exp(z - z.max()).sum()) - np.logaddexp(0.0, -answer)
                row["e5_right"] = int(np.argmax(cos)) == ex["positive"]
                row["fused_right"] = int(np.argmax(fused)) == ex["positive"]
            for name, k in (("gold", ex["positive"]), ("top", top)):
                allowed = R.sentence_tokens(encs[k])[: start.shape[1]]
                i, j, p = R.best_span(start[k, : len(allowed)], end[k, : len(allowed)], allowed)
                a, b = R.snap_to_words(sents[k], encs[k].offsets[i][0], encs[k].offsets[j][1])
                a, b = R.extend_counted(ex["question"], sents[k], a, b)
                pred = sents[k][a:b]
                row[name] = (float(normalize_answer(pred) == normalize_answer(ex["answer_text"])),
                             f1_score(pred, ex["answer_text"]), p)
            rows.append(row)
    net.train()
    n = max(len(rows), 1)

    def given(t: float, name: str = "gold") -> tuple[float, float, float]:
        kept = [r[name] for r in rows if r[name][2] >= t]
        m = max(len(kept), 1)
        return (round(len(kept) / n, 4), round(sum(k[0] for k in kept) / m, 4), round(sum(k[1] for k in kept) / m, 4))

    share, em_given, f1_given = given(threshold)
    extra = {} if e5 is None else {
        "e5_sentence_accuracy": round(sum(r["e5_right"] for r in rows) / n, 4),
        "fused_sentence_accuracy": round(sum(r["fused_right"] for r in rows) / n, 4)}
    return {**extra,
        "questions": len(rows), "sentence_accuracy": round(sum(r["right"] for r in rows) / n, 4),
        "single_sentence_paragraphs": sum(r["single"] for r in rows),
        "span_em": round(sum(r["gold"][0] for r in rows) / n, 4),
        "span_f1": round(sum(r["gold"][1] for r in rows) / n, 4),
        "span_given_share": share, "span_em_given": em_given, "span_f1_given": f1_given,
        "top_sentence_span_f1": round(sum(r["top"][1] for r in rows) / n, 4),
        "threshold_sweep": {str(t): dict(zip(("given_share", "em_given", "f1_given"), given(t)))
                            for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)},
    }


def baseline_accuracy(examples: list[dict]) -> float:
    """Sentence selection by the default model's own vectors (query vs passage cosine): what the reader must beat."""
    from hoidap.index.embeddings import Embedder

    emb = Embedder(backend="onnx-int8")
    right = 0
    for ex in examples:
        q = emb.encode([ex["question"]], "query")[0]
        s = emb.encode(ex["sentences"], "passage")
        right += int(int(np.argmax(s @ q)) == ex["positive"])
    return round(right / max(len(examples), 1), 4)


def forward_sorted(net, ids: np.ndarray, mask: np.ndarray, chunk: int):  # noqa: ANN001, ANN201
    """``net`` over the rows in chunks of similar length, each padded to its own longest: the same outputs
    (pad positions get logit -1e4) for about a third less work than padding every row to the batch's longest."""
    import torch

    lengths = mask.sum(1)
    order = np.argsort(-lengths, kind="stable")
    answers, starts, ends = [], [], []
    for c in range(0, len(order), chunk):
        rows = order[c:c + chunk]
        width = int(lengths[rows].max())
        a, s, e = net(torch.from_numpy(ids[rows, :width]), torch.from_numpy(mask[rows, :width]))
        fill = (0, ids.shape[1] - width)
        answers.append(a)
        starts.append(torch.nn.functional.pad(s, fill, value=-1e4))
        ends.append(torch.nn.functional.pad(e, fill, value=-1e4))
    back = torch.from_numpy(np.argsort(order, kind="stable"))
    return torch.cat(answers)[back], torch.cat(starts)[back], torch.cat(ends)[back]


# ------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.time()
    import torch
    from safetensors.torch import save_file

    from hoidap.index import reader as R
    from hoidap.index.convert_e5 import ensure_default_model
    from hoidap.index.embeddings import Embedder  # imported with tokens, not an hour later
    from hoidap.index.tokens import Tokens

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    model_dir = ensure_default_model()
    tokenizer = Tokens(model_dir)  # what the Reader tokenizes with at query time
    pad_id = tokenizer.token_id("<pad>")

    # data
    vi_held_articles, vi_train_articles = split_by_article(load_articles(args.data / "mlqa-vi.dev.json"), args.holdout,
                                                           random.Random(f"mlqa-{args.seed}"))
    vi_held = [e for a in vi_held_articles for e in article_examples(a, set())]
    vi_train = [e for a in vi_train_articles for e in article_examples(a, set())]
    ambiguous = set((args.data / "squad-v1.1.train.ambiguous-answer-start.txt").read_text().split())
    squad = load_articles(args.data / "squad-v1.1.train.json")
    if args.smoke:
        squad = squad[:3]
    en_held_articles, en_train_articles = split_by_article(squad, args.holdout_squad, random.Random(f"squad-{args.seed}"))
    en_held = [e for a in en_held_articles for e in article_examples(a, ambiguous)][: args.holdout_squad]
    en_train = [e for a in en_train_articles for e in article_examples(a, ambiguous)]
    rng.shuffle(en_train)
    en_train = en_train[: args.max_questions]
    if args.smoke:
        vi_held, vi_train = vi_held[: args.holdout], vi_train[:8]
    train = en_train + vi_train * args.vi_repeat
    rng.shuffle(train)
    steps_per_epoch = math.ceil(len(train) / args.batch)
    steps = args.steps or max(1, int(steps_per_epoch * args.epochs))
    print(f"train {len(en_train)} SQuAD + {len(vi_train)}x{args.vi_repeat} MLQA-vi questions; held out "
          f"{len(vi_held)} MLQA-vi, {len(en_held)} SQuAD; {steps} steps of {args.batch} questions", flush=True)

    if args.evaluate:  # figures of saved weights, written into the record beside them if there is one
        net = R.load_torch_reader(model_dir, args.evaluate)
        e5 = Embedder(backend="onnx-int8")
        figures = {"mlqa_vi_heldout": evaluate(net, tokenizer, vi_held, R.SPAN_THRESHOLD, e5),
                   "squad_heldout": evaluate(net, tokenizer, en_held, R.SPAN_THRESHOLD, e5)}
        print(json.dumps(figures, indent=1), flush=True)
        record_path = Path(args.evaluate).with_suffix(".json")
        if record_path.exists():
            record = json.loads(record_path.read_text(encoding="utf-8"))
            for key, value in figures.items():
                record["figures"].setdefault(key, {}).update(value)
            record["figures_evaluated_by"] = " ".join(
                shlex.quote(a) for a in [".venv/bin/python", "train/reader.py", *(argv if argv is not None else sys.argv[1:])])
            record_path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return figures

    # model
    net = R.build_torch_reader(model_dir, args.layers, args.rank, 2.0 * args.rank)
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    print(f"learned parameters: {sum(p.numel() for p in params):,}", flush=True)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))

    def batch_of(step: int):  # noqa: ANN202
        exs = [train[(step * args.batch + i) % len(train)] for i in range(args.batch)]
        texts, questions, positives, spans = [], [], [], []
        for ex in exs:
            group, pos = make_group(ex, rng, args.erase)
            texts += group
            questions += [ex["question"]] * GROUP
            positives.append(pos)
        encs = R.pair_encodings(tokenizer, questions, texts)
        for g, (ex, pos) in enumerate(zip(exs, positives)):
            spans.append(token_span(encs[g * GROUP + pos], *ex["answer"]))
        ids, mask = R.pad(encs, pad_id)
        allowed = np.zeros_like(ids, dtype=bool)
        for n, e in enumerate(encs):
            a = R.sentence_tokens(e)
            allowed[n, : len(a)] = a
        return ids, mask, allowed, positives, spans

    ce = torch.nn.CrossEntropyLoss()
    bce = torch.nn.BCEWithLogitsLoss()
    t0 = time.time()
    running = []
    for step in range(steps):
        ids, mask, allowed, positives, spans = batch_of(step)
        answer, start, end = forward_sorted(net, ids, mask, args.chunk)
        groups = answer.view(-1, GROUP)
        target = torch.tensor(positives)
        labels = torch.zeros_like(groups)
        labels[torch.arange(len(positives)), target] = 1.0
        loss_rank = ce(groups, target)
        loss_prob = bce(groups, labels)
        rows = [g * GROUP + p for g, (p, s) in enumerate(zip(positives, spans)) if s is not None]
        loss_span = torch.zeros(())
        if rows:
            fill = torch.finfo(start.dtype).min
            keep = torch.from_numpy(allowed[rows])
            st = start[rows].masked_fill(~keep, fill)
            en = end[rows].masked_fill(~keep, fill)
            ts = torch.tensor([s[0] for s in spans if s is not None])
            te = torch.tensor([s[1] for s in spans if s is not None])
            loss_span = (ce(st, ts) + ce(en, te)) / 2
        loss = loss_rank + loss_prob + loss_span
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        running.append((loss_rank.item(), loss_prob.item(), loss_span.item()))
        if (step + 1) % args.log_every == 0 or step + 1 == steps:
            r = np.mean(running, axis=0)
            running = []
            rate = (step + 1) / (time.time() - t0)
            print(f"step {step + 1}/{steps} rank {r[0]:.3f} prob {r[1]:.3f} span {r[2]:.3f} "
                  f"{rate:.2f} steps/s, eta {(steps - step - 1) / rate / 60:.1f} min", flush=True)
    train_seconds = time.time() - t0

    # the weights first: nothing after training may lose them
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"layers": str(args.layers), "rank": str(args.rank), "alpha": str(2.0 * args.rank), "seed": str(args.seed)}
    state = {k: v.to(torch.float16).contiguous() for k, v in net.learned_state().items()}
    weights = args.out / "reader.safetensors"
    save_file(state, str(weights), metadata=meta)
    print(f"wrote {weights}", flush=True)

    e5 = None
    if not (args.smoke or args.no_baseline):
        try:
            e5 = Embedder(backend="onnx-int8")
            e5.encode(["thử"], "query")
        except Exception as exc:  # noqa: BLE001 - the figures without the baseline rather than no record
            print(f"no e5 baseline: {exc}", flush=True)
            e5 = None
    figures = {
        "mlqa_vi_heldout": evaluate(net, tokenizer, vi_held, R.SPAN_THRESHOLD, e5),
        "squad_heldout": evaluate(net, tokenizer, en_held, R.SPAN_THRESHOLD, e5),
    }
    print(json.dumps(figures, indent=1), flush=True)
    record = {
        "what": "reader for hoidap.index.reader: LoRA adapters, LayerNorms and heads over the first layers "
                "of multilingual-e5-small (fp16)",
        "data": {
            "squad-v1.1.train.json": f"{len(en_train)} questions sampled (ambiguous answer_start left out); "
                                     "SQuAD v1.1, CC BY-SA 4.0",
            "mlqa-vi.dev.json": f"{len(vi_train)} questions x {args.vi_repeat} (articles not held out); "
                                "MLQA v1, CC BY-SA 3.0",
            "held_out": f"{len(vi_held)} MLQA-vi questions ({len(vi_held_articles)} whole articles), "
                        f"{len(en_held)} SQuAD train questions (whole articles)",
            "never_used": "../shared/eval/ (XQuAD-vi is the test set)",
        },
        "licence": "the learned parameters are an adaptation of CC BY-SA data: CC BY-SA 4.0",
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "train/reader.py", *(argv if argv is not None else sys.argv[1:])]),
        "seed": args.seed, "layers": args.layers, "rank": args.rank, "alpha": 2.0 * args.rank,
        "batch_questions": args.batch, "erase": args.erase, "group": GROUP, "lr": args.lr, "steps": steps,
        "max_question_tokens": R.MAX_QUESTION_TOKENS, "max_sentence_tokens": R.MAX_SENTENCE_TOKENS,
        "span_threshold": R.SPAN_THRESHOLD,
        "learned_parameters": sum(p.numel() for p in params),
        "training_seconds": round(train_seconds), "wall_seconds": round(time.time() - started),
        "machine": f"{platform.machine()}, {cpu_model()}, {args.threads} torch threads (shared 2-core machine), "
                   f"torch {torch.__version__}",
        "tensors_sha256": R.tensors_digest(weights),  # a re-run on such a CPU: the same digest
        "figures": figures,
        "figures_note": "sentence_accuracy: the positive ranked first among all sentences of its paragraph; "
                        "span_*: read from the gold sentence (SQuAD EM/F1, Vietnamese-aware normalization); "
                        "*_given: over spans whose probability reaches span_threshold",
    }
    (args.out / "reader.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) in {time.time() - started:.0f} s", flush=True)
    return record


def cpu_model() -> str:
    """The processor's name: the same seed gives the same weights on the same kind of CPU and thread count, and
    another kind's arithmetic kernels round otherwise."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")


if __name__ == "__main__":
    main()
