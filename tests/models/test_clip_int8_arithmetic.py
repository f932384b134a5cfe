"""int8 CLIP stays close to fp32 on x86 CPUs without VNNI, proven on any CPU.

onnxruntime's int8 MatMul multiplies uint8 activations by int8 weights. Without VNNI (AVX2, or
AVX-512 without VNNI) MLAS does it with VPMADDUBSW + VPMADDWD: each pair of neighbouring u8 x s8
products (along K) is summed into an int16 with saturation before being widened to int32. This
machine may well have VNNI (exact int32 accumulation), so these tests emulate that arithmetic in
NumPy instead of relying on the CPU: the export's weights cannot saturate it (a bound that holds for
any input), and the int8 towers evaluated with it (onnx's reference evaluator, MatMulInteger
replaced by the emulation, real activations from real images) stay within the parity bound.

Measured with random-init ViT-B-32 on the parity images: the old recipe (per-tensor 8-bit weights)
saturated 0.5 % of all pair sums and fell to min image cosine 0.9866 under this emulation, as an
AVX2 EPYC measured natively (0.986); the current recipe saturates none: 0.9997.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun
from onnxruntime.quantization import QuantType, quantize_dynamic
from test_clip_parity import INT8_MIN_COSINE, TEXTS, _images

from vigil.models.clip.export import add_precisions
from vigil.models.clip.int8 import (
    INT8_RECIPE_VERSION,
    MAX_SAFE_WEIGHT,
    integer_matmul_weights,
    u8s8_saturation_risks,
)
from vigil.models.clip.manifest import read_manifest, stale_precisions
from vigil.models.clip.preprocess import ClipPreprocess
from vigil.models.clip.tokenizer import ClipTokenizer
from vigil.models.encoder import l2_normalise, sha256_file

INT16_MIN, INT16_MAX = -32768, 32767
# ViT-B-32: 4 MatMuls per residual block x 12 blocks, plus the final projection.
MIN_INTEGER_MATMULS = 48


def avx2_matmul_integer(a: np.ndarray, w: np.ndarray, a_zero_point) -> tuple[np.ndarray, int]:
    """MatMulInteger(a, w) as MLAS's u8s8 AVX2 kernel computes it, and how many pair sums saturated.

    The exact product comes from a float64 matmul (exact: every sum is far below 2**53); only the
    pairs whose worst case can leave int16 are then formed one by one and clipped, which keeps this
    fast when (as it should be) there are none. MLAS multiplies the raw stored values and removes
    the activations' zero point afterwards with the weights' column sums.
    """
    rows = a.reshape(-1, a.shape[-1]).astype(np.int64)
    weights = w.astype(np.int64)
    result = rows.astype(np.float64) @ weights.astype(np.float64)
    paired = rows.shape[1] - rows.shape[1] % 2  # an odd last k is multiplied alone: no pair
    a0, a1 = rows[:, 0:paired:2], rows[:, 1:paired:2]
    w0, w1 = weights[0:paired:2], weights[1:paired:2]
    worst_case = a0.max(axis=0)[:, None] * np.abs(w0) + a1.max(axis=0)[:, None] * np.abs(w1)
    pair_index, column = np.nonzero(worst_case > INT16_MAX)
    saturated = 0
    for start in range(0, len(pair_index), 20_000):
        pairs, columns = pair_index[start : start + 20_000], column[start : start + 20_000]
        sums = a0[:, pairs] * w0[pairs, columns] + a1[:, pairs] * w1[pairs, columns]
        clipped = np.clip(sums, INT16_MIN, INT16_MAX)
        saturated += int((clipped != sums).sum())
        np.add.at(result.T, columns, (clipped - sums).T)
    result -= float(np.asarray(a_zero_point).astype(np.int64)) * weights.sum(axis=0)
    return result.astype(np.int32).reshape(*a.shape[:-1], w.shape[1]), saturated


def run_with_avx2_arithmetic(path, inputs: np.ndarray) -> tuple[np.ndarray, int]:
    """The output of the int8 ONNX file `path` with every MatMulInteger done as AVX2 does it."""
    saturated = []

    class MatMulInteger(OpRun):  # the name is the op type the evaluator replaces
        def _run(self, a, b, a_zero_point=None, b_zero_point=None):
            assert b_zero_point is None or not np.any(b_zero_point), "emulation assumes symmetric weights"
            output, count = avx2_matmul_integer(a, b, 0 if a_zero_point is None else a_zero_point)
            saturated.append(count)
            return (output,)

    evaluator = ReferenceEvaluator(str(path), new_ops=[MatMulInteger])
    output = evaluator.run(None, {evaluator.input_names[0]: inputs})[0]
    assert len(saturated) >= MIN_INTEGER_MATMULS, f"only {len(saturated)} MatMulInteger nodes ran"
    return output, sum(saturated)


def integer_matmul_activations(path, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """The uint8 left-hand side of every MatMulInteger, as onnxruntime itself quantised it."""
    model = onnx.load(str(path))
    nodes = [node for node in model.graph.node if node.op_type == "MatMulInteger"]
    for node in nodes:
        model.graph.output.append(helper.make_tensor_value_info(node.input[0], TensorProto.UINT8, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    values = session.run([node.input[0] for node in nodes], {session.get_inputs()[0].name: inputs})
    return {node.name: value for node, value in zip(nodes, values, strict=True)}


@pytest.fixture(scope="module")
def manifest(clip_vitb32_random_export) -> dict:
    return json.loads(clip_vitb32_random_export.read_text())


@pytest.fixture(scope="module")
def files(clip_vitb32_random_export, manifest) -> dict[str, dict[str, Path]]:
    """{precision: {tower: path}} of the shared random-init ViT-B-32 export."""
    directory = clip_vitb32_random_export.parent
    return {
        precision: {tower: directory / entry["file"] for tower, entry in towers.items()}
        for precision, towers in manifest["files"].items()
    }


@pytest.fixture(scope="module")
def tower_inputs(manifest) -> dict[str, np.ndarray]:
    return {
        "image": ClipPreprocess.from_manifest(manifest)(_images()),
        "text": ClipTokenizer(context_length=manifest["context_length"]).tokenize(TEXTS).ids,
    }


def test_avx2_emulation_saturates_pair_sums_like_vpmaddubsw():
    """The emulation itself: a saturating pair is clipped to int16, everything else is exact."""
    a = np.array([[255, 255, 1, 2, 3]], np.uint8)
    w = np.array([[127], [127], [3], [4], [-5]], np.int8)
    output, saturated = avx2_matmul_integer(a, w, 0)
    assert saturated == 1
    assert output[0, 0] == INT16_MAX + (1 * 3 + 2 * 4) + 3 * -5  # not 255 * 127 * 2 + 11 - 15
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 7, 64), dtype=np.uint8)
    w = rng.integers(-MAX_SAFE_WEIGHT, MAX_SAFE_WEIGHT + 1, (64, 10)).astype(np.int8)
    output, saturated = avx2_matmul_integer(a, w, 17)
    assert saturated == 0
    np.testing.assert_array_equal(output, (a.astype(np.int64) - 17) @ w.astype(np.int64))


@pytest.mark.parametrize("tower", ["image", "text"])
def test_int8_weights_cannot_saturate_int16_for_any_input(files, manifest, tower):
    weights = integer_matmul_weights(files["int8"][tower])
    assert len(weights) >= MIN_INTEGER_MATMULS, "the int8 file should multiply in MatMulInteger nodes"
    assert u8s8_saturation_risks(files["int8"][tower]) == []
    largest = max(int(np.abs(weight.values.astype(np.int16)).max()) for weight in weights)
    assert 2 * 255 * largest <= INT16_MAX, f"|weight| up to {largest}"
    assert manifest["recipes"]["int8"]["version"] == INT8_RECIPE_VERSION


def test_old_8bit_weights_saturate_on_these_activations(files, tower_inputs):
    """Proves the images drive the emulation where it matters: the same real activations, with the
    old recipe's per-tensor 8-bit weights, saturate; with the export's weights they do not."""
    int8_path = files["int8"]["image"]
    weight = integer_matmul_weights(int8_path)[0]
    activations = integer_matmul_activations(int8_path, tower_inputs["image"])[weight.node]
    fp32_name = next(
        node.input[1].removesuffix("_quantized")
        for node in onnx.load(str(int8_path), load_external_data=False).graph.node
        if node.name == weight.node
    )
    fp32_weight = next(
        numpy_helper.to_array(tensor)
        for tensor in onnx.load(str(files["fp32"]["image"])).graph.initializer
        if tensor.name == fp32_name
    )
    old_weight = np.round(fp32_weight / (np.abs(fp32_weight).max() / 127)).astype(np.int8)
    _, old_saturated = avx2_matmul_integer(activations, old_weight, 0)
    _, saturated = avx2_matmul_integer(activations, weight.values, 0)
    print(f"{weight.node}: {old_saturated} saturated pair sums with 8-bit weights, {saturated} now")
    assert old_saturated > 0
    assert saturated == 0


@pytest.mark.parametrize("tower", ["image", "text"])
def test_int8_under_avx2_arithmetic_is_close_to_fp32(files, tower_inputs, tower):
    inputs = tower_inputs[tower]
    session = ort.InferenceSession(str(files["fp32"][tower]), providers=["CPUExecutionProvider"])
    fp32 = l2_normalise(session.run(None, {session.get_inputs()[0].name: inputs})[0])
    emulated, saturated = run_with_avx2_arithmetic(files["int8"][tower], inputs)
    cosine = (l2_normalise(emulated) * fp32).sum(axis=1)
    print(f"{tower}: int8 with AVX2 arithmetic, min cosine vs fp32 {cosine.min():.5f}, {saturated} saturated")
    assert saturated == 0
    assert cosine.min() > INT8_MIN_COSINE


def test_int8_made_by_the_old_recipe_is_derived_again(files, tmp_path):
    """An export whose int8 files predate recipe versions (no "recipes" in its manifest, 8-bit
    weights) gets new int8 files from add_precisions; fp32 is left alone."""
    directory = tmp_path / "old-export"
    directory.mkdir()
    manifest = json.loads((files["fp32"]["image"].parent / "manifest.json").read_text())
    for tower in ("image", "text"):
        shutil.copy(files["fp32"][tower], directory / files["fp32"][tower].name)
        old_int8 = directory / f"{tower}.int8.onnx"
        quantize_dynamic(
            str(files["fp32"][tower]),
            str(old_int8),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
        )  # the recipe of version 1
        manifest["files"]["int8"][tower]["sha256"] = sha256_file(old_int8)
    del manifest["recipes"]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    assert stale_precisions(read_manifest(directory)) == ["int8"]
    assert u8s8_saturation_risks(directory / "image.int8.onnx"), "8-bit weights should be flagged"

    add_precisions(directory / "manifest.json", ["fp32", "int8"])

    rederived = read_manifest(directory)
    assert stale_precisions(rederived) == []
    assert rederived["recipes"]["int8"]["version"] == INT8_RECIPE_VERSION
    assert rederived["files"]["fp32"] == manifest["files"]["fp32"]
    for tower in ("image", "text"):
        assert rederived["files"]["int8"][tower]["sha256"] == sha256_file(directory / f"{tower}.int8.onnx")
        assert rederived["files"]["int8"][tower]["sha256"] != manifest["files"]["int8"][tower]["sha256"]
        assert u8s8_saturation_risks(directory / f"{tower}.int8.onnx") == []
        assert rederived["parity"]["int8"][f"{tower}_min_cosine_vs_fp32"] > INT8_MIN_COSINE
