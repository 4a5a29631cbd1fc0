"""The search as MCP tools, through the SDK's own client: `hoidap mcp` over stdio and the app's /mcp over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from hoidap.service.app import create_app
from hoidap.service.feedback import FeedbackStore
from hoidap.service.settings import Settings
from tests.conftest import QUESTION_19, serving

HOIDAP = str(Path(sys.executable).parent / "hoidap")
KEY = "k1"


def run(client: Client, check: Callable[[Client], Awaitable[None]]) -> None:
    """``check`` with ``client`` connected, on an event loop of its own."""
    async def main() -> None:
        async with client:
            await check(client)

    anyio.run(main)


async def answers_question_19(client: Client) -> dict:
    """The search tool answers as the JSON API does; returns the best answer."""
    result = await client.call_tool("search", {"question": QUESTION_19})
    assert not result.is_error, result.content
    response = result.structured_content
    assert response["answered"] is True
    best = response["answers"][0]
    assert "19 địa phương" in best["text"]
    assert best["url"].startswith("/documents/") and best["source"].startswith("corpus/")
    return best


@pytest.fixture(scope="module")
def keyed_url(corpus_data_dir: Path):
    """The app with an API key, served by a real uvicorn."""
    with serving(create_app(corpus_data_dir, settings=Settings(api_keys=(KEY,), reload_interval=0))) as url:
        yield url


def test_stdio_search_then_document(corpus_data_dir: Path):
    params = StdioServerParameters(command=HOIDAP, args=["mcp", "--data-dir", str(corpus_data_dir)],
                                   env=dict(os.environ))

    async def check(client: Client) -> None:
        assert {"search", "get_document", "give_feedback"} <= {tool.name for tool in (await client.list_tools()).tools}
        best = await answers_question_19(client)
        document_id = best["document_id"]
        result = await client.call_tool("get_document", {"document_id": document_id})
        assert not result.is_error, result.content
        document = result.structured_content
        assert document["id"] == document_id and document["indexed_at"]
        assert "thiết lập quan hệ hữu nghị, hợp tác với 19 địa phương" in document["text"]
        missing = await client.call_tool("get_document", {"document_id": "khong-co"})
        assert missing.is_error and "no document with id 'khong-co'" in missing.content[0].text

        said = {"question": QUESTION_19, "document_id": document_id, "sentence_id": best["sentence_id"],
                "verdict": "right", "comment": "đúng"}
        result = await client.call_tool("give_feedback", said)
        assert not result.is_error and "recorded" in result.content[0].text, result.content
        for wrong, message in (({"sentence_id": 10**6}, "no sentence 1000000"), ({"verdict": "maybe"}, "verdict")):
            result = await client.call_tool("give_feedback", said | wrong)
            assert result.is_error and message in result.content[0].text, (wrong, result.content)

    run(Client(params), check)
    row = FeedbackStore(corpus_data_dir).latest(1)[0]
    assert (row.verdict, row.sender, row.comment, row.query) == ("right", "mcp", "đúng", QUESTION_19)


def test_stdio_without_index_is_one_line(tmp_path: Path):
    proc = subprocess.run([HOIDAP, "mcp", "--data-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_http_with_key(keyed_url: str):
    transport = streamable_http_client(f"{keyed_url}/mcp",
                                       http_client=httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}))

    async def check(client: Client) -> None:
        await answers_question_19(client)
        for arguments, message in (({"question": QUESTION_19, "format": ["exe"]}, "unknown format exe"),
                                   ({"question": "   "}, "the question is empty"),
                                   ({"question": QUESTION_19, "top_k": 500}, "less than or equal to 50")):
            result = await client.call_tool("search", arguments)
            assert result.is_error and message in result.content[0].text, (arguments, result.content)
        await answers_question_19(client)  # and the server still answers

    run(Client(transport), check)


def test_http_without_key_is_refused(keyed_url: str):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.post(f"{keyed_url}/mcp", headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    # the SDK's client does not keep the status: it fails to connect with an MCPError
    with pytest.RaisesGroup(MCPError, flatten_subgroups=True):
        run(Client(f"{keyed_url}/mcp"), answers_question_19)
