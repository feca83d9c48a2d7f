"""``smsbridge call``: queue a voice call that speaks a text, as ``send`` queues a message."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import ConfigOpt, JsonOpt, friendly_errors, load, out, print_json


@friendly_errors
def call(
    from_: Annotated[str, typer.Option("--from", help="One of your numbers (the caller ID).")],
    to: Annotated[str, typer.Option("--to", help="Who to call.")],
    say: Annotated[str, typer.Option("--say", "-s", help="What is spoken (up to 1000 "
                                     "characters).")],
    voice: Annotated[str | None, typer.Option(help="The carrier's voice name, e.g. "
                                              "Polly.Joanna (default: the carrier's).")] = None,
    language: Annotated[str | None, typer.Option(help="e.g. en-US (default: the carrier's).")
                        ] = None,
    repeat: Annotated[int, typer.Option(help="How many times the text is spoken, 1 to 10.")
                      ] = 1,
    connection: Annotated[str | None, typer.Option(help="Connection to use (default: the "
                                                   "one that owns --from).")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Call at most once per key.")
                               ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue a voice call; the running `serve` or `worker` places it."""
    import asyncio

    from ..core.messages import Message
    from ..gateway.admin import open_gateway
    from ..gateway.service import CallRequest

    settings = load(config, secrets=True)
    request = CallRequest(from_, to, say, voice, language, repeat, connection)

    async def main() -> tuple[Message, bool]:
        async with open_gateway(settings) as gw:
            return await gw.place_call(request, idempotency_key)

    queued, created = asyncio.run(main())
    if as_json:
        print_json(queued.to_call_dict())
        return
    verb = "queued call" if created else "call already queued (same idempotency key)"
    out.print(f"{verb} [bold]{queued.id}[/bold] {queued.from_number} -> {queued.to_number} "
              f"via {queued.connection}; status: {queued.to_call_dict()['status']}",
              highlight=False)
