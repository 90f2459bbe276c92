"""``driftline config``: every environment variable with its default and meaning."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from driftline.configuration import markdown_table, rows
from driftline.configuration import update_readme as _update


@click.command()
@click.option("--markdown", is_flag=True, help="Print the README's markdown table.")
@click.option(
    "--update-readme",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Regenerate the table inside this README file.",
)
def config(markdown: bool, update_readme: Path | None) -> None:
    """List every setting (env var, default, meaning); secrets are masked."""
    if update_readme is not None:
        try:
            update_readme.write_text(_update(update_readme.read_text()))
        except ValueError as exc:
            raise click.ClickException(f"{update_readme}: {exc}") from exc
        click.echo(f"updated the configuration table in {update_readme}")
        return
    if markdown:
        click.echo(markdown_table())
        return
    table = Table("variable", "default", "meaning", "settings")
    for row in rows():
        table.add_row(row.env, row.default, row.description, row.owner)
    Console().print(table)
