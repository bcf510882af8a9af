"""A Python client of ``lexperience serve`` (extra ``client``: httpx + websockets).

>>> from lexperience.client import Client              # doctest: +SKIP
>>> with Client("http://127.0.0.1:8000", token="...") as client:
...     conv = client.create_conversation()
...     reply = conv.ask("Why is the sky blue?")
...     print(reply.text, reply.media["mp4"])

:class:`AsyncClient` is the same in ``async`` code. Service failures raise the lexperience error
tree: 422 :class:`~lexperience.InvalidInputError`, 409
:class:`~lexperience.ConversationBusyError`, 429 :class:`~lexperience.RateLimitError`, 401
:class:`~lexperience.AuthenticationError`, and :class:`ServiceError` for the service failing or
going away.
"""

from ._async import AsyncClient, AsyncConversation, AsyncStream, ServiceError
from ._sync import Client, Conversation, Stream

__all__ = [
    "AsyncClient",
    "AsyncConversation",
    "AsyncStream",
    "Client",
    "Conversation",
    "ServiceError",
    "Stream",
]
