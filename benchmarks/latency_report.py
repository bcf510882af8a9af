"""The figures of ``benchmarks/latency.py``: per-mode summaries, the step-by-step breakdown of
the time to first audio, the tables it prints and the chart it draws."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import latency_server as sim

METRICS = ("first_audio_s", "first_video_s", "total_s")
LABELS = {"first_audio_s": "first audio", "first_video_s": "first video frame", "total_s": "total"}


def mode_summary(turns: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: sim.summarize([getattr(t, k) for t in turns if getattr(t, k) is not None])
        for k in (*METRICS, "transcript_s", "first_token_s", "loop_stall_s")
    }
    out["reply_audio_s"] = sim.summarize([t.reply_audio_s for t in turns])
    out["sentences"] = turns[-1].sentences if turns else []
    return out


def ratios(streaming: dict[str, Any], sequential: dict[str, Any]) -> dict[str, float | None]:
    """Sequential / streaming, of the medians (how many times sooner streaming gets there)."""
    out: dict[str, float | None] = {}
    for k in METRICS:
        a, b = streaming[k]["median"], sequential[k]["median"]
        out[k] = round(b / a, 2) if a and b else None
    return out


#: The steps from the end of speech to the first audio, in order: (name, what it is).
STEPS = (
    ("to_stt", "turn start -> the STT request reaches the server"),
    ("stt", "the STT service (server side)"),
    ("stt_back", "the transcript leaves the server -> TranscriptEvent"),
    ("to_llm", "TranscriptEvent -> the LLM request reaches the server"),
    ("llm", "the LLM service, up to the token that ends the first piece (server side)"),
    ("llm_back", "that token leaves the server -> SentenceEvent"),
    ("to_tts", "SentenceEvent -> the TTS request reaches the server"),
    ("tts", "the TTS service, to its first audio (server side)"),
    ("tts_back", "the first audio leaves the server -> the first AudioEvent"),
)


def breakdown(turn: Any, tokens: int) -> dict[str, float] | None:
    """Where the time to first audio of one streaming turn went, step by step (see
    :data:`STEPS`), from the server's records and the caller's clock (one clock: both processes
    read CLOCK_MONOTONIC), or ``None`` when a record is missing."""
    if turn.first_audio_s is None or not {"transcript", "first_sentence"} <= set(turn.seen):
        return None
    by = {e: [r for r in turn.server if r["stage"] == e] for e in ("stt", "llm", "tts")}
    if not all(by.values()):
        return None
    stt, llm = by["stt"][0], by["llm"][0]
    tts = min(by["tts"], key=lambda r: r["arrived"])
    if not stt["sent"] or len(llm["sent"]) < tokens or not tts["sent"]:
        return None
    seen = turn.seen
    token_sent = llm["arrived"] + llm["sent"][tokens - 1]
    return {
        "to_stt": stt["arrived"] - turn.started_at,
        "stt": stt["sent"][0],
        "stt_back": seen["transcript"] - (stt["arrived"] + stt["sent"][0]),
        "to_llm": llm["arrived"] - seen["transcript"],
        "llm": llm["sent"][tokens - 1],
        "llm_back": seen["first_sentence"] - token_sent,
        "to_tts": tts["arrived"] - seen["first_sentence"],
        "tts": tts["sent"][0],
        "tts_back": seen["first_audio"] - (tts["arrived"] + tts["sent"][0]),
    }


def nominal_first_audio(profile: sim.LatencyProfile, tokens: int) -> float:
    """What the services take to the first audio by the profile: the transcript, the LLM's
    tokens up to the end of the first piece, TTS's first audio."""
    return (
        profile.stt_s
        + profile.llm_first_token_s
        + (tokens - 1) / profile.llm_tokens_per_s
        + profile.tts_first_byte_s
    )


def _cell(stats: dict[str, Any]) -> str:
    if not stats or stats.get("median") is None:
        return "-"
    return f"{stats['median']:.2f} / {stats['p95']:.2f} s"


