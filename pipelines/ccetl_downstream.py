"""A downstream job on ccetl's assets: runs whenever a ccetl run has changed the `calls`
view's tables (a dbt build would go here; this one counts the day's calls by queue).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import dag, task

from ccetl_airflow import CcetlHook, table_asset

PIPELINE = os.environ.get("CCETL_PIPELINE", "")
CONN = os.environ.get("CCETL_CONN_ID") or None
CALLS = [table_asset(CcetlHook().describe(PIPELINE), "calls", PIPELINE)] if PIPELINE else []


@dag(
    dag_id="ccetl_downstream",
    schedule=CALLS or None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["ccetl"],
)
def ccetl_downstream():
    @task
    def calls_by_queue() -> None:
        done = CcetlHook(CONN).run(
            ["query", PIPELINE, "SELECT queue_name, count(*) AS calls FROM calls GROUP BY 1 ORDER BY 2 DESC"]
        )
        if done.code != 0:
            raise RuntimeError(f"ccetl query exited {done.code}")

    calls_by_queue()


ccetl_downstream()
