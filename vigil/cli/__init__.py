"""The `vigil` command line (Typer). Commands parse arguments and print; the work lives in
models/, pipelines/ and services/. User mistakes end as one line on stderr, exit code 2.

The commands live by subject; this module puts them on `app`, in the order `vigil --help` lists
them, and holds the entry point (`main`, the console script's):
    models.py    zeroshot, and `vigil models` (list, build, export-clip)
    footage.py   scan and eval: recorded footage, no broker
    services.py  broker, ingest, detector, alerter, api, up, demo: the services, alone or together
    users.py     `vigil users` (add, list, disable) and `vigil tokens` (create, list, revoke)
    queries.py   `vigil queries` (add, edit, delete, list, history)
    search.py    search and index: retrospective search over the frame index
    options.py   the encoder options the commands share
"""

from __future__ import annotations

import sys

import typer

from vigil import __version__
from vigil.cli.footage import eval_command, scan
from vigil.cli.models import models_app, zeroshot
from vigil.cli.queries import queries_app
from vigil.cli.search import index, search
from vigil.cli.services import alerter, api, broker, demo, detector, ingest, up
from vigil.cli.users import tokens_app, users_app
from vigil.errors import VigilError
from vigil.logs import configure_logging

app = typer.Typer(
    help="Vigil: real-time surveillance event detection against standing natural-language queries.",
    no_args_is_help=True,
    add_completion=False,
    # Locals in tracebacks could print credentials from settings.
    pretty_exceptions_show_locals=False,
)
app.add_typer(models_app, name="models")
app.add_typer(queries_app, name="queries")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

app.command()(zeroshot)
app.command()(demo)
app.command()(broker)
app.command()(ingest)
app.command()(scan)
app.command("eval")(eval_command)
app.command()(search)
app.command()(index)
app.command()(detector)
app.command()(alerter)
app.command()(api)
app.command()(up)


@app.command()
def version() -> None:
    """Print Vigil's version."""
    typer.echo(__version__)


def main() -> None:
    configure_logging()
    try:
        app()
    except VigilError as error:
        typer.echo(f"vigil: error: {error}", err=True)
        sys.exit(2)
