"""One module per model; each defines `ADAPTER`, an `adapters.contract.Adapter`.

Modules are imported lazily by name (like timm's registry) so that listing models never
imports torch or vendored code.
"""

from importlib import import_module


def load_adapter(name: str, variant: str = ""):
    """The module's `ADAPTER`, or with `variant` (benchmark.toml's `variant`) its `VARIANTS[variant]`."""
    module = import_module(f"adapters.{name}")
    if not variant:
        return module.ADAPTER
    from harness.errors import FerbenchError

    variants = getattr(module, "VARIANTS", {})
    if variant not in variants:
        raise FerbenchError(f"adapters/{name}.py has no variant '{variant}' (known: {', '.join(variants) or 'none'})")
    return variants[variant]
