"""ccetl on Airflow, through the provider `pip install ccetl` brings (`ccetl_airflow`): a
backfill cut into shards that run on any worker, and the nightly run.

Workers need the package (the binary comes with it), the pipeline file and the warehouse's
credentials. Each run keeps its state on a scratch disk: with an object-store warehouse,
what earlier runs did comes from the warehouse (checkpoints, manifests, leases) and Webex
tokens from the pipeline's `token_store`, so a task may land on any worker. Secrets come
from the Airflow Connection `CCETL_CONN_ID` (its extras, named as the pipeline's `${…}`),
into the ccetl process's environment only; XCom carries shard arguments and run reports.

Settings (environment of the scheduler and the workers):
  CCETL_PIPELINE  the pipeline file, as the workers see it (required)
  CCETL_CONN_ID   the Connection holding the pipeline's secrets (optional)

Pools, one per API budget, before the first run:
  ccetl describe "$CCETL_PIPELINE" --json | python -m ccetl_airflow.pools > pools.json
  airflow pools import pools.json

`ccetl_backfill` (manual, params `since`, `until`, `windows_per_shard`): plan, every pool's
shards side by side up to its slots, then `ccetl finalize`, which fails naming any gap.
`ccetl_nightly` (daily): one `ccetl run` per source in its pool, from the warehouse's
checkpoint. Each run names its tables as assets: see `ccetl_downstream.py`.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import Param, dag

from ccetl_airflow import backfill_tasks, nightly_tasks

PIPELINE = os.environ.get("CCETL_PIPELINE", "")
CONN = os.environ.get("CCETL_CONN_ID") or None


@dag(
    dag_id="ccetl_backfill",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "since": Param(type="string", description="RFC 3339 or YYYY-MM-DD"),
        "until": Param(type="string", description="RFC 3339 or YYYY-MM-DD"),
        "windows_per_shard": Param(7, type="integer", minimum=1),
    },
    tags=["ccetl"],
)
def ccetl_backfill():
    if PIPELINE:
        backfill_tasks(
            PIPELINE,
            since="{{ params.since }}",
            until="{{ params.until }}",
            windows_per_shard="{{ params.windows_per_shard }}",
            ccetl_conn_id=CONN,
        )


@dag(
    dag_id="ccetl_nightly",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["ccetl"],
)
def ccetl_nightly():
    if PIPELINE:
        nightly_tasks(PIPELINE, ccetl_conn_id=CONN)


ccetl_backfill()
ccetl_nightly()
