# Every target installs what it needs itself. Targets only call Bun scripts.
BUN := node_modules/.bin/bun
STAMP := node_modules/.installed

.PHONY: all test check build release demo bench faults clean

all: build

# npm ci when node_modules is missing or older than the lockfile.
$(STAMP): package-lock.json package.json
	npm ci --no-audit --no-fund
	@touch $(STAMP)

check: $(STAMP)
	$(BUN) scripts/check.ts

build: $(STAMP)
	$(BUN) build/build.ts

# Binaries, SHA256SUMS and its signature in dist/release/ (RELEASE_GPG_KEY: armored private key).
release: $(STAMP)
	$(BUN) build/release.ts

test: $(STAMP)
	$(BUN) scripts/test.ts

bench: $(STAMP)
	$(BUN) scripts/bench.ts

# The fault suite: fuzzers at 10,000 inputs per parser (a fresh FAULT_SEED, printed) and the fault tests with real parts.
faults: $(STAMP)
	$(BUN) scripts/faults.ts

demo: $(STAMP)
	$(BUN) scripts/demo.ts

clean:
	rm -rf dist
