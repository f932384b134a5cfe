"""CLIP's int8 towers: the quantisation recipe, and the arithmetic that makes it exact on every x86 CPU.

onnxruntime's dynamic quantisation multiplies uint8 activations by int8 weights (MatMulInteger,
fused to DynamicQuantizeMatMul at run time). On x86 CPUs without VNNI (AVX2, or AVX-512 without
VNNI) MLAS computes those products with VPMADDUBSW, which adds each pair of neighbouring u8 x s8
products into an int16 *with saturation*: 255 x 127 + 255 x 127 = 64770 is stored as 32767. With
full 8-bit weights that happened to 0.5 % of the pair sums of random-init ViT-B-32 on real
images, and the image embeddings fell to cosine 0.987 against fp32 on an AVX2 CPU (0.9998 with
VNNI, whose VPDPBUSD accumulates in int32). Weights in [-64, 64] ("reduce_range", 7 bits) make
every pair sum fit: 255 x 64 x 2 = 32640 <= 32767, for any input, on any CPU. Per-channel scales
(one per output column) win back most of the bit that reduce_range gives up (text tower: min
cosine 0.9965 with per-tensor 7-bit weights, 0.9982 per channel; 0.9990 with the old 8-bit).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Bumped whenever the recipe below changes, so that add_precisions re-derives int8 files made by an
# older one (manifest key "recipes"; an export without it predates versioning: version 1).
INT8_RECIPE_VERSION = 2
INT8_RECIPE = "onnxruntime dynamic: int8 symmetric per-channel weights in [-64, 64], uint8 activations"

INT16_MAX = 32767
UINT8_MAX = 255
# The largest weight magnitude for which no VPMADDUBSW pair sum can saturate, whatever the activations.
MAX_SAFE_WEIGHT = INT16_MAX // (2 * UINT8_MAX)  # 64


def derive_int8(source: Path, target: Path) -> None:
    """Quantise the fp32 ONNX file `source` to `target` with the recipe above."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Weights of MatMul/Gemm (nearly all parameters) to int8; activations are quantised per batch
    # at run time, so no calibration data is needed (static QDQ quantisation would need
    # representative frames per deployment, and buys nothing on these CPU kernels).
    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
        per_channel=True,
        reduce_range=True,
    )


@dataclass(frozen=True)
class IntegerWeight:
    """The constant int8 right-hand side of one MatMulInteger node."""

    node: str
    values: np.ndarray  # (K, N) int8
    zero_point: np.ndarray  # scalar or (N,)


def integer_matmul_weights(path: Path) -> list[IntegerWeight]:
    """Every MatMulInteger node's constant weight matrix and zero point, read from the ONNX file."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    weights = []
    for node in graph.node:
        if node.op_type != "MatMulInteger" or node.input[1] not in initializers:
            continue
        zero_point_name = node.input[3] if len(node.input) > 3 else ""
        zero_point = (
            numpy_helper.to_array(initializers[zero_point_name])
            if zero_point_name in initializers
            else np.zeros((), np.int8)
        )
        values = numpy_helper.to_array(initializers[node.input[1]])
        weights.append(IntegerWeight(node.name, values, zero_point))
    return weights


def u8s8_saturation_risks(path: Path) -> list[str]:
    """Why some u8 x s8 pair sum of `path` could saturate int16 on a CPU without VNNI; [] when none can.

    MLAS multiplies the raw stored weights and corrects for zero points afterwards, so the stored
    values themselves must stay within +-MAX_SAFE_WEIGHT.
    """
    risks = []
    for weight in integer_matmul_weights(path):
        if weight.values.dtype != np.int8:
            risks.append(f"{weight.node}: weights are {weight.values.dtype}, not int8")
            continue
        largest = int(np.abs(weight.values.astype(np.int16)).max())
        if largest > MAX_SAFE_WEIGHT or np.any(weight.zero_point):
            risks.append(
                f"{weight.node}: |weight| up to {largest} (safe: {MAX_SAFE_WEIGHT}), zero point "
                f"{'non-zero' if np.any(weight.zero_point) else '0'}"
            )
    return risks
