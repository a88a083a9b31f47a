"""Operators that run ccetl: a run (a whole pipeline, some sources, or one shard of a
backfill) and a backfill's finalize.

Exit codes are ccetl's: 0 done; 4 partial (a quota stopped the run; what was done is
committed and the next run resumes), which is not a failure; 2 (bad config) and 3
(credentials refused) fail without retry, since a retry cannot mend them; anything else
(1, or killed) fails and is retried as the task says.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

from ccetl_airflow.hooks import CcetlHook, table_asset, warehouse_uri

try:
    from airflow.sdk import BaseOperator
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # pragma: no cover - older SDK layouts
    from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore
    from airflow.sdk import BaseOperator  # type: ignore[no-redef]

NO_RETRY = {2: "bad config or usage", 3: "credentials refused"}


def _check(command: str, code: int, log) -> None:
    if code == 0:
        return
    if code == 4:
        log.warning("ccetl %s: partial (a quota stopped it); the next run resumes", command)
        return
    if code in NO_RETRY:
        raise AirflowFailException(f"ccetl {command} exited {code} ({NO_RETRY[code]}): not retried")
    raise AirflowException(f"ccetl {command} exited {code}")


class CcetlRunOperator(BaseOperator):
    """`ccetl run PIPELINE`: every source, or `sources`, over `since`..`until` when given
    (else from each source's watermark), at `rate_share` of the budget.

    The state goes to a scratch directory that is removed afterwards (`state` keeps it
    elsewhere): with an object-store warehouse, checkpoints and leases there let the task
    run on any worker. The run report (per source: windows, rows per table, recordings,
    requests, 429s, exit code) is the task's XCom return value; it holds no secret.
    """

    template_fields: Sequence[str] = ("pipeline", "sources", "since", "until", "rate_share")
    ui_color = "#d9ecf2"

    def __init__(
        self,
        *,
        pipeline: str,
        sources: list[str] | str | None = None,
        since: str | None = None,
        until: str | None = None,
        rate_share: float | str | None = None,
        ccetl_conn_id: str | None = None,
        state: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.described: dict | None = None
        self.report: dict | None = None
        self.pipeline = pipeline
        self.sources = sources
        self.since = since
        self.until = until
        self.rate_share = rate_share
        self.ccetl_conn_id = ccetl_conn_id
        self.state = state
        self.hook: CcetlHook | None = None

    def _sources(self) -> list[str]:
        if not self.sources:
            return []
        if isinstance(self.sources, str):
            return [self.sources]
        return list(self.sources)

    def execute(self, context: Any) -> dict | None:
        self.hook = CcetlHook(self.ccetl_conn_id)
        described = self.hook.run(["describe", self.pipeline, "--json"], capture=True)
        _check("describe", described.code, self.log)
        self.described = json.loads(described.stdout)
        with tempfile.TemporaryDirectory(prefix="ccetl-") as scratch:
            report_path = os.path.join(scratch, "report.json")
            args = ["run", self.pipeline, "--report", report_path]
            for s in self._sources():
                args += ["--source", s]
            if self.since:
                args += ["--since", str(self.since)]
            if self.until:
                args += ["--until", str(self.until)]
            if self.rate_share not in (None, "", "None"):
                args += ["--rate-share", str(self.rate_share)]
            args += ["--state", self.state or os.path.join(scratch, "{source}.duckdb")]
            done = self.hook.run(args)
            if os.path.exists(report_path):
                with open(report_path) as f:
                    self.report = json.load(f)
        _check("run", done.code, self.log)
        return self.report

    def on_kill(self) -> None:
        if self.hook is not None:
            self.hook.stop()

    def get_openlineage_facets_on_complete(self, task_instance: Any):
        """Inputs: each source's API endpoints it read. Outputs: each table written, with
        the rows this run left in its windows and the Delta version that holds them."""
        from ccetl_airflow.lineage import lineage_of

        return lineage_of(self.described, self.report, self.pipeline)


class CcetlFinalizeOperator(BaseOperator):
    """`ccetl finalize PIPELINE --since --until`: after a backfill's shards, checks that every
    window of the range is committed (failing, naming each gap, when one is not) and writes
    the checkpoint a nightly run resumes from."""

    template_fields: Sequence[str] = ("pipeline", "since", "until")

    def __init__(
        self,
        *,
        pipeline: str,
        since: str,
        until: str,
        ccetl_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.since = since
        self.until = until
        self.ccetl_conn_id = ccetl_conn_id

    def execute(self, context: Any) -> None:
        hook = CcetlHook(self.ccetl_conn_id)
        done = hook.run(["finalize", self.pipeline, "--since", self.since, "--until", self.until])
        _check("finalize", done.code, self.log)


def outlets_for(described: dict, source: str | None, pipeline: str) -> list:
    """The assets a run of `source` (every source when `None`) changes: its tables and the
    views they feed (`calls`, `recordings`, …), and the run history."""
    names: list[str] = []
    for s in described["sources"]:
        if source is None or s["source"] == source:
            names += [t for t in s["tables"] + s["views"] if t not in names]
    names.append(described["history"])
    return [table_asset(described, n, pipeline) for n in names]


__all__ = ["CcetlFinalizeOperator", "CcetlRunOperator", "outlets_for", "warehouse_uri"]
