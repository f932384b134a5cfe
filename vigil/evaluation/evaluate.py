"""`vigil eval` / `python -m vigil.evaluation`: run the dev set through the live detector's
decisions, write a JSON report per split, print the table and update docs/EVALUATION.md.

    vigil eval                      # both splits, offline encoder (~4 min on 2 cores)
    vigil eval --split tune --quick # two streams of the tune split (~2 min)
    python -m vigil.evaluation --split heldout --model clip
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from vigil.evaluation import dataset, report, runner
from vigil.paths import var_dir

SPLIT_CHOICES = (*dataset.SPLITS, "all")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "EVALUATION.md"


def default_out_dir() -> Path:
    return var_dir() / "evaluation"


def splits_for(choice: str) -> list[str]:
    if choice not in SPLIT_CHOICES:
        raise ValueError(f"--split must be one of {', '.join(SPLIT_CHOICES)}, got {choice!r}")
    return list(dataset.SPLITS) if choice == "all" else [choice]


def evaluate(
    *,
    split: str = "all",
    quick: bool = False,
    encoder_settings=None,
    encoder=None,
    config=None,
    out_dir: Path | None = None,
    docs: Path | None = None,
    command: str = "vigil eval",
    streams: dict[str, Sequence[dataset.DevStream]] | None = None,
    echo: Callable[[str], None] = print,
) -> list[tuple[Path, dict]]:
    """Run the requested splits; returns each report and where it was written. `docs`: the file
    whose marked tables are replaced (None: leave the docs alone). `encoder`/`streams`: given
    instead of created/drawn (tests)."""
    from vigil.models.registry import EncoderSettings, create_encoder, resolve_kind
    from vigil.services.detector.config import DetectorSettings

    encoder_settings = encoder_settings or EncoderSettings(kind="offline")
    kind = resolve_kind(encoder_settings)[0]
    names = splits_for(split)
    if encoder is None:
        encoder = create_encoder(encoder_settings)
    config = config if config is not None else DetectorSettings()
    out_dir = out_dir or default_out_dir()
    written = []
    for name in names:
        chosen = streams.get(name) if streams is not None else None
        result = runner.run_split(encoder, name, quick=quick, streams=chosen, config=config, progress=echo)
        document = report.build_report(
            result, encoder_info=encoder.info, encoder_kind=kind, config=config, command=command, quick=quick
        )
        path = report.write_json(document, report.report_path(out_dir, kind, name, quick))
        echo("")
        echo(report.format_table(document))
        echo(f"report: {path}")
        if docs is not None:
            report.write_docs(document, docs)
            echo(f"tables: {docs}")
        written.append((path, document))
    return written


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m vigil.evaluation", description=__doc__.split("\n\n")[0])
    parse.add_argument("--split", choices=SPLIT_CHOICES, default="all", help="which split (default both)")
    parse.add_argument("--quick", action="store_true", help="two streams per split (a smoke run)")
    parse.add_argument("--model", choices=("offline", "clip", "auto"), default="offline", help="encoder")
    parse.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parse.add_argument("--config", type=Path, help="YAML with a `detector:` section (default: defaults)")
    parse.add_argument("--out", type=Path, help="report folder (default var/evaluation)")
    parse.add_argument(
        "--docs",
        type=Path,
        default=None,
        help=f"update the tables in this file (default {DOCS.name} for full runs, none for --quick)",
    )
    parse.add_argument("--no-docs", action="store_true", help="leave docs/EVALUATION.md alone")
    return parse


def docs_target(docs: Path | None, no_docs: bool, quick: bool) -> Path | None:
    if no_docs:
        return None
    if docs is not None:
        return docs
    return None if quick else DOCS


def main(argv: Sequence[str] | None = None) -> int:
    from vigil.errors import VigilError
    from vigil.logs import configure_logging
    from vigil.models.registry import EncoderSettings
    from vigil.services.detector.config import load_detector_config

    args = parser().parse_args(argv)
    configure_logging()
    command = shlex.join(["python", "-m", "vigil.evaluation", *(sys.argv[1:] if argv is None else argv)])
    try:
        evaluate(
            split=args.split,
            quick=args.quick,
            encoder_settings=EncoderSettings(kind=args.model, device=args.device),
            config=load_detector_config(args.config),
            out_dir=args.out,
            docs=docs_target(args.docs, args.no_docs, args.quick),
            command=command,
        )
    except VigilError as error:
        print(f"vigil eval: error: {error}", file=sys.stderr)
        return 2
    return 0
