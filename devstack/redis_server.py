"""A throwaway `redis-server` on loopback for the demo, tests and benchmarks."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from devstack.process import ChildServer, free_port

if TYPE_CHECKING:
    from devstack.tls import TlsFiles


class RedisServer(ChildServer):
    """`redis-server` on 127.0.0.1, configured as a deployment's broker should be.

    It never evicts (`maxmemory-policy noeviction`) and, unless `persist` is false, keeps
    an append-only file in `workdir`, so `dlq-replay doctor` passes on it as on a
    production Redis. `persist=False`: a restart starts empty (tests of losing Redis).
    With `password`, clients must AUTH with it (`requirepass`, written to a config file so
    it is not on the command line); `url` carries no password either way. With `tls`, it
    speaks TLS only (`rediss://`, no plain port) with that server certificate, and does not
    ask clients for one of theirs.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        password: str | None = None,
        persist: bool = True,
        tls: TlsFiles | None = None,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run 'make test' or install it")
        port = port or free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.tls = tls
        config: list[str] = []
        if password is not None:
            conf = workdir / "redis.conf"
            conf.write_text(f"requirepass {password}\n")
            conf.chmod(0o600)
            config = [str(conf)]
        listen = ["--port", str(port)]
        if tls is not None:
            listen = [
                "--port", "0",
                "--tls-port", str(port),
                "--tls-cert-file", str(tls.cert),
                "--tls-key-file", str(tls.key),
                "--tls-ca-cert-file", str(tls.ca),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        argv = [
            binary,
            *config,
            *listen,
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if persist else "no",
            "--maxmemory-policy", "noeviction",
            "--dir", str(workdir),
            "--maxclients", "2000",
        ]  # fmt: skip
        super().__init__(argv, port, log=workdir / "redis.log")

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls is not None else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"
