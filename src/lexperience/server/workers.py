"""Several worker processes behind one entry point: nginx routes by conversation id.

``lexperience serve --workers N`` starts N ordinary single-process servers on loopback ports
(worker ``w0`` ... ``wN-1``) and an nginx in front of them on the public address. A conversation
id starts with the name of the worker that holds it (``w2-Xy...``), and nginx's ``map`` sends
every request and WebSocket of that conversation to that worker; requests that name no
conversation (creating one, the probes) are balanced to the least busy worker. nginx does the
proxying, buffering, WebSocket upgrades and connection handling; this module only writes its
configuration and keeps the processes running (a worker that dies is started again, empty: its
conversations are lost and their clients get a clear error).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigurationError
from .settings import ENV_TOKEN, ServerSettings

__all__ = ["Cluster", "Worker", "nginx_config", "run_workers", "start_workers"]

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_config(*, listen: str, ports: list[int], max_body: int, prefix: Path) -> str:
    """An nginx configuration: ``listen`` in front of one loopback worker per port."""
    upstreams = "\n".join(
        f"    upstream lex_w{i} {{ server 127.0.0.1:{port}; keepalive 16; }}"
        for i, port in enumerate(ports)
    )
    balanced = "\n".join(f"        server 127.0.0.1:{port};" for port in ports)
    return f"""# written by lexperience serve --workers {len(ports)}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size {max_body};
    map $http_upgrade $connection_upgrade {{ default upgrade; "" ""; }}
    # the worker that holds a conversation is the first part of its id
    map $uri $lex_worker {{
        "~^/v1/conversations/(?<w>w[0-9]+)-" lex_$w;
        default lex_any;
    }}
{upstreams}
    upstream lex_any {{
        least_conn;
{balanced}
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://$lex_worker;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
"""


@dataclass
class Worker:
    """One worker process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _spawn(name: str, port: int, config: Path, env: dict[str, str]) -> Worker:
    command = [sys.executable, "-m", "lexperience", "serve", "--config", str(config),
               "--host", "127.0.0.1", "--port", str(port), "--worker-id", name]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    return Worker(name, port, process)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigurationError(f"a worker exited at start (code {process.returncode})")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise ConfigurationError(f"a worker did not answer on {url} within {timeout:.0f} s")


@dataclass
class Cluster:
    """The running workers and nginx of :func:`start_workers`."""

    workers: list[Worker]
    proxy: subprocess.Popen[bytes]
    config: Path
    env: dict[str, str]

    def restart(self, index: int) -> Worker:
        """Start worker ``index`` again (empty) on its port."""
        old = self.workers[index]
        self.workers[index] = _spawn(old.name, old.port, self.config, self.env)
        return self.workers[index]


@contextlib.contextmanager
def start_workers(settings: ServerSettings, count: int, *,
                  start_timeout: float = 120.0) -> Iterator[Cluster]:  # fmt: skip
    """Run ``count`` workers and nginx in front of them for the ``with`` block."""
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )
    if nginx is None:
        raise ConfigurationError(
            "--workers needs nginx in front of the workers: install it (Debian/Ubuntu: "
            "apt-get install nginx; macOS: brew install nginx), or run one worker"
        )
    if count < 2:
        raise ConfigurationError("--workers needs at least 2 (one worker needs no nginx)")
    with tempfile.TemporaryDirectory(prefix="lexperience-serve-") as folder:
        prefix = Path(folder)
        config = prefix / "server.json"
        public = settings.model_dump(mode="json", exclude={"tokens", "host", "port", "worker_id"})
        config.write_text(json.dumps(public), "utf-8")
        config.chmod(0o600)
        env = {**os.environ}
        if settings.tokens:  # passed in the environment, never written to disk
            env[ENV_TOKEN] = ",".join(t.get_secret_value() for t in settings.tokens)
        workers = [_spawn(f"w{i}", free_port(), config, env) for i in range(count)]
        proxy: subprocess.Popen[bytes] | None = None
        try:
            for worker in workers:
                _wait_healthy(worker.url, worker.process, start_timeout)
            conf = prefix / "nginx.conf"
            host = settings.host if ":" not in settings.host else f"[{settings.host}]"
            conf.write_text(nginx_config(listen=f"{host}:{settings.port}",
                                         ports=[w.port for w in workers],
                                         max_body=settings.max_request_bytes, prefix=prefix),
                            "utf-8")  # fmt: skip
            proxy = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf)])
            _wait_healthy(f"http://127.0.0.1:{settings.port}", proxy, 30.0)
            yield Cluster(workers, proxy, config, env)
        finally:
            processes = ([proxy] if proxy is not None else []) + [w.process for w in workers]
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=settings.shutdown_grace + 5)
                except subprocess.TimeoutExpired:
                    process.kill()


def run_workers(settings: ServerSettings, count: int) -> int:
    """``lexperience serve --workers N``: run until Ctrl-C or SIGTERM; restart dead workers."""
    if settings.port == 0:
        settings = settings.model_copy(update={"port": free_port()})
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    with start_workers(settings, count) as cluster:
        print(f"lexperience: {count} workers behind http://{settings.host}:{settings.port}",
              file=sys.stderr, flush=True)  # fmt: skip
        try:
            while not stop:
                time.sleep(0.5)
                if cluster.proxy.poll() is not None:
                    log.error("nginx exited (code %s): stopping", cluster.proxy.returncode)
                    return 1
                for i, worker in enumerate(cluster.workers):
                    if worker.process.poll() is not None:
                        log.warning("worker %s died (code %s): starting it again, empty",
                                    worker.name, worker.process.returncode)  # fmt: skip
                        cluster.restart(i)
        except KeyboardInterrupt:
            pass
    return 0
