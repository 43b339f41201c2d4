"""The newcomer's path: `vafa demo` sets up a shop, `vafa serve` serves a working admin on it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.services import free_port

pytestmark = pytest.mark.slow
VAFA = [sys.executable, "-m", "vafa.cli"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "VAFA_QUEUE_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}}
    env["VAFA_HOME"] = str(home)
    return env


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("demo")
    result = subprocess.run([*VAFA, "demo", "--no-serve", "--customers", "300", "--seed", "5"],
                            env=_env(home), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    password = re.search(r"password (\S+) \(shown once", result.stdout)
    assert password, result.stdout
    return home, password.group(1)


@pytest.fixture(scope="module")
def server(demo_home: tuple[Path, str]) -> Iterator[str]:
    home, _ = demo_home
    port = free_port()
    proc = subprocess.Popen([*VAFA, "serve", "--port", str(port), "--workers", "1"],
                            env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(url + "/admin/login/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_second_run_reuses_everything(demo_home: tuple[Path, str]) -> None:
    home, _ = demo_home
    result = subprocess.run([*VAFA, "demo", "--no-serve", "--customers", "300", "--seed", "5"],
                            env=_env(home), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "0 created, 0 updated, 300 unchanged" in result.stdout
    assert "exists" in result.stdout and "shown once" not in result.stdout


def test_the_admin_shows_the_demo_shop_after_logging_in(server: str,
                                                        demo_home: tuple[Path, str]) -> None:
    _, password = demo_home
    with httpx.Client(base_url=server, follow_redirects=True, timeout=30) as client:
        login = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        assert token
        response = client.post("/admin/login/?next=/admin/", data={
            "username": "admin", "password": password, "csrfmiddlewaretoken": token.group(1),
        }, headers={"Referer": server + "/admin/login/"})
        assert response.status_code == 200
        assert 'dir="rtl"' in response.text  # Persian by default
        customers = client.get("/admin/customers/customer/?q=C000001")
        assert customers.status_code == 200
        assert "C000001" in customers.text
        assert re.search("[آ-ی]{3,}", customers.text)  # Persian names from the synthetic shop
        report = client.get("/insights/report/")
        assert report.status_code == 200 and "plotly" in report.text.lower()


def test_the_api_answers_with_its_error_shape(server: str) -> None:
    response = httpx.get(server + "/api/v1/customers", timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert httpx.get(server + "/api/v1/docs", timeout=10).status_code == 200


def test_the_server_keeps_connections_alive(server: str) -> None:
    """A shop's backend calling the API reuses its connection (`sync` workers close each)."""
    with httpx.Client(base_url=server, timeout=10) as client:
        first = client.get("/api/v1/customers")
        second = client.get("/api/v1/customers")
    assert first.status_code == second.status_code == 401
    assert first.headers.get("connection", "").lower() != "close"


def test_a_silent_connection_does_not_hold_up_other_requests(server: str) -> None:
    """A connection that sends nothing (a browser's preconnect) takes one thread for a few
    seconds at most; the only worker of this server still answers others meanwhile."""
    import socket

    host, port = server.removeprefix("http://").split(":")
    silent = [socket.create_connection((host, int(port))) for _ in range(2)]
    try:
        time.sleep(0.3)  # accepted, waiting for a first request
        started = time.monotonic()
        response = httpx.get(server + "/api/v1/customers", timeout=30)
        waited = time.monotonic() - started
    finally:
        for sock in silent:
            sock.close()
    assert response.status_code == 401
    assert waited < 4, f"waited {waited:.1f} s behind connections that sent nothing"


def test_the_worker_runs_a_queued_analysis(demo_home: tuple[Path, str]) -> None:
    import sqlite3

    home, _ = demo_home
    enqueue = ("import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'vafa.settings'; "
               "django.setup(); from vafa.insights.tasks import insights_refresh_now; "
               "insights_refresh_now('worker-test')")
    subprocess.run([sys.executable, "-c", enqueue], env=_env(home), check=True, timeout=60)
    worker = subprocess.Popen([*VAFA, "worker", "--workers", "1"], env=_env(home),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and status != "done":
            time.sleep(0.5)
            with sqlite3.connect(home / "vafa.sqlite3", timeout=30) as db:
                row = db.execute("SELECT status FROM insights_analysisrun "
                                 "WHERE triggered_by = 'worker-test'").fetchone()
            status = row[0] if row else None
    finally:
        worker.terminate()
        worker.wait(20)
    assert status == "done"
