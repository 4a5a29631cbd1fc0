"""A learned reader: does this sentence answer this question, and which words of it are the answer.

A cross-encoder over one (question, sentence) pair, ``<s> query: Q </s></s> S </s>``, gives
- ``prob``: the probability that the sentence holds the answer (sigmoid of a head on ``<s>``);
- start/end logits over the sentence's tokens, from which :meth:`Reader.read` picks the answer phrase.

What it is made of (issue 15, chosen by measurement on this 2-core machine):
- the default model (multilingual-e5-small) cut to its first ``layers`` transformer layers (6): the
  reader runs at query time on the best answer (for its phrase) and, when the other signals leave the best
  two close, on the best 3 in one batched ONNX call. Measured int8, one thread, on a busy 2-core machine:
  three pairs of 64 tokens took 6.7 ms with 3 layers, 9.1 ms with 4, 14 ms with 6 and 27 ms with all 12,
  one question's encoding 3-5.5 ms (``train/reader_latency.py`` times it on corpus sentences). 4 layers
  trained on 6,000 questions ranked worse than the e5 vectors alone; 6 layers on 28,000 rank better
  (``models/reader.json``);
- pairs cut to 32 question tokens and 64 sentence tokens (an answer past them is not read);
- low-rank adapters (LoRA) on every linear of the kept layers, their LayerNorms, and two small heads.
  Only these are learned (``train/reader.py``) and committed, in ``models/reader.safetensors`` (about
  2 MB); the embedding matrix and base weights stay the default model's own. The adapters are a small
  wrapper written here (:class:`LoRALinear` in :func:`build_torch_reader`) rather than ``peft``: it is
  30 lines, merges into the base weights for export, and keeps ``peft`` out of the dependencies.

At set-up the adapters are merged into the base weights and the reader is exported once to ONNX (fp32,
then int8 like the encoder), cached beside the model in ``onnx/`` under a name carrying the weights'
hash. At query time only ONNX Runtime and SentencePiece (:mod:`hoidap.index.tokens`) run: torch is imported only to build the export.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .convert_e5 import ensure_default_model
from .errors import ModelLoadError
from .text import fold_normalized

WEIGHTS = Path(__file__).parent / "models" / "reader.safetensors"
QUESTION_PREFIX = "query: "
MAX_QUESTION_TOKENS = 32
MAX_SENTENCE_TOKENS = 64
MAX_SPAN_TOKENS = 15
# Below this a span is not given (None): chosen on the MLQA-vi held-out slice of the training data
# (``threshold_sweep`` in models/reader.json): at 0.2 phrases were given for 61% of its questions at F1
# 0.73, at 0.3 for 52% at F1 0.75; between the two, for the share issue 15 asks (60%) at about its F1.
# span_prob is the joint softmax probability of the chosen start and end tokens.
SPAN_THRESHOLD = 0.25
INPUTS = ("input_ids", "attention_mask")
OUTPUTS = ("answer_logit", "start_logits", "end_logits")
TARGETS = ("query", "key", "value", "dense")  # every Linear of a BertLayer: attention q/k/v/out, FFN in/out

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reading:
    """The reader's view of one sentence: ``span`` is (start, end) character offsets into it, or None."""

    prob: float
    span: tuple[int, int] | None
    span_prob: float


SETTINGS = ("on", "off", "rerank")


def reader_setting(value: str | None = None) -> str:
    """``--reader``, else ``$HOIDAP_READER``, else ``on``: one of :data:`SETTINGS`. ``on`` reads the best
    answer for its phrase; ``rerank`` also lets the reader re-order close answers (``Weights.reranking``)."""
    chosen = (value or os.environ.get("HOIDAP_READER") or "on").lower()
    if chosen not in SETTINGS:
        raise ModelLoadError(f"the reader setting must be one of {', '.join(SETTINGS)}, not {chosen!r}")
    return chosen


def reader_available(value: str | None = None, weights: Path = WEIGHTS) -> bool:
    """Whether the reader is turned on (see :func:`reader_setting`) and its learned weights are present."""
    return reader_setting(value) != "off" and Path(weights).exists()


