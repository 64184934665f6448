"""One module per model; each defines `ADAPTER`, an `adapters.contract.Adapter`.

Modules are imported lazily by name (like timm's registry) so that listing models never
imports torch or vendored code.
"""

from importlib import import_module


def load_adapter(name: str):
    return import_module(f"adapters.{name}").ADAPTER
