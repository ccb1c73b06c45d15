/**
 * AWS on loopback for the deployment tests, spoken to by the real `aws` CLI and curl:
 * - S3: `s3rver` (npm), buckets in a temp dir; the CLI reaches it with `--endpoint-url`.
 * - Secrets Manager: GetSecretValue over the JSON 1.1 protocol the CLI speaks (POST /, `X-Amz-Target:
 *   secretsmanager.GetSecretValue`), for `aws secretsmanager get-secret-value --endpoint-url`.
 * - IMDSv2: a session token from `PUT /latest/api/token`, required on every read (a read without one is
 *   refused and counted, so a test can assert nobody used IMDSv1); it also hands out the instance
 *   role's credentials, which the CLI finds through AWS_EC2_METADATA_SERVICE_ENDPOINT as on EC2.
 * Every request is recorded. The access key is s3rver's (S3RVER/S3RVER), the only one it accepts.
 */
import { randomUUID } from "node:crypto";
import S3rver from "s3rver";

export const AWS_ACCESS_KEY = "S3RVER";
const AWS_SECRET_KEY = "S3RVER";

export interface StandIn {
  url: string;
  /** `METHOD path` of each request, in order. */
  requests: string[];
  stop(): Promise<void>;
}

export async function startS3(directory: string, buckets: string[]): Promise<StandIn> {
  const server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory, configureBuckets: buckets.map((name) => ({ name })) });
  const { port } = await server.run();
  return { url: `http://127.0.0.1:${port}`, requests: [], stop: async () => void (await server.close()) };
}

export interface SecretsManager extends StandIn {
  /** Secret name -> SecretString; changes take effect at once. */
  secrets: Map<string, string>;
}

/** Errors as the service sends them: the CLI shows `__type` and `Message`. */
const awsError = (status: number, type: string, message: string) =>
  Response.json({ __type: type, Message: message }, { status, headers: { "content-type": "application/x-amz-json-1.1" } });

export function startSecretsManager(): SecretsManager {
  const secrets = new Map<string, string>();
  const requests: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const target = req.headers.get("x-amz-target") ?? "";
      requests.push(`${req.method} ${target}`);
      // A SigV4 signature by the instance role's key: the CLI found credentials and signed for this service.
      const auth = req.headers.get("authorization") ?? "";
      if (!auth.startsWith(`AWS4-HMAC-SHA256 Credential=${AWS_ACCESS_KEY}/`) || !auth.includes("/secretsmanager/aws4_request")) {
        return awsError(400, "UnrecognizedClientException", "The security token included in the request is invalid.");
      }
      if (req.method !== "POST" || target !== "secretsmanager.GetSecretValue") return awsError(400, "InvalidAction", `${target} is not supported here`);
      const body = (await req.json().catch(() => null)) as { SecretId?: unknown } | null;
      const id = typeof body?.SecretId === "string" ? body.SecretId : "";
      const value = secrets.get(id);
      if (value === undefined) return awsError(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
      return Response.json(
        {
          ARN: `arn:aws:secretsmanager:eu-west-1:012345678901:secret:${id}-AbCdEf`,
          Name: id,
          VersionId: randomUUID(),
          SecretString: value,
          VersionStages: ["AWSCURRENT"],
          CreatedDate: Math.floor(Date.now() / 1000),
        },
        { headers: { "content-type": "application/x-amz-json-1.1" } },
      );
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, requests, secrets, stop: () => server.stop(true) };
}

export interface Imds extends StandIn {
  /** Reads that came without a session token (IMDSv1), which real instances with IMDSv2 required refuse. */
  tokenless: string[];
}

/** `meta` maps paths below /latest/meta-data/ (e.g. `instance-id`) to their values. */
export function startImds(meta: Record<string, string>, role = "spacelift-worker"): Imds {
  const tokens = new Set<string>();
  const requests: string[] = [];
  const tokenless: string[] = [];
  const credentials = JSON.stringify({
    Code: "Success",
    Type: "AWS-HMAC",
    AccessKeyId: AWS_ACCESS_KEY,
    SecretAccessKey: AWS_SECRET_KEY,
    Token: "stand-in-session-token",
    Expiration: new Date(Date.now() + 6 * 3600_000).toISOString().replace(/\.\d+Z$/, "Z"),
    LastUpdated: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  });
  const values: Record<string, string> = { ...meta, "iam/security-credentials/": role, [`iam/security-credentials/${role}`]: credentials };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      requests.push(`${req.method} ${path}`);
      if (path === "/latest/api/token") {
        const ttl = Number(req.headers.get("x-aws-ec2-metadata-token-ttl-seconds"));
        if (req.method !== "PUT" || !Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return new Response("", { status: 400 });
        const token = randomUUID();
        tokens.add(token);
        return new Response(token, { headers: { "x-aws-ec2-metadata-token-ttl-seconds": String(ttl) } });
      }
      if (!tokens.has(req.headers.get("x-aws-ec2-metadata-token") ?? "")) {
        tokenless.push(path);
        return new Response("", { status: 401 });
      }
      const value = path.startsWith("/latest/meta-data/") ? values[path.slice("/latest/meta-data/".length)] : undefined;
      return value === undefined ? new Response("", { status: 404 }) : new Response(value);
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, requests, tokenless, stop: () => server.stop(true) };
}
