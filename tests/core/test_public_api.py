from __future__ import annotations

import subprocess
import sys

import lexperience
from lexperience import errors

EXPECTED = {
    "DEFAULT_PERSONA", "LLM", "STT", "TTS", "Audio", "AudioChunk", "AudioEvent",
    "AuthenticationError", "Avatar", "BackendError", "BackendTimeoutError", "ConfigurationError",
    "ContextProvider", "Conversation", "ConversationBusyError", "Episode", "EpisodeContext",
    "ErrorEvent", "Event", "HookError",
    "Hooks", "InvalidInputError", "LexperienceError", "Message", "MissingCredentialsError",
    "MissingDependencyError", "Passage", "Persona", "RateLimitError", "Reply", "Segment",
    "SentenceEvent",
    "StaticContext", "TextDelta", "Transcript", "TranscriptEvent", "TurnCancelledError",
    "TurnContext", "TurnDone", "TurnInterrupted", "TurnMetrics", "TurnOptions", "TurnStarted",
    "UserInput", "VideoEvent", "VideoFrame", "VisemeCue", "Watermark", "Word", "__version__",
    "create", "EncodedVideo", "FrameFilter", "PartialTranscript", "StreamingSTT",
}  # fmt: skip


def test_all_is_exactly_the_public_api() -> None:
    assert set(lexperience.__all__) == EXPECTED
    assert len(lexperience.__all__) == len(set(lexperience.__all__))
    for name in lexperience.__all__:
        assert hasattr(lexperience, name), name
    public = {n for n in vars(lexperience) if not n.startswith("_")}
    modules = {n for n, v in vars(lexperience).items() if type(v).__name__ == "module"}
    assert public - modules - EXPECTED == set(), "exported by accident"


def test_error_tree_is_documented_in_one_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.LexperienceError)
        assert name in doc, f"{name} missing from the errors docstring"


def test_import_is_light_and_imports_no_backend() -> None:
    code = (
        "import sys, lexperience\n"
        "heavy = {'av', 'cv2', 'openai', 'elevenlabs', 'replicate', 'faster_whisper', "
        "'llama_cpp', 'piper', 'onnxruntime', 'ctranslate2'}\n"
        "loaded = heavy & set(sys.modules)\n"
        "backends = [m for m in sys.modules if m.startswith('lexperience.backends.')]\n"
        "print(sorted(loaded), backends)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"


def test_package_is_typed() -> None:
    from importlib.resources import files

    assert files("lexperience").joinpath("py.typed").is_file()


def test_layers_core_imports_no_rendering_and_reply_no_events() -> None:
    code = (
        "import sys, lexperience\n"
        "print(sorted(m for m in sys.modules if m.startswith('lexperience.render')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # the portrait's drawing loads with the portrait only
    import ast
    import inspect

    from lexperience import reply

    tree = ast.parse(inspect.getsource(reply))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "events" not in imported and "lexperience.events" not in imported
