"""A throwaway PostgreSQL 15 cluster for tests and benchmarks: initdb in a
temporary folder, a free loopback port, trust auth, durability off."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.emulators import EmulatorUnavailable, free_port

BIN = Path(os.environ.get("POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass
class PostgresServer:
    directory: str
    port: int
    process: subprocess.Popen
    user: str | None

    @property
    def url(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root: use the `postgres` account (or nobody)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise EmulatorUnavailable("running as root and no unprivileged account for PostgreSQL")


def start_postgres(timeout: float = 60.0) -> PostgresServer:
    if not (BIN / "initdb").exists():
        raise EmulatorUnavailable(f"PostgreSQL server binaries not found in {BIN}")
    user = _run_as()
    directory = tempfile.mkdtemp(prefix="pg-test-")
    if user:
        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    data = os.path.join(directory, "data")
    subprocess.run([str(BIN / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--locale=C"], check=True, capture_output=True, user=user, cwd=directory)
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "postgres"), "-D", data, "-p", str(port), "-k", directory, "-c", "listen_addresses=127.0.0.1",
         "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(directory, "server.log"), "wb"), user=user,
        cwd=directory, start_new_session=True)
    server = PostgresServer(directory, port, process, user)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = subprocess.run([str(BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True)
        if ready.returncode == 0:
            return server
        if process.poll() is not None:
            break
        time.sleep(0.2)
    server.stop()
    raise RuntimeError("PostgreSQL did not start")
