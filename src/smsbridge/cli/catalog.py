"""`smsbridge carriers --available` and `carriers describe KEY`: the catalogue on a terminal."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.padding import Padding
from rich.text import Text

from ..gateway.catalog import PLUG_IN, CarrierEntry, available_carriers, describe_carrier
from ..providers.base import UNSIGNED
from .common import out, print_json


def print_available(as_json: bool) -> None:
    """Every carrier that can be configured, with its capabilities and settings keys."""
    entries = available_carriers()
    if as_json:
        print_json({"data": [e.to_dict() for e in entries]})
        return
    for entry in entries:
        out.print(f"[bold]{escape(entry.key)}[/bold]  {_title(entry)}", highlight=False,
                  soft_wrap=True)
        if entry.error or entry.capabilities is None:
            out.print(f"  [red]cannot be loaded[/red]: {escape(entry.error or '')}",
                      highlight=False, soft_wrap=True)
            continue
        for line in _capability_lines(entry.capabilities):
            out.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
        keys = [s.key if s.required else f"[{s.key}]" for s in entry.settings]
        out.print(f"  settings: {escape(', '.join(keys))}", highlight=False, soft_wrap=True)
    out.print("Settings in [brackets] are optional; `smsbridge carriers describe KEY` "
              "shows each one.", highlight=False, soft_wrap=True)


def print_description(key: str, as_json: bool) -> None:
    """The settings schema of one carrier."""
    entry = describe_carrier(key)
    if as_json:
        print_json(entry.to_dict())
        return
    out.print(f"[bold]{escape(entry.key)}[/bold]  {_title(entry)}", highlight=False,
              soft_wrap=True)
    out.print(escape("settings, under [connections.settings] of a connection with carrier = ")
              + f'"{escape(entry.key)}":', highlight=False, soft_wrap=True)
    for s in entry.settings:
        facts = [s.type, "required" if s.required else
                 "optional" if s.default is None else f"default {s.default}"]
        if s.choices:
            facts.insert(1, "one of " + ", ".join(map(str, s.choices)))
        if s.secret:
            facts.append("secret")
        out.print(f"  [bold]{escape(s.key)}[/bold]  {escape('; '.join(facts))}",
                  highlight=False, soft_wrap=True)
        if s.description:
            out.print(Padding(Text(s.description), (0, 0, 0, 6), expand=False))


def _title(entry: CarrierEntry) -> str:
    if entry.origin.kind == PLUG_IN:
        dist = " ".join(p for p in (entry.origin.distribution, entry.origin.version) if p)
        where = f"plug-in from {dist or entry.origin.target}"
    else:
        where = "built-in"
    return escape(f"{entry.name or ''} ({where})".lstrip())


def _capability_lines(caps: dict[str, Any]) -> list[str]:
    kinds = ["SMS"] if caps["sms"] else []
    if caps["mms"]:
        by = "inline or by URL" if caps["inline_media"] else "by URL"
        kinds.append(f"MMS (up to {caps['max_media']} media, {by})")
    signature = caps["signature"]
    signed = ("unsigned (the webhook URL's token guards it)" if signature == UNSIGNED
              else f"signed: {signature}")
    regions = ", ".join(caps["regions"]) or "any"
    return [
        f"{' and '.join(kinds) or 'no messages'}; text up to {caps['max_text_length']} "
        f"characters; numbers as {caps['number_format']}; regions: {regions}",
        f"webhooks {signed}; delivery receipts: {_yes(caps['delivery_receipts'])}; "
        f"voice calls: {_yes(caps['voice'])}",
    ]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
