"""ClipEncoder around an export: runs without torch, and fails clearly on incomplete exports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from vigil.errors import ModelUnavailableError, VigilError
from vigil.models.clip import runtime
from vigil.models.clip.config import ClipSpec
from vigil.models.clip.export import add_precisions
from vigil.models.clip.runtime import ClipEncoder


def test_runtime_works_without_torch(clip_vitb32_random_export):
    """Block torch and open_clip in a fresh interpreter; the encoder must still embed."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "sys.modules['open_clip'] = None\n"
        "sys.modules['torchvision'] = None\n"
        "import numpy as np\n"
        "from vigil.models.clip.runtime import ClipEncoder\n"
        f"encoder = ClipEncoder({str(clip_vitb32_random_export.parent)!r}, 'int8')\n"
        "assert encoder.embed_texts(['một xe máy màu đỏ']).shape == (1, 512)\n"
        "assert encoder.embed_images([np.zeros((48, 64, 3), np.uint8)]).shape == (1, 512)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def manifest_only_copy(clip_vitb32_random_export, tmp_path):
    """An export directory whose manifest lists files that are not there."""
    shutil.copy(clip_vitb32_random_export, tmp_path / "manifest.json")
    return tmp_path


def test_missing_onnx_file_is_named(manifest_only_copy):
    with pytest.raises(ModelUnavailableError, match=r"incomplete: .*image\.fp32\.onnx.* missing; re-export"):
        ClipEncoder(manifest_only_copy, "fp32")


def test_precision_not_exported_is_named(clip_vitb32_random_export):
    expected = r"has no fp16 files \(it has: fp32, int8\); re-export with `vigil models export-clip"
    with pytest.raises(ModelUnavailableError, match=expected):
        ClipEncoder(clip_vitb32_random_export.parent, "fp16")


def test_unknown_precision_is_a_user_error(clip_vitb32_random_export):
    with pytest.raises(VigilError, match="precision must be one of fp32, int8, fp16, got 'int4'"):
        ClipEncoder(clip_vitb32_random_export.parent, "int4")


def test_fp16_is_derived_as_valid_onnx_with_float32_io(clip_vitb32_random_export, tmp_path):
    """fp16 cannot run here (CUDA only), so check what can be: a valid graph, float32 in and out."""
    import onnx

    source = clip_vitb32_random_export.parent
    shutil.copy(clip_vitb32_random_export, tmp_path / "manifest.json")
    for name in ("image.fp32.onnx", "text.fp32.onnx"):
        (tmp_path / name).symlink_to(source / name)
    add_precisions(tmp_path / "manifest.json", ["fp16"])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"fp32", "int8", "fp16"}
    for tower in ("image", "text"):
        path = tmp_path / manifest["files"]["fp16"][tower]["file"]
        onnx.checker.check_model(str(path))
        graph = onnx.load(str(path), load_external_data=False).graph
        float32 = onnx.TensorProto.FLOAT
        assert graph.output[0].type.tensor_type.elem_type == float32
        if tower == "image":
            assert graph.input[0].type.tensor_type.elem_type == float32
        assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer)
    if "CUDAExecutionProvider" not in runtime.ort.get_available_providers():
        assert "skipped" in manifest["parity"]["fp16"]


def test_fp16_refused_without_cuda(manifest_only_copy, monkeypatch):
    manifest_path = manifest_only_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["fp16"] = manifest["files"]["fp32"]
    manifest_path.write_text(json.dumps(manifest))
    for name in ("image.fp32.onnx", "text.fp32.onnx"):
        (manifest_only_copy / name).write_bytes(b"not opened: refused before any session")
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(ModelUnavailableError, match="fp16 CLIP runs on CUDA only"):
        ClipEncoder(manifest_only_copy, "fp16")


def test_unknown_manifest_format_asks_for_reexport(manifest_only_copy):
    manifest_path = manifest_only_copy / "manifest.json"
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "format": 99}))
    with pytest.raises(ModelUnavailableError, match="format 99.*re-export"):
        ClipEncoder(manifest_only_copy)


def test_unreadable_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelUnavailableError, match="unreadable"):
        ClipEncoder(tmp_path)


def test_no_export_and_no_export_tools_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(runtime, "_export_tools_installed", lambda: False)
    with pytest.raises(ModelUnavailableError) as caught:
        ClipEncoder.from_spec(ClipSpec(model="ViT-B-32", pretrained="openai"))
    message = str(caught.value)
    assert str(tmp_path / "clip" / "ViT-B-32-openai") in message
    assert "vigil models export-clip --pretrained openai" in message
    assert "--checkpoint PATH" in message


def test_from_spec_loads_an_existing_export(clip_vitb32_random_export, tmp_path, monkeypatch):
    """A manifest at the spec's export directory is used as is: nothing is exported again."""
    monkeypatch.setenv("VIGIL_MODELS_DIR", str(tmp_path))
    target = tmp_path / "clip" / "ViT-B-32-laion2b_s34b_b79k"
    shutil.copytree(clip_vitb32_random_export.parent, target)
    monkeypatch.setattr(runtime, "_export_tools_installed", lambda: pytest.fail("must not export"))
    encoder = ClipEncoder.from_spec(ClipSpec(pretrained="laion2b_s34b_b79k", precision="int8"))
    assert encoder.info.details["precision"] == "int8"
    assert encoder.directory == target
