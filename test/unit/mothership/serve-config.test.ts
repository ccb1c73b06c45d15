// `mothership serve` flags -> settings: the documented defaults, the broker endpoint derived from
// --mqtt, and usage errors that say what a good value looks like.
import { describe, expect, test } from "bun:test";
import { parseArgs } from "../../../src/mothership/cli/args.ts";
import { brokerEndpointFor, SERVE_FLAGS, serveConfigFromArgs } from "../../../src/mothership/serve-config.ts";

const settings = (argv: string[], env: Record<string, string> = {}) => serveConfigFromArgs(parseArgs(argv, SERVE_FLAGS), env);

describe("serveConfigFromArgs", () => {
  test("defaults: ./mothership-data, API 127.0.0.1:8080 over HTTPS, broker 127.0.0.1:8883 advertised as such", () => {
    expect(settings([])).toEqual({
      dataDir: "./mothership-data",
      httpHost: "127.0.0.1",
      httpPort: 8080,
      httpPlain: false,
      mqttHost: "127.0.0.1",
      mqttPort: 8883,
      brokerEndpoint: "mqtts://127.0.0.1:8883",
      commsUrl: undefined,
      namespace: "spacelift",
      heartbeatSeconds: 15,
      scheduleTimeoutMs: 60_000,
      logLimits: { chunkBytes: 256 * 1024, runBytes: 512 * 1024 * 1024 },
      logLevel: "info",
    });
  });

  test("every flag is taken; --flag=value works too", () => {
    const s = settings([
      "--data", "/srv/ms", "--http=0.0.0.0:9443", "--mqtt", "10.0.0.5:1884", "--comms-url", "https://ms.example.com",
      "--namespace", "acme", "--http-plain", "--heartbeat", "5", "--schedule-timeout", "30", "--log-level", "debug",
    ]);
    expect(s).toMatchObject({
      dataDir: "/srv/ms", httpHost: "0.0.0.0", httpPort: 9443, httpPlain: true, mqttHost: "10.0.0.5", mqttPort: 1884,
      commsUrl: "https://ms.example.com", namespace: "acme", heartbeatSeconds: 5, scheduleTimeoutMs: 30_000, logLevel: "debug",
    });
  });

  test("--broker-endpoint defaults from --mqtt (any-interface hosts advertised as loopback, IPv6 bracketed); given, it wins", () => {
    expect(settings(["--mqtt", "10.0.0.5:1884"]).brokerEndpoint).toBe("mqtts://10.0.0.5:1884");
    expect(settings(["--mqtt", "0.0.0.0:8883"]).brokerEndpoint).toBe("mqtts://127.0.0.1:8883");
    expect(settings(["--mqtt", ":8883"]).brokerEndpoint).toBe("mqtts://127.0.0.1:8883");
    expect(settings(["--mqtt", "[::1]:9000"]).brokerEndpoint).toBe("mqtts://[::1]:9000");
    // Port 0 is chosen when the broker listens: the server fills the endpoint in then.
    expect(settings(["--mqtt", "127.0.0.1:0"]).brokerEndpoint).toBeUndefined();
    expect(brokerEndpointFor("::", 41234)).toBe("mqtts://127.0.0.1:41234");
    expect(settings(["--mqtt", "0.0.0.0:8883", "--broker-endpoint", "mqtts://mqtt.example.com:443"]).brokerEndpoint).toBe("mqtts://mqtt.example.com:443");
  });

  test("log caps take bytes or binary units", () => {
    expect(settings(["--max-log-chunk-bytes", "65536", "--max-run-log-bytes", "2GiB"]).logLimits).toEqual({ chunkBytes: 65536, runBytes: 2 * 1024 ** 3 });
    expect(settings(["--max-log-chunk-bytes", "1M", "--max-run-log-bytes", "100mib"]).logLimits).toEqual({ chunkBytes: 1024 ** 2, runBytes: 100 * 1024 ** 2 });
  });

  test("MOTHERSHIP_LOG_LEVEL is the fallback of --log-level; empty counts as unset", () => {
    expect(settings([], { MOTHERSHIP_LOG_LEVEL: "warn" }).logLevel).toBe("warn");
    expect(settings(["--log-level", "error"], { MOTHERSHIP_LOG_LEVEL: "warn" }).logLevel).toBe("error");
    expect(settings([], { MOTHERSHIP_LOG_LEVEL: "" }).logLevel).toBe("info");
  });

  test.each([
    [["--http", "8080"], "--http must be HOST:PORT"],
    [["--mqtt", "host:99999"], "--mqtt must be HOST:PORT"],
    [["--broker-endpoint", "mqtt://h:1883"], "--broker-endpoint must be mqtts://HOST:PORT"],
    [["--broker-endpoint", "mqtts://h"], "--broker-endpoint must be mqtts://HOST:PORT"],
    [["--heartbeat", "0"], "--heartbeat must be a whole number of seconds >= 1"],
    [["--heartbeat", "1.5"], "--heartbeat must be a whole number"],
    [["--schedule-timeout", "soon"], "--schedule-timeout must be a whole number"],
    [["--log-level", "trace"], "--log-level must be debug, info, warn or error"],
    [["--comms-url", "not a url"], "--comms-url must be a URL"],
    [["--comms-url", "ftp://ms.example.com"], "--comms-url must be an http(s) URL"],
    [["--http-plain"], "--http-plain needs --comms-url https://HOST"],
    [["--port", "1"], "unknown option --port"],
    [["--max-log-chunk-bytes", "1000"], "--max-log-chunk-bytes must be a number of bytes >= 65536"],
    [["--max-log-chunk-bytes", "1.5M"], "--max-log-chunk-bytes must be a number of bytes"],
    [["--max-run-log-bytes", "lots"], "--max-run-log-bytes must be a number of bytes >= 262144"],
    [["--max-log-chunk-bytes", "1MiB", "--max-run-log-bytes", "512KiB"], "--max-run-log-bytes must be a number of bytes >= 1048576"],
  ])("%p is a usage error", (argv, message) => {
    expect(() => settings(argv)).toThrow(message);
    try {
      settings(argv);
    } catch (err) {
      expect((err as { code?: string }).code).toBe("usage");
    }
  });
});

