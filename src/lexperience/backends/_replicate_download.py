"""Downloading a prediction's output clip safely (used by
:mod:`lexperience.backends.replicate_avatar`).

* Redirects are followed by hand, and only to the output URL's own host (same scheme or an
  upgrade to https, same port) or to a host of the ``download_hosts`` allow-list: a compromised
  or misconfigured CDN cannot send the client to an arbitrary host (an internal address, say).
* ``max_download_bytes`` is enforced while the body streams in (a declared ``Content-Length``
  over it is refused before reading), so an oversized output never fills memory.
* The body goes to a spooled temporary file: kept in memory up to a few MiB, on disk beyond.
* No API token is sent (the client that downloads carries no Authorization header).
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import tempfile
import time
from collections.abc import Sequence
from typing import IO, Any
from urllib.parse import urljoin, urlparse

from ._cloud import ConnectOptions, ErrorMapper, retry
from ._cloud_errors import request_id_in

__all__ = ["Downloader", "host_allowed"]

log = logging.getLogger(__name__)

_MAX_REDIRECTS = 5
_SPOOL_BYTES = 8 * 1024 * 1024


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = urlparse(url)
    return parsed.scheme.lower(), (parsed.hostname or "").lower(), parsed.port


def host_allowed(origin_url: str, target_url: str, allowed_hosts: Sequence[str]) -> bool:
    """May a download of ``origin_url`` be redirected to ``target_url``?

    Yes to the same host and port (http may upgrade to https, https never downgrades), or to a
    host in ``allowed_hosts``: an exact name, or ``.example.com`` for example.com and every
    subdomain of it.
    """
    scheme, host, port = _origin(origin_url)
    t_scheme, t_host, t_port = _origin(target_url)
    if t_scheme not in ("http", "https") or not t_host:
        return False
    if scheme == "https" and t_scheme != "https":
        return False
    if t_host == host and (t_port == port or (t_port is None and port is None)):
        return True
    for entry in allowed_hosts:
        name = entry.strip().lower()
        if name.startswith("."):
            if t_host == name[1:] or t_host.endswith(name):
                return True
        elif name and t_host == name:
            return True
    return False


class Downloader:
    """Fetches output URLs (and ``data:`` URIs) with the rules in the module docstring.

    Args:
        client: a function returning the ``httpx.AsyncClient`` of the running loop (built with
            ``follow_redirects=False``).
        errors: the avatar's error mapper.
        options: timeouts and retries (a failed download is retried as a whole).
        max_bytes: the largest output accepted.
        allowed_hosts: hosts a download may be redirected to besides its own.
    """

    def __init__(
        self,
        client: Any,
        *,
        errors: ErrorMapper,
        options: ConnectOptions,
        max_bytes: int,
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        self._client = client
        self.errors = errors
        self.options = options
        self.max_bytes = max_bytes
        self.allowed_hosts = tuple(allowed_hosts)

    async def fetch(self, url: str) -> IO[bytes]:
        """The output at ``url`` as a binary file positioned at 0 (the caller closes it)."""
        if url.startswith("data:"):
            _, _, payload = url.partition(",")
            try:
                data = base64.b64decode(payload, validate=False)
            except (binascii.Error, ValueError) as exc:
                raise self.errors.error(
                    "the output data URI is not base64", retryable=False
                ) from exc
            if len(data) > self.max_bytes:
                raise self.errors.error(f"the output is over {self.max_bytes} bytes")
            if not data:
                raise self.errors.error("the output file is empty", retryable=True)
            return io.BytesIO(data)
        if not url.startswith(("http://", "https://")):
            raise self.errors.error(f"the output is not a URL: {url[:80]!r}", retryable=False)
        return await retry(
            lambda: self._get(url), mapper=self.errors, options=self.options, what="download"
        )

    async def _get(self, url: str) -> IO[bytes]:
        client = self._client()
        current = url
        started = time.perf_counter()
        for _ in range(_MAX_REDIRECTS + 1):
            async with client.stream("GET", current) as response:
                location = response.headers.get("location")
                if response.status_code in (301, 302, 303, 307, 308) and location:
                    target = urljoin(current, location)
                    if not host_allowed(url, target, self.allowed_hosts):
                        raise self.errors.error(
                            f"the output download was redirected to another host "
                            f"({urlparse(target).hostname!r}); allow it with "
                            "download_hosts=[...]",
                            retryable=False,
                        )
                    log.debug(
                        "replicate avatar: output redirected to %s", urlparse(target).hostname
                    )
                    current = target
                    continue
                if response.status_code >= 400:
                    raise self.errors.status(
                        response.status_code,
                        "downloading the output",
                        request_id=request_id_in(response.headers),
                    )
                data = await self._body(response)
                log.debug(
                    "replicate avatar: downloaded %d bytes in %.3f s",
                    data.tell(),
                    time.perf_counter() - started,
                )
                data.seek(0)
                return data
        raise self.errors.error(
            f"the output download was redirected more than {_MAX_REDIRECTS} times",
            retryable=False,
        )

    async def _body(self, response: Any) -> IO[bytes]:
        length = int(response.headers.get("content-length") or 0)
        if length > self.max_bytes:
            raise self.errors.error(
                f"the output is {length} bytes; the limit is {self.max_bytes} (max_download_bytes)"
            )
        out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115
        try:
            size = 0
            async for part in response.aiter_bytes():
                size += len(part)
                if size > self.max_bytes:
                    raise self.errors.error(
                        f"the output is over {self.max_bytes} bytes (max_download_bytes)"
                    )
                out.write(part)
            if size == 0:
                raise self.errors.error("the output file is empty", retryable=True)
        except BaseException:
            out.close()
            raise
        return out
