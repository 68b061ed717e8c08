"""Every job of a Snakemake DAG with its declared inputs, outputs and string params (the job's
--spec), read through Snakemake's Python API in a child process of the repository copy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from workflow_helpers import run

SCRIPT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import (ConfigSettings, DAGSettings, OutputSettings, Quietness,
                                      ResourceSettings)
with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    wf_api = api.workflow(resource_settings=ResourceSettings(cores=1),
                          snakefile=Path("workflow/Snakefile"), workdir=Path("."),
                          config_settings=ConfigSettings(configfiles=[Path(p) for p in sys.argv[2:]]))
    wf_api.dag(DAGSettings(targets={sys.argv[1]}))
    wf = wf_api._workflow  # no public API lists a DAG's jobs with their files
    wf._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True)
    wf._build_dag()
    jobs = [{"rule": j.rule.name, "input": [str(f) for f in j.input],
             "output": [str(f) for f in j.output],
             "params": {k: v for k, v in j.params.items() if isinstance(v, str)}}
            for j in wf.dag.jobs]
print("DAG-JSON " + json.dumps(jobs))
"""


def dag_jobs(repo: Path, target: str = "all", configfiles: tuple[str, ...] = ()) -> list[dict]:
    proc = run([sys.executable, "-c", SCRIPT, target, *configfiles], repo)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("DAG-JSON "))
    return json.loads(line[len("DAG-JSON "):])
