"""The tables and the target of ``benchmarks/load.py`` (printing only; no measuring here)."""

from __future__ import annotations

from typing import Any

__all__ = ["ms", "print_table", "print_target", "target_of"]


def target_of(levels: list[dict[str, Any]], limit: float) -> dict[str, Any]:
    """p95 first audio at the highest N over the lowest, and whether it is within ``limit``."""
    by_n = {lv["conversations"]: lv for lv in levels}
    lo, hi = min(by_n), max(by_n)

    def p95_ratio(key: str) -> float | None:
        a, b = by_n[lo][key]["p95"], by_n[hi][key]["p95"]
        return round(b / a, 3) if lo != hi and a and b else None

    ratio = p95_ratio("first_audio_s")
    return {
        "p95_first_audio_ratio": ratio,
        "p95_first_audio_ratio_later_turns": p95_ratio("first_audio_later_turns_s"),
        "between": [lo, hi],
        "limit": limit,
        "met": ratio is not None and ratio <= limit,
        "no_crosstalk_no_loss": all(lv["lost"] == 0 and lv["crosstalk"] == 0 for lv in levels),
    }


def print_target(target: dict[str, Any], label: str = "") -> None:
    lo, hi = target["between"]
    ratio, later = target["p95_first_audio_ratio"], target["p95_first_audio_ratio_later_turns"]
    if ratio is not None:
        verdict = "met" if target["met"] else "MISSED"
        print(
            f"\n{label}p95 first audio at N={hi} / N={lo}: {ratio:.2f}x "
            f"(target <= {target['limit']}x: {verdict})"
        )
    if later is not None:
        print(f"{label}the same over each conversation's later turns only: {later:.2f}x")
    clean = target["no_crosstalk_no_loss"]
    print(
        f"{label}every reply matched its own question, nothing lost"
        if clean
        else f"{label}FAILURES: see JSON"
    )


def print_table(levels: list[dict[str, Any]], title: str = "") -> None:
    if title:
        print(f"\n{title}", end="")
    print(
        f"\n{'N':>4} {'turns':>6} {'first audio p50 / p95':>23} {'later turns':>19} "
        f"{'total p50 / p95':>19} "
        f"{'turns/s':>8} {'peak RSS':>9} {'/conv':>7} {'CPU/turn':>9} {'server':>7} "
        f"{'stall':>7} {'lost':>5} {'xtalk':>6}"
    )
    for lv in levels:
        fa, tt = lv["first_audio_s"], lv["total_s"]
        print(
            f"{lv['conversations']:>4} {lv['turns_completed']:>3}/{lv['turns_expected']:<3}"
            f" {_pair(fa):>22} {_pair(lv['first_audio_later_turns_s']):>19} {_pair(tt):>19}"
            f" {lv['throughput_turns_per_s']:>8.2f}"
            f" {lv['peak_rss_mb']:>6.0f} MB {lv['peak_rss_per_conversation_mb']:>4.1f}MB"
            f" {lv['client_cpu_s_per_turn'] * 1000:>6.0f} ms {_cpu(lv.get('server_cpu_s_per_turn'))}"
            f" {lv['worst_loop_stall_s'] * 1000:>4.0f}ms {lv['lost']:>5} {lv['crosstalk']:>6}"
        )


def _cpu(seconds: float | None) -> str:
    return f"{'-':>7}" if seconds is None else f"{seconds * 1000:>4.0f} ms"


def _pair(stats: dict[str, Any]) -> str:
    if stats.get("median") is None:
        return "-"
    return f"{stats['median'] * 1000:.0f} / {stats['p95'] * 1000:.0f} ms"


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"
