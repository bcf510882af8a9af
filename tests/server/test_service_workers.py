"""Several workers behind nginx: conversations stay on their worker, and a worker killed
mid-turn loses only its own conversations, with a clear error for their clients."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import time

import httpx
import pytest
from service_support import fake_stack

from lexperience.client import Client, ServiceError
from lexperience.server import ServerSettings
from lexperience.server.workers import free_port, nginx_config, start_workers

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
needs_nginx = pytest.mark.skipif(NGINX is None, reason="needs nginx (apt-get install nginx)")


def test_the_nginx_config_pins_by_the_worker_in_the_id(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = nginx_config(listen="127.0.0.1:9000", ports=[9001, 9002], max_body=1000, prefix=tmp_path)
    assert "upstream lex_w0 { server 127.0.0.1:9001;" in text
    assert "upstream lex_w1 { server 127.0.0.1:9002;" in text
    assert '"~^/v1/conversations/(?<w>w[0-9]+)-" lex_$w;' in text and "least_conn;" in text
    assert "proxy_set_header Upgrade $http_upgrade;" in text  # WebSockets pass through


@needs_nginx
def test_conversations_are_pinned_and_a_killed_worker_loses_only_its_own() -> None:
    settings = ServerSettings(port=free_port(), stack=fake_stack(token_interval=0.05),
                              turns_per_minute=600, burst=100, shutdown_grace=1)  # fmt: skip
    with (
        start_workers(settings, 2) as cluster,
        Client(f"http://127.0.0.1:{settings.port}") as client,
    ):
        mine: dict[str, object] = {}
        for _ in range(20):  # least_conn spreads new conversations over both workers
            conv = client.create_conversation()
            mine.setdefault(conv.id.split("-")[0], conv)
            if len(mine) == 2:
                break
        doomed, survivor = mine["w0"], mine["w1"]
        for conv in (doomed, survivor):  # every turn reaches the worker that holds the history
            conv.ask("first")  # type: ignore[attr-defined]
            conv.ask("second")  # type: ignore[attr-defined]
            assert len(conv.refresh().history) == 4  # type: ignore[attr-defined]
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            turn = pool.submit(doomed.ask, "a long question to be cut short by a crash")  # type: ignore[attr-defined]
            w0 = cluster.workers[0]
            deadline = time.monotonic() + 30
            while httpx.get(f"{w0.url}/readyz").json().get("running_turns", 0) == 0:
                assert time.monotonic() < deadline, "the turn never started on w0"
                time.sleep(0.02)
            w0.process.kill()
            with pytest.raises(ServiceError) as info:
                turn.result(timeout=60)
        assert info.value.status == 502 and "lost" in str(info.value) and info.value.retryable
        assert survivor.ask("are you still there?").text  # type: ignore[attr-defined]
        assert len(survivor.refresh().history) == 6  # type: ignore[attr-defined]
