"""Task groups that put a pipeline on Airflow: a backfill cut into shards that run in their
API budget's pool, and the nightly run of each source.

Both ask `ccetl describe` when the DAG is parsed (no request, no secret: the pipeline file
alone) for each source's pool and the assets its run changes. One Airflow pool per API
budget (a Webex client ID, a Xima tenant, a legacy API user) with the slots ccetl gives:
`ccetl describe PIPELINE --json | python -m ccetl_airflow.pools > pools.json && airflow
pools import pools.json`.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from typing import Any

from ccetl_airflow.hooks import CcetlHook
from ccetl_airflow.operators import (
    CcetlFinalizeOperator,
    CcetlRunOperator,
    _check,
    outlets_for,
)

try:
    from airflow.sdk import TaskGroup, task
except ImportError:  # pragma: no cover - Airflow 2
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.utils.task_group import TaskGroup  # type: ignore[no-redef]

log = logging.getLogger(__name__)


def slug(name: str) -> str:
    """A pool or source name as a task id."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def pools_of(described: dict) -> dict[str, dict]:
    """Each pool's slots and sources."""
    out: dict[str, dict] = {}
    for s in described["sources"]:
        p = out.setdefault(s["pool"], {"slots": s["pool_slots"], "sources": []})
        p["sources"].append(s["source"])
    return out


def backfill_tasks(
    pipeline: str,
    since: str,
    until: str,
    windows_per_shard: int | str = 7,
    ccetl_conn_id: str | None = None,
    group_id: str = "ccetl_backfill",
    retries: int = 2,
    retry_delay: timedelta = timedelta(seconds=30),
    **run_kwargs: Any,
) -> TaskGroup:
    """Plan the range, run every pool's shards side by side up to the pool's slots, then
    `ccetl finalize`, which fails naming any gap. `since`, `until` and `windows_per_shard`
    may be templates (`"{{ params.since }}"`)."""
    described = CcetlHook().describe(pipeline)
    with TaskGroup(group_id) as group:

        @task(task_id="plan")
        def plan(since: str, until: str, per_shard: Any) -> dict[str, list[dict]]:
            """The shards of the range, by source: each a run's keyword arguments."""
            done = CcetlHook(ccetl_conn_id).run(
                ["plan", pipeline, "--since", since, "--until", until,
                 "--windows-per-shard", str(per_shard), "--json"],
                capture=True,
            )
            _check("plan", done.code, log)
            by_source: dict[str, list[dict]] = {}
            for s in json.loads(done.stdout):
                by_source.setdefault(s["source"], []).append(
                    {
                        "sources": [s["source"]],
                        "since": s["since"],
                        "until": s["until"],
                        "rate_share": s.get("rate_share"),
                    }
                )
            return by_source

        by_source = plan(since, until, windows_per_shard)
        # The assets change once the range is whole: downstream DAGs run after `finalize`,
        # once, not after every shard.
        finalize = CcetlFinalizeOperator(
            task_id="finalize", pipeline=pipeline, since=since, until=until,
            ccetl_conn_id=ccetl_conn_id, outlets=outlets_for(described, None, pipeline),
        )
        for pool, p in pools_of(described).items():

            # By the pool's sources, as the DAG was parsed: every shard lands in some pool
            # even where the parse did not see the secrets a budget's key reads.
            @task(task_id=f"shards_of_{slug(pool)}")
            def shards_of(by_source: dict[str, list[dict]], sources: list = p["sources"]) -> list[dict]:
                return [shard for s in sources for shard in by_source.get(s, [])]

            runs = CcetlRunOperator.partial(
                task_id=f"run_{slug(pool)}",
                pipeline=pipeline,
                pool=pool,
                ccetl_conn_id=ccetl_conn_id,
                retries=retries,
                retry_delay=retry_delay,
                **run_kwargs,
            ).expand_kwargs(shards_of(by_source))
            runs >> finalize
    return group


def nightly_tasks(
    pipeline: str,
    ccetl_conn_id: str | None = None,
    retries: int = 2,
    retry_delay: timedelta = timedelta(minutes=5),
    **run_kwargs: Any,
) -> list[CcetlRunOperator]:
    """One `ccetl run` per source, in its pool, from where the warehouse's checkpoint says;
    each names its tables and views as outlets."""
    described = CcetlHook().describe(pipeline)
    return [
        CcetlRunOperator(
            task_id=f"run_{slug(s['source'])}",
            pipeline=pipeline,
            sources=[s["source"]],
            pool=s["pool"],
            ccetl_conn_id=ccetl_conn_id,
            retries=retries,
            retry_delay=retry_delay,
            outlets=outlets_for(described, s["source"], pipeline),
            **run_kwargs,
        )
        for s in described["sources"]
    ]