describe("--database and MOTHERSHIP_DATABASE_URL", () => {
  const URL_NO_PASSWORD = "postgres://mothership@db.example.com:5432/mothership";
  const URL_PASSWORD = "postgresql://mothership:s3cret-pw@db.example.com/mothership?sslmode=require";

  test("default: none, the SQLite file in the data dir", () => {
    expect(settings([]).database).toBeUndefined();
    expect(settings([], { MOTHERSHIP_DATABASE_URL: "" }).database).toBeUndefined();
  });

  test("the flag wins over the variable; the variable may carry the password", () => {
    expect(settings(["--database", URL_NO_PASSWORD]).database).toBe(URL_NO_PASSWORD);
    expect(settings([], { MOTHERSHIP_DATABASE_URL: URL_PASSWORD }).database).toBe(URL_PASSWORD);
    expect(settings(["--database", URL_NO_PASSWORD], { MOTHERSHIP_DATABASE_URL: URL_PASSWORD }).database).toBe(URL_NO_PASSWORD);
  });

  test("a password on the command line is refused, and the message does not repeat it", () => {
    let message = "";
    try {
      settings(["--database", URL_PASSWORD]);
    } catch (err) {
      expect((err as { code?: string }).code).toBe("usage");
      message = (err as Error).message;
    }
    expect(message).toContain("--database must not carry the password");
    expect(message).toContain("MOTHERSHIP_DATABASE_URL");
    expect(message).toContain("PGPASSWORD");
    expect(message).not.toContain("s3cret-pw");
  });

  test.each([
    [["--database", "mysql://u@h/db"], {}, "--database must be a PostgreSQL URL"],
    [["--database", "/srv/ms.db"], {}, "--database must be a PostgreSQL URL"],
    [[], { MOTHERSHIP_DATABASE_URL: "sqlite:///x:pw" }, "MOTHERSHIP_DATABASE_URL must be a PostgreSQL URL"],
  ])("%p %p is a usage error that does not quote the value", (argv, env, message) => {
    expect(() => settings(argv, env)).toThrow(message);
    expect(() => settings(argv, env)).not.toThrow(/mysql|srv|x:pw/);
  });
});
