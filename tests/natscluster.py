"""A real NATS JetStream cluster for tests: Debian's nats-server, several nodes on loopback.

Each node runs as a child process of the test, on free ports picked when the cluster is made, with its own
store directory (and log) under the cluster's directory, and routes to every other node. The test can
kill a node (SIGKILL, as a crash or a pulled cable), stop it (SIGTERM), start it again on the same ports
and store, and ask which node leads a stream. `close()` kills every process the cluster started and
removes its directory; use the cluster as a context manager so that this happens however the test ends.

    with NatsCluster(tmp_path / "nats") as cluster:
        cluster.url              # "nats://127.0.0.1:p1,nats://127.0.0.1:p2,nats://127.0.0.1:p3"
        leader = cluster.stream_leader("DIEUHANH_EVENTS")
        cluster.kill(leader)
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NATS

T = TypeVar("T")

NATS_SERVER = "/usr/sbin/nats-server"


def nats_server_binary() -> str | None:
    """The nats-server executable (Debian's package puts it in /usr/sbin, often not on a user's PATH)."""
    if os.access(NATS_SERVER, os.X_OK):
        return NATS_SERVER
    return shutil.which("nats-server")


def require_nats_server() -> str:
    """The binary's path; without it the test fails (as the other NATS tests do: never a skip)."""
    import pytest

    binary = nats_server_binary()
    if binary is None:
        reason = (
            f"nats-server is not installed (looked for {NATS_SERVER} and on PATH): "
            "apt-get install nats-server to run the NATS cluster tests"
        )
        pytest.fail(reason)
    return binary


class ClusterError(Exception):
    pass


@dataclass
class Node:
    name: str
    port: int
    cluster_port: int
    http_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def route(self) -> str:
        return f"nats://127.0.0.1:{self.cluster_port}"

    @property
    def store(self) -> Path:
        return self.directory / "store"

    @property
    def log(self) -> Path:
        return self.directory / "nats-server.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def monitor(self, endpoint: str) -> dict[str, Any]:
        """A monitoring endpoint's JSON (e.g. "jsz", "connz"), from this node's HTTP port."""
        url = f"http://127.0.0.1:{self.http_port}/{endpoint}"
        with urllib.request.urlopen(url, timeout=2) as response:  # our own loopback port
            return json.load(response)


