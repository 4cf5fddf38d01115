"""Abuse: malformed JSON-RPC, a 10 MB request, 1,000 requests as fast as they can be written,
and 16 concurrent HTTP clients. Every valid request is answered; the server neither dies nor
grows without bound."""

import asyncio
import json
import re
import subprocess
import threading
import time

from mcp import Client

INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "abuse", "version": "0"}}}
READY = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def call(i, name, arguments):
    return {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


def raw_session(library, messages, timeout=120):
    """Writes `messages` (dicts or raw strings) to a stdio server and returns its answers by id."""
    lines = [m if isinstance(m, str) else json.dumps(m) for m in [INIT, READY, *messages]]
    done = subprocess.run([library["bin"], *library["args"]], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, env=library["env"], timeout=timeout)
    answers = {}
    for line in done.stdout.splitlines():
        message = json.loads(line)  # every stdout line is JSON-RPC, even under abuse
        if "id" in message:
            answers[message["id"]] = message
    return answers, done


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1))


def test_malformed_lines_do_not_stop_the_server(library):
    answers, done = raw_session(library, [
        "this is not json",
        "{",
        "[]",
        '{"jsonrpc": "2.0", "id": 1}',
        '{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": "not an object"}',
        '{"jsonrpc": "1.0", "id": 3, "method": "tools/list"}',
        "\x00\x01\x02",
        json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
        json.dumps(call(10, "get_agent_definition", {"name": "code-reviewer"})),
    ])
    assert len(answers[9]["result"]["tools"]) == 4, done.stderr[-2000:]
    assert answers[10]["result"]["structuredContent"]["name"] == "code-reviewer"


def test_a_ten_megabyte_request_is_refused_and_the_next_one_answered(library):
    huge = "word " * (2 * 1024 * 1024)
    answers, done = raw_session(library, [
        call(1, "discover_agents", {"query": huge}),
        call(2, "discover_agents", {"query": "review pull requests"}),
    ])
    first = answers.get(1, {})
    text = json.dumps(first)
    assert "error" in first or first.get("result", {}).get("isError"), text[:500]
    assert answers[2]["result"]["structuredContent"]["results"][0]["name"] == "code-reviewer", done.stderr[-2000:]


def test_a_thousand_requests_as_fast_as_they_can_be_written(library):
    queries = ["review pull requests", "terrafrom state", "git bisect a regression", "design a backend service"]
    messages = [call(i, "discover_agents", {"query": queries[i % len(queries)]}) for i in range(1, 1001)]
    started = time.monotonic()
    answers, done = raw_session(library, messages)
    elapsed = time.monotonic() - started
    print(f"1,000 pipelined requests answered in {elapsed:.2f}s (process start and index included)")
    missing = [i for i in range(1, 1001) if i not in answers]
    assert not missing, f"{len(missing)} unanswered, e.g. {missing[:5]}"
    assert all(not answers[i]["result"].get("isError") for i in range(1, 1001))


def test_sixteen_concurrent_http_clients(library):
    args = ["serve", "--http", "127.0.0.1:0"] + library["args"][1:]
    proc = subprocess.Popen([library["bin"], *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=library["env"], text=True)
    try:
        url = None
        for line in proc.stderr:
            found = re.search(r"url=(http://\S+/mcp)", line)
            if found:
                url = found.group(1)
                break
        assert url
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        rss_before = rss_kib(proc.pid)
        seconds = 5.0

        async def one_client(n):
            answered = 0
            async with Client(url, mode="legacy", read_timeout_seconds=30) as c:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    r = await c.call_tool("discover_agents", {"query": f"review pull request {n}"})
                    assert not r.is_error and r.structured_content["results"][0]["name"] == "code-reviewer"
                    answered += 1
            return answered

        async def all_clients():
            return await asyncio.gather(*(one_client(n) for n in range(16)))

        counts = asyncio.run(all_clients())
        rss_after = rss_kib(proc.pid)
        print(f"16 HTTP clients for {seconds}s: {sum(counts)} calls answered; RSS {rss_before} -> {rss_after} KiB")
        assert min(counts) > 0
        assert proc.poll() is None, "the server died"
        assert rss_after < 512 * 1024, "memory grew past 512 MiB"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
