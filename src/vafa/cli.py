"""The `vafa` command line: it parses arguments and hands over to the library.

Each command lives in its own module under `vafa.commands`; those modules import anything heavy
(Django, pandas, scipy) inside the command function so that `vafa --help` starts fast.
"""

from __future__ import annotations

import typer

from vafa.commands import (
    analyze,
    apikey,
    demo,
    generate_shop,
    importing,
    insights,
    loyalty,
    outbox,
    server,
)

app = typer.Typer(
    name="vafa",
    help="Vafa: customer retention and loyalty platform for online shops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("analyze")(analyze.analyze)
app.command("generate-shop")(generate_shop.generate_shop)
app.command("demo")(demo.demo)
app.command("serve")(server.serve)
app.command("worker")(server.worker)
app.command(
    "manage",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)(server.manage)
app.add_typer(importing.app, name="import")
app.add_typer(apikey.app, name="apikey")
app.add_typer(loyalty.app, name="loyalty")
app.add_typer(insights.app, name="insights")
app.add_typer(outbox.app, name="outbox")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
