"""``python -m lexperience.testing.wire``: serve the wire-protocol test server by hand."""

from ._process import main

main()