@dataclass
class NatsCluster:
    """`size` nodes of one JetStream cluster; started by `start()` (or `with`), removed by `close()`."""

    directory: Path
    size: int = 3
    name: str = "dieuhanh-test"
    binary: str = NATS_SERVER
    nodes: list[Node] = field(init=False)

    def __post_init__(self) -> None:
        ports = _free_ports(3 * self.size)
        self.nodes = [
            Node(
                name=f"n{i + 1}",
                port=ports[3 * i],
                cluster_port=ports[3 * i + 1],
                http_port=ports[3 * i + 2],
                directory=self.directory / f"n{i + 1}",
            )
            for i in range(self.size)
        ]

    def __enter__(self) -> NatsCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated, as DIEUHANH_NATS_URL takes them."""
        return ",".join(self.urls)

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ClusterError(f"no node named {name!r} in {[n.name for n in self.nodes]}")

    # Processes.

    def start(self, *nodes: Node, timeout: float = 30.0) -> None:
        """Start the nodes (all when none is named), then wait until the cluster is ready."""
        for node in nodes or self.nodes:
            self._spawn(node)
        self.wait_ready(timeout=timeout)

    def kill(self, node: Node) -> None:
        """SIGKILL: the node dies at once, as in a crash; its store stays for a restart."""
        self._end(node, signal.SIGKILL)

    def stop(self, node: Node) -> None:
        """SIGTERM: the node shuts down in order."""
        self._end(node, signal.SIGTERM)

    def restart(self, node: Node, timeout: float = 30.0) -> None:
        self.stop(node)
        self.start(node, timeout=timeout)

    def close(self) -> None:
        """Kill every node this cluster started and remove the cluster's directory."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                self.kill(node)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _spawn(self, node: Node) -> None:
        if node.running:
            return
        node.store.mkdir(parents=True, exist_ok=True)
        routes = ",".join(other.route for other in self.nodes if other is not node)
        command = [
            self.binary,
            "--addr", "127.0.0.1",
            "--port", str(node.port),
            "--server_name", node.name,
            "--http_port", str(node.http_port),
            "--jetstream",
            "--store_dir", str(node.store),
            "--cluster_name", self.name,
            "--cluster", node.route,
            "--routes", routes,
            "--log", str(node.log),
        ]  # fmt: skip
        node.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def _end(self, node: Node, signum: signal.Signals) -> None:
        process = node.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signum)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        node.process = None

    # Readiness and leaders.

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every running node answers and agrees on one elected JetStream meta leader."""
        deadline = time.monotonic() + timeout
        problem: str | None = "not checked yet"
        while time.monotonic() < deadline:
            running = [node for node in self.nodes if node.running]
            dead = [node for node in self.nodes if node.process is not None and not node.running]
            if dead:
                raise ClusterError(f"nats-server {dead[0].name} exited:\n{dead[0].log_tail()}")
            problem = self._not_ready(running)
            if problem is None:
                return
            time.sleep(0.1)
        logs = "\n".join(f"--- {n.name}\n{n.log_tail()}" for n in self.nodes if n.process is not None)
        raise ClusterError(f"the NATS cluster is not ready after {timeout:.0f} s: {problem}\n{logs}")

    def _not_ready(self, running: list[Node]) -> str | None:
        if not running:
            return "no node is running"
        leaders = set()
        for node in running:
            try:
                meta = node.monitor("jsz").get("meta_cluster") or {}
            except (OSError, ValueError) as e:
                return f"{node.name} does not answer ({e})"
            leaders.add(meta.get("leader") or "")
        if "" in leaders or len(leaders) != 1:
            return f"no agreed JetStream meta leader yet ({sorted(leaders)})"
        (leader,) = leaders
        if not any(node.name == leader for node in running):
            return f"the meta leader {leader} is not running"
        return None

    def stream_leader(self, stream: str, *, timeout: float = 30.0) -> Node:
        """The running node that leads the stream (per JetStream stream info), waiting out an election."""
        return self.run(lambda nc: self.wait_for_leader(nc, stream, timeout=timeout))

    async def leader_of(self, nc: NATS, stream: str, consumer: str | None = None) -> Node | None:
        """The running node that leads the stream, or its consumer, now: `cluster.leader` of its info.

        None in an election, or while the named leader is a node we killed that the others still name."""
        js = nc.jetstream(timeout=1)
        try:
            info = await (js.consumer_info(stream, consumer) if consumer else js.stream_info(stream))
        except (TimeoutError, nats.errors.Error):
            return None
        leader = info.cluster.leader if info.cluster else None
        return next((node for node in self.nodes if node.name == leader and node.running), None)

    async def wait_for_leader(
        self,
        nc: NATS,
        stream: str,
        consumer: str | None = None,
        *,
        timeout: float = 30.0,
        other_than: Node | None = None,
    ) -> Node:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            node = await self.leader_of(nc, stream, consumer)
            if node is not None and node is not other_than:
                return node
            await asyncio.sleep(0.2)
        what = f"consumer {consumer} of {stream}" if consumer else f"stream {stream}"
        raise ClusterError(f"{what} has no running leader after {timeout:.0f} s")

    async def move_leader(
        self,
        nc: NATS,
        stream: str,
        consumer: str | None = None,
        *,
        where: Callable[[Node], bool],
        timeout: float = 30.0,
    ) -> Node:
        """Ask the stream's (or its consumer's) leader to step down until a node `where` says leads it."""
        subject = (
            f"$JS.API.CONSUMER.LEADER.STEPDOWN.{stream}.{consumer}"
            if consumer
            else f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = await self.wait_for_leader(nc, stream, consumer, timeout=deadline - time.monotonic())
            if where(leader):
                return leader
            with contextlib.suppress(TimeoutError, nats.errors.Error):
                await nc.request(subject, b"", timeout=2)
            await self.wait_for_leader(
                nc, stream, consumer, timeout=deadline - time.monotonic(), other_than=leader
            )
        raise ClusterError(f"no leader of {stream} {consumer or ''} as wanted after {timeout:.0f} s")

    def client_nodes(self, name: str) -> list[Node]:
        """The running nodes that a client connection of this name is on (monitoring's connz)."""
        return [
            node
            for node in self.nodes
            if node.running and any(c.get("name") == name for c in self.connections(node))
        ]

    def connections(self, node: Node) -> list[dict[str, Any]]:
        """The node's client connections (name, ports, …), from its monitoring endpoint."""
        try:
            return list(node.monitor("connz").get("connections") or [])
        except (OSError, ValueError):
            return []

    # A client.

    async def connect(self, **options: Any) -> NATS:
        """A client of the running nodes that gives up quickly (the caller decides on retries)."""
        urls = [node.url for node in self.nodes if node.running]
        return await nats.connect(
            servers=urls,
            connect_timeout=2,
            max_reconnect_attempts=options.pop("max_reconnect_attempts", 3),
            reconnect_time_wait=options.pop("reconnect_time_wait", 0.2),
            error_cb=options.pop("error_cb", _quiet),
            **options,
        )

    def run(self, action: Callable[[NATS], Awaitable[T]]) -> T:
        """`action(nc)` on a connection of its own, from synchronous test code."""

        async def connected() -> T:
            nc = await self.connect()
            try:
                return await action(nc)
            finally:
                await nc.close()

        return asyncio.run(connected())


def _free_ports(n: int) -> list[int]:
    """n distinct ports free on loopback now, below the kernel's ephemeral range where one is known.

    A node that restarts binds its ports again; below the ephemeral range no outgoing connection can have
    taken one of them meanwhile. The sockets are held open together so that no port is picked twice."""
    low = _ephemeral_low()
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < n:
            s = stack.enter_context(socket.socket())
            candidate = random.randrange(10_000, low) if low > 11_000 else 0
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue  # taken: another
            ports.append(s.getsockname()[1])
        return ports


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0  # unknown: the kernel picks (bind to port 0)


def _die_with_parent() -> None:
    """In the child: a SIGKILL when the test process dies, so that no server outlives a killed run."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


async def _quiet(_: Exception) -> None:
    pass


@contextlib.contextmanager
def cluster_of(directory: Path, size: int = 3) -> Iterator[NatsCluster]:
    """A started cluster for a test, removed afterwards; failed without nats-server."""
    with NatsCluster(directory, size=size, binary=require_nats_server()) as cluster:
        yield cluster
