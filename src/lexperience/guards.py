"""How the pipeline awaits a backend: a stage deadline and one typed error mapping.

* A missed deadline (:attr:`TurnOptions.stage_timeout`) becomes :class:`BackendTimeoutError`
  saying so. A backend's *own* ``TimeoutError`` (its socket, its SDK) is reported as that, not as
  the stage deadline: on Python 3.11+ ``asyncio.TimeoutError is TimeoutError``, so the deadline
  uses its own exception (:class:`lexperience._aio.DeadlineExceeded`).
* Any foreign exception becomes :class:`BackendError` naming the stage and the backend, with its
  message redacted (no key ever reaches a user or a log through an error).
* Cancellation and :class:`LexperienceError` s pass through unchanged.

Internal to the pipeline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping
from typing import TypeVar

from ._aio import DeadlineExceeded, wait_for
from ._redact import redact
from .errors import BackendError, BackendTimeoutError, LexperienceError

__all__ = ["StageGuard"]

T = TypeVar("T")
log = logging.getLogger(__name__)


class StageGuard:
    """Deadline + error mapping for the backend calls of one turn.

    Args:
        names: registry names of the backends, by stage (for error messages).
        timeout: seconds a backend may take for its next result; ``None`` waits forever.
        busy: per-stage seconds spent waiting on backends (updated by :meth:`iterate`).
    """

    def __init__(
        self, names: Mapping[str, str], timeout: float | None, busy: dict[str, float]
    ) -> None:
        self.names = names
        self.timeout = timeout
        self.busy = busy

    def wrap(self, stage: str, exc: BaseException) -> LexperienceError:
        """The typed error for ``exc`` raised by the ``stage`` backend."""
        name = self.names.get(stage)
        if isinstance(exc, BackendError):
            exc.stage = exc.stage or stage
            exc.backend = exc.backend or name
            return exc
        if isinstance(exc, LexperienceError):
            return exc
        detail = redact(f"{type(exc).__name__}: {exc}")
        err: BackendError
        if isinstance(exc, TimeoutError):  # the backend's own timeout, not the stage deadline
            err = BackendTimeoutError(
                f"the backend timed out ({detail})", backend=name, stage=stage
            )
        else:
            err = BackendError(detail, backend=name, stage=stage)
        err.__cause__ = exc
        return err

    def deadline_error(self, stage: str) -> BackendTimeoutError:
        assert self.timeout is not None
        return BackendTimeoutError(
            f"no result within {self.timeout:g} s (TurnOptions.stage_timeout)",
            backend=self.names.get(stage),
            stage=stage,
        )

    async def call(self, stage: str, awaitable: Awaitable[T]) -> T:
        """Await one backend call under the stage deadline, mapping its errors."""
        try:
            return await wait_for(awaitable, self.timeout)
        except DeadlineExceeded:
            log.debug("%s: no result within %s s", stage, self.timeout)
            raise self.deadline_error(stage) from None
        except (asyncio.CancelledError, StopAsyncIteration):
            raise
        except LexperienceError as exc:
            self.wrap(stage, exc)  # a BackendError learns its stage and backend, in place
            raise
        except Exception as exc:
            raise self.wrap(stage, exc) from exc

    async def iterate(
        self,
        stage: str,
        stream: AsyncIterator[T],
        *,
        busy: str | None = None,
        deadline: bool = True,
    ) -> AsyncGenerator[T, None]:
        """Iterate a backend stream item by item under :meth:`call` (``deadline=False``: errors
        mapped, no deadline), adding the waits to ``busy``, and close the stream at the end."""
        it = stream.__aiter__()
        try:
            while True:
                started = time.perf_counter()
                try:
                    if deadline:
                        item = await self.call(stage, it.__anext__())
                    else:
                        item = await it.__anext__()
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    raise
                except LexperienceError as exc:
                    self.wrap(stage, exc)
                    raise
                except Exception as exc:
                    raise self.wrap(stage, exc) from exc
                finally:
                    if busy is not None:
                        self.busy[busy] += time.perf_counter() - started
                yield item
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception as exc:  # the stream is being abandoned; its own error is moot
                    log.debug("%s: closing the stream raised %s", stage, type(exc).__name__)