# ---------------------------------------------------------------------------------------------- torch
def build_torch_reader(model_dir: Path, layers: int = 6, rank: int = 16, alpha: float = 32.0):  # noqa: ANN201
    """The trainable reader in torch: the first ``layers`` of the model, LoRA on every linear, two heads.

    Only the adapters, the kept layers' LayerNorms and the heads require grad. Imports torch.
    """
    import torch
    from torch import nn
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    class LoRALinear(nn.Module):
        """``base(x) + scale * x A^T B^T`` with ``base`` frozen; B starts at zero so training starts at the base model."""

        def __init__(self, base: nn.Linear) -> None:
            super().__init__()
            self.base = base
            self.scale = alpha / rank
            self.lora_A = nn.Parameter(torch.randn(rank, base.in_features) / rank ** 0.5 / base.in_features ** 0.5)
            self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))

        def forward(self, x):  # noqa: ANN001, ANN202
            return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scale

        def merged(self) -> nn.Linear:
            out = nn.Linear(self.base.in_features, self.base.out_features)
            with torch.no_grad():
                out.weight.copy_(self.base.weight + self.scale * self.lora_B @ self.lora_A)
                out.bias.copy_(self.base.bias)
            return out

    class ReaderNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(
                _transformer_dir(Path(model_dir)), attn_implementation="eager",
                num_hidden_layers=layers, add_pooling_layer=False)
            for p in self.bert.parameters():
                p.requires_grad = False
            for layer in self.bert.encoder.layer:
                for name, module in list(layer.named_modules()):
                    for child_name, child in list(module.named_children()):
                        if isinstance(child, nn.Linear) and child_name in TARGETS:
                            setattr(module, child_name, LoRALinear(child))
                    if isinstance(module, nn.LayerNorm):
                        for p in module.parameters():
                            p.requires_grad = True
            hidden = self.bert.config.hidden_size
            # on <s> and on the mean of all tokens: <s> alone barely differs between sentences in the first
            # layers, and the answer logit learned far more slowly from it (trial runs)
            self.answer_head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
            self.span_head = nn.Linear(hidden, 2)
            self.config = {"layers": layers, "rank": rank, "alpha": alpha}

        def forward(self, input_ids, attention_mask):  # noqa: ANN001, ANN202
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            weight = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weight).sum(1) / weight.sum(1).clamp(min=1.0)
            answer = self.answer_head(torch.cat([hidden[:, 0], mean], -1)).squeeze(-1)
            start, end = self.span_head(hidden).unbind(-1)
            return answer, start, end

        def learned_state(self) -> dict:
            """What is saved: the parameters that require grad (adapters, LayerNorms, heads)."""
            return {k: v.detach() for k, v in self.named_parameters() if v.requires_grad}

        def merge(self) -> None:
            """Fold the adapters into the base weights (for export): the same function, plain Linears."""
            for module in list(self.modules()):
                for child_name, child in list(module.named_children()):
                    if isinstance(child, LoRALinear):
                        setattr(module, child_name, child.merged())

    return ReaderNet()


def load_torch_reader(model_dir: Path, weights: Path = WEIGHTS):  # noqa: ANN201
    """The trained reader in torch (eval mode, adapters not merged), from ``weights``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(weights), "pt") as f:
        meta = f.metadata() or {}
    net = build_torch_reader(model_dir, int(meta.get("layers", 6)), int(meta.get("rank", 16)),
                             float(meta.get("alpha", 32.0)))
    state = {k: v.float() for k, v in load_file(str(weights)).items()}
    missing = set(net.learned_state()) - set(state)
    if missing:
        raise ModelLoadError(f"{weights} lacks {len(missing)} reader parameters, e.g. {sorted(missing)[0]}")
    net.load_state_dict(state, strict=False)
    return net.eval()


def tensors_digest(weights: Path = WEIGHTS) -> str:
    """SHA-256 of the saved tensors, by name: what a re-run of ``train/reader.py`` must give again and its
    record keeps (the file's bytes are not enough: safetensors writes its metadata in no fixed order)."""
    from safetensors.numpy import load_file

    digest = hashlib.sha256()
    for name, tensor in sorted(load_file(weights).items()):
        digest.update(name.encode())
        digest.update(tensor.tobytes())
    return digest.hexdigest()


def export_fp32(model_dir: Path, weights: Path, dest: Path) -> None:
    """Merge the adapters and trace the reader with dynamic batch and sequence axes."""
    import torch

    net = load_torch_reader(model_dir, weights)
    net.merge()
    example = torch.tensor([[0, 3293, 12, 2], [0, 3293, 2, 1]])
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (example, (example != 1).long()), str(dest), input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "answer_logit": {0: "batch"},
                          "start_logits": axes, "end_logits": axes},
            opset_version=17, dynamo=False,
        )


