/**
 * A tiny EC2 instance metadata service (IMDSv2) on loopback: session tokens from PUT /latest/api/token,
 * 401 for a missing or revoked token, 404 from spot/instance-action until `announce()`.
 */
interface Imds {
  url: string;
  requests: string[];
  announce(): void;
  /** Resolves when the notice has been served (to a request with a valid token) for the first time. */
  served: Promise<void>;
  revokeTokens(): void;
  stop(): void;
}

export function startImds(): Imds {
  let notice = false;
  let generation = 0;
  const requests: string[] = [];
  const { promise: served, resolve: markServed } = Promise.withResolvers<void>();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      requests.push(`${req.method} ${path}`);
      if (req.method === "PUT" && path === "/latest/api/token") {
        if (!req.headers.get("x-aws-ec2-metadata-token-ttl-seconds")) return new Response("", { status: 400 });
        return new Response(`token-${generation}`);
      }
      if (req.method === "GET" && path === "/latest/meta-data/spot/instance-action") {
        if (req.headers.get("x-aws-ec2-metadata-token") !== `token-${generation}`) return new Response("", { status: 401 });
        if (!notice) return new Response("Not Found", { status: 404 });
        markServed();
        return Response.json({ action: "terminate", time: "2030-01-01T00:00:00Z" });
      }
      return new Response("", { status: 404 });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    requests,
    announce: () => (notice = true),
    served,
    revokeTokens: () => generation++,
    stop: () => void server.stop(true),
  };
}

