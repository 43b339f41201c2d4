"""Start real PostgreSQL and Redis servers on loopback for tests, in temporary directories.

Each server is started by the test run and stopped when it ends; nothing is shared with the
machine's own services. PostgreSQL refuses to run as root, so as root we run it as the `postgres`
user that Debian's package creates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PG_BIN_CANDIDATES = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]


class ServiceUnavailable(RuntimeError):
    """The binaries of a service are not installed, or it could not start."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceUnavailable(f"server exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise ServiceUnavailable(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def pg_bindir() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ServiceUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    dbname: str

    # The directory of the server's Unix socket (a client on the same machine spends less CPU
    # per round trip there than over TCP on the loopback).
    socket_dir: str = ""

    @property
    def url(self) -> str:
        return f"postgres://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def socket_url(self) -> str:
        """`url` over the Unix socket (the URL's host is the socket's directory, quoted)."""
        directory = urllib.parse.quote(self.socket_dir, safe="")
        return f"postgres://{self.user}@{directory}:{self.port}/{self.dbname}"


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with trust auth for the `postgres` role."""
    bindir = pg_bindir()
    as_root = os.geteuid() == 0
    run_prefix: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="vafa-pg-"))
    if as_root:
        try:
            pg_user = pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceUnavailable("running as root but no 'postgres' OS user exists") from None
        os.chown(workdir, pg_user.pw_uid, pg_user.pw_gid)
        run_prefix = ["runuser", "-u", "postgres", "--"]
    datadir = workdir / "data"
    port = free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    try:
        subprocess.run(
            [*run_prefix, str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres",
             "--auth=trust", "--encoding=UTF8", "--no-sync"],
            check=True, capture_output=True, env=env,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=120"
        )
        subprocess.run(
            [*run_prefix, str(bindir / "pg_ctl"), "-D", str(datadir), "-o", options,
             "-l", str(workdir / "log"), "-w", "-t", "60", "start"],
            check=True, capture_output=True, env=env,
        )
    except subprocess.CalledProcessError as exc:
        log = (workdir / "log").read_text() if (workdir / "log").exists() else ""
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServiceUnavailable(
            f"PostgreSQL did not start: {exc.stderr.decode(errors='replace')}{log}"
        ) from None
    try:
        yield PostgresServer(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres",
            socket_dir=str(workdir),
        )
    finally:
        subprocess.run(
            [*run_prefix, str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w",
             "stop"],
            capture_output=True, env=env,
        )
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway Redis on 127.0.0.1 without persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if not binary:
        raise ServiceUnavailable("redis-server not installed")
    workdir = Path(tempfile.mkdtemp(prefix="vafa-redis-"))
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, 20, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def terminate_backend(connection: Any, pid: int) -> None:
    """End the PostgreSQL server process `pid` behind a Django `connection` (as a restart or an
    operator's `pg_terminate_backend` would), from a connection of its own, and wait until the
    server's goodbye has reached the client's socket."""
    import psycopg

    params = connection.get_connection_params()
    with psycopg.connect(**{**params, "autocommit": True}) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.2)
