/**
 * The Kubernetes kustomize base (build/kubernetes) and its example overlay rendered by `kubectl
 * kustomize`, and the objects checked: the kinds, DinD as a native sidecar sharing the scratch dir at
 * the launcher's path and the Docker socket only through a shared directory, the token and key as
 * Secret files read through the _FILE variables, metadata from the downward API, the grace period
 * against the run timeout, probes, no preStop hook, resources and security contexts.
 * What this cannot check: a real cluster (scheduling, the kubelet's sidecar ordering, admission of a
 * privileged container), Docker-in-Docker itself, and the image's pull from a registry.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { missingDeployTools } from "../../scripts/testenv/deploy-tools.ts";
import { parseGoDuration } from "../../src/config/duration.ts";
import { unknownVariables } from "../../src/config/variables.ts";
import { hostCapability } from "../support/env.ts";

const root = join(import.meta.dir, "../../build/kubernetes");
const haveKubectl = hostCapability("kubectl (Debian kubernetes-client)", missingDeployTools(["kubectl"]).length === 0);

interface EnvVar { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: unknown } }
interface Mount { name: string; mountPath: string; readOnly?: boolean }
interface Probe { exec?: { command: string[] }; httpGet?: unknown; periodSeconds?: number }
interface Container {
  name: string; image: string; args?: string[]; env?: EnvVar[]; volumeMounts: Mount[]; restartPolicy?: string;
  readinessProbe?: Probe; livenessProbe?: Probe; startupProbe?: Probe; lifecycle?: { preStop?: unknown };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
}
interface Volume { name: string; emptyDir?: Record<string, unknown>; secret?: { secretName: string; defaultMode?: number; items?: Array<{ key: string; path: string }> } }
interface PodSpec { terminationGracePeriodSeconds: number; automountServiceAccountToken?: boolean; securityContext?: { fsGroup?: number }; initContainers?: Container[]; containers: Container[]; volumes: Volume[] }
interface K8sObject { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec?: { replicas?: number; template: { spec: PodSpec } } }

function render(dir: string): K8sObject[] {
  const r = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed (${r.status}): ${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject);
}

function pod(objects: K8sObject[]): PodSpec {
  const deployment = objects.find((o) => o.kind === "Deployment");
  if (!deployment?.spec) throw new Error("no Deployment rendered");
  return deployment.spec.template.spec;
}

const env = (c: Container, name: string) => c.env?.find((e) => e.name === name);
const mountOf = (c: Container, volume: string) => c.volumeMounts.find((m) => m.name === volume);

describe.skipIf(!haveKubectl)("Kubernetes kustomize base (cannot check: a real cluster, sidecar ordering by the kubelet, DinD itself)", () => {
  const objects = haveKubectl ? render(root) : [];
  const spec = haveKubectl ? pod(objects) : ({} as PodSpec);
  const launcher = () => spec.containers.find((c) => c.name === "launcher")!;
  const dind = () => spec.initContainers?.find((c) => c.name === "dind");

  test("renders a ServiceAccount without a token and a Deployment whose pod has the launcher and a DinD native sidecar", () => {
    expect(objects.map((o) => `${o.apiVersion} ${o.kind}/${o.metadata.name}`).sort()).toEqual(["apps/v1 Deployment/spacelift-launcher", "v1 ServiceAccount/spacelift-launcher"]);
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.containers.map((c) => c.name)).toEqual(["launcher"]);
    // An init container that keeps running: started before the launcher, stopped only after it exited.
    expect(dind()).toMatchObject({ restartPolicy: "Always", securityContext: { privileged: true } });
    expect(dind()!.image).toMatch(/^docker:\d+(\.\d+)*-dind$/);
  });

  test("the scratch dir is one emptyDir at the same path in both containers, the path the launcher is told", () => {
    const path = env(launcher(), "SPACELIFT_LAUNCHER_SCRATCH_DIR")?.value;
    expect(path).toBe("/opt/spacelift");
    expect(mountOf(launcher(), "scratch")?.mountPath).toBe(path!);
    expect(mountOf(dind()!, "scratch")?.mountPath).toBe(path!);
    expect(spec.volumes.find((v) => v.name === "scratch")?.emptyDir).toBeDefined();
  });

  test("Docker is reached only through a unix socket in a directory both containers mount; no TCP listener", () => {
    const host = env(launcher(), "DOCKER_HOST")?.value ?? "";
    expect(host).toMatch(/^unix:\/\/\/.+\/docker\.sock$/);
    const socketDir = host.slice("unix://".length).replace(/\/docker\.sock$/, "");
    expect(mountOf(launcher(), "docker-socket")?.mountPath).toBe(socketDir);
    expect(mountOf(dind()!, "docker-socket")?.mountPath).toBe(socketDir);
    // dockerd first, so the image's entrypoint adds none of its own listeners; the socket's group is the launcher's.
    expect(dind()!.args).toEqual(["dockerd", `--host=${host}`, "--group=1983"]);
    expect(JSON.stringify(dind())).not.toContain("tcp://");
    expect(mountOf(dind()!, "docker-data")?.mountPath).toBe("/var/lib/docker");
  });

  test("the token and key are the Secret's files, read through SPACELIFT_TOKEN_FILE and SPACELIFT_POOL_PRIVATE_KEY_FILE", () => {
    const credentials = spec.volumes.find((v) => v.name === "credentials")!;
    expect(credentials.secret).toEqual({ secretName: "spacelift-launcher-credentials", defaultMode: 0o440, items: [{ key: "token", path: "token" }, { key: "pool-private-key", path: "pool-private-key" }] });
    expect(spec.securityContext?.fsGroup).toBe(1983);
    const mount = mountOf(launcher(), "credentials")!;
    expect(mount.readOnly).toBe(true);
    expect(env(launcher(), "SPACELIFT_TOKEN_FILE")?.value).toBe(`${mount.mountPath}/token`);
    expect(env(launcher(), "SPACELIFT_POOL_PRIVATE_KEY_FILE")?.value).toBe(`${mount.mountPath}/pool-private-key`);
    // Never in the environment, and the sidecar (which runs the runs) does not mount them.
    expect(env(launcher(), "SPACELIFT_TOKEN")).toBeUndefined();
    expect(env(launcher(), "SPACELIFT_POOL_PRIVATE_KEY")).toBeUndefined();
    expect(launcher().env!.some((e) => e.valueFrom?.secretKeyRef)).toBe(false);
    expect(mountOf(dind()!, "credentials")).toBeUndefined();
  });

  test("the pod, its namespace and its node are the worker's metadata, from the downward API", () => {
    const fields = Object.fromEntries(launcher().env!.filter((e) => e.name.startsWith("SPACELIFT_METADATA_")).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
    expect(fields).toEqual({ SPACELIFT_METADATA_pod: "metadata.name", SPACELIFT_METADATA_namespace: "metadata.namespace", SPACELIFT_METADATA_node: "spec.nodeName" });
    // And every variable the manifest sets is one the launcher knows (a misspelt one would be ignored).
    expect(unknownVariables(Object.fromEntries(launcher().env!.map((e) => [e.name, e.value ?? "from the downward API"])))).toEqual([]);
  });

  test("SIGTERM drains: no preStop hook, and a grace period of the run timeout plus a margin of at most 10 minutes", () => {
    expect(launcher().lifecycle?.preStop).toBeUndefined();
    const timeout = env(launcher(), "SPACELIFT_LAUNCHER_RUN_TIMEOUT")?.value ?? "";
    const parsed = parseGoDuration(timeout);
    if (!parsed.ok) throw new Error(`SPACELIFT_LAUNCHER_RUN_TIMEOUT ${timeout}: ${parsed.problems.join("; ")}`);
    const seconds = parsed.value / 1000;
    expect(seconds).toBe(70 * 60);
    expect(spec.terminationGracePeriodSeconds - seconds).toBeGreaterThanOrEqual(60);
    expect(spec.terminationGracePeriodSeconds - seconds).toBeLessThanOrEqual(600);
  });

  test("probes: the launcher is ready when `spacelift-launcher check` passes and has no liveness probe; DinD gates start-up and is restarted when it stops answering", () => {
    expect(launcher().readinessProbe?.exec?.command).toEqual(["/usr/local/bin/spacelift-launcher", "check"]);
    expect(launcher().livenessProbe).toBeUndefined();
    const ping = ["docker", `--host=${env(launcher(), "DOCKER_HOST")!.value!}`, "version"];
    expect(dind()!.startupProbe?.exec?.command).toEqual(ping);
    expect(dind()!.livenessProbe?.exec?.command).toEqual(ping);
  });

  test("resources on both containers; the launcher runs as UID 1983 without privileges on a read-only root", () => {
    for (const c of [launcher(), dind()!]) {
      expect(c.resources.requests?.memory, c.name).toBeDefined();
      expect(c.resources.limits?.memory, c.name).toBeDefined();
    }
    expect(launcher().securityContext).toEqual({ runAsUser: 1983, runAsGroup: 1983, runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    expect(mountOf(launcher(), "tmp")?.mountPath).toBe("/tmp");
  });

  test("base/ renders the same objects for overlays, and the example overlay sets the namespace, the image and the Secret", () => {
    expect(render(join(root, "base"))).toEqual(objects);
    const example = render(join(root, "example"));
    expect(example.map((o) => o.metadata.namespace)).toEqual(["spacelift-workers", "spacelift-workers"]);
    const deployment = example.find((o) => o.kind === "Deployment")!;
    expect(deployment.spec!.replicas).toBe(2);
    const exampleSpec = deployment.spec!.template.spec;
    expect(exampleSpec.containers[0]!.image).toBe("registry.example.com/platform/spacelift-launcher:0.1.0");
    expect(exampleSpec.volumes.find((v) => v.name === "credentials")?.secret).toMatchObject({ secretName: "team-a-pool", items: spec.volumes.find((v) => v.name === "credentials")!.secret!.items });
    // Everything else is the base's.
    const same = (s: PodSpec) => ({ ...s, containers: s.containers.map((c) => ({ ...c, image: "" })), volumes: s.volumes.map((v) => (v.secret ? { ...v, secret: { ...v.secret, secretName: "" } } : v)) });
    expect(same(exampleSpec)).toEqual(same(spec));
  });
});
