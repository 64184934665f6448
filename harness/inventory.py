"""What `ferbench list` shows: registry entries and what is on disk for each. Never imports torch."""

from __future__ import annotations

from harness.config import Config
from harness.paths import Paths


def _code_status(cfg: Config, paths: Paths, upstream: str | None) -> str:
    """Whether vendor/<upstream> is at its pin and clean (read from disk, no network)."""
    if upstream is None:
        return "built in"
    from harness.fetch import vendor_status

    return vendor_status(cfg.upstream(upstream), paths.vendor)


def _weights_status(paths: Paths, files) -> str:
    """Present and matching its pinned sha256 (hashes are cached beside the files, so this stays quick)."""
    if not files:
        return "none needed"
    from harness.weights import VERIFIED, status, usable

    states = [status(f, paths.weights) for f in files]
    present, verified = sum(map(usable, states)), states.count(VERIFIED)
    return f"{present}/{len(files)} present, {verified} verified"


def model_rows(cfg: Config, paths: Paths) -> list[tuple[str, ...]]:
    return [
        (name, m.upstream or "—", _code_status(cfg, paths, m.upstream), _weights_status(paths, m.pretrained),
         str(m.input_size), m.description)
        for name, m in sorted(cfg.models.items())
    ]


def dataset_rows(cfg: Config, paths: Paths) -> list[tuple[str, ...]]:
    return [
        (name, str(len(d.classes)), ", ".join(d.layouts), d.protocol,
         "present" if (paths.data_root / name).is_dir() else f"missing ({paths.data_root / name})")
        for name, d in sorted(cfg.datasets.items())
    ]


def _used_by(cfg: Config, name: str) -> str:
    """The models an upstream drives, or what ferbench reads from a reference upstream."""
    models = sorted(m for m, model in cfg.models.items() if model.upstream == name)
    return ", ".join(models) or cfg.upstreams[name].purpose or "—"


def upstream_rows(cfg: Config, paths: Paths) -> list[tuple[str, ...]]:
    return [
        (name, u.commit[:12], _code_status(cfg, paths, name), u.licence, _used_by(cfg, name), u.url)
        for name, u in cfg.upstreams.items()
    ]
