"""Every error lexperience raises on purpose, in one tree.

```
LexperienceError                  base of everything below; catch this to catch all
├── ConfigurationError            a setting, persona file or backend name is wrong
│   ├── MissingDependencyError    an optional extra is not installed (message = the pip command)
│   └── MissingCredentialsError   an API key is neither passed nor set in the environment
├── InvalidInputError             audio, text or an image the library cannot use (nothing is lost)
├── BackendError                  a backend failed; ``retryable`` says whether trying again may help
│   ├── BackendTimeoutError       the backend did not answer in time (retryable)
│   ├── RateLimitError            the service asked us to slow down (retryable)
│   └── AuthenticationError       the service refused the credentials (not retryable)
├── HookError                     a user hook raised; ``__cause__`` holds the original exception
├── ConversationBusyError         a turn was started while another one runs and ``wait=False``
└── TurnCancelledError            the turn was interrupted before it finished
```

Every error carries a plain-English message naming the problem and, where one exists, the fix.
Errors raised by a backend name the backend (``backend``) and the pipeline ``stage`` ("stt", "llm",
"tts", "avatar") so that logs and UIs can say which part failed.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BackendError",
    "BackendTimeoutError",
    "ConfigurationError",
    "ConversationBusyError",
    "HookError",
    "InvalidInputError",
    "LexperienceError",
    "MissingCredentialsError",
    "MissingDependencyError",
    "RateLimitError",
    "TurnCancelledError",
]


class LexperienceError(Exception):
    """Base class of every error raised by lexperience on purpose."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigurationError(LexperienceError):
    """A setting, a persona file, a config file or a backend name is wrong."""


class MissingDependencyError(ConfigurationError):
    """An optional extra is not installed.

    The message ends with the exact command to run, e.g. ``pip install "lexperience[local]"``.
    """

    def __init__(self, *, module: str, extra: str, feature: str | None = None) -> None:
        self.module = module
        self.extra = extra
        self.install_command = f'pip install "lexperience[{extra}]"'
        what = feature or "this feature"
        super().__init__(
            f"{what} needs the Python package {module!r}, which is not installed. "
            f"Install it with: {self.install_command}"
        )


class MissingCredentialsError(ConfigurationError):
    """An API key is neither passed as an argument nor set in the environment."""

    def __init__(self, *, backend: str, env_var: str) -> None:
        self.backend = backend
        self.env_var = env_var
        super().__init__(
            f"the {backend} backend needs an API key: pass api_key=... or set the "
            f"environment variable {env_var}"
        )


class InvalidInputError(LexperienceError):
    """Input the library cannot use: empty, silent, corrupt or oversized audio, bad text, a bad image.

    The conversation is left exactly as it was: nothing is added to the history.
    """


class BackendError(LexperienceError):
    """A backend failed while doing its work.

    Attributes:
        backend: the backend's registry name, e.g. ``"openai"``.
        stage: ``"stt"``, ``"llm"``, ``"tts"`` or ``"avatar"`` (``None`` outside a turn).
        retryable: whether the same call may succeed if tried again.
        status: the HTTP status code for cloud backends, else ``None``.
        request_id: the id the service gave the failed request (OpenAI's ``x-request-id``,
            ElevenLabs' ``request-id``...), to quote to its support; ``None`` when it gave none.
    """

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        stage: str | None = None,
        retryable: bool = False,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.backend = backend
        self.stage = stage
        self.retryable = retryable
        self.status = status
        self.request_id = request_id

    def __str__(self) -> str:
        where = "/".join(p for p in (self.stage, self.backend) if p)
        return f"[{where}] {self.message}" if where else self.message


class BackendTimeoutError(BackendError):
    """The backend did not answer within its timeout. Retryable."""

    def __init__(self, message: str, **kwargs: object) -> None:
        kwargs.setdefault("retryable", True)
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class RateLimitError(BackendError):
    """The service answered 429 (too many requests). Retryable after a pause."""

    def __init__(self, message: str, **kwargs: object) -> None:
        kwargs.setdefault("retryable", True)
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class AuthenticationError(BackendError):
    """The service refused the credentials (401/403). Not retryable: fix the key."""


class HookError(LexperienceError):
    """A user hook raised. The original exception is chained as ``__cause__``."""

    def __init__(self, hook: str, error: BaseException) -> None:
        self.hook = hook
        super().__init__(f"hook {hook} raised {type(error).__name__}: {error}")


class ConversationBusyError(LexperienceError):
    """A turn was started while another turn of the same conversation was still running."""


class TurnCancelledError(LexperienceError):
    """The turn was interrupted (``Conversation.interrupt()``) before it finished.

    ``heard_text`` is what the listener heard of the reply before the interruption; it is what the
    history keeps. ``reply`` is the partial :class:`~lexperience.Reply` (audio and frames so far).
    """

    def __init__(self, heard_text: str = "", *, reply: object = None) -> None:
        self.heard_text = heard_text
        self.reply = reply
        super().__init__("the turn was interrupted before it finished")