def ensure_reader_onnx(model_dir: Path, weights: Path = WEIGHTS, int8: bool = True) -> Path:
    """The reader's ONNX file (int8 or fp32) for these weights, exported once and cached beside the model."""
    from .onnx_export import ONNX_DIR, quantize_int8, write_with_external_data

    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:12]
    folder = Path(model_dir) / ONNX_DIR
    folder.mkdir(exist_ok=True)
    fp32 = folder / f"reader-{digest}-mapped.onnx"  # weights in FILE.data, mapped (hoidap.index.onnx_export)
    if not fp32.exists():
        log.warning("exporting the reader to ONNX once (about 10 s)")
        write_with_external_data(fp32, lambda tmp: export_fp32(Path(model_dir), Path(weights), tmp))
    if not int8:
        return fp32
    dest = folder / f"reader-{digest}-mapped-qint8.onnx"
    if not dest.exists():
        log.warning("quantizing the reader to int8 once (about 5 s)")
        write_with_external_data(dest, lambda tmp: quantize_int8(fp32, tmp))
    return dest


def _transformer_dir(model_dir: Path) -> Path:
    from .onnx_export import _transformer_dir as find

    return find(model_dir)


# ------------------------------------------------------------------------------------------ tokens
@dataclass(frozen=True)
class Pair:
    """One (question, sentence) pair as the reader sees it: ``<s> query: Q </s></s> S </s>``.

    ``sequence_ids`` says whose each token is (0 the question's, 1 the sentence's, None a special
    token), ``offsets`` are characters of the sentence for its tokens ((0, 0) for the others).
    """

    ids: list[int]
    offsets: list[tuple[int, int]]
    sequence_ids: list[int | None]


def pair_encodings(tokens, questions: list[str], sentences: list[str]) -> list[Pair]:  # noqa: ANN001
    """The pairs of ``questions[i]`` and ``sentences[i]``, the question cut to 32 tokens and the sentence to 64.

    ``tokens`` is a :class:`hoidap.index.tokens.Tokens` (SentencePiece over the model's pieces: the
    same ids and offsets as ``tokenizers`` in a tenth of its memory); the template is XLM-R's pair
    template of ``tokenizer.json`` (tested against ``tokenizers``' own pair encoding).
    """
    qs = tokens.ids([QUESTION_PREFIX + q for q in questions])
    ss = tokens.ids_and_offsets(list(sentences))
    start, end = tokens.prefix, tokens.suffix
    pairs = []
    for q, (s, offsets) in zip(qs, ss):
        q, s, offsets = q[:MAX_QUESTION_TOKENS], s[:MAX_SENTENCE_TOKENS], list(offsets[:MAX_SENTENCE_TOKENS])
        head = [*start, *q, *end, *end]
        ids = [*head, *s, *end]
        pairs.append(Pair(
            ids=ids,
            offsets=[(0, 0)] * len(head) + [tuple(o) for o in offsets] + [(0, 0)] * len(end),
            sequence_ids=[None] * len(start) + [0] * len(q) + [None] * 2 * len(end) + [1] * len(s) + [None] * len(end),
        ))
    return pairs


