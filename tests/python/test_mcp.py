"""A client session with `orchestr8 serve`, driven by the official Python MCP SDK (not ours),
in the classic `initialize` session and in the client's default mode."""

import asyncio
import json
import subprocess

import pytest
import urllib.error
import urllib.request

from mcp import Client
from mcp.shared.exceptions import MCPError

MODES = ["legacy", "auto"]


def client(server, mode):
    return Client(server, mode=mode, read_timeout_seconds=60)


def run(coro):
    return asyncio.run(coro)


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "text", None) is not None)


async def call_error(c, name, arguments) -> str:
    """The error a bad call produces: an isError result or a JSON-RPC error, as text."""
    try:
        result = await c.call_tool(name, arguments)
    except MCPError as error:
        return str(error)
    assert result.is_error, f"{name}({arguments}) should fail, got {text_of(result)}"
    return text_of(result)


@pytest.mark.parametrize("mode", MODES)
def test_lists_everything(server, mode):
    async def session():
        async with client(server, mode) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert set(tools) == {
                "discover_agents",
                "discover_agents_by_role",
                "discover_agents_by_capability",
                "get_agent_definition",
            }
            assert all(t.output_schema for t in tools.values())
            uris = {r.uri for r in (await c.list_resources()).resources}
            assert "orchestr8://catalog" in uris
            assert "orchestr8://agents/code-reviewer" in uris
            assert "orchestr8://skills/git-bisect" in uris
            assert "orchestr8://skills/git-bisect/references/cheatsheet.md" in uris
            assert "orchestr8://workflows/fix-bug" in uris
            templates = {t.uri_template for t in (await c.list_resource_templates()).resource_templates}
            assert "orchestr8://agents/{name}" in templates
            assert "orchestr8://roles/{role}" in templates
            prompts = {p.name: p for p in (await c.list_prompts()).prompts}
            assert set(prompts) == {"fix-bug", "release-notes"}
            assert [a.name for a in prompts["fix-bug"].arguments] == ["issue-number"]
            assert "discover_agents" in (c.instructions or "")

    run(session())


@pytest.mark.parametrize("mode", MODES)
def test_every_tool_answers_with_names(server, mode):
    async def session():
        async with client(server, mode) as c:
            r = await c.call_tool("discover_agents", {"query": "elastisearch cluster keeps going red"})
            assert not r.is_error
            assert r.structured_content["results"][0]["name"] == "elasticsearch-operator"
            assert "elasticsearch-operator" in text_of(r)

            r = await c.call_tool("discover_agents", {"query": "review", "kind": "agent", "model": "opus"})
            assert [e["name"] for e in r.structured_content["results"]] == ["security-reviewer"]

            r = await c.call_tool("discover_agents", {"query": "design a backend service", "limit": 1})
            first = r.structured_content["results"][0]
            assert first["name"] == "api-scaffolding-backend-architect"
            assert first["aliases"] == ["backend-development-backend-architect"]

            r = await c.call_tool("discover_agents_by_role", {"role": "code-review"})
            assert [a["name"] for a in r.structured_content["agents"]] == ["code-reviewer", "fullstack-developer"]
            assert r.structured_content["skipped"] == ["senior-engineer"]

            r = await c.call_tool("discover_agents_by_capability", {"capability": "code-review"})
            assert [a["name"] for a in r.structured_content["results"]] == ["code-reviewer", "security-reviewer"]

            r = await c.call_tool("get_agent_definition", {"name": "security-reviewer"})
            assert r.structured_content["name"] == "security-reviewer"
            assert "OWASP Top 10" in text_of(r)

    run(session())


def test_words_no_definition_mentions_are_named(server):
    async def session():
        async with client(server, "legacy") as c:
            r = await c.call_tool("discover_agents", {"query": "review the Elixir code in my pull request"})
            data = r.structured_content
            assert data["results"][0]["name"] == "code-reviewer"
            assert data["note"] == "no definition mentions: elixir"
            assert text_of(r).endswith("no definition mentions: elixir")

            # Semantic search may still offer something; either way the words are named.
            r = await c.call_tool("discover_agents", {"query": "Elixir Haskell"})
            assert "no definition mentions: elixir, haskell" in r.structured_content["note"]

            r = await c.call_tool("discover_agents", {"query": "review my pull request"})
            assert "note" not in r.structured_content

    run(session())


def test_max_tokens_trims_whole_entries(server):
    async def session():
        async with client(server, "legacy") as c:
            r = await c.call_tool("discover_agents", {"query": "review code, design a backend, write terraform", "limit": 10, "max_tokens": 60})
            data = r.structured_content
            assert len(data["results"]) >= 1
            assert data["omitted"] > 0
            assert f"{data['omitted']} more left out" in text_of(r)

    run(session())


@pytest.mark.parametrize("mode", MODES)
def test_reads_every_kind_of_resource(server, mode):
    async def session():
        async with client(server, mode) as c:
            async def read(uri):
                contents = (await c.read_resource(uri)).contents
                assert len(contents) == 1
                return contents[0].text

            catalog = json.loads(await read("orchestr8://catalog"))
            assert {"code-reviewer", "git-bisect", "fix-bug"} <= {d["name"] for d in catalog["definitions"]}
            assert "You review code changes" in await read("orchestr8://agents/code-reviewer")
            assert "git bisect run" in await read("orchestr8://skills/git-bisect")
            assert "git bisect start" in await read("orchestr8://skills/git-bisect/references/cheatsheet.md")
            assert "$ARGUMENTS" in await read("orchestr8://workflows/fix-bug")
            role = json.loads(await read("orchestr8://roles/security-review"))
            assert role["agents"] == ["security-reviewer", "code-reviewer", "fullstack-developer"]
            capability = json.loads(await read("orchestr8://capabilities/code-review"))
            assert capability["agents"] == ["code-reviewer", "security-reviewer"]

    run(session())


