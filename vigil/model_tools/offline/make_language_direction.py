"""Estimate the Vietnamese-vs-English direction of the e5 space (run once; the output is committed).

    python -m vigil.model_tools.offline.make_language_direction [--locale-dir DIR] [--pairs N]

Multilingual sentence embedders keep a language-identity component: Vietnamese texts share a
direction that English texts do not (unrelated Vietnamese queries have cosine ~0.83 with each
other, English ones ~0.79). ConSE compares a Vietnamese query with English label texts, so
that component is pure bias. Removing the language-difference direction from every embedding
(Libovický et al. 2020, "On the language neutrality of pre-trained multilingual
representations"; Yang et al. 2021, "A simple and effective method to remove language
identity", LIR) makes the comparison about meaning.

The direction is mean(e5(Vietnamese)) - mean(e5(English)) over parallel sentences. Parallel
text that ships with Debian: the gettext catalogs of installed programs
(/usr/share/locale/vi/LC_MESSAGES/*.mo) pair each English message with its Vietnamese
translation. Messages of 2-12 plain words are kept (no format codes, names or markup); the
result depends only on the languages, not on any image or query used in evaluation.
Writes models/offline/language_direction.json: the unit vector, the embedder's version and
model sha256 (the encoder ignores the file for any other model), and where it came from.
"""

from __future__ import annotations

import argparse
import gettext
import json
import random
import re
import sys
from pathlib import Path

import numpy as np

from vigil.models.offline.encoder import LANGUAGE_DIRECTION_FILE
from vigil.models.offline.text import E5TextEmbedder

DEFAULT_LOCALE_DIR = Path("/usr/share/locale/vi/LC_MESSAGES")
PLAIN_ENGLISH = re.compile(r"[A-Za-z][A-Za-z ,.'-]*")
SEED = 0


def parallel_messages(locale_dir: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(English, Vietnamese) message pairs from every readable catalog, and the catalog names."""
    pairs: set[tuple[str, str]] = set()
    catalogs = []
    for path in sorted(locale_dir.glob("*.mo")):
        try:
            with open(path, "rb") as handle:
                # msgid -> msgstr: a private dict typeshed does not declare, the only way to list a catalogue
                catalog = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
        except (OSError, UnicodeDecodeError, ValueError):  # not a catalog this parser reads
            continue
        catalogs.append(path.stem)
        for english, vietnamese in catalog.items():
            if not isinstance(english, str) or not isinstance(vietnamese, str):
                continue  # plural forms are keyed by tuples
            english, vietnamese = english.strip(), vietnamese.strip()
            if english == vietnamese or not 2 <= len(english.split()) <= 12:
                continue
            if PLAIN_ENGLISH.fullmatch(english) and not any(c in vietnamese for c in "%{}<>\\_"):
                pairs.add((english, vietnamese))
    return sorted(pairs), catalogs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locale-dir", type=Path, default=DEFAULT_LOCALE_DIR)
    parser.add_argument("--pairs", type=int, default=1500, help="sentence pairs to embed (random sample)")
    args = parser.parse_args(argv)

    pairs, catalogs = parallel_messages(args.locale_dir)
    if len(pairs) < 200:
        raise SystemExit(
            f"only {len(pairs)} English/Vietnamese message pairs in {args.locale_dir}: install programs "
            "with Vietnamese translations (e.g. apt-get install coreutils apt bash) or pass --locale-dir"
        )
    random.Random(SEED).shuffle(pairs)
    pairs = pairs[: args.pairs]
    embedder = E5TextEmbedder()
    # Embedded as queries: the direction is removed from query embeddings, and from label
    # embeddings, which live in the same space.
    english = embedder.queries([en for en, _ in pairs])
    vietnamese = embedder.queries([vi for _, vi in pairs])
    direction = vietnamese.mean(axis=0) - english.mean(axis=0)
    direction /= np.linalg.norm(direction)
    document = {
        "about": "Unit vector mean(e5 query(Vietnamese)) - mean(e5 query(English)) over parallel "
        "messages; removed from every embedding by OfflineEncoder. Made by make_language_direction.py.",
        "embedder": embedder.version,
        "embedder_sha256": embedder.model_sha256(),
        "pairs": len(pairs),
        "source": f"gettext catalogs in {args.locale_dir}: {', '.join(catalogs)}",
        "direction": [round(float(value), 7) for value in direction],
    }
    LANGUAGE_DIRECTION_FILE.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {LANGUAGE_DIRECTION_FILE} from {len(pairs)} message pairs of {len(catalogs)} catalogs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
