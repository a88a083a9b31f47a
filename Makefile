# Every target uses the release profile: one build of bundled DuckDB serves all of them.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/ccetl-target

.PHONY: demo test ci schemas bench wheel

demo:
	cargo run --release -- demo

test:
	cargo test --release

ci:
	bash .ci/run

# `pip install`-able: the release binary and the Airflow provider in one wheel, in
# target/wheels (maturin reuses the release build: nothing compiles again).
wheel:
	test -x $(HOME)/.cache/ccetl-wheel/bin/maturin || (python3 -m venv $(HOME)/.cache/ccetl-wheel && $(HOME)/.cache/ccetl-wheel/bin/pip install --quiet -r python/requirements-wheel.txt)
	$(HOME)/.cache/ccetl-wheel/bin/maturin build --release --out target/wheels

schemas:
	UPDATE_SCHEMAS=1 cargo test --release --test schemas

# Figures as ratios against baselines measured in the same run; writes bench/results.json.
bench:
	cargo bench --bench throughput
	cargo bench --bench audio
	cargo bench --bench scale
	cargo bench --bench rate
	cargo bench --bench scaleout
	cargo bench --bench delta_log
