# The two commands the README starts with, and the benchmark. Each installs what it needs.
.PHONY: run test bench
run:
	.ci/serve
test:
	.ci/test
bench:
	.ci/bench
