"""Token ids (and their character offsets) for the ONNX backends, quick to load.

The ``tokenizers`` library builds the Unigram model of multilingual-e5's 250,002 pieces in about
0.9 s and 300 MB of memory: more than the rest of a one-question `hoidap ask`. SentencePiece, the
library XLM-R's vocabulary comes from, loads the same pieces in about 0.6 s and 25 MB. So for a
``tokenizer.json`` of that family (a Unigram model behind a Metaspace pre-tokenizer) the pieces are
written once as a SentencePiece model beside the ONNX files, and the text is normalized by the
tokenizer's own normalizer (a copy of ``tokenizer.json`` without its vocabulary) before
SentencePiece cuts it: the same ids as ``tokenizers`` gives (checked on 14,000 Vietnamese and
English texts, and in tests). Any other tokenizer runs on ``tokenizers`` as before.
"""

from __future__ import annotations

import json
from functools import cached_property, lru_cache
from pathlib import Path

from .onnx_export import ONNX_DIR, write_atomically

PIECES_FILE = "sentencepiece.model"
NORMALIZER_FILE = "normalizer.json"


class Tokens:
    """Token ids of ``model_dir``'s ``tokenizer.json``, without special tokens; offsets are characters of the text."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        self.pieces = ensure_sentencepiece(self.model_dir)
        if self.pieces is None:
            self.normalizer = self.sentencepiece = None
        else:
            import sentencepiece
            from tokenizers import Tokenizer

            self.sentencepiece = sentencepiece.SentencePieceProcessor(model_file=str(self.pieces))
            small = Tokenizer.from_file(str(self.pieces.with_name(NORMALIZER_FILE)))  # vocabulary cut short
            self.normalizer = small.normalizer
        self.prefix, self.suffix = _specials(self.full if self.pieces is None else small)

    @property
    def special_count(self) -> int:
        return len(self.prefix) + len(self.suffix)

    def wrap(self, ids: list[int]) -> list[int]:
        """``ids`` between the special tokens, as the model saw them in training."""
        return [*self.prefix, *ids, *self.suffix]

    @cached_property
    def full(self) -> "Tokenizer":  # noqa: F821
        """``tokenizers``' own: for other tokenizers, and for offsets in text its normalizer changes."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def token_id(self, token: str) -> int | None:
        if self.sentencepiece is not None:
            found = self.sentencepiece.piece_to_id(token)
            return found if self.sentencepiece.id_to_piece(found) == token else None
        return self.full.token_to_id(token)

    def ids(self, texts: list[str]) -> list[list[int]]:
        if self.sentencepiece is None:
            return [e.ids for e in self._full_encodings(texts)]
        return self.sentencepiece.encode([self._normalized(t) for t in texts])

    def ids_and_offsets(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Ids with each token's ``(start, end)`` in the text, as ``tokenizers`` gives them."""
        done: dict[int, tuple[list[int], list[tuple[int, int]]]] = {}
        if self.sentencepiece is not None:
            for n, text in enumerate(texts):
                # Offsets into the normalized text are offsets into the text when the normalizer changed
                # nothing; a text that starts with a bare "▁" (a space, a digit or a letter the pieces
                # begin no word with) is left to tokenizers too, whose first offset differs there.
                if self._normalized(text) == text:
                    pieces = self._pieces(text)
                    if pieces[0] and pieces[0][0] != self.bare_space:
                        done[n] = pieces
        rest = [n for n in range(len(texts)) if n not in done]
        for n, encoding in zip(rest, self._full_encodings([texts[n] for n in rest])):
            done[n] = (encoding.ids, encoding.offsets)
        return [done[n] for n in range(len(texts))]

    def _normalized(self, text: str) -> str:
        """The text as Metaspace sees it: normalized, without the leading space it would not mark twice."""
        normalized = self.normalizer.normalize_str(text)
        return normalized[1:] if normalized.startswith(" ") else normalized

    @cached_property
    def bare_space(self) -> int | None:
        return self.token_id("▁")

    def _pieces(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        proto = self.sentencepiece.encode(text, return_type="proto")
        chars = _char_index(text)
        return [p.id for p in proto.pieces], [(chars[p.begin], chars[p.end]) for p in proto.pieces]

    def _full_encodings(self, texts: list[str]) -> list:
        # one text (a question) is encoded here: encode_batch would hand it to a thread pool and back
        return self.full.encode_batch(texts, add_special_tokens=False) if len(texts) > 1 \
            else [self.full.encode(t, add_special_tokens=False) for t in texts]


def _specials(tokenizer: "Tokenizer") -> tuple[list[int], list[int]]:  # noqa: F821
    """The special tokens ``tokenizer`` puts before and after one text (``<s>``, ``</s>``)."""
    core = tokenizer.encode("x", add_special_tokens=False).ids
    whole = tokenizer.encode("x").ids
    at = next(i for i in range(len(whole) - len(core) + 1) if whole[i:i + len(core)] == core)
    return whole[:at], whole[at + len(core):]


@lru_cache(maxsize=4)
def tokens_of(model_dir: Path) -> Tokens:
    """One :class:`Tokens` per model folder in a process: the encoder and the reader share its pieces."""
    return Tokens(Path(model_dir))


def _char_index(text: str) -> list[int]:
    """For each UTF-8 byte offset of ``text`` (and its end), the character it falls in."""
    index = []
    for n, ch in enumerate(text):
        index.extend([n] * len(ch.encode("utf-8")))
    index.append(len(text))
    return index


def ensure_sentencepiece(model_dir: Path) -> Path | None:
    """The SentencePiece model of ``model_dir``'s Unigram + Metaspace tokenizer, written once; None for
    any other kind of tokenizer."""
    dest = Path(model_dir) / ONNX_DIR / PIECES_FILE
    if dest.exists() and dest.with_name(NORMALIZER_FILE).exists():
        return dest
    config = json.loads((Path(model_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    model, pre = config.get("model") or {}, config.get("pre_tokenizer") or {}
    if model.get("type") != "Unigram" or model.get("byte_fallback") or pre.get("type") != "Metaspace" \
            or pre.get("prepend_scheme", "always") != "always" or pre.get("split", True) is not True:
        return None
    dest.parent.mkdir(exist_ok=True)
    write_atomically(dest, lambda tmp: tmp.write_bytes(_model_proto(model["vocab"], model["unk_id"])))
    config["model"]["vocab"] = model["vocab"][: model["unk_id"] + 1]  # only the normalizer is wanted
    normalizer = dest.with_name(NORMALIZER_FILE)
    write_atomically(normalizer, lambda tmp: tmp.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8"))
    return dest


def _model_proto(vocab: list[list], unk_id: int) -> bytes:
    """A SentencePiece Unigram model of the same pieces in the same order, so its ids are the same ids."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    kinds = pb.ModelProto.SentencePiece
    proto = pb.ModelProto()
    proto.trainer_spec.model_type = pb.TrainerSpec.UNIGRAM
    proto.trainer_spec.vocab_size = len(vocab)
    proto.trainer_spec.unk_id = unk_id
    # Every other piece is an ordinary one, as in tokenizer.json: text that spells "<s>" is that token
    # there too. The special tokens around a text are added by the caller, not by SentencePiece.
    proto.trainer_spec.bos_id = proto.trainer_spec.eos_id = proto.trainer_spec.pad_id = -1
    proto.normalizer_spec.name = "identity"  # normalized beforehand by the tokenizer's own normalizer
    proto.normalizer_spec.add_dummy_prefix = True
    proto.normalizer_spec.remove_extra_whitespaces = False
    proto.normalizer_spec.escape_whitespaces = True
    for n, (piece, score) in enumerate(vocab):
        added = proto.pieces.add()
        added.piece, added.score = piece, score
        added.type = kinds.UNKNOWN if n == unk_id else kinds.NORMAL
    return proto.SerializeToString()
