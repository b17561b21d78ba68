"""Times a `run_with_secrets` call of `keygate mcp` against a plain `keygate exec` of the
same command with the same allowed secret (scripts/bench-mcp runs it; docs/benchmarks.md
has the figures).

Usage: bench.py KEYGATE_BIN RUNS

Needs KEYGATE_URL / XDG_RUNTIME_DIR and KEYGATE_TOKEN for an agent that a rule allows
`public/bench` outright. Prints one Markdown table.
"""

import os
import statistics
import subprocess
import sys
import time

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

COMMAND = ["true"]


def summary(samples):
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    return statistics.median(samples) * 1000, p95 * 1000


def time_exec(keygate, runs):
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([keygate, "exec", "-e", "X=public/bench", "--", *COMMAND], check=True)
        out.append(time.perf_counter() - start)
    return out


async def time_mcp(keygate, runs):
    env = {k: v for k, v in os.environ.items() if k.startswith(("KEYGATE_", "XDG_")) or k == "PATH"}
    server = StdioServerParameters(command=keygate, args=["mcp"], env=env)
    start = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        async with stdio_client(server, errlog=quiet) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                ready = time.perf_counter() - start
                calls = []
                for _ in range(runs):
                    t = time.perf_counter()
                    r = await session.call_tool(
                        "run_with_secrets",
                        {"command": COMMAND, "secrets": {"X": "public/bench"}, "reason": "bench"},
                    )
                    calls.append(time.perf_counter() - t)
                    assert not r.is_error, r
    return ready, calls


def main():
    keygate, runs = sys.argv[1], int(sys.argv[2])
    time_exec(keygate, 5)  # warm the page cache and the daemon
    exec_times = time_exec(keygate, runs)
    ready, mcp_times = anyio.run(time_mcp, keygate, runs)
    em, ep = summary(exec_times)
    mm, mp = summary(mcp_times)
    print(f"| what ({runs} runs of `{' '.join(COMMAND)}`, secret allowed by a rule) | median | p95 |")
    print("|---|---|---|")
    print(f"| `keygate exec -e X=public/bench -- true` (a new process each time) | {em:.1f} ms | {ep:.1f} ms |")
    print(f"| `run_with_secrets` call, same command, one `keygate mcp` session | {mm:.1f} ms | {mp:.1f} ms |")
    print(f"| `keygate mcp` start + `initialize` (once per session) | {ready * 1000:.1f} ms | |")
    print(f"| difference per call (MCP − exec) | {mm - em:+.1f} ms | |")


if __name__ == "__main__":
    main()
