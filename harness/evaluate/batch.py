"""Subprocess entry point: one model's evaluations (runs' saved models on target datasets) in one process,
with only that model's upstream importable (see harness/run/worker.py for why). One `@ferbench-eval {json}`
line per evaluation; a failed evaluation is reported and the others go on."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    from harness.run.worker import isolate_sys_path

    isolate_sys_path(None)
    from harness import config as config_mod
    from harness.errors import FerbenchError
    from harness.evaluate.crossdataset import EVENT
    from harness.evaluate.engine import Target, evaluate, run_weights
    from harness.paths import Paths

    job = json.loads(Path(sys.argv[1]).read_text())
    cfg = config_mod.load(Path(job["config_path"]))
    paths = Paths(data_root=Path(job["data_root"]), results=Path(job["results"]), vendor=Path(job["vendor"]),
                  weights=Path(job["weights"]))
    loaded: dict[str, object] = {}
    for request in job["requests"]:
        event = dict(run_id=request["run_id"], dataset=request["dataset"])
        try:
            if request["run_id"] not in loaded:
                loaded[request["run_id"]] = run_weights(paths.results, request["run_id"])[0]
            target = Target(dataset=request["dataset"], root=Path(request["root"]) if request["root"] else None,
                            split=request["split"])
            record, _ = evaluate(cfg, paths, loaded[request["run_id"]], target, job["device"], job["overwrite"])
            event.update(id=record["id"], accuracy=record["accuracy"])
        except FerbenchError as error:
            event["error"] = str(error)
        except Exception as error:  # a failure of one evaluation (a model that cannot load) must not stop the others
            lines = str(error).strip().splitlines()
            event["error"] = f"{type(error).__name__}: {lines[0] if lines else ''}"
        print(EVENT + json.dumps(event), flush=True)


if __name__ == "__main__":
    main()