def print_scenario(key: str, data: dict[str, Any]) -> None:
    print(f"\nScenario {key}: {data['name']} ({data['runs']} runs after {data['warmup']} warm-up)")
    for stage, name in data["backends"].items():
        print(f"  {stage:<7} {name or '(none)'}")
    print(f"  {'':<20}{'streaming med / p95':>22}{'sequential med / p95':>24}{'seq / stream':>14}")
    for k in METRICS:
        r = data["ratios"].get(k)
        print(
            f"  {LABELS[k]:<20}{_cell(data['streaming'][k]):>22}{_cell(data['sequential'][k]):>24}"
            f"{'-' if r is None else f'{r:.1f}x':>14}"
        )
    stall = data["streaming"]["loop_stall_s"]
    if stall.get("median") is not None:
        print(
            f"  event-loop stall, worst per streaming turn: median {stall['median'] * 1000:.0f} "
            f"ms, p95 {stall['p95'] * 1000:.0f} ms"
        )
    over = data.get("overhead")
    if over:
        print(
            f"  orchestration overhead on first audio (services' own first-byte latencies: "
            f"{over['services_first_audio_s'] * 1000:.0f} ms)"
        )
        for k, label in (
            ("vs_profile_s", "minus the profile's latencies"),
            ("vs_server_measured_s", "minus what the server measured"),
            ("in_process_twins_s", "in-process twins, no HTTP"),
        ):
            st = over[k]
            if st["median"] is not None:
                print(
                    f"    {label:<34} median {st['median'] * 1000:6.1f} ms   "
                    f"p95 {st['p95'] * 1000:6.1f} ms"
                )
        print("  time to first audio, step by step (median / p95):")
        for k, label in over.get("steps", {}).items():
            st = over["steps_s"][k]
            if st["median"] is not None:
                print(f"    {label:<72} {st['median'] * 1000:7.1f} / {st['p95'] * 1000:7.1f} ms")


def chart(results: dict[str, Any], path: Path) -> Path | None:
    """Grouped bars per scenario: median (bar) and p95 (whisker) of each metric, both modes."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed: no chart (pip install matplotlib)")
        return None
    keys = [k for k in ("A", "B") if k in results.get("scenarios", {})]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(6.2 * len(keys), 3.8), squeeze=False)
    colours = {"streaming": "#2b7bba", "sequential": "#c8c8c8"}
    for ax, key in zip(axes[0], keys, strict=True):
        data = results["scenarios"][key]
        for j, mode in enumerate(("streaming", "sequential")):
            med = [data[mode][m]["median"] or 0.0 for m in METRICS]
            p95 = [data[mode][m]["p95"] or 0.0 for m in METRICS]
            xs = [i + (j - 0.5) * 0.38 for i in range(len(METRICS))]
            err = [[0.0] * len(med), [max(0.0, p - m) for p, m in zip(p95, med, strict=True)]]
            bars = ax.bar(xs, med, 0.36, yerr=err, capsize=3, color=colours[mode], label=mode,
                          edgecolor="#555555", linewidth=0.6)  # fmt: skip
            for bar, value, top in zip(bars, med, p95, strict=True):
                if value:  # the median, written above the whisker
                    ax.annotate(f"{value:.1f}", (bar.get_x() + bar.get_width() / 2, max(value, top)),
                                ha="center", va="bottom", fontsize=8,
                                xytext=(0, 3), textcoords="offset points")  # fmt: skip
        ticks = []
        for m in METRICS:
            r = data["ratios"].get(m)
            ticks.append(f"{LABELS[m]}\n{r:.1f}x sooner" if r else LABELS[m])
        ax.set_xticks(range(len(METRICS)), ticks, fontsize=9)
        ax.set_ylabel("seconds from end of speech")
        ax.margins(y=0.12)
        ax.set_title(f"{key}: {data['name']}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(
        "lexperience: streaming vs the sequential flow (bar: median, whisker: p95; "
        "ratio = sequential / streaming)",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
