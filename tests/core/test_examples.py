from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_example_runs_with_fakes(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--fake", "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "You: What is a black hole?" in out.stdout
    assert (tmp_path / "reply.mp4").is_file()


def test_readme_opens_with_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()
    assert first_block[0].startswith("make demo") and first_block[1].startswith("make test")
    makefile = (ROOT / "Makefile").read_text()
    assert "lexperience reply examples/question.wav -o out/" in makefile
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
