"""``smsbridge rules test``: what the [[rules]] would do with a message, without doing it."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from .common import ConfigOpt, JsonOpt, friendly_errors, load, out, print_json

rules_app = typer.Typer(help="Inbound rules (the config's \\[\\[rules]]): try them on a message "
                        "(nothing is sent).",
                        no_args_is_help=True)


@rules_app.command("test")
@friendly_errors
def rules_test(
    from_: Annotated[str, typer.Option("--from", help="Who the message is from.")],
    to: Annotated[str, typer.Option("--to", help="The number of yours it is sent to.")],
    text: Annotated[str, typer.Option("--text", "-t", help="The message text.")],
    connection: Annotated[str | None, typer.Option(help="The connection it comes in on "
                                                   "(default: the one that owns --to).")
                          ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print which rules would fire, with captures, replies and forwards; send nothing."""
    from ..gateway.rules import preview

    result = preview(load(config, secrets=False), from_, to, text, connection)
    if as_json:
        print_json(result)
        return
    if result["optout_keyword"]:
        out.print(f"{escape(text.strip())!r} is an opt-out keyword on {result['to']}: the "
                  "opt-out handling answers it and no rule sees it", highlight=False)
    for hit in result["rules"]:
        _print_hit(hit)
    if result["default_route"]:
        out.print("no rule fires: the message goes to the default route (every app webhook "
                  "that no rule names)", highlight=False)
    out.print("[dim]a test: nothing was stored or sent[/dim]", highlight=False)


def _print_hit(hit: dict[str, Any]) -> None:
    name = escape(hit["rule"])
    if not hit["fires"]:
        out.print(f"rule [bold]{name}[/bold] does not fire: {escape(hit['reason'])}",
                  highlight=False)
        return
    out.print(f"rule [bold]{name}[/bold] fires", highlight=False)
    lines = []
    if hit["captures"]:
        lines.append("captures: " + ", ".join(f"{k}={v!r}" for k, v in hit["captures"].items()))
    if hit["webhooks"]:
        lines.append("webhooks: " + ", ".join(hit["webhooks"]))
    if hit["mqtt_topic"]:
        lines.append(f"mqtt: {hit['mqtt_topic']}")
    if hit["reply"]:
        lines.append(f"reply to {hit['reply']['to']}: {hit['reply']['text']}")
    lines += [f"forward to {f['to']}: {f['text']}" for f in hit["forwards"]]
    for line in lines:
        out.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
