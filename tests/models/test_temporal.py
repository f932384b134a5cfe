"""The committed GRU temporal scorer in onnxruntime: it reproduces the reference outputs stored
when it was trained (the torch model's, on held-out windows), scores rows independently of the
batch, gives probabilities, and refuses malformed input clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vigil.errors import ModelUnavailableError
from vigil.models.temporal import DEFAULT_MODEL, TemporalScorer
from vigil.pipelines.temporal import FEATURE_NAMES, TEMPORAL_WINDOW, FeatureWindow

REFERENCE = Path(__file__).parent / "data" / "temporal_reference.npz"
REPORT = DEFAULT_MODEL.with_name("report.json")


@pytest.fixture(scope="module")
def scorer() -> TemporalScorer:
    return TemporalScorer.load()


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as stored:
        return {key: stored[key] for key in stored.files}


def test_the_runtime_reproduces_the_stored_reference_outputs(scorer, reference):
    # The reference was made from this very file: a retrained model comes with new references.
    assert str(reference["onnx_sha256"]) == scorer.info["sha256"]
    windows, expected = reference["windows"], reference["expected"]
    assert windows.shape == (len(expected), TEMPORAL_WINDOW, len(FEATURE_NAMES))
    np.testing.assert_allclose(scorer.score(windows), expected, atol=1e-5, rtol=0)
    # the references are not degenerate: they span low and high probabilities
    assert expected.min() < 0.2 and expected.max() > 0.5


def test_batch_of_one_and_batch_of_many_agree_row_by_row(scorer, reference):
    windows = reference["windows"]
    rng = np.random.default_rng(0)
    many = np.concatenate([windows, rng.normal(0, 1, (200, TEMPORAL_WINDOW, len(FEATURE_NAMES)))]).astype(
        np.float32
    )
    batched = scorer.score(many)
    single = np.array([scorer.score(many[i : i + 1])[0] for i in range(len(many))])
    np.testing.assert_allclose(batched, single, atol=1e-6, rtol=0)
    # and each row's result does not depend on where it sits in the batch
    order = rng.permutation(len(many))
    np.testing.assert_allclose(scorer.score(many[order]), batched[order], atol=1e-6, rtol=0)


def test_outputs_are_probabilities(scorer):
    rng = np.random.default_rng(1)
    windows = rng.normal(0, 3, (512, TEMPORAL_WINDOW, len(FEATURE_NAMES))).astype(np.float32)
    probabilities = scorer.score(windows)
    assert probabilities.shape == (512,) and probabilities.dtype == np.float32
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert scorer.score(np.zeros((0, TEMPORAL_WINDOW, len(FEATURE_NAMES)), np.float32)).shape == (0,)


def test_a_feature_window_scores_as_the_detector_builds_it(scorer):
    window = FeatureWindow()
    quiet = []
    for i in range(20):  # a rival is always a little more lifted than the query: a failing gate
        window.push(1_000 * i, 0.1 * (-1) ** i, 0.01, -0.03)
        quiet.append(float(scorer.score(window.matrix()[None])[0]))
    for i in range(20, 26):  # the query's object appears: z jumps and stays, its gate passes
        window.push(1_000 * i, 9.0, 0.998, 0.08)
    on = float(scorer.score(window.matrix()[None])[0])
    assert max(quiet) < 0.5 < on


@pytest.mark.parametrize(
    "shape",
    [
        (TEMPORAL_WINDOW, len(FEATURE_NAMES)),
        (4, TEMPORAL_WINDOW - 1, len(FEATURE_NAMES)),
        (4, TEMPORAL_WINDOW, 5),
    ],
)
def test_a_bad_shape_is_a_value_error_naming_the_expected_shape(scorer, shape):
    with pytest.raises(ValueError, match=rf"\(batch, {TEMPORAL_WINDOW}, {len(FEATURE_NAMES)}\)"):
        scorer.score(np.zeros(shape, np.float32))


def test_non_finite_input_is_refused(scorer):
    windows = np.zeros((2, TEMPORAL_WINDOW, len(FEATURE_NAMES)), np.float32)
    windows[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        scorer.score(windows)


def test_info_describes_the_committed_model(scorer):
    info = scorer.info
    report = json.loads(REPORT.read_text())
    assert info["sha256"] == report["model"]["onnx_sha256"]
    assert info["window"] == TEMPORAL_WINDOW and tuple(info["features"]) == FEATURE_NAMES
    assert info["training_report"] == "models/temporal/TRAINING.md"
    assert (DEFAULT_MODEL.parents[2] / info["training_report"]).is_file()
    assert info["providers"] == ["CPUExecutionProvider"]
    assert DEFAULT_MODEL.stat().st_size < 100_000  # tiny, committed


def test_a_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelUnavailableError, match="make models"):
        TemporalScorer.load(tmp_path / "gru.onnx")


def test_a_model_for_other_windows_is_refused(tmp_path):
    import onnx

    proto = onnx.load(str(DEFAULT_MODEL))
    for entry in proto.metadata_props:
        if entry.key == "window":
            entry.value = "8"
    other = tmp_path / "gru.onnx"
    onnx.save(proto, str(other))
    with pytest.raises(ModelUnavailableError, match="retrain"):
        TemporalScorer.load(other)
