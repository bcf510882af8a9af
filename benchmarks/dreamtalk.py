"""Benchmark of the ``dreamtalk`` avatar, for a GPU owner: time to first clip, frames per second,
time per reply and GPU memory, at each number of DDIM steps and precision asked for.

A reply of ``--seconds`` of voice-like speech (sentences of about 2 s, all of it available at
once, so the avatar's own speed is measured) is animated ``--runs`` times after ``--warmup``
runs, for every combination of ``--steps`` (default 10 and 5) and ``--precision`` (default fp16
and fp32 on CUDA; fp32 only on the CPU). Per combination it reports the median of:

* load: seconds to load the networks (once per precision; the first combination pays it);
* first clip: seconds from the start of ``animate`` to the first frame;
* reply: seconds until the last frame; frames/s: frames per second of wall time; x realtime:
  speech seconds per wall second (above 1: faster than it is spoken);
* GPU peak: the most GPU memory PyTorch allocated during a reply (CUDA only);
* the split of a reply's time: wav2vec2 features, DDIM sampling, rendering.

Three setups:

    # your DreamTalk checkout with its checkpoints and wav2vec2 copy (the real figures)
    python benchmarks/dreamtalk.py --checkout ~/dreamtalk --portrait me.jpg
    # DreamTalk's real networks with RANDOM weights: speed and memory only, no checkpoints needed
    python benchmarks/dreamtalk.py --checkout ~/dreamtalk --random-weights
    # the STAND-IN network of the tests: only shows that this script works
    python benchmarks/dreamtalk.py --standin

It prints a table and writes ``benchmarks/results/dreamtalk.json`` (``--json`` to change).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from lexperience.backends.dreamtalk_avatar import DreamTalkAvatar
from lexperience.media import AudioChunk
from lexperience.testing.fakes import speech_like

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "dreamtalk.json"
SENTENCES = [
    "Black holes are regions of space where gravity is so strong that nothing escapes.",
    "They form when very massive stars collapse at the end of their lives.",
    "Some of them grow by swallowing gas, dust and even other stars nearby.",
    "The one at the centre of our galaxy weighs about four million suns.",
]
LABELS = {
    "checkpoints": "DreamTalk with the user's checkpoints",
    "random-weights": "DreamTalk's networks with RANDOM weights: speed and memory only, no output quality",
    "standin": "STAND-IN network (tests/dreamtalk/standin): shows the script works; says nothing about DreamTalk",
}


def _standin_module() -> ModuleType:
    path = ROOT / "tests" / "dreamtalk" / "dreamtalk_standin.py"
    spec = importlib.util.spec_from_file_location("bench_dreamtalk_standin", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def speech(seconds: float, rate: int = 16_000) -> list[AudioChunk]:
    """About ``seconds`` of voice-like speech in sentences, as 0.2 s chunks tagged by sentence."""
    chunks: list[AudioChunk] = []
    total, index = 0.0, 0
    while total < seconds:
        samples, _ = speech_like(SENTENCES[index % len(SENTENCES)], rate)
        samples = samples[: round((seconds - total) * rate)]
        step = rate // 5
        chunks += [
            AudioChunk(samples[i : i + step], rate, sentence_index=index)
            for i in range(0, samples.shape[0], step)
        ]
        total += samples.shape[0] / rate
        index += 1
    return chunks


async def _feed(chunks: Sequence[AudioChunk]) -> AsyncIterator[AudioChunk]:
    for chunk in chunks:
        yield chunk


async def one_reply(avatar: DreamTalkAvatar, chunks: Sequence[AudioChunk]) -> dict[str, float]:
    models = avatar.models
    assert models is not None
    models.peak_memory(reset=True)
    before = dict(models.seconds)
    start = time.perf_counter()
    first: float | None = None
    frames = 0
    async for _ in avatar.animate(_feed(chunks)):
        if first is None:
            first = time.perf_counter() - start
        frames += 1
    total = time.perf_counter() - start
    seconds = sum(c.duration for c in chunks)
    row = {
        "first_clip_s": first if first is not None else float("nan"),
        "reply_s": total,
        "frames": float(frames),
        "frames_per_s": frames / total,
        "x_realtime": seconds / total,
    }
    for step in ("features", "sample", "render"):  # where the time went
        row[f"{step}_s"] = models.seconds[step] - before.get(step, 0.0)
    peak = models.peak_memory()
    if peak is not None:
        row["gpu_peak_mib"] = peak / 2**20
    return row


def _median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def _random_checkpoints(checkout: Path, folder: Path) -> tuple[Path, Path]:
    import torch
    import yaml

    from lexperience.backends._dreamtalk_checkout import import_checkout, locate_checkout

    modules = import_checkout(locate_checkout(checkout))
    cfg = modules.get_cfg_defaults()
    s = cfg.DIFFUSION.SCHEDULE
    diff = modules.DiffusionNet(
        cfg=cfg,
        net=modules.NoisePredictor(cfg),
        var_sched=modules.VarianceSchedule(
            num_steps=s.NUM_STEPS, beta_1=s.BETA_1, beta_T=s.BETA_T, mode=s.MODE
        ),
    )
    conf = yaml.safe_load((checkout / "generators" / "renderer_conf.yaml").read_text())
    denoising, renderer = folder / "denoising_network.pth", folder / "renderer.pt"
    state = {f"diff_net.{k}": v for k, v in diff.state_dict().items()}
    torch.save({"model_state_dict": state}, denoising)
    torch.save({"net_G_ema": modules.FaceGenerator(**conf).state_dict()}, renderer)
    return denoising, renderer


class RandomWav2Vec2Large:
    """wav2vec2-large's architecture (24 layers, 1024 wide) with random weights: its cost only."""

    sample_rate = 16_000
    dim = 1024

    def __init__(self, device: str, fp16: bool) -> None:
        import torch
        import transformers

        self._torch = torch
        self._model = transformers.Wav2Vec2Model(
            transformers.Wav2Vec2Config(
                hidden_size=1024,
                num_hidden_layers=24,
                num_attention_heads=16,
                intermediate_size=4096,
                feat_extract_norm="layer",
                do_stable_layer_norm=True,
            )
        ).eval()
        self._model.to(device)
        self._device, self._fp16 = device, fp16

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        torch = self._torch
        x = torch.from_numpy((samples - samples.mean()) / (samples.std() + 1e-7))[None]
        with torch.inference_mode(), torch.autocast("cuda", torch.float16, enabled=self._fp16):
            out = self._model(x.to(self._device).float()).last_hidden_state[0]
        return np.asarray(out.float().cpu().numpy(), dtype=np.float32)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkout", type=Path, help="a DreamTalk checkout")
    p.add_argument("--standin", action="store_true", help="use the tests' stand-in network")
    p.add_argument("--random-weights", action="store_true", help="real networks, random weights")
    p.add_argument("--portrait", type=Path, help="a face photo (default: scikit-image's astronaut)")
    p.add_argument("--wav2vec2", type=Path, help="the local wav2vec2 folder (checkpoints setup)")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, nargs="+", default=[10, 5])
    p.add_argument("--precision", nargs="+", choices=["fp16", "fp32"], default=None)
    p.add_argument("--seconds", type=float, default=6.0, help="speech per reply")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--json", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.standin == (args.checkout is not None):
        p.error("give either --checkout or --standin")
    setup = (
        "standin" if args.standin else "random-weights" if args.random_weights else "checkpoints"
    )

    import torch

    cuda = torch.cuda.is_available() and args.device != "cpu"
    device = "cuda" if cuda and args.device == "auto" else args.device
    if device == "auto":
        device = "cpu"
    precisions = args.precision or (["fp16", "fp32"] if cuda else ["fp32"])
    if not cuda and "fp16" in precisions:
        print("fp16 needs CUDA: measuring fp32 only")
        precisions = ["fp32"]
    if args.portrait is not None:
        portrait: Any = args.portrait
    else:
        from skimage import data  # the public-domain NASA astronaut photo

        portrait = np.asarray(data.astronaut())
    tmp = tempfile.TemporaryDirectory()
    common: dict[str, Any] = {"portrait": portrait, "device": device, "seed": 1}
    if setup == "standin":
        standin = _standin_module()
        built = standin.build_standin(Path(tmp.name))
        common |= {"checkout": built.checkout, "audio_encoder": standin.StandinAudioEncoder()}
    elif setup == "random-weights":
        denoising, renderer = _random_checkpoints(args.checkout, Path(tmp.name))
        common |= {"checkout": args.checkout, "denoising_checkpoint": denoising,
                   "renderer_checkpoint": renderer}  # fmt: skip
    else:
        common |= {"checkout": args.checkout, "wav2vec2": args.wav2vec2}

    chunks = speech(args.seconds)
    seconds = sum(c.duration for c in chunks)
    results: list[dict[str, Any]] = []
    print(f"{LABELS[setup]}\ndevice {device}, {seconds:.1f} s of speech per reply, "
          f"median of {args.runs} runs after {args.warmup} warm-up\n")  # fmt: skip
    header = (
        f"{'steps':>5} {'prec':>5} {'load s':>7} {'first clip s':>12} {'reply s':>8} "
        f"{'frames/s':>9} {'x realtime':>10} {'GPU MiB':>8}   wav2vec2 / DDIM / render s"
    )
    print(header)
    for precision in precisions:
        fp16 = precision == "fp16"
        kept: list[DreamTalkAvatar] = []
        for steps in args.steps:
            options = dict(common, ddim_steps=steps, fp16=fp16 if cuda else None)
            if setup == "random-weights" and args.wav2vec2 is None:
                options["audio_encoder"] = _random_encoder(device, fp16)
            avatar = DreamTalkAvatar(**options)
            kept.append(avatar)  # the networks stay loaded (shared) for the next step count
            t = time.perf_counter()
            avatar.load()
            load = time.perf_counter() - t
            for _ in range(args.warmup):
                asyncio.run(one_reply(avatar, chunks))
            rows = [asyncio.run(one_reply(avatar, chunks)) for _ in range(args.runs)]
            row = {"steps": steps, "precision": precision, "load_s": load, **_median(rows),
                   "runs": rows}  # fmt: skip
            results.append(row)
            gpu = f"{row['gpu_peak_mib']:8.0f}" if "gpu_peak_mib" in row else f"{'-':>8}"
            split = f"{row['features_s']:.2f} / {row['sample_s']:.2f} / {row['render_s']:.2f}"
            print(f"{steps:5d} {precision:>5} {load:7.2f} {row['first_clip_s']:12.2f} "
                  f"{row['reply_s']:8.2f} {row['frames_per_s']:9.1f} {row['x_realtime']:10.2f} "
                  f"{gpu}   {split}")  # fmt: skip
    data_out = {
        "benchmark": "dreamtalk",
        "setup": setup,
        "label": LABELS[setup],
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "speech_s": seconds,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
        },
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data_out, indent=2))
    print(f"\nwrote {args.json}")
    tmp.cleanup()
    return 0


_encoders: dict[tuple[str, bool], RandomWav2Vec2Large] = {}


def _random_encoder(device: str, fp16: bool) -> RandomWav2Vec2Large:
    """One random wav2vec2-large per device and precision (so the networks are shared)."""
    key = (device, fp16)
    if key not in _encoders:
        _encoders[key] = RandomWav2Vec2Large(device, fp16)
    return _encoders[key]


if __name__ == "__main__":
    sys.exit(main())
