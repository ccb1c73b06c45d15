/**
 * Build information. `build/build.ts` defines the three constants at compile time; when a program runs
 * from source (`bun src/...`) they are absent and the values say so.
 */
declare const SPACELIFT_BUILD_VERSION: string | undefined;
declare const SPACELIFT_BUILD_COMMIT: string | undefined;
declare const SPACELIFT_BUILD_TARGET: string | undefined;

export interface BuildInfo {
  version: string;
  commit: string;
  target: string;
}

const hostArch = process.arch === "arm64" ? "aarch64" : process.arch === "x64" ? "x86_64" : process.arch;

export const buildInfo: BuildInfo = Object.freeze({
  version: typeof SPACELIFT_BUILD_VERSION === "string" ? SPACELIFT_BUILD_VERSION : "0.0.0-dev",
  commit: typeof SPACELIFT_BUILD_COMMIT === "string" ? SPACELIFT_BUILD_COMMIT : "unknown",
  target: typeof SPACELIFT_BUILD_TARGET === "string" ? SPACELIFT_BUILD_TARGET : `linux-${hostArch} (source)`,
});

export function versionLine(program: string): string {
  return `${program} ${buildInfo.version} (commit ${buildInfo.commit}, ${buildInfo.target})`;
}
