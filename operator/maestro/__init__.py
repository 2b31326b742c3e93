"""Maestro: a Kubernetes operator that runs a whole microservice application from one MicroserviceApp."""

from importlib import metadata

try:
    __version__ = metadata.version("maestro-operator")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