@pytest.mark.parametrize("mode", MODES)
def test_prompts_substitute_arguments(server, mode):
    async def session():
        async with client(server, mode) as c:
            p = await c.get_prompt("fix-bug", {"issue-number": "1234"})
            text = p.messages[0].content.text
            assert "Fix issue 1234: reproduce it" in text
            assert "argument-hint" not in text  # frontmatter is not part of the prompt
            p = await c.get_prompt("release-notes", {"arguments": "v2.0 extra"})
            assert p.messages[0].content.text.startswith("Write release notes for v2.0 from")

    run(session())


@pytest.mark.parametrize("mode", MODES)
def test_completions_for_names_roles_and_capabilities(server, mode):
    from mcp.types import ResourceTemplateReference

    async def session():
        async with client(server, mode) as c:
            async def complete(uri, name, value):
                result = await c.complete(ResourceTemplateReference(type="ref/resource", uri=uri), {"name": name, "value": value})
                return result.completion.values

            assert await complete("orchestr8://agents/{name}", "name", "code") == ["code-reviewer"]
            assert await complete("orchestr8://roles/{role}", "role", "sec") == ["security-review"]
            assert "code-review" in await complete("orchestr8://capabilities/{capability}", "capability", "code")
            assert await complete("orchestr8://workflows/{name}", "name", "fix") == ["fix-bug"]

    run(session())


def test_bad_input_never_stops_the_server(server, outside_file):
    async def session():
        async with client(server, "legacy") as c:
            async def still_fine():
                r = await c.call_tool("get_agent_definition", {"name": "code-reviewer"})
                assert not r.is_error and r.structured_content["name"] == "code-reviewer"

            message = await call_error(c, "get_agent_definition", {"name": "code-reveiwer"})
            assert "no definition named `code-reveiwer`" in message and "code-reviewer" in message
            await still_fine()
            assert "query" in await call_error(c, "discover_agents", {})
            await still_fine()
            assert "limit" in await call_error(c, "discover_agents", {"query": "x", "limit": "five"})
            await still_fine()
            assert "unknown kind" in await call_error(c, "discover_agents", {"query": "x", "kind": "robot"})
            await still_fine()
            message = await call_error(c, "discover_agents", {"query": "audit", "role": "security-reveiw"})
            assert "no definition declares the role `security-reveiw`" in message and "security-review" in message
            await still_fine()
            for name in ["../secret", "a/b", str(outside_file), "..", "agents\\x"]:
                message = await call_error(c, "get_agent_definition", {"name": name})
                assert "TOP SECRET" not in message
                await still_fine()
            for uri in [
                "orchestr8://skills/git-bisect/../../v5/agents/quality/code-reviewer.md",
                "orchestr8://skills/git-bisect/" + str(outside_file),
                "orchestr8://agents/../secret",
                "file://" + str(outside_file),
            ]:
                with pytest.raises(MCPError):
                    await c.read_resource(uri)
                await still_fine()
            with pytest.raises(MCPError):
                await c.get_prompt("fix-bug", {"nope": "1"})
            await still_fine()

    run(session())


def test_tools_list_and_instructions_are_small_and_portable(server):
    async def session():
        async with client(server, "legacy") as c:
            tools = (await c.list_tools()).tools
            payload = json.dumps([t.model_dump(mode="json", exclude_none=True, by_alias=True) for t in tools])
            size = len(payload) + len(c.instructions or "")
            print(f"tools/list + instructions: {size} characters, about {size // 4} tokens")
            assert size < 2500 * 4
            for tool in tools:
                for schema in (tool.input_schema, tool.output_schema):
                    assert schema["type"] == "object"
                    dumped = json.dumps(schema)
                    for keyword in ('"$ref"', '"anyOf"', '"oneOf"', '"allOf"', '"nullable"', '"type": ["'):
                        assert keyword not in dumped, f"{tool.name} schema uses {keyword}"

    run(session())


def test_stdout_carries_only_json_rpc(library):
    """A whole raw session: every line the server writes on stdout is a JSON-RPC message."""
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "discover_agents", "arguments": {"query": "terraform"}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "get_agent_definition", "arguments": {"name": "nope"}}},
        {"jsonrpc": "2.0", "id": 5, "method": "resources/read", "params": {"uri": "orchestr8://catalog"}},
        {"jsonrpc": "2.0", "id": 6, "method": "no/such/method"},
    ]
    stdin = "".join(json.dumps(r) + "\n" for r in requests)
    done = subprocess.run([library["bin"], *library["args"]], input=stdin, capture_output=True, text=True, env=library["env"], timeout=60)
    lines = [l for l in done.stdout.splitlines() if l.strip()]
    answered = set()
    for line in lines:
        message = json.loads(line)
        assert message["jsonrpc"] == "2.0"
        answered.add(message.get("id"))
    assert {1, 2, 3, 4, 5, 6} <= answered
    assert "request" in done.stderr  # the logs went to stderr


def test_http_refuses_other_hosts(http_url):
    """DNS-rebinding protection: a request naming a non-loopback Host is refused."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "evil", "version": "0"}}}).encode()
    request = urllib.request.Request(http_url, data=body, method="POST", headers={
        "Host": "evil.example", "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert 400 <= refused.value.code < 500