def pad(encodings: list[Pair], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for n, e in enumerate(encodings):
        ids[n, : len(e.ids)] = e.ids
        mask[n, : len(e.ids)] = 1
    return ids, mask


def sentence_tokens(encoding) -> np.ndarray:  # noqa: ANN001
    """Which positions are the sentence's own (non-empty) tokens."""
    return np.array([s == 1 and b > a for s, (a, b) in zip(encoding.sequence_ids, encoding.offsets)], dtype=bool)


def best_span(start: np.ndarray, end: np.ndarray, allowed: np.ndarray,
              max_tokens: int = MAX_SPAN_TOKENS) -> tuple[int, int, float]:
    """The (start, end) token pair, start <= end < start + max_tokens, of highest probability.

    Probabilities are the softmaxes of the start and end logits over the allowed positions.
    """
    if not allowed.any():
        return 0, 0, 0.0
    ps, pe = _softmax(np.where(allowed, start, -np.inf)), _softmax(np.where(allowed, end, -np.inf))
    n = len(ps)
    joint = np.triu(np.outer(ps, pe)) - np.triu(np.outer(ps, pe), max_tokens)
    i, j = np.unravel_index(int(np.argmax(joint)), joint.shape)
    return int(i), int(j), float(joint[i, j]) if n else 0.0


def snap_to_words(text: str, a: int, b: int) -> tuple[int, int]:
    """Widen ``[a, b)`` to whole words and drop surrounding spaces and punctuation that hangs off it."""
    while a < b and text[a].isspace():
        a += 1
    while a > 0 and (text[a - 1].isalnum() or text[a - 1] in "_"):
        a -= 1
    while b < len(text) and (text[b].isalnum() or text[b] in "_"):
        b += 1
    # a number cut at its separator ("7,63" tokenized as "7", ",", "63") stays whole
    while b + 1 < len(text) and text[b] in ".,/" and text[b - 1].isdigit() and text[b + 1].isdigit():
        b += 2
        while b < len(text) and text[b].isalnum():
            b += 1
    while b > a and (text[b - 1].isspace() or text[b - 1] in ",.;:!?…)]}\"'”’»"):
        if text[b - 1] in ")]}\"'”’»" and _opens(text[a:b], text[b - 1]):
            break
        b -= 1
    while a < b and text[a] in "([{\"'“‘«" and not _closes(text[a:b], text[a]):
        a += 1
    return a, b


_COUNTED = re.compile(r"\bbao nhiêu\s+(\w+(?:\s+\w+)?)")
_NUMBER_WORDS = frozenset("một hai ba bốn năm sáu bảy tám chín mười mươi trăm nghìn ngàn triệu tỷ tỉ vạn chục".split())


def extend_counted(question: str, sentence: str, a: int, b: int) -> tuple[int, int]:
    """A bare number answering "bao nhiêu X?" takes the X that follows it: "19" -> "19 địa phương".

    Vietnamese answers name what is counted (the issue's "19 địa phương"); readers trained mostly on
    English SQuAD stop at the number. Only words the question itself puts after "bao nhiêu" are taken.
    """
    match = _COUNTED.search(question.lower())
    last = sentence[a:b].split()[-1].lower() if sentence[a:b].split() else ""
    if not match or not (last[-1:].isdigit() or last in _NUMBER_WORDS):
        return a, b
    return a, _counted_after(sentence, b, match.group(1).split())


def _counted_after(text: str, at: int, words: list[str]) -> int:
    """Where the longest run of ``words`` (from the first) following ``at`` in ``text`` ends; ``at`` if none does."""
    for n in range(len(words), 0, -1):
        following = re.match(r"\s+" + r"\s+".join(map(re.escape, words[:n])) + r"\b", text[at:], re.IGNORECASE)
        if following:
            return at + following.end()
    return at


_COUNTED_FOLDED = re.compile(r"\bbao nhieu\s+(\w+(?:\s+\w+)?)")
_NUMBER_AT_FOLDED = re.compile(r"\d+(?:[.,]\d+)*(?:\s+(?:" + "|".join(sorted({fold_normalized(w) for w in _NUMBER_WORDS},
                                                                               key=len, reverse=True)) + r")\b)*")


def counted_phrase(question: str, sentence: str) -> tuple[int, int] | None:
    """For "bao nhiêu X?", the one number of the sentence followed by X ("19 địa phương"), or None.

    What the question counts is said in its own words, so the phrase is found without the model when
    the reader is not sure of one: only where exactly one number of the sentence is followed by them.
    """
    folded = fold_normalized(sentence)  # matched without marks: "bao nhieu dia phuong" counts "địa phương" too
    match = _COUNTED_FOLDED.search(fold_normalized(question))
    if not match or len(folded) != len(sentence):  # offsets in the folded text must be offsets in the sentence
        return None
    words = match.group(1).split()
    found = [(number.start(), end) for number in _NUMBER_AT_FOLDED.finditer(folded)
             if (end := _counted_after(folded, number.end(), words)) > number.end()]
    return found[0] if len(found) == 1 else None


_PAIRS = {"(": ")", "[": "]", "{": "}", "“": "”", "‘": "’", "«": "»", '"': '"', "'": "'"}


def _opens(piece: str, closer: str) -> bool:
    return any(piece.count(o) >= piece.count(c) and o in piece for o, c in _PAIRS.items() if c == closer and o != c)


def _closes(piece: str, opener: str) -> bool:
    closer = _PAIRS.get(opener, "")
    return bool(closer) and (piece.count(closer) >= (2 if closer == opener else 1))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x))
    return e / e.sum()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ------------------------------------------------------------------------------------------- reader
