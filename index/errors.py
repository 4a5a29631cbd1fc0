"""Typed errors: every failure a user can cause or fix has its own class and a message that says what to do."""


class HoidapError(Exception):
    """Base class; the command line prints the message on one line and exits 1, the API maps it to JSON."""


class NoIndexError(HoidapError):
    """No built index in the data directory yet."""


class CorruptIndexError(HoidapError):
    """The index files exist but cannot be read (truncated, wrong version, foreign files)."""


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
