"""The label spaces of the two image models and the texts that describe each label.

The JSON files are generated from WordNet by vigil/model_tools/offline/make_labels.py and
committed, so the run time needs no WordNet install. A label's text is what ConSE compares
queries with; it reads like a short dictionary entry: "tabby, tabby cat: a cat with a grey or
tawny coat mottled with black; a kind of domestic cat, cat, feline".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMAGENET_LABELS_FILE = HERE / "imagenet_labels.json"
COCO_LABELS_FILE = HERE / "coco_labels.json"

# Bump when label_text() changes: label embedding caches are keyed by it.
LABEL_TEXT_VERSION = "dict-entry-v1"
# How many ancestors "a kind of ..." names. Three reach the everyday category for most classes
# (tabby -> domestic cat -> cat -> feline; moped -> motor vehicle -> self-propelled vehicle ->
# wheeled vehicle) without drowning the class in the generic top of the tree.
HYPERNYM_DEPTH = 3
# Top-level WordNet ancestors say nothing that tells classes apart.
GENERIC_ANCESTORS = {
    "entity",
    "physical entity",
    "abstraction, abstract entity",
    "object, physical object",
    "whole, unit",
    "artifact, artefact",
    "living thing, animate thing",
    "organism, being",
    "instrumentality, instrumentation",
    "matter",
}


@dataclass(frozen=True)
class Label:
    id: str
    names: tuple[str, ...]
    gloss: str
    hypernyms: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.names[0]


@dataclass(frozen=True)
class LabelSet:
    name: str
    labels: tuple[Label, ...]
    sha256: str

    def __len__(self) -> int:
        return len(self.labels)


def _load(path: Path, name: str, expected: int) -> LabelSet:
    raw = path.read_bytes()
    document = json.loads(raw)
    labels = tuple(
        Label(item["id"], tuple(item["names"]), item["gloss"], tuple(item["hypernyms"]))
        for item in document["classes"]
    )
    if len(labels) != expected:
        raise ValueError(f"{path}: expected {expected} classes, found {len(labels)}")
    return LabelSet(name, labels, hashlib.sha256(raw).hexdigest())


@cache
def imagenet_labels() -> LabelSet:
    return _load(IMAGENET_LABELS_FILE, "imagenet", 1000)


@cache
def coco_labels() -> LabelSet:
    return _load(COCO_LABELS_FILE, "coco", 80)


def label_text(label: Label, hypernym_depth: int = HYPERNYM_DEPTH) -> str:
    """A dictionary-style description: synonyms, definition, and what it is a kind of."""
    ancestors = [h for h in label.hypernyms if h not in GENERIC_ANCESTORS][:hypernym_depth]
    text = f"{', '.join(label.names)}: {label.gloss}"
    if ancestors:
        text += f"; a kind of {', '.join(ancestors)}"
    return text