class Reader:
    """The reader in ONNX Runtime (int8 by default): :meth:`read` scores sentences for one question.

    Loading exports the ONNX files on first use (torch is imported then only); later loads read them.
    """

    def __init__(self, model_dir: Path | None = None, weights: Path = WEIGHTS, int8: bool = True,
                 threads: int = 1, span_threshold: float = SPAN_THRESHOLD) -> None:
        self.model_dir = Path(model_dir) if model_dir else ensure_default_model()
        self.weights = Path(weights)
        self.int8 = int8
        self.threads = threads
        self.span_threshold = span_threshold
        if not self.weights.exists():
            raise ModelLoadError(f"no reader weights at {self.weights}: train them with train/reader.py")

    @cached_property
    def tokenizer(self):  # noqa: ANN201
        """The model's :class:`~hoidap.index.tokens.Tokens` (written beside the ONNX files on first use)."""
        from .tokens import tokens_of

        return tokens_of(self.model_dir)

    @cached_property
    def pad_id(self) -> int:
        return self.tokenizer.token_id("<pad>") or 1

    @cached_property
    def session(self):  # noqa: ANN201
        import onnxruntime as ort

        path = ensure_reader_onnx(self.model_dir, self.weights, self.int8)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def logits(self, question: str, sentences: list[str]) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
        """Encodings and raw outputs (answer logits, start and end logits) of one batched run."""
        encodings = pair_encodings(self.tokenizer, [question] * len(sentences), sentences)
        ids, mask = pad(encodings, self.pad_id)
        answer, start, end = self.session.run(list(OUTPUTS), {"input_ids": ids, "attention_mask": mask})
        return encodings, answer, start, end

    def read(self, question: str, sentences: list[str]) -> list[Reading]:
        """One :class:`Reading` per sentence, in order, from one ONNX call over all of them."""
        if not sentences:
            return []
        encodings, answer, start, end = self.logits(question, sentences)
        probs = _sigmoid(answer.astype(np.float64))
        readings = []
        for n, (sentence, encoding) in enumerate(zip(sentences, encodings)):
            allowed = sentence_tokens(encoding)[: start.shape[1]]
            i, j, p = best_span(start[n, : len(allowed)], end[n, : len(allowed)], allowed)
            span = None
            if p >= self.span_threshold and allowed.any():
                a, b = snap_to_words(sentence, encoding.offsets[i][0], encoding.offsets[j][1])
                a, b = extend_counted(question, sentence, a, b)
                span = (a, b) if b > a else None
            span = span or counted_phrase(question, sentence)
            readings.append(Reading(prob=float(probs[n]), span=span, span_prob=p))
        return readings
