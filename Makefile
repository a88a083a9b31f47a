# Every target uses the release profile: one build of bundled DuckDB serves all of them.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/ccetl-target

.PHONY: demo test ci schemas

demo:
	cargo run --release -- demo

test:
	cargo test --release

ci:
	bash .ci/run

schemas:
	UPDATE_SCHEMAS=1 cargo test --release --test schemas
