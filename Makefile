# Every target installs what it needs itself. Targets only call Bun scripts.
BUN := node_modules/.bin/bun
STAMP := node_modules/.installed

.PHONY: all test check build release demo bench clean

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

demo: $(STAMP)
	$(BUN) scripts/demo.ts

clean:
	rm -rf dist
