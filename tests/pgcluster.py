"""A throwaway PostgreSQL cluster for the tests: initdb in a temp folder, served on a free port.

Used when the machine's server is missing or refuses the tests (a fresh Debian install has no
trust authentication on 127.0.0.1). The cluster trusts local and 127.0.0.1 connections, listens
on 127.0.0.1 only with its unix socket inside its own folder, and is removed by ``stop()``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# initdb and pg_ctl refuse to run as root; Debian's postgresql package creates this OS user.
SERVER_USER = "postgres"


class PgClusterUnavailable(RuntimeError):
    """A throwaway cluster could not be started; the message says what is missing."""


@dataclass
class PgCluster:
    """A running throwaway cluster; ``url`` is its admin URL (role postgres, database postgres)."""

    directory: Path
    port: int
    bindir: Path
    run_as: str | None

    @property
    def url(self) -> str:
        """The admin URL: postgresql://postgres@127.0.0.1:PORT/postgres."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.directory / "data"

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are cut) and delete its folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                _run(self, [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data),
                            "-m", "fast", "-w", "-t", "60"], check=False)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def find_bindir() -> Path:
    """The folder holding initdb and pg_ctl: Debian's newest /usr/lib/postgresql/N/bin, or PATH."""
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted((p for p in root.iterdir() if p.name.isdigit()),
                          key=lambda p: int(p.name), reverse=True)
        for version in versions:
            if (version / "bin" / "initdb").is_file() and (version / "bin" / "pg_ctl").is_file():
                return version / "bin"
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    raise PgClusterUnavailable(
        "cannot start a throwaway PostgreSQL: initdb and pg_ctl are neither under "
        "/usr/lib/postgresql/<version>/bin nor on PATH (install Debian's postgresql package)")


def start_cluster(*, timeout: float = 60.0, attempts: int = 3) -> PgCluster:
    """Start a throwaway cluster on a free 127.0.0.1 port and wait until it accepts connections."""
    bindir = find_bindir()
    run_as = _server_user()
    base = _temp_base(run_as)
    last_error = ""
    # The free port can be taken between choosing it and the server binding it: try another.
    for _ in range(attempts):
        cluster = PgCluster(Path(tempfile.mkdtemp(prefix="smsbridge-pg-", dir=base)),
                            _free_port(), bindir, run_as)
        try:
            _initdb_and_start(cluster, timeout)
            return cluster
        except PgClusterUnavailable as exc:
            last_error = str(exc)
            cluster.stop()
            if "could not bind" not in last_error and "already in use" not in last_error:
                raise
    raise PgClusterUnavailable(last_error)


def _initdb_and_start(cluster: PgCluster, timeout: float) -> None:
    if cluster.run_as:
        entry = pwd.getpwnam(cluster.run_as)
        os.chown(cluster.directory, entry.pw_uid, entry.pw_gid)
    _run(cluster, [str(cluster.bindir / "initdb"), "-D", str(cluster.data), "-U", "postgres",
                   "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
                   "--no-instructions"])
    # A throwaway cluster: durability is not needed, and no one else may reach it.
    settings = (f"\nport = {cluster.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{cluster.directory}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
    with (cluster.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(settings)
    log = cluster.directory / "server.log"
    result = _run(cluster, [str(cluster.bindir / "pg_ctl"), "start", "-D", str(cluster.data),
                            "-l", str(log), "-w", "-t", str(int(timeout))], check=False)
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        raise PgClusterUnavailable(
            f"the throwaway PostgreSQL in {cluster.directory} did not start: "
            f"{result.stderr.strip()} {tail.strip()}".strip())


def _run(cluster: PgCluster, args: list[str], *, check: bool = True
         ) -> subprocess.CompletedProcess[str]:
    command = _as_user(cluster.run_as, args)
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            cwd=cluster.directory if cluster.directory.exists() else None)
    if check and result.returncode != 0:
        raise PgClusterUnavailable(
            f"{Path(args[0]).name} failed for the throwaway PostgreSQL: "
            f"{(result.stderr or result.stdout).strip()}")
    return result


def _as_user(user: str | None, args: list[str]) -> list[str]:
    if user is None:
        return args
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *args]
    # _server_user() checked that one of the two exists.
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *args]


def _server_user() -> str | None:
    """None when not root; else the OS user to run the server as, or an error saying what lacks."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PgClusterUnavailable(
            f"cannot start a throwaway PostgreSQL as root: initdb refuses to run as root and "
            f"there is no {SERVER_USER!r} OS user to run it as (Debian's postgresql package "
            "creates it)") from None
    if not (shutil.which("runuser") or shutil.which("setpriv")):
        raise PgClusterUnavailable(
            f"cannot start a throwaway PostgreSQL as root: initdb refuses to run as root and "
            f"neither runuser nor setpriv (util-linux) is installed to run it as {SERVER_USER!r}")
    return SERVER_USER


def _temp_base(run_as: str | None) -> str:
    """The temp root, or /tmp when the server user could not walk down to it (e.g. under /root)."""
    base = tempfile.gettempdir()
    if run_as is None:
        return base
    path = Path(base).resolve()
    for folder in (path, *path.parents):
        if not folder.stat().st_mode & stat.S_IXOTH:
            return "/tmp"
    return base


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
