"""The TOML configuration: loading, ``${ENV_VAR}`` expansion and validation with precise errors."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from ..core.errors import ConfigError, InvalidPhoneNumber
from ..core.phone import to_e164
from ..providers.base import Provider, ProviderConfig
from ..providers.registry import UnknownProvider, get_provider_class

ENV_CONFIG = "SMSBRIDGE_CONFIG"
DEFAULT_DATA_DIR = "smsbridge-data"
SANDBOX_NUMBER = "+15555550100"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
EVENT_TYPES = ("message.received", "message.status", "message.queued")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(_Strict):
    """[server]: where the gateway listens, what carriers call, where it stores."""

    listen: str = "127.0.0.1:8080"
    public_url: str | None = None
    database: str = f"sqlite:///{DEFAULT_DATA_DIR}/smsbridge.db"
    default_region: str = "US"
    # The API's limit leaves room for base64 media; carrier webhooks are small and get less.
    max_body_bytes: int = Field(10_000_000, ge=1024, le=100_000_000)
    max_webhook_bytes: int = Field(1_000_000, ge=1024, le=50_000_000)
    max_media_bytes: int = Field(5_000_000, ge=1, le=50_000_000)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

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
        if not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError("must be a two-letter region code such as US")
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


class ConnectionConfig(_Strict):
    """[[connections]]: one carrier account and the numbers it owns."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    carrier: str
    numbers: list[str] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)


class WebhookConfig(_Strict):
    """[[webhooks]]: an app endpoint that receives signed events."""

    url: str
    secret: SecretStr
    events: list[str] = Field(default_factory=lambda: ["message.received", "message.status"])
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


class GatewayConfig(_Strict):
    """The whole configuration file."""

    server: ServerConfig = Field(default_factory=lambda: ServerConfig())
    worker: WorkerConfig = Field(default_factory=lambda: WorkerConfig())
    connections: list[ConnectionConfig] = Field(default_factory=list)
    webhooks: list[WebhookConfig] = Field(default_factory=list)


class Connection:
    """A configured carrier connection: its provider instance and its numbers in E.164."""

    def __init__(self, config: ConnectionConfig, provider: Provider[Any], numbers: list[str]
                 ) -> None:
        self.name = config.name
        self.carrier = config.carrier
        self.provider = provider
        self.numbers = numbers

    def __repr__(self) -> str:
        return f"Connection({self.name!r}, carrier={self.carrier!r}, numbers={self.numbers!r})"


class Settings:
    """A validated configuration with its providers built and its numbers normalised."""

    def __init__(self, config: GatewayConfig, source: str | None) -> None:
        self.config = config
        self.source = source
        self.connections: dict[str, Connection] = {}
        self.number_owner: dict[str, Connection] = {}
        for index, conn_cfg in enumerate(config.connections):
            key = f"connections[{index}]"
            if conn_cfg.name in self.connections:
                raise ConfigError(f"{key}.name", f"{conn_cfg.name!r} is used twice")
            try:
                cls = get_provider_class(conn_cfg.carrier)
            except UnknownProvider as exc:
                raise ConfigError(f"{key}.carrier", str(exc)) from None
            provider_config = _validate_model(cls.Config, conn_cfg.settings, f"{key}.settings")
            numbers: list[str] = []
            for n_index, raw in enumerate(conn_cfg.numbers):
                try:
                    number = to_e164(raw, config.server.default_region)
                except InvalidPhoneNumber as exc:
                    raise ConfigError(f"{key}.numbers[{n_index}]", exc.reason) from None
                if number in self.number_owner:
                    other = self.number_owner[number].name
                    raise ConfigError(f"{key}.numbers[{n_index}]",
                                      f"{number} is already owned by connection {other!r}")
                numbers.append(number)
            connection = Connection(conn_cfg, cls(provider_config), numbers)
            self.connections[conn_cfg.name] = connection
            for number in numbers:
                self.number_owner[number] = connection

    @property
    def server(self) -> ServerConfig:
        """The [server] table."""
        return self.config.server

    @property
    def worker(self) -> WorkerConfig:
        """The [worker] table."""
        return self.config.worker

    @property
    def webhooks(self) -> list[WebhookConfig]:
        """The [[webhooks]] tables."""
        return self.config.webhooks


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


def expand_env(value: Any, key: str = "") -> Any:
    """Replace ``${NAME}`` in every string with the environment variable, or raise ConfigError."""
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(key or "(top)", f"environment variable {name} is not set")
            return os.environ[name]

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, f"{key}.{k}" if key else k) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def default_config() -> GatewayConfig:
    """The embedded default: SQLite in ./smsbridge-data and the sandbox carrier with one number."""
    return GatewayConfig(connections=[ConnectionConfig(
        name="sandbox", carrier="sandbox", numbers=[SANDBOX_NUMBER])])


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load and validate the config at ``path`` (or $SMSBRIDGE_CONFIG, or the embedded default)."""
    chosen = path or os.environ.get(ENV_CONFIG) or None
    if chosen is None:
        return Settings(default_config(), None)
    file = Path(chosen)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("(file)", f"{file} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", f"{file} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError("(file)", f"cannot read {file}: {exc.strerror}") from None
    return settings_from_dict(raw, str(file))


def settings_from_dict(raw: dict[str, Any], source: str | None = None) -> Settings:
    """Validate an already-parsed configuration mapping."""
    expanded = expand_env(raw)
    try:
        config = GatewayConfig.model_validate(expanded)
    except ValidationError as exc:
        raise _config_error(exc) from None
    return Settings(config, source)
