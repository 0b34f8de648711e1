# Entry points; each script installs what it needs. See README.md.
.PHONY: demo test pi pi-test fuzz ci bench bench-sync bench-imap bench-latency bench-auth

demo:     ## start a loopback S3 server with sample SES mail and sync it (no cloud account)
	bash .ci/demo
test:     ## the whole host test suite: fmt, clippy, unit and integration tests, deployment checks
	bash .ci/test
pi:       ## static ARMv8.0 release binary: target/aarch64-unknown-linux-musl/release/s3imap
	bash .ci/pi build
pi-test:  ## the test suite for aarch64 under qemu-aarch64 -cpu cortex-a53
	bash .ci/pi test
fuzz:     ## every fuzz target for FUZZ_SECONDS (default 60) from its corpus; a crash fails
	bash .ci/fuzz smoke $${FUZZ_SECONDS:-60}
ci:       ## what CI runs: install everything, test, pi, pi-test, fuzz (with the time of each)
	bash .ci/run
bench: bench-sync bench-imap bench-latency bench-auth  ## all benchmarks, one after the other (results: bench/out/*.md)
bench-sync:  ## s3imap sync vs aws s3 sync and s5cmd, 5,000 SES messages on loopback SeaweedFS
	bash bench/run
bench-imap:  ## s3imap serve vs Dovecot 2.3 on a 10,000-message INBOX: memory, FETCH, SEARCH, 50-session workload, QRESYNC resync, COMPRESS, SORT/THREAD (as root)
	bash .ci/setup && cargo build --release --quiet && .venv/bin/python bench/imap/run.py && .venv/bin/python bench/imap/workload.py && .venv/bin/python bench/imap/resync.py && .venv/bin/python bench/imap/compress.py && .venv/bin/python bench/imap/sort.py
bench-latency:  ## PUT into S3 -> EXISTS in an IDLE session, p50/p95 and requests/day: SQS events vs polling at 1s and 60s
	bash .ci/setup && cargo build --release --quiet && .venv/bin/python bench/latency/run.py
bench-auth:  ## logins/s (PLAIN, ARGON2ID) and peak RSS while 50 connections guess ARGON2ID passwords
	bash .ci/setup && cargo build --release --quiet && .venv/bin/python bench/auth/run.py
