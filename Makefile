# tslink — `make help` lists the targets.
SHELL := /bin/bash
VERSION := $(shell node -p "require('./package.json').version")

.PHONY: help build test unit e2e legacy-install clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

node_modules: package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

build: node_modules ## compile TypeScript into dist/
	npm run -s build

test: ## the whole suite: unit + e2e on Docker 20.10 and 28.5 (provisions engines; root)
	scripts/test-all.sh

unit: build ## unit tests only
	node --test dist/test/unit/*.test.js

legacy-install: build ## run the plugin from this tree as a legacy plugin and create network "tsnet"
	scripts/legacy-install.sh

clean: ## remove build output and caches
	rm -rf dist .cache
