"""How Airflow runs the `ccetl` binary: which binary, with which environment, its output
into the task log.

Secrets reach ccetl as environment variables, the way its pipeline file reads them
(`client_secret = "${WEBEX_CLIENT_SECRET}"`): each extra of the Airflow Connection whose
key is an environment variable name (`WEBEX_CLIENT_SECRET`, `XIMA_API_KEY`, …) is set for
the ccetl process only, and masked in the task log. Nothing else carries them: not the
command line, not XCom (the run report ccetl writes holds no credential).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    from airflow.sdk import Asset, BaseHook
except ImportError:  # pragma: no cover - Airflow 2's location
    from airflow.datasets import Dataset as Asset  # type: ignore[no-redef]
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def ccetl_binary() -> str:
    """The binary installed with this package (see `ccetl.find_ccetl_bin`)."""
    from ccetl import find_ccetl_bin

    return find_ccetl_bin()


@dataclass
class Finished:
    """A ccetl command that ran: its exit code and what it printed on stdout."""

    code: int
    stdout: str


class CcetlHook(BaseHook):
    """Runs ccetl commands with the secrets of Connection `ccetl_conn_id` in their
    environment."""

    conn_name_attr = "ccetl_conn_id"
    default_conn_name = "ccetl_default"
    conn_type = "ccetl"
    hook_name = "ccetl"

    def __init__(self, ccetl_conn_id: str | None = None, binary: str | None = None) -> None:
        super().__init__()
        self.ccetl_conn_id = ccetl_conn_id
        self.binary = binary

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["host", "schema", "login", "password", "port"],
            "relabeling": {"extra": "Environment (JSON: {\"WEBEX_CLIENT_SECRET\": \"…\"})"},
        }

    def environment(self) -> dict[str, str]:
        """The process environment plus the Connection's secrets, each masked in logs."""
        env = dict(os.environ)
        if not self.ccetl_conn_id:
            return env
        conn = self.get_connection(self.ccetl_conn_id)
        extra = conn.extra_dejson or {}
        for key, value in extra.items():
            if not ENV_NAME.match(key):
                continue
            value = value if isinstance(value, str) else json.dumps(value)
            _mask(value)
            env[key] = value
        return env

    def run(self, args: list[str], capture: bool = False) -> Finished:
        """Runs `ccetl ARGS`. Its stderr (progress, warnings, the one-line error) and, unless
        `capture`, its stdout (the run's summary) go to the task log line by line as they
        come; a captured stdout is returned (JSON for `plan`, `describe`)."""
        binary = self.binary or ccetl_binary()
        self.log.info("ccetl %s", " ".join(args))
        if capture:
            done = subprocess.run(
                [binary, *args], env=self.environment(), capture_output=True, text=True
            )
            for line in done.stderr.splitlines():
                self.log.info("%s", line)
            return Finished(done.returncode, done.stdout)
        self.proc = subprocess.Popen(
            [binary, *args],
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.info("%s", line.rstrip("\n"))
        return Finished(self.proc.wait(), "")

    def stop(self) -> None:
        """Asks a running ccetl to stop (SIGTERM): it finishes the window it is committing,
        gives its lease back and exits; the next run resumes."""
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def describe(self, pipeline: str) -> dict:
        """`ccetl describe --json`: sources, their APIs and endpoints, tables, pools."""
        done = self.run(["describe", pipeline, "--json"], capture=True)
        if done.code != 0:
            raise RuntimeError(f"ccetl describe exited {done.code}")
        return json.loads(done.stdout)


def _mask(value: str) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - Airflow 2
        from airflow.utils.log.secrets_masker import mask_secret  # type: ignore[no-redef]
    mask_secret(value)


def warehouse_uri(warehouse: str, pipeline: str | None = None) -> str:
    """The warehouse as a URI: `s3://…`, `gs://…`, `az://…` as written; a local path made
    absolute (relative to the pipeline file, as ccetl reads it) as `file://`."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", warehouse):
        return warehouse.rstrip("/")
    base = Path(pipeline).parent if pipeline else Path.cwd()
    return (base / warehouse).resolve().as_uri()


def table_asset(described: dict, table: str, pipeline: str | None = None) -> Asset:
    """The Airflow asset of one of the warehouse's tables (or of a view such as `calls`):
    a run task names the tables and views its source writes as outlets, so a DAG scheduled
    on one runs when it changes."""
    uri = f"{warehouse_uri(described['warehouse'], pipeline)}/{table}"
    return Asset(uri=uri, name=f"ccetl.{described['pipeline']}.{table}")
