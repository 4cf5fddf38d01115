"""Live reload: files edited, added, renamed, deleted and truncated under a running server are
reflected within a bounded wait (polled, never a fixed sleep), and the server says so."""

import asyncio
import os
import shutil
import time

from mcp import Client, StdioServerParameters

from conftest import FIXTURES, binary

DEADLINE = 10.0  # seconds; a change normally shows within a fraction of one


async def eventually(check, what):
    start = time.monotonic()
    while True:
        result = await check()
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > DEADLINE:
            raise AssertionError(f"not reflected within {DEADLINE}s: {what}")
        await asyncio.sleep(0.05)


def test_changes_show_up_without_a_restart(tmp_path):
    root = tmp_path / "library"
    shutil.copytree(FIXTURES / "v5", root)
    index = tmp_path / "index"
    env = dict(os.environ, ORCHESTR8_INDEX_DIR=str(index), ORCHESTR8_LOG="info")
    params = StdioServerParameters(command=binary(), args=["serve", "--dir", str(root)], env=env)
    notices = []

    async def on_message(message):
        notices.append(type(getattr(message, "root", message)).__name__ + repr(message))

    async def session():
        async with Client(params, mode="legacy", read_timeout_seconds=30, message_handler=on_message) as c:
            async def names(query):
                r = await c.call_tool("discover_agents", {"query": query, "limit": 10})
                return [e["name"] for e in r.structured_content["results"]]

            async def definition(name):
                return await c.call_tool("get_agent_definition", {"name": name})

            quality = root / "agents" / "quality"
            # Edit: a new word in a description becomes findable.
            reviewer = quality / "code-reviewer.md"
            reviewer.write_text(reviewer.read_text().replace("readability", "readability and zanzibar conventions"))
            took = await eventually(lambda: _has(names("zanzibar"), "code-reviewer"), "edit")
            print(f"edit reflected in {took:.2f}s")

            # Add: a new agent can be found, filtered by its role, and loaded.
            (quality / "mutation-tester.md").write_text(
                "---\nname: mutation-tester\ndescription: Runs mutation testing to find weak unit tests.\n"
                "role: mutation-testing\n---\nYou mutate code.\n"
            )

            async def added():
                r = await definition("mutation-tester")
                filtered = await c.call_tool(
                    "discover_agents", {"query": "weak unit tests", "role": "mutation-testing"}
                )
                if r.is_error or filtered.is_error:
                    return False
                found = [e["name"] for e in filtered.structured_content["results"]]
                return "You mutate code." in r.content[0].text and found == ["mutation-tester"]

            await eventually(added, "add")

            # Rename: the file moves, the definition stays, once.
            (quality / "nested").mkdir()
            os.rename(quality / "security-reviewer.md", quality / "nested" / "security-reviewer.md")

            async def moved():
                found = await names("injection broken authentication")
                r = await definition("security-reviewer")
                return found.count("security-reviewer") == 1 and not r.is_error

            await eventually(moved, "rename")

            # Delete: the name is unknown, with the closest names.
            os.remove(root / "agents" / "development" / "fullstack-developer.md")

            async def deleted():
                r = await definition("fullstack-developer")
                return r.is_error and "no definition named `fullstack-developer`" in r.content[0].text

            await eventually(deleted, "delete")

            # Truncate a file that is being served: no crash, and then it is gone.
            assert not (await definition("mutation-tester")).is_error
            with open(quality / "mutation-tester.md", "r+") as f:
                f.truncate(0)
            for _ in range(20):
                await definition("mutation-tester")

            async def truncated():
                return (await definition("mutation-tester")).is_error

            await eventually(truncated, "truncate")
            assert not (await definition("code-reviewer")).is_error

            async def notified():
                return any("ResourceListChanged" in n for n in notices)

            await eventually(notified, "notifications/resources/list_changed")

    asyncio.run(session())


async def _has(awaitable, name):
    return name in await awaitable
