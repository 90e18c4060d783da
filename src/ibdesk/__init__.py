"""ibdesk: a trading desk in a box for day traders on Interactive Brokers and Databento."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ibdesk")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
