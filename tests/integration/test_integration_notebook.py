"""The example notebook runs top to bottom in a real Jupyter kernel: ``Conversation.reply()`` must
work while the kernel's own event loop is running, and ``stream()`` inside a cell with ``await``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.local

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("faster_whisper")

ROOT = Path(__file__).resolve().parents[2]


def test_example_notebook_executes(tmp_path: Path) -> None:
    shutil.copy(ROOT / "examples" / "question.wav", tmp_path / "question.wav")
    nb = nbformat.read(ROOT / "examples" / "notebook.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )  # fmt: skip
    assert "You: What is a black hole" in outputs
    assert "first audio" in outputs
    assert (tmp_path / "out" / "reply.mp4").is_file()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
