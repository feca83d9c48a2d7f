"""Run an ASGI app with uvicorn on 127.0.0.1 in a background thread, for tests and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """A uvicorn server running in a thread; ``url`` has no trailing slash."""

    server: uvicorn.Server
    thread: threading.Thread
    port: int

    @property
    def url(self) -> str:
        """The base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to shut down and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout)


def start_server(app: Any, port: int | None = None, *,
                 lifespan: Literal["auto", "on", "off"] = "on",
                 **uvicorn_options: Any) -> RunningServer:
    """Start ``app`` on 127.0.0.1 (a free port unless given) and wait until it accepts.

    ``uvicorn_options`` go to ``uvicorn.Config`` (the gateway's: ``api.server.uvicorn_options``).
    """
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan=lifespan, access_log=False, **uvicorn_options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"server on port {port} failed to start")
        if time.monotonic() > deadline:
            raise TimeoutError(f"server on port {port} did not start in 15 s")
        time.sleep(0.01)
    return RunningServer(server, thread, port)
