"""smsbridge: one API and one webhook format in front of every SMS/MMS carrier."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Read from the installed package's metadata (pyproject.toml is the one place it is
    # written), and only when asked: importing smsbridge stays free of the lookup.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("smsbridge")
        except PackageNotFoundError:
            return "0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
