# Entry points; each script installs what it needs. See README.md.
.PHONY: demo test pi pi-test bench

demo:     ## start a loopback S3 server with sample SES mail and sync it (no cloud account)
	bash .ci/demo
test:     ## the whole host test suite: fmt, clippy, unit and integration tests, deployment checks
	bash .ci/test
pi:       ## static ARMv8.0 release binary: target/aarch64-unknown-linux-musl/release/s3imap
	bash .ci/pi build
pi-test:  ## the test suite for aarch64 under qemu-aarch64 -cpu cortex-a53
	bash .ci/pi test
bench:    ## benchmarks side by side with their peers; results go into BENCHMARKS.md
	bash bench/run
