"""The search as MCP (Model Context Protocol) tools, so AI assistants can ask the documents themselves.

One server definition for both transports: ``hoidap mcp`` serves it on stdin/stdout over an index it
opens, and the web app at ``/mcp`` (streamable HTTP) over the engine it is serving, behind the API's keys.
The tools answer through the JSON API's own request model and :meth:`Engine.search`, so an assistant
gets the same answers, confidences and checks as a chatbot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib.metadata import version
from typing import Annotated

from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from hoidap.index.errors import HoidapError, NoIndexError
from hoidap.index.results import SearchResponse
from hoidap.index.search import MAX_TOP_K, Engine

from .api import EXAMPLE_QUESTION, DocumentDetail, SearchRequest, document_detail
from .errors import error_response
from .feedback import MAX_COMMENT_CHARS, FeedbackStore, NotInIndex, Verdict, answer_row
from .feedback_routes import FeedbackRequest
from .security import bearer_token, is_key

PATH = "/mcp"
SENDER = "mcp"  # who sent feedback through the tools, as the feedback rows say
INSTRUCTIONS = ("Answers questions from the organisation's own Vietnamese documents. Ask `search` the user's "
                "question in Vietnamese; when `answered` is true, answer with answers[0] (its `span` is the exact "
                "phrase) and cite its title and source; when false, say the documents do not answer it. "
                "`get_document` reads a whole document. When the user says whether an answer was right, or which "
                "sentence is, tell `give_feedback`.")
SEARCH = (f"Search the indexed Vietnamese documents for the answer to a question, e.g. \"{EXAMPLE_QUESTION}\". "
          "Returns answer sentences ranked best first, each with its confidence, document_id, title, source and url "
          "(a page of the web app, relative to its address), and `span`, the exact answer phrase, when the reader "
          "finds one; then the passages they come from. `answered` is false when the documents do not answer the "
          "question: then say so rather than guess from the closest text.")
GET_DOCUMENT = ("Read one indexed document whole: its id, title, source, format, full text, and when it was modified "
                "and indexed (ISO 8601). Use it for the context around an answer of `search`, e.g. the report that "
                f"answers \"{EXAMPLE_QUESTION}\" (give that answer's document_id).")
GIVE_FEEDBACK = ("Record what the user said of an answer of `search`: `right` or `wrong` for that answer (its "
                 "document_id and sentence_id), or `answer` for another sentence of the document that does answer. "
                 "Staff read it on the admin pages, and confirmed answers become an evaluation set.")
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)

Question = Annotated[str, Field(description="the question, in Vietnamese", examples=[EXAMPLE_QUESTION])]
TopK = Annotated[int, Field(ge=1, le=MAX_TOP_K, description="how many passages to return")]
Source = Annotated[str | None, Field(description="only documents whose source starts so (a folder)")]
Formats = Annotated[list[str] | None, Field(description="only these formats (txt, md, html, htm, docx, pdf)")]
Since = Annotated[str | None, Field(description="only documents modified at or after this time (ISO 8601)",
                                    examples=["2020-01-01"])]
Until = Annotated[str | None, Field(description="only documents modified at or before this time (ISO 8601)")]
DocumentId = Annotated[str, Field(description="a `document_id` from `search`")]
SentenceId = Annotated[int, Field(ge=0, description="the answer's `sentence_id` from `search`")]
Comment = Annotated[str, Field(max_length=MAX_COMMENT_CHARS, description="what the user said, if anything")]


def build_server(current_engine: Callable[[], Engine], feedback: FeedbackStore, log_queries: bool = False) -> MCPServer:
    """The tools over whatever engine ``current_engine`` returns at each call (the app swaps in new builds);
    it raises :class:`NoIndexError` when there is none. ``feedback`` keeps what users said, and the questions
    when ``log_queries`` (``HOIDAP_LOG_QUERIES``)."""
    server = MCPServer("hoidap", title="Hỏi Đáp", version=version("hoidap"), instructions=INSTRUCTIONS,
                       log_level="WARNING")  # it sets up logging if nothing has: not at INFO, a line per call

    @server.tool(description=SEARCH, annotations=READ_ONLY)
    def search(question: Question, top_k: TopK = 5, source: Source = None, format: Formats = None,
               since: Since = None, until: Until = None) -> SearchResponse:
        with _tool_errors():
            body = SearchRequest(query=question, top_k=top_k, source=source, format=format or [], since=since,
                                 until=until)
            response = current_engine().search(body.query, **body.options())
            if log_queries:
                feedback.asked(body.query, response.answered, SENDER)
            return response

    @server.tool(description=GET_DOCUMENT, annotations=READ_ONLY)
    def get_document(document_id: DocumentId) -> DocumentDetail:
        with _tool_errors():
            engine = current_engine()
            row = engine.store.document(document_id)
            if row is None:
                raise ToolError(f"no document with id {document_id!r}")
            return document_detail(engine, row)

    @server.tool(description=GIVE_FEEDBACK, annotations=WRITES)
    def give_feedback(question: Question, document_id: DocumentId, sentence_id: SentenceId, verdict: Verdict,
                      comment: Comment = "") -> str:
        with _tool_errors():
            body = FeedbackRequest(query=question, document_id=document_id, sentence_id=sentence_id,
                                   verdict=verdict, comment=comment)  # the API's checks
            try:
                row = answer_row(current_engine(), body.query, body.document_id, body.verdict, body.comment, SENDER,
                                 body.sentence_id)
            except NotInIndex as exc:
                raise ToolError(str(exc)) from exc
            return f"feedback {feedback.record(row)} recorded"

    return server


@contextmanager
def _tool_errors() -> Iterator[None]:
    """Bad input and a missing index as the tool's error message: anything else the SDK hides as a crash."""
    try:
        yield
    except HoidapError as exc:
        raise ToolError(str(exc)) from exc
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ToolError(f"{where}: {first['msg']}".lstrip(": ")) from exc


def mount(app: FastAPI) -> None:
    """Serve the tools at ``/mcp`` over the app's engine; :func:`running` must wrap the app's lifespan."""
    def current_engine() -> Engine:
        if app.state.engine is None:
            raise NoIndexError(app.state.load_error or "no index is loaded")
        return app.state.engine

    app.state.mcp = build_server(current_engine, app.state.feedback, app.state.settings.log_queries)
    # POST only: stateless, the server has nothing to push on a GET stream, which would be held open for nothing
    app.router.routes.append(LabelledRoute(PATH, KeyedMCP(app), methods=["POST"], include_in_schema=False))


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """The streamable HTTP session manager, a new one each time the app starts (a manager runs only once).

    Stateless, with JSON responses: each request stands alone, as the JSON API's do, so any worker can
    answer it. The Host/Origin checks are off: the server's public name is not known here, and the
    endpoint is guarded as ``/api/v1`` is, by the API keys.
    """
    app.state.mcp.streamable_http_app(stateless_http=True, json_response=True,
                                      transport_security=TransportSecuritySettings(
                                          enable_dns_rebinding_protection=False))
    async with app.state.mcp.session_manager.run():
        yield


class KeyedMCP:
    """ASGI app of ``/mcp``: the API key is checked when keys are configured, before the body is read."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keys = self.app.state.settings.api_keys
        if keys and not is_key(bearer_token(scope), keys):
            response = error_response(401, "unauthorized",
                                      "a valid API key is required: send `Authorization: Bearer <key>`",
                                      {"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app.state.mcp.session_manager.handle_request(scope, receive, send)


class LabelledRoute(Route):
    """A route that names itself in the scope, as FastAPI's own do, so the access log and metrics label its
    requests by its path rather than as unmatched."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope
