"""The TOML configuration: loading, ``${ENV_VAR}`` expansion and validation with precise errors."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import string
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..core.errors import ConfigError, InvalidPhoneNumber
from ..core.phone import to_e164

if TYPE_CHECKING:  # the providers (and aiohttp) load only when a command uses a connection
    from ..providers.base import Provider, ProviderConfig

ENV_CONFIG = "SMSBRIDGE_CONFIG"
ENV_DATA_DIR = "SMSBRIDGE_DATA_DIR"
DATABASE_FILE = "smsbridge.db"
SECRET_KEY_FILE = "secret.key"
# The sandbox provider's first number (held equal by its tests): read-only commands must
# not import the providers just to learn it.
SANDBOX_NUMBER = "+15555550100"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
EVENT_TYPES = ("message.received", "message.status", "message.queued",
               "call.queued", "call.completed", "call.failed")
# Without an `events` list a webhook hears of what arrives and how each send ends.
DEFAULT_EVENTS = ("message.received", "message.status", "call.completed", "call.failed")
# Names of webhooks and rules: a rule's name is also an MQTT topic level and part of an
# Idempotency-Key, so no '/', '+', '#' or spaces.
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# What a rule's reply template may name beside the pattern's named groups.
MESSAGE_FIELDS = ("from", "to", "text")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(_Strict):
    """[server]: where the gateway listens, what carriers call, where it stores."""

    listen: str = "127.0.0.1:8080"
    public_url: str | None = None
    # Filled in by load_settings: SQLite in the data folder (see default_data_dir).
    database: str = f"sqlite:///{DATABASE_FILE}"
    default_region: str = "US"
    # The API's limit leaves room for base64 media; carrier webhooks are small and get less.
    max_body_bytes: int = Field(10_000_000, ge=1024, le=100_000_000)
    max_webhook_bytes: int = Field(1_000_000, ge=1024, le=50_000_000)
    max_media_bytes: int = Field(5_000_000, ge=1, le=50_000_000)
    # Media URLs on loopback, private or link-local addresses are refused unless this is set:
    # a carrier or the gateway fetching them would reach into the gateway's own network.
    allow_private_media: bool = False
    # The same for app webhooks added through the API: an account's key must not make the
    # gateway post into its own network unless this is set.
    allow_private_webhooks: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # The Fernet key file that encrypts carrier secrets stored by the API (created on first
    # start, mode 0600); $SMSBRIDGE_SECRET_KEY wins over it. Default: secret.key in the data
    # folder. A relative path is taken from the config file's folder.
    secret_key_file: str | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:8080")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL such as https://sms.example.com")
        return value.rstrip("/")

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        import phonenumbers

        if not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError("must be a two-letter region code such as US")
        if phonenumbers.country_code_for_region(value.upper()) == 0:
            raise ValueError(f"{value!r} is not a known region; use an ISO 3166 code such "
                             "as US, CA, GB or FR")
        return value.upper()

    @property
    def host(self) -> str:
        """The host part of ``listen``."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """The port part of ``listen``."""
        return int(self.listen.rpartition(":")[2])

    @property
    def base_url(self) -> str:
        """What carriers call: ``public_url``, else the listen address."""
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


class WorkerConfig(_Strict):
    """[worker]: how the outbox and the webhook deliveries are worked."""

    concurrency: int = Field(50, ge=1, le=1000)
    max_attempts: int = Field(8, ge=1, le=100)
    lease_seconds: float = Field(60.0, ge=1, le=3600)
    poll_interval: float = Field(1.0, gt=0, le=60)
    backoff_base: float = Field(2.0, gt=0, le=3600, description="first retry delay, seconds")
    backoff_max: float = Field(600.0, gt=0, le=86400)


# A topic level that is a wildcard or that MQTT reserves for the broker's own topics.
_MQTT_TOPIC_BAD = re.compile(r"[+#\x00]")


class MqttConfig(_Strict):
    """[mqtt]: the broker that inbound messages, receipts and sends also go through."""

    url: str
    username: str = ""
    password: SecretStr = SecretStr("")
    topic_prefix: str = "smsbridge"
    discovery: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
        if parts.username or parts.password:
            raise ValueError("give the credentials as mqtt.username and mqtt.password, "
                             "not in the URL")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be only a scheme, a host and a port")
        try:
            port = parts.port
        except ValueError:  # not a number, or 65536 and above
            port = 0
        if port is not None and not 0 < port < 65536:
            raise ValueError("has a port that is not a number from 1 to 65535")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        levels = value.split("/")
        if not value or any(not level for level in levels) or _MQTT_TOPIC_BAD.search(value):
            raise ValueError("must be topic levels joined by '/', none empty and none "
                             "holding '+', '#' or NUL, e.g. smsbridge or home/sms")
        if value.startswith("$"):
            raise ValueError("must not start with '$' (the broker's own topics)")
        return value

    @property
    def tls(self) -> bool:
        """True for mqtts:// (TLS, port 8883 unless given)."""
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def host(self) -> str:
        """The broker's host name or address."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """The broker's port: the URL's, else 1883 (8883 with TLS)."""
        return urlsplit(self.url).port or (8883 if self.tls else 1883)


class ConnectionConfig(_Strict):
    """[[connections]]: one carrier account and the numbers it owns."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    carrier: str
    numbers: list[str] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)


class WebhookConfig(_Strict):
    """[[webhooks]]: an app endpoint that receives signed events."""

    # What [[rules]] call it by; a webhook a rule names hears of received messages only
    # through rules (see gateway/events.py).
    name: str | None = Field(None, pattern=NAME_PATTERN)
    url: str
    secret: SecretStr
    events: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    max_attempts: int = Field(8, ge=1, le=50)
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not raw.startswith("whsec_") or len(raw) < 16:
            raise ValueError("must be a Standard Webhooks secret: whsec_ followed by base64")
        import base64
        import binascii

        try:
            if len(base64.b64decode(raw[6:], validate=True)) < 16:
                raise ValueError("secret is shorter than 16 bytes once decoded")
        except binascii.Error:
            raise ValueError("the part after whsec_ is not valid base64") from None
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        bad = [e for e in value if e not in EVENT_TYPES]
        if bad:
            raise ValueError(f"unknown event {bad[0]!r}; known: {', '.join(EVENT_TYPES)}")
        return value


# What the gateway answers STOP, START and HELP with unless [optout] says otherwise.
OPTOUT_STOP_REPLY = ("You are unsubscribed and will get no more messages from this number. "
                     "Reply START to subscribe again.")
OPTOUT_START_REPLY = "You are subscribed again. Reply STOP to unsubscribe."
OPTOUT_HELP_REPLY = "Reply STOP to unsubscribe, START to subscribe again."
# A reply is one SMS thread at most: the longest text any carrier takes.
_MAX_REPLY_CHARS = 1600


class OptoutOverride(_Strict):
    """[optout.numbers."+1..."] or [optout.connections.NAME]: keys left out are inherited."""

    enabled: bool | None = None
    stop_reply: str | None = Field(None, max_length=_MAX_REPLY_CHARS)
    start_reply: str | None = Field(None, max_length=_MAX_REPLY_CHARS)
    help_reply: str | None = Field(None, max_length=_MAX_REPLY_CHARS)


@dataclass(frozen=True, slots=True)
class OptoutPolicy:
    """How opt-out keywords are handled on one receiving number; an empty reply is not sent."""

    enabled: bool
    stop_reply: str
    start_reply: str
    help_reply: str


class OptoutConfig(_Strict):
    """[optout]: STOP, START and HELP keywords, on by default, per number or connection."""

    enabled: bool = True
    stop_reply: str = Field(OPTOUT_STOP_REPLY, max_length=_MAX_REPLY_CHARS)
    start_reply: str = Field(OPTOUT_START_REPLY, max_length=_MAX_REPLY_CHARS)
    help_reply: str = Field(OPTOUT_HELP_REPLY, max_length=_MAX_REPLY_CHARS)
    connections: dict[str, OptoutOverride] = Field(default_factory=dict)
    numbers: dict[str, OptoutOverride] = Field(default_factory=dict)

    @field_validator("numbers")
    @classmethod
    def _numbers(cls, value: dict[str, OptoutOverride]) -> dict[str, OptoutOverride]:
        normalised: dict[str, OptoutOverride] = {}
        for key, override in value.items():
            if not key.strip().startswith("+"):
                raise ValueError(f"{key!r} must be a number in E.164 form, such as "
                                 "+15145550100")
            try:
                # The leading + makes the region irrelevant.
                normalised[to_e164(key, "US")] = override
            except InvalidPhoneNumber as exc:
                raise ValueError(exc.reason) from None
        return normalised

    def policy(self, connection: str, number: str) -> OptoutPolicy:
        """The settings on ``number`` of ``connection``: the number's, else the connection's,
        else [optout]'s own."""
        layers = [self.numbers.get(number), self.connections.get(connection)]

        def pick(name: str) -> Any:
            for layer in layers:
                value = getattr(layer, name) if layer is not None else None
                if value is not None:
                    return value
            return getattr(self, name)

        return OptoutPolicy(pick("enabled"), pick("stop_reply"), pick("start_reply"),
                            pick("help_reply"))


def _template_fields(template: str) -> list[str]:
    """The fields a reply template names; ValueError for one that is not a plain ``{name}``."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"is not a valid template ({exc}); write a literal brace as "
                         "{{ or }}") from None
    names: list[str] = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        # Attribute and index lookups would reach into Python objects: plain names only.
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"{{{name}{'!' + conversion if conversion else ''}"
                             f"{':' + spec if spec else ''}}} is not a plain field; write "
                             "{name} with a named group of the pattern or from, to, text")
        names.append(name)
    return names


class RuleConfig(_Strict):
    """[[rules]]: what is done with an inbound message that matches, in config order."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=NAME_PATTERN)
    to: list[str] | None = None
    connection: str | None = None
    from_: str | list[str] | None = Field(None, alias="from")
    pattern: str | None = None
    keyword: str | None = None
    case_sensitive: bool = False
    webhooks: list[str] = Field(default_factory=list)
    reply: str | None = Field(None, max_length=1600)
    forward_to: list[str] = Field(default_factory=list)
    mqtt: bool = False
    continue_: bool = Field(False, alias="continue")

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a valid regular expression: {exc}") from None
        taken = sorted(set(compiled.groupindex) & set(MESSAGE_FIELDS))
        if taken:
            raise ValueError(f"the group name {taken[0]!r} is the message's own field in "
                             "templates; rename the group")
        return value

    @field_validator("keyword")
    @classmethod
    def _keyword(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("reply")
    @classmethod
    def _reply(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("must not be empty; leave reply out to send none")
        pattern = info.data.get("pattern")
        known = set(MESSAGE_FIELDS) | set(re.compile(pattern).groupindex if pattern else ())
        for name in _template_fields(value):
            if name not in known:
                raise ValueError(f"{{{name}}} is not a field: use a named group of the "
                                 f"pattern or one of {', '.join(sorted(known))}")
        return value


def _check_rules(config: GatewayConfig) -> None:
    """Raise ConfigError, naming the key, where a rule names what is not configured."""
    region = config.server.default_region

    def number(raw: str, key: str) -> str:
        try:
            return to_e164(raw, region)
        except InvalidPhoneNumber as exc:
            raise ConfigError(key, exc.reason) from None

    named: set[str] = set()
    for index, hook in enumerate(config.webhooks):
        if hook.name is not None and hook.name in named:
            raise ConfigError(f"webhooks[{index}].name", f"{hook.name!r} is used twice")
        named.add(hook.name or "")
    for group, members in config.sender_groups.items():
        for index, raw in enumerate(members):
            number(raw, f"sender_groups.{group}[{index}]")
    owned: set[str] = set()
    for conn in config.connections:
        for raw in conn.numbers:
            with contextlib.suppress(InvalidPhoneNumber):  # Settings names the key
                owned.add(to_e164(raw, region))
    rule_names: set[str] = set()
    for index, rule in enumerate(config.rules):
        key = f"rules[{index}]"
        if rule.name in rule_names:
            raise ConfigError(f"{key}.name", f"{rule.name!r} is used twice")
        if rule.name == "send":
            # Its MQTT topic {prefix}/rules/send would match the send subscription {prefix}/+/send.
            raise ConfigError(f"{key}.name", "'send' is taken by MQTT sends; choose another name")
        rule_names.add(rule.name)
        if rule.pattern is not None and rule.keyword is not None:
            raise ConfigError(f"{key}.keyword", "give pattern or keyword, not both")
        if rule.to is not None and rule.connection is not None:
            raise ConfigError(f"{key}.connection", "give to or connection, not both")
        if rule.connection is not None and rule.connection not in {
                c.name for c in config.connections}:
            raise ConfigError(f"{key}.connection", f"no connection named {rule.connection!r}")
        if rule.to == []:
            raise ConfigError(f"{key}.to", "names no number; leave it out to match any")
        for n, raw in enumerate(rule.to or ()):
            if number(raw, f"{key}.to[{n}]") not in owned:
                raise ConfigError(f"{key}.to[{n}]", f"{raw} is not a number of any connection")
        if isinstance(rule.from_, str) and rule.from_ not in config.sender_groups:
            raise ConfigError(f"{key}.from", f"no sender group named {rule.from_!r} in "
                                             "[sender_groups]; for numbers write a list, "
                                             'e.g. from = ["+15145550111"]')
        if isinstance(rule.from_, list):
            if not rule.from_:
                raise ConfigError(f"{key}.from", "names no number; leave it out for anyone")
            for n, raw in enumerate(rule.from_):
                number(raw, f"{key}.from[{n}]")
        for n, raw in enumerate(rule.forward_to):
            number(raw, f"{key}.forward_to[{n}]")
        if rule.mqtt and config.mqtt is None:
            raise ConfigError(f"{key}.mqtt", "needs an [mqtt] table with the broker's url")


def _check_rule_webhooks(config: GatewayConfig) -> None:
    """Raise ConfigError for a rule naming a webhook no [[webhooks]] entry is called."""
    names = {hook.name for hook in config.webhooks if hook.name is not None}
    for index, rule in enumerate(config.rules):
        for n, name in enumerate(rule.webhooks):
            if name not in names:
                raise ConfigError(f"rules[{index}].webhooks[{n}]",
                                  f"no [[webhooks]] entry is named {name!r}; give the "
                                  f"webhook name = {name!r}")


class GatewayConfig(_Strict):
    """The whole configuration file."""

    server: ServerConfig = Field(default_factory=lambda: ServerConfig())
    optout: OptoutConfig = Field(default_factory=lambda: OptoutConfig())
    worker: WorkerConfig = Field(default_factory=lambda: WorkerConfig())
    mqtt: MqttConfig | None = None
    connections: list[ConnectionConfig] = Field(default_factory=list)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    sender_groups: dict[str, list[str]] = Field(default_factory=dict)
    rules: list[RuleConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rules_name_what_exists(self) -> GatewayConfig:
        _check_rules(self)
        return self


class Connection:
    """A configured carrier connection: its provider and its numbers in E.164.

    The provider is built on first use, which is when the ``${NAME}`` references in its
    settings are resolved: a command that never talks to the carrier needs none of them.
    """

    # Where it was defined: the config file, or the API (stored, encrypted, changeable).
    origin = "config"

    def __init__(self, config: ConnectionConfig, provider_class: type[Provider[Any]],
                 numbers: list[str], key: str, account_id: str = "") -> None:
        self.name = config.name
        self.carrier = config.carrier
        self.provider_class = provider_class
        self.numbers = numbers
        self.key = key
        # The config file's connections belong to the default account (set when it is known).
        self.account_id = account_id
        self._settings = config.settings

    def _settings_for_provider(self, missing: Literal["raise", "omit"]) -> dict[str, Any]:
        return dict(expand_env(self._settings, f"{self.key}.settings", missing=missing))

    @cached_property
    def provider(self) -> Provider[Any]:
        """The provider with its secrets resolved; ConfigError names a missing variable."""
        resolved = self._settings_for_provider("raise")
        return self.provider_class(_validate_model(self.provider_class.Config, resolved,
                                                   f"{self.key}.settings"))

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """What to paste into the carrier's portal; needs no secret."""
        # Only settings whose variables are set, and unvalidated: the hint is built from
        # URLs, and a placeholder must never pass for a real value.
        known = self._settings_for_provider("omit")
        provider = self.provider_class(self.provider_class.Config.model_construct(**known))
        return provider.setup_hint(inbound_url, status_url)

    def __repr__(self) -> str:
        return f"Connection({self.name!r}, carrier={self.carrier!r}, numbers={self.numbers!r})"


class Settings:
    """A validated configuration with its connections and its numbers normalised.

    ``secrets_resolved`` is False for the settings of read-only commands: their
    app webhooks are not loaded and each connection resolves its secrets on first use.
    """

    def __init__(self, config: GatewayConfig, source: str | None, *,
                 secrets_resolved: bool = True) -> None:
        self.config = config
        self.source = source
        self.secrets_resolved = secrets_resolved
        if secrets_resolved:
            # Fail at start, naming the key, rather than at the first send.
            for conn in self.connections.values():
                _ = conn.provider
            # Only here are the app webhooks loaded (read-only commands go without them).
            _check_rule_webhooks(config)
            # `config check` and `serve` alike: an override of nothing is a typo.
            self.check_optout_overrides()

    def check_optout_overrides(self) -> None:
        """ConfigError for an [optout] override of a number or connection not configured."""
        optout = self.config.optout
        for name in optout.connections:
            if name not in self.connections:
                known = ", ".join(self.connections) or "none"
                raise ConfigError(f"optout.connections.{name}",
                                  f"no connection is named {name!r}; known: {known}")
        for number in optout.numbers:
            if number not in self.number_owner:
                raise ConfigError(f'optout.numbers."{number}"',
                                  "is not a number of any connection")

    @cached_property
    def _built(self) -> tuple[dict[str, Connection], dict[str, Connection]]:
        from ..providers.registry import UnknownProvider, get_provider_class

        connections: dict[str, Connection] = {}
        number_owner: dict[str, Connection] = {}
        for index, conn_cfg in enumerate(self.config.connections):
            key = f"connections[{index}]"
            if conn_cfg.name in connections:
                raise ConfigError(f"{key}.name", f"{conn_cfg.name!r} is used twice")
            try:
                cls = get_provider_class(conn_cfg.carrier)
            except UnknownProvider as exc:
                raise ConfigError(f"{key}.carrier", str(exc)) from None
            numbers: list[str] = []
            for n_index, raw in enumerate(conn_cfg.numbers):
                try:
                    number = to_e164(raw, self.config.server.default_region)
                except InvalidPhoneNumber as exc:
                    raise ConfigError(f"{key}.numbers[{n_index}]", exc.reason) from None
                if number in number_owner:
                    other = number_owner[number].name
                    raise ConfigError(f"{key}.numbers[{n_index}]",
                                      f"{number} is already owned by connection {other!r}")
                numbers.append(number)
            connection = Connection(conn_cfg, cls, numbers, key)
            connections[conn_cfg.name] = connection
            for number in numbers:
                number_owner[number] = connection
        return connections, number_owner

    @property
    def connections(self) -> dict[str, Connection]:
        """Connections by name (their provider classes load on first access)."""
        return self._built[0]

    @property
    def number_owner(self) -> dict[str, Connection]:
        """The connection that owns each E.164 number."""
        return self._built[1]

    @property
    def server(self) -> ServerConfig:
        """The [server] table."""
        return self.config.server

    @property
    def worker(self) -> WorkerConfig:
        """The [worker] table."""
        return self.config.worker

    @property
    def mqtt(self) -> MqttConfig | None:
        """The [mqtt] table, None when MQTT is not configured."""
        return self.config.mqtt

    @property
    def webhooks(self) -> list[WebhookConfig]:
        """The [[webhooks]] tables."""
        return self.config.webhooks

    @property
    def warnings(self) -> list[str]:
        """What is accepted but probably not what the user wants."""
        if not self.config.connections:
            return ["no [[connections]] configured: nothing can be sent or received until a "
                    "carrier connection (name, carrier, numbers, settings) is added, in the "
                    "config or with `smsbridge connections add`"]
        return []

    @property
    def secret_key_path(self) -> Path:
        """The key file that encrypts stored carrier secrets."""
        configured = self.server.secret_key_file
        if configured:
            return Path(configured).expanduser().absolute()
        return default_data_dir() / SECRET_KEY_FILE

    @property
    def data_location(self) -> str:
        """Where the data lives: the SQLite file, or the database URL without its password."""
        path = sqlite_path(self.server.database)
        if path is not None:
            return path
        from ..core.redact import redact_url

        return redact_url(self.server.database)


def _validate_model(model: type[ProviderConfig], data: dict[str, Any], key: str
                    ) -> ProviderConfig:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, key) from None


def _config_error(exc: ValidationError, prefix: str = "") -> ConfigError:
    first = exc.errors()[0]
    path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in first["loc"])
    path = path.replace(".[", "[")
    key = f"{prefix}.{path}" if prefix and path else (prefix or path or "(top)")
    reason = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        reason = "unknown key"
    elif first["type"] == "missing":
        reason = "is required"
    return ConfigError(key, reason)


class _Missing(Exception):
    """A ``${NAME}`` whose variable is not set, while expanding with missing="omit"."""


def expand_env(value: Any, key: str = "", *, missing: Literal["raise", "omit"] = "raise"
               ) -> Any:
    """Replace ``${NAME}`` in every string with the environment variable.

    A variable that is not set raises ConfigError naming the key, or with
    ``missing="omit"`` drops the mapping entry or list item that refers to it.
    """
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                if missing == "omit":
                    raise _Missing(name)
                raise ConfigError(key or "(top)", f"environment variable {name} is not set")
            return os.environ[name]

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            try:
                out[k] = expand_env(v, f"{key}.{k}" if key else k, missing=missing)
            except _Missing:
                continue
        return out
    if isinstance(value, list):
        items: list[Any] = []
        for i, v in enumerate(value):
            try:
                items.append(expand_env(v, f"{key}[{i}]", missing=missing))
            except _Missing:
                continue
        return items
    return value


def default_data_dir() -> Path:
    """Where smsbridge keeps its data without a configured database.

    ``$SMSBRIDGE_DATA_DIR`` if set, else ``$XDG_DATA_HOME/smsbridge``, else
    ``~/.local/share/smsbridge``: the same folder whatever the current directory.
    """
    if os.environ.get(ENV_DATA_DIR):
        return Path(os.environ[ENV_DATA_DIR]).expanduser().absolute()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else (
        Path.home() / ".local" / "share")
    return (base / "smsbridge").absolute()


def sqlite_path(database: str) -> str | None:
    """The file of a ``sqlite:///`` URL (None for other databases and in-memory SQLite)."""
    if not database.startswith("sqlite:///"):
        return None
    # A "file:" path is SQLite's URI form (with ?uri=true), e.g. file:/srv/sms.db?mode=ro.
    path = database.removeprefix("sqlite:///").partition("?")[0].removeprefix("file:")
    if not path or path == ":memory:":
        return None
    return str(Path(path).expanduser())


def _resolve_database(database: str, base_dir: Path) -> str:
    # A relative SQLite path in a config file means "beside the config file", so the same
    # database is used whatever directory smsbridge is started from.
    if not database.startswith("sqlite:///"):
        return database
    path, sep, query = database.removeprefix("sqlite:///").partition("?")
    if (not path or path == ":memory:" or path.startswith(("~", "file:"))
            or Path(path).is_absolute()):
        return database
    return f"sqlite:///{(base_dir / path).absolute()}{sep}{query}"


def default_config() -> GatewayConfig:
    """The embedded default: SQLite in the data folder and the sandbox carrier with one number."""
    return GatewayConfig(
        server=ServerConfig(database=f"sqlite:///{default_data_dir() / DATABASE_FILE}"),
        connections=[ConnectionConfig(name="sandbox", carrier="sandbox",
                                      numbers=[SANDBOX_NUMBER])])


def load_settings(path: str | os.PathLike[str] | None = None, *, secrets: bool = True
                  ) -> Settings:
    """Load and validate the config at ``path`` (or $SMSBRIDGE_CONFIG, or the embedded default).

    With ``secrets=False`` (commands that neither send nor serve) the ``${NAME}``
    references of connection settings, app webhooks and [mqtt] are left unresolved.
    """
    chosen = path or os.environ.get(ENV_CONFIG) or None
    if chosen is None:
        return Settings(default_config(), None, secrets_resolved=secrets)
    file = Path(chosen)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("(file)", f"{file} does not exist") from None
    except IsADirectoryError:
        raise ConfigError("(file)", f"{file} is a folder, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", f"{file} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError("(file)", f"{file} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError("(file)", f"cannot read {file}: {exc.strerror}") from None
    return settings_from_dict(raw, str(file), base_dir=file.absolute().parent, secrets=secrets)


def settings_from_dict(raw: dict[str, Any], source: str | None = None, *,
                       base_dir: Path | None = None, secrets: bool = True) -> Settings:
    """Validate an already-parsed configuration mapping.

    ``base_dir`` is the config file's folder: a relative SQLite path is taken from there,
    and without a database the data folder (``default_data_dir``) is used.
    """
    # Connection settings resolve when their provider is built (Connection.provider);
    # app webhooks are used only by commands that resolve secrets.
    expanded = expand_env({k: v for k, v in raw.items()
                           if k not in ("connections", "webhooks", "mqtt")})
    connections = raw.get("connections")
    if isinstance(connections, list):
        expanded["connections"] = [
            {**expand_env({k: v for k, v in c.items() if k != "settings"}, f"connections[{i}]"),
             **({"settings": c["settings"]} if "settings" in c else {})}
            if isinstance(c, dict) else c
            for i, c in enumerate(connections)]
    elif connections is not None:
        expanded["connections"] = connections
    if secrets and "webhooks" in raw:
        expanded["webhooks"] = expand_env(raw["webhooks"], "webhooks")
    if "mqtt" in raw:
        mqtt = raw["mqtt"]
        if not secrets and isinstance(mqtt, dict):
            # The broker's password is a secret: commands that do not serve go without it.
            mqtt = {k: v for k, v in mqtt.items() if k != "password"}
        expanded["mqtt"] = expand_env(mqtt, "mqtt")
    if base_dir is not None and isinstance(expanded.get("server", {}), dict):
        server = dict(expanded.get("server", {}))
        database = server.get("database")
        if database is None:
            server["database"] = f"sqlite:///{default_data_dir() / DATABASE_FILE}"
        elif isinstance(database, str):
            server["database"] = _resolve_database(database, base_dir)
        key_file = server.get("secret_key_file")
        if isinstance(key_file, str) and key_file:
            server["secret_key_file"] = str((base_dir / Path(key_file).expanduser()).absolute())
        expanded["server"] = server
    try:
        config = GatewayConfig.model_validate(expanded)
    except ValidationError as exc:
        raise _config_error(exc) from None
    return Settings(config, source, secrets_resolved=secrets)


def carrier_unreachable_reason(base_url: str) -> str | None:
    """Why a carrier on the internet cannot call ``base_url``, or None when it may."""
    host = urlsplit(base_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return f"{base_url} is this machine's loopback address"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a host name: it may well resolve publicly
    if address.is_loopback:
        return f"{base_url} is this machine's loopback address"
    if address.is_private or address.is_link_local or address.is_unspecified:
        return f"{base_url} is a private address"
    return None
