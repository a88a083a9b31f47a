"""ccetl on Airflow: a backfill cut into shards that run on any worker, and the nightly run.

Both DAGs call the `ccetl` binary; workers need it, the pipeline file and the warehouse's
credentials, nothing else. Each task keeps its state on its own scratch disk (`--state`): with
an object-store warehouse, what earlier runs did comes from the warehouse (checkpoints,
manifests, leases) and Webex tokens from the pipeline's `token_store`, so a task may land on
any worker. Only shard arguments travel through XCom, never a token.

Settings (environment of the scheduler and the workers):
  CCETL_PIPELINE  the pipeline file, as the workers see it (required)
  CCETL_BIN       the ccetl binary (default: `ccetl` on PATH)

One Airflow pool per API budget (a Webex client ID, a Xima tenant, a legacy API user), with
the slots `ccetl plan` gives: create them before the first run, e.g.
  ccetl plan "$CCETL_PIPELINE" --since 2000-01-01 --until 2000-01-02 --json \
    | python3 pipelines/pools.py > pools.json && airflow pools import pools.json
Pools cannot be mapped, so each pool has its own mapped task.

`ccetl_backfill` (manual, params `since`, `until`, `windows_per_shard`): plan, then every pool's
shards side by side up to the pool's slots, then `ccetl finalize`, which fails naming any gap.
`ccetl_nightly` (daily): one `ccetl run` per source in its pool, from where the warehouse's
checkpoint says.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

CCETL = os.environ.get("CCETL_BIN", "ccetl")
PIPELINE = os.environ.get("CCETL_PIPELINE", "")


def ccetl(*args: str) -> str:
    """Runs ccetl; its stderr (one-line errors, warnings) goes to the task log. Exit codes:
    0 done, 1 failed (retried), 2 bad config, 3 credentials rejected, 4 partial (a quota
    stopped the run; what was done is committed and the next run resumes: not a failure)."""
    done = subprocess.run([CCETL, *args], capture_output=True, text=True)
    if done.stderr:
        print(done.stderr, end="")
    if done.returncode == 4:
        print(f"ccetl {args[0]}: partial (a quota stopped it); the next run resumes")
    elif done.returncode != 0:
        raise RuntimeError(f"ccetl {args[0]} exited {done.returncode}")
    return done.stdout


def plan(since: str, until: str, per_shard: int = 7) -> list[dict]:
    return json.loads(
        ccetl(
            "plan",
            PIPELINE,
            "--since",
            since,
            "--until",
            until,
            "--windows-per-shard",
            str(per_shard),
            "--json",
        )
    )


def pools() -> dict[str, dict]:
    """Each pool's slots and sources, from the pipeline (one day's plan: cheap to parse)."""
    if not PIPELINE:
        return {}
    out: dict[str, dict] = {}
    for s in plan("2000-01-01", "2000-01-02"):
        p = out.setdefault(s["pool"], {"slots": s["pool_slots"], "sources": []})
        if s["source"] not in p["sources"]:
            p["sources"].append(s["source"])
    return out


def slug(pool: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", pool)


def run_on_scratch(args: list[str]) -> None:
    """A `ccetl run` with its state on a fresh scratch disk, as on any worker."""
    with tempfile.TemporaryDirectory(prefix="ccetl-") as scratch:
        ccetl(*args, "--state", os.path.join(scratch, "{source}.duckdb"))


POOLS = pools()


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
    @task
    def plan_shards(params=None) -> dict[str, list[dict]]:
        """The shards of the range, by pool: each a list of `ccetl` arguments."""
        by_pool: dict[str, list[dict]] = {}
        for s in plan(params["since"], params["until"], params["windows_per_shard"]):
            by_pool.setdefault(s["pool"], []).append({"args": s["args"]})
        return by_pool

    @task
    def shards_of(by_pool: dict[str, list[dict]], pool: str) -> list[dict]:
        return by_pool.get(pool, [])

    @task(retries=2, retry_delay=timedelta(seconds=5))
    def run_shard(args: list[str]) -> None:
        run_on_scratch(args)

    @task
    def finalize(params=None) -> None:
        ccetl("finalize", PIPELINE, "--since", params["since"], "--until", params["until"])

    by_pool = plan_shards()
    done = finalize()
    for pool in POOLS:
        shards = shards_of.override(task_id=f"shards_of_{slug(pool)}")(by_pool, pool)
        runs = run_shard.override(task_id=f"run_{slug(pool)}", pool=pool).expand_kwargs(shards)
        runs >> done


@dag(
    dag_id="ccetl_nightly",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["ccetl"],
)
def ccetl_nightly():
    @task(retries=2, retry_delay=timedelta(minutes=5))
    def run_source(source: str) -> None:
        run_on_scratch(["run", PIPELINE, "--source", source])

    for pool, p in POOLS.items():
        for source in p["sources"]:
            run_source.override(task_id=f"run_{slug(source)}", pool=pool)(source)


ccetl_backfill()
ccetl_nightly()
