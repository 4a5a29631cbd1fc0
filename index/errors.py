"""Typed errors: every failure a user can cause or fix has its own class and a message that says what to do."""


class HoidapError(Exception):
    """Base class; the command line prints the message on one line and exits 1, the API maps it to JSON.

    ``vi`` says it in Vietnamese for the pages staff read (the class's :attr:`VI` unless given)."""

    VI: str | None = None

    def __init__(self, message: str, vi: str | None = None) -> None:
        super().__init__(message)
        self.vi = vi or self.VI


class NoIndexError(HoidapError):
    """No built index in the data directory yet."""

    VI = "Chưa có chỉ mục để tìm kiếm: người quản trị hãy lập chỉ mục tài liệu (hoidap index <thư mục tài liệu>)."


class CorruptIndexError(HoidapError):
    """The index files exist but cannot be read (truncated, wrong version, foreign files)."""

    VI = ("Chỉ mục bị hỏng hoặc do một phiên bản khác tạo ra: người quản trị hãy lập chỉ mục lại "
          "(hoidap index <thư mục tài liệu>).")


class ModelMismatchError(HoidapError):
    """The index was built with one model and is being queried with another."""


class ModelLoadError(HoidapError):
    """The chosen model could not be loaded (unknown name offline, broken folder, ...)."""


class QueryError(HoidapError):
    """The question is empty or too long."""


class DocumentError(HoidapError):
    """A document could not be read or decoded."""


class IndexBusyError(HoidapError):
    """Another `hoidap index` run holds the data directory."""

    VI = "Một lần lập chỉ mục khác đang chạy: hãy thử lại sau ít phút."
