"""The real wav2vec2 path through ``transformers`` on a tiny randomly initialised model written
to a temporary folder (the layout of a local copy of jonatasgrosman/wav2vec2-large-xlsr-53-
english; nothing is downloaded), then the whole backend driven by it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from dreamtalk_support import RATE, chunks_of, collect, tone

from lexperience.backends._dreamtalk_torch import Wav2Vec2Encoder
from lexperience.errors import ConfigurationError

transformers = pytest.importorskip("transformers", reason='wav2vec2 needs "lexperience[dreamtalk]"')


def _tiny_wav2vec2(folder: Path, hidden: int) -> Path:
    config = transformers.Wav2Vec2Config(
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=16,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16_000, padding_value=0.0, do_normalize=True
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def wav2vec2_1024(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_wav2vec2(tmp_path_factory.mktemp("w2v") / "wav2vec2-large-xlsr-53-english", 1024)


def test_features_at_50_hz(wav2vec2_1024: Path) -> None:
    encoder = Wav2Vec2Encoder(wav2vec2_1024, torch=torch, device="cpu", fp16=False)
    assert (encoder.sample_rate, encoder.dim) == (16_000, 1024)
    feats = encoder(tone(1.0))
    assert feats.shape == ((16_000 - 400) // 320 + 1, 1024) and feats.dtype == np.float32
    assert np.isfinite(feats).all()


def test_a_missing_or_incomplete_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"config\.json missing"):
        Wav2Vec2Encoder(tmp_path, torch=torch, device="cpu", fp16=False)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigurationError, match="no wav2vec2 weights"):
        Wav2Vec2Encoder(tmp_path, torch=torch, device="cpu", fp16=False)


async def test_the_backend_with_real_wav2vec2(make_avatar: Any, wav2vec2_1024: Path) -> None:
    avatar = make_avatar(audio_encoder=None, wav2vec2=wav2vec2_1024)
    frames = await collect(avatar, chunks_of(tone(1.2), RATE, size=6400))
    assert len(frames) == 30


def test_features_of_the_wrong_width_are_refused(make_avatar: Any, tmp_path: Path) -> None:
    small = _tiny_wav2vec2(tmp_path / "base", 32)
    avatar = make_avatar(audio_encoder=None, wav2vec2=small)
    with pytest.raises(ConfigurationError, match=r"32-dimensional.*1024"):
        avatar.load()


def test_the_default_folder_is_inside_the_checkout(make_avatar: Any) -> None:
    avatar = make_avatar(audio_encoder=None)
    assert avatar.wav2vec2 == avatar.checkout.checkpoints / "wav2vec2-large-xlsr-53-english"
    with pytest.raises(ConfigurationError, match="no wav2vec2 model"):
        avatar.load()
