"""Hỏi Đáp's core: from Vietnamese documents to ranked, highlighted answer sentences.

The path of data: ``documents`` (files → text) → ``sentences`` and ``passages`` (spans) → ``embeddings``
(vectors) → ``store`` (SQLite + FAISS, built by ``build``) → ``search`` (question → ``results``).
"""
