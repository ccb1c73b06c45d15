// `make demo` needs the mothership control plane, which is not part of this release yet.
console.error(
  "make demo is not available yet: it needs the mothership (pools, tokens, scheduling), which has not landed.\n" +
    "Until then: `make build` builds the launcher and `dist/spacelift-launcher-x86_64 check` validates a configuration.",
);
process.exit(2);
