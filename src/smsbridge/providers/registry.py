"""The carrier registry: provider key -> provider class, imported lazily."""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from .base import Provider

# One line per built-in carrier: "key": "module:Class".
BUILTIN: dict[str, str] = {
    "382com": "smsbridge.providers.com382.provider:Com382Provider",
    "bandwidth": "smsbridge.providers.bandwidth.provider:BandwidthProvider",
    "flowroute": "smsbridge.providers.flowroute.provider:FlowrouteProvider",
    "peerless": "smsbridge.providers.peerless.provider:PeerlessProvider",
    "plivo": "smsbridge.providers.plivo.provider:PlivoProvider",
    "sandbox": "smsbridge.providers.sandbox.provider:SandboxProvider",
    "signalwire": "smsbridge.providers.signalwire.provider:SignalWireProvider",
    "simwood": "smsbridge.providers.simwood.provider:SimwoodProvider",
    "sinch": "smsbridge.providers.sinch.provider:SinchProvider",
    "telnyx": "smsbridge.providers.telnyx.provider:TelnyxProvider",
    "twilio": "smsbridge.providers.twilio.provider:TwilioProvider",
    "voipms": "smsbridge.providers.voipms.provider:VoipmsProvider",
    "voipnumber": "smsbridge.providers.voipnumber.provider:VoipNumberProvider",
    "vonage": "smsbridge.providers.vonage.provider:VonageProvider",
}

ENTRY_POINT_GROUP = "smsbridge.providers"


class UnknownProvider(LookupError):
    """No carrier is registered under this key."""


@cache
def plugin_entry_points() -> dict[str, EntryPoint]:
    """The installed plug-ins by key: the first entry point of a name wins; built-ins are never
    shadowed, so a plug-in using a built-in key is left out."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in BUILTIN:
            found.setdefault(ep.name, ep)
    return found


def _plugins() -> dict[str, str]:
    return {key: ep.value for key, ep in plugin_entry_points().items()}


def provider_keys() -> list[str]:
    """Every provider key that can be configured, sorted."""
    return sorted({*BUILTIN, *_plugins()})


def get_provider_class(key: str) -> type[Provider]:  # type: ignore[type-arg]
    """The provider class registered under ``key``; raise ``UnknownProvider`` if none."""
    target = BUILTIN.get(key) or _plugins().get(key)
    if target is None:
        raise UnknownProvider(f"unknown carrier {key!r}; known: {', '.join(provider_keys())}")
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Provider)) or cls.key != key:
        raise UnknownProvider(f"{target} is not a provider registered as {key!r}")
    problems = cls.contract_problems()
    if problems:
        # Refused here, at start, so a carrier that forgot its signature check never
        # stores a forged webhook.
        raise UnknownProvider(f"carrier {key!r} ({target}) is not usable: {'; '.join(problems)}")
    return cls
