"""Drives `keygate mcp` with the official MCP Python SDK (PyPI `mcp`), for the end-to-end
tests in tests/tests/mcp.rs.

Usage: driver.py STEPS_JSON TRAFFIC_DIR

STEPS_JSON is a JSON list of steps, run in order in one session:
  {"list_tools": true}
  {"call": NAME, "args": {...}, "progress": true,
   "cancel_after_progress": N}      # cancel the call (notifications/cancelled) after N notifications

Every event is printed on stdout as one JSON line, as it happens:
  {"event": "initialized", "protocol_version": "...", "server": {...}}
  {"event": "tools", "step": I, "tools": [...]}
  {"event": "progress", "step": I, "progress": P, "message": "..."}
  {"event": "result", "step": I, "is_error": B, "text": "...", "structured": {...}}
  {"event": "cancelled", "step": I}
  {"event": "rpc_error", "step": I, "message": "..."}   # a JSON-RPC error instead of a result
  {"event": "done"}

The server is `$KEYGATE_BIN mcp`, run through `tee` so that the session's whole traffic
(stdin, stdout) lands in TRAFFIC_DIR/stdin and TRAFFIC_DIR/stdout; its stderr goes to
TRAFFIC_DIR/stderr. It gets the KEYGATE_*, XDG_* and RUST_LOG variables of this process.
"""

import json
import os
import sys

import anyio
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from mcp.client.stdio import StdioServerParameters, stdio_client


def emit(**event):
    print(json.dumps(event), flush=True)


async def main(steps, traffic):
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("KEYGATE_", "XDG_")) or k in ("RUST_LOG", "PATH")
    }
    env["TRAFFIC"] = traffic
    server = StdioServerParameters(
        command="sh",
        args=[
            "-c",
            'tee "$TRAFFIC/stdin" | "$KEYGATE_BIN" mcp | tee "$TRAFFIC/stdout"',
        ],
        env=env,
    )
    with open(os.path.join(traffic, "stderr"), "w") as errlog:
        async with stdio_client(server, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                emit(
                    event="initialized",
                    protocol_version=init.protocol_version,
                    server=init.server_info.model_dump(mode="json", exclude_none=True),
                )
                for i, step in enumerate(steps):
                    await run_step(session, i, step)
    emit(event="done")


async def run_step(session, i, step):
    if step.get("list_tools"):
        listed = await session.list_tools()
        emit(
            event="tools",
            step=i,
            tools=[t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools],
        )
        return

    name = step["call"]
    args = step.get("args", {})
    cancel_after = step.get("cancel_after_progress")
    seen = 0
    scope = anyio.CancelScope()

    async def on_progress(progress, total, message):
        nonlocal seen
        seen += 1
        emit(event="progress", step=i, progress=progress, message=message)
        if cancel_after is not None and seen >= cancel_after:
            scope.cancel()

    callback = on_progress if step.get("progress") or cancel_after is not None else None
    with scope:
        try:
            result = await session.call_tool(name, args, progress_callback=callback)
        except MCPError as e:
            emit(event="rpc_error", step=i, message=str(e))
            return
        content = "".join(c.text for c in result.content if getattr(c, "type", None) == "text")
        emit(
            event="result",
            step=i,
            is_error=bool(result.is_error),
            text=content,
            structured=result.structured_content,
        )
    if scope.cancelled_caught:
        emit(event="cancelled", step=i)


if __name__ == "__main__":
    anyio.run(main, json.loads(sys.argv[1]), sys.argv[2])
