"""The tests bring their own PostgreSQL when the machine's is missing or refuses them (issue 9)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests import pgcluster
from tests.pgcluster import PgCluster, PgClusterUnavailable, start_cluster

ROOT = Path(__file__).resolve().parent.parent


def answers(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    """A throwaway cluster, stopped after the test even when the test stops it itself."""
    started = start_cluster()
    yield started
    started.stop()


def test_a_throwaway_cluster_takes_connections_and_leaves_nothing_behind(
        cluster: PgCluster) -> None:
    assert cluster.url == f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "smsbridge_made_here"')
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    with psycopg.connect(cluster.url.rsplit("/", 1)[0] + "/smsbridge_made_here") as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SELECT n FROM t").fetchall() == [(1,)]
    assert cluster.directory.is_dir()

    cluster.stop()

    assert not answers(cluster.port)
    assert not cluster.directory.exists()


def test_a_server_that_refuses_like_a_fresh_install_gets_a_throwaway_one(
        cluster: PgCluster, tmp_path: Path) -> None:
    # A fresh Debian install asks for a password on 127.0.0.1; make this cluster do the same.
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        hba = cluster.data / "pg_hba.conf"
        hba.write_text(re.sub(r"^(host\s.*\s)trust$", r"\1scram-sha-256",
                              hba.read_text(), flags=re.MULTILINE))
        conn.execute("SELECT pg_reload_conf()")
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(cluster.url, connect_timeout=3).close()

    seen = tmp_path / "seen.txt"
    (tmp_path / "test_uses_postgres.py").write_text(textwrap.dedent(f"""
        import psycopg

        def test_it(pg_url, pg_admin):
            with psycopg.connect(pg_admin) as conn:
                folder = conn.execute("SHOW data_directory").fetchone()[0]
            with psycopg.connect(pg_url) as conn:
                conn.execute("CREATE TABLE t (n int)")
            open({str(seen)!r}, "w").write(pg_admin + "\\n" + folder)
        """))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", "/dev/null", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": str(ROOT),
             "SMSBRIDGE_TEST_PG": cluster.url})

    assert run.returncode == 0, run.stdout + run.stderr
    assert f"PostgreSQL at 127.0.0.1:{cluster.port} refuses the tests" in run.stdout
    assert "password" in run.stdout
    url, folder = seen.read_text().splitlines()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert url == f"postgresql://postgres@127.0.0.1:{port}/postgres" and port != cluster.port
    # The session stopped its cluster and deleted its folder.
    assert not answers(port)
    assert not Path(folder).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the server user only matters when run as root")
def test_as_root_without_the_server_user_it_says_what_is_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgcluster, "SERVER_USER", "smsbridge_no_such_user")
    with pytest.raises(PgClusterUnavailable) as missing:
        start_cluster()
    assert str(missing.value) == (
        "cannot start a throwaway PostgreSQL as root: initdb refuses to run as root and there is "
        "no 'smsbridge_no_such_user' OS user to run it as (Debian's postgresql package creates it)")
