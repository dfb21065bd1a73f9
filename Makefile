# tslink — `make help` lists the targets.
SHELL := /bin/bash
VERSION := $(shell node -p "require('./package.json').version")
REGISTRY ?= localhost:5000
PLUGIN ?= tslink
BUNDLE := plugin/build

.PHONY: help host tailscale build test unit fuzz rootfs plugin enable install push legacy-install clean bench

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

host: ## install the Debian packages tslink builds from and runs (iptables, iproute2, util-linux, Docker); root
	scripts/host-packages.sh install

tailscale: ## build the pinned Tailscale (go install) into .cache/tailscale
	scripts/build-tailscale.sh >/dev/null

node_modules: package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

build: node_modules ## compile TypeScript into dist/
	npm run -s build

test: ## the whole suite: unit + e2e on Docker 20.10 and 28.5 (provisions packages and engines; root)
	scripts/test-all.sh

unit: build ## unit tests only
	node --test dist/test/unit/*.test.js

# Only TEST_DOUBLE=1|yes|true bundles the test double; any other value (0, no, empty) does not.
WITH_DOUBLE := $(filter 1 yes true,$(TEST_DOUBLE))

fuzz: build ## the full fuzzes: label grammar (20,000 label and option maps), then protocol (10,000 requests, private network namespace; root)
	TSLINK_LABEL_FUZZ=$${TSLINK_LABEL_FUZZ:-20000} node --test dist/test/attack/label-fuzz.test.js
	TSLINK_FUZZ_REQUESTS=$${TSLINK_FUZZ_REQUESTS:-10000} node --test dist/test/attack/fuzz.test.js

rootfs: host build ## assemble the plugin bundle (config.json + rootfs/) offline in plugin/build
	scripts/build-rootfs.sh $(if $(WITH_DOUBLE),--with-test-double) $(BUNDLE)

plugin: rootfs ## docker plugin create $(PLUGIN):latest from the bundle
	scripts/ensure-docker.sh
	-docker plugin disable -f $(PLUGIN):latest >/dev/null 2>&1
	-docker plugin rm -f $(PLUGIN):latest >/dev/null 2>&1
	docker plugin create $(PLUGIN):latest $(BUNDLE)

enable: ## set TS_AUTHKEY (if given) and enable $(PLUGIN):latest
	mkdir -p /var/lib/docker-plugins/tailscale
	$(if $(TS_AUTHKEY),@docker plugin set $(PLUGIN):latest TS_AUTHKEY="$(TS_AUTHKEY)")
	docker plugin enable $(PLUGIN):latest

install: plugin enable ## the one-command install: build, create, enable, and a demo network "tsnet"
ifneq ($(TS_AUTHKEY),)
	docker network inspect tsnet >/dev/null 2>&1 || docker network create -d $(PLUGIN):latest tsnet
	@echo "tslink installed. Try: docker run -d --network tsnet --label tslink.hostname=hello nginx:alpine"
else
	@echo "tslink installed without a default key: create networks with"
	@echo "  docker network create -d $(PLUGIN):latest --opt tslink.authkey=tskey-auth-... tsnet"
endif

push: rootfs ## docker plugin create + push $(REGISTRY)/$(PLUGIN):$(VERSION) (never with the test double)
	scripts/check-bundle.sh $(BUNDLE)
	-docker plugin rm -f $(REGISTRY)/$(PLUGIN):$(VERSION) >/dev/null 2>&1
	docker plugin create $(REGISTRY)/$(PLUGIN):$(VERSION) $(BUNDLE)
	docker plugin push $(REGISTRY)/$(PLUGIN):$(VERSION)

legacy-install: build ## run the plugin from this tree as a legacy plugin (socket) and create "tsnet"
	scripts/legacy-install.sh

clean: ## remove build output and caches
	rm -rf dist .cache $(BUNDLE)

bench: build ## benchmarks on both engines → BENCHMARKS.md (not a test; needs root)
	scripts/provision.sh
	for v in 20.10 28.5; do scripts/engine.sh start $$v && (eval "$$(scripts/engine.sh env $$v)" && node dist/bench/run.js && node dist/bench/base.js && TSLINK_E2E_ENGINE=$$v node dist/bench/real-tailnet.js) || exit 1; done
	scripts/engine.sh stop
	TSLINK_E2E_ENGINE=28.5 node dist/bench/cross-host.js
	node dist/bench/report.js
