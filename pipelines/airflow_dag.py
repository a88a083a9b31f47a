"""Airflow DAG: one `ccetl run` per source, nightly, with JSON logs and the run report.

Each source has its own state file (`state = "state/acme-{source}.duckdb"`), so the tasks
are independent; rate limits are per org/tenant, so running them in parallel is free.
Exit codes: 0 done, 1 failed, 2 bad config, 3 credentials rejected, 4 partial (a quota
stopped the run; the next run resumes) -- 4 is not worth a page, so it is allowed to
succeed with a warning here.
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

PIPELINE = "/opt/ccetl/pipelines/production.toml"
SOURCES = ["wxcc-us1"]

with DAG(
    dag_id="ccetl_nightly",
    start_date=datetime(2026, 1, 1),
    schedule="30 2 * * *",
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
) as dag:
    for source in SOURCES:
        BashOperator(
            task_id=f"ccetl_run_{source}",
            bash_command=(
                f"ccetl run {PIPELINE} --source {source} --log-format json "
                f"--report /var/log/ccetl/{source}-{{{{ ds }}}}.json; "
                "rc=$?; if [ $rc -eq 4 ]; then echo 'partial run: resumes next time'; exit 0; fi; exit $rc"
            ),
            env={"WXCC_CLIENT_ID": "{{ var.value.wxcc_client_id }}",
                 "WXCC_CLIENT_SECRET": "{{ var.value.wxcc_client_secret }}",
                 "WXCC_REFRESH_TOKEN": "{{ var.value.wxcc_refresh_token }}",
                 "WXCC_ORG_ID": "{{ var.value.wxcc_org_id }}"},
            append_env=True,
        )
