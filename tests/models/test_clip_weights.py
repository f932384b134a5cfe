"""Missing CLIP weights give one clear ModelUnavailableError naming both ways to provide them."""

from __future__ import annotations

import time

import pytest

from vigil.errors import ModelUnavailableError
from vigil.models.clip.config import ClipSpec, export_dir
from vigil.models.clip.export import export_clip, import_open_clip
from vigil.models.clip.runtime import ClipEncoder


def _names_both_ways(message: str) -> None:
    assert "--pretrained TAG" in message, message
    assert "--checkpoint PATH" in message, message
    assert "\n" not in message, "one line, printed by the CLI without a stack trace"


def test_checkpoint_that_does_not_exist(tmp_path):
    missing = tmp_path / "nowhere" / "clip.pt"
    spec = ClipSpec(checkpoint=missing)
    for attempt in (
        lambda: export_clip(spec, tmp_path / "out"),
        lambda: export_dir(spec),
        lambda: ClipEncoder.from_spec(spec),
    ):
        with pytest.raises(ModelUnavailableError) as caught:
            attempt()
        assert str(missing) in str(caught.value)
        _names_both_ways(str(caught.value))
    assert not (tmp_path / "out").exists()


def test_checkpoint_that_is_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "clip.pt"
    bogus.write_bytes(b"this is not a torch checkpoint")
    with pytest.raises(ModelUnavailableError) as caught:
        export_clip(ClipSpec(checkpoint=bogus), tmp_path / "out")
    assert f"cannot load CLIP checkpoint {bogus}" in str(caught.value)
    _names_both_ways(str(caught.value))


def test_pretrained_tag_without_network(tmp_path, monkeypatch):
    """Offline, open_clip's download fails; offline mode makes it fail at once instead of retrying."""
    import_open_clip()
    import huggingface_hub.constants

    # The constants are read when huggingface_hub is imported (already done), so patch them too;
    # an empty cache makes sure weights cached on a developer's machine are not found.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as caught:
        export_clip(ClipSpec(model="ViT-B-32", pretrained="openai"), tmp_path / "out")
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert message.startswith("cannot get CLIP weights ViT-B-32/openai (")
    _names_both_ways(message)
    assert not (tmp_path / "out").exists()


def test_no_weights_named(tmp_path):
    with pytest.raises(ModelUnavailableError) as caught:
        export_clip(ClipSpec(pretrained=None), tmp_path / "out")
    _names_both_ways(str(caught.value))


def test_unknown_tag_lists_the_known_ones(tmp_path):
    expected = r"no pretrained tag 'nope' for ViT-B-32 \(known: openai, "
    with pytest.raises(ModelUnavailableError, match=expected):
        export_clip(ClipSpec(pretrained="nope"), tmp_path / "out")


def test_unknown_model(tmp_path):
    with pytest.raises(ModelUnavailableError, match="unknown open_clip model 'ViT-Z-99'"):
        export_clip(ClipSpec(model="ViT-Z-99"), tmp_path / "out")


def test_model_names_cannot_escape_the_models_directory():
    with pytest.raises(ValueError):
        ClipSpec(model="../../etc")
    with pytest.raises(ValueError):
        ClipSpec(pretrained="hf-hub:org/repo")


def test_export_dir_is_named_after_the_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_MODELS_DIR", str(tmp_path))
    checkpoint = tmp_path / "weights.pt"
    checkpoint.write_bytes(b"abc")  # sha256 ba7816bf8f01...
    assert export_dir(ClipSpec()) == tmp_path / "clip" / "ViT-B-32-openai"
    assert export_dir(ClipSpec(checkpoint=checkpoint)) == tmp_path / "clip" / "ViT-B-32-ckpt-ba7816bf8f01"
    assert export_dir(ClipSpec(), random_init=True) == tmp_path / "clip" / "ViT-B-32-random-init"
