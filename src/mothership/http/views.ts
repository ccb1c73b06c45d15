/**
 * The API's JSON shapes. Run and worker fields are the ones operators script against (issue 5):
 * run {id, stack, type, state, reason, exit_code, worker, created_at, finished_at} plus `messages`
 * (why a launcher rejected the run, e.g. it could not decrypt it),
 * worker {id, pool, status, metadata, version, arch, last_seen} plus `docker` {ok, message} and
 * `problem` (why it takes no new runs, or null). Secret values never leave here.
 */
import { workerProblem, workerStatus, type Pool, type Run, type Stack, type Worker } from "../store/index.ts";

export const runView = (r: Run) => ({
  id: r.id,
  stack: r.stack,
  type: r.type,
  state: r.state,
  reason: r.reason,
  exit_code: r.exit_code,
  worker: r.worker,
  created_at: r.created_at,
  finished_at: r.finished_at,
  messages: r.messages,
  commit: r.commit_sha,
  branch: r.branch,
  user_provided_metadata: r.user_provided_metadata,
});

export const workerView = (w: Worker) => ({
  id: w.id,
  pool: w.pool,
  status: workerStatus(w),
  metadata: w.metadata,
  version: w.version,
  arch: w.arch,
  last_seen: w.last_seen,
  docker: { ok: w.docker_ok, message: w.docker_message },
  problem: workerProblem(w),
});

export const poolView = (p: Pool, workers?: Worker[]) => ({
  id: p.id,
  name: p.name,
  description: p.description,
  certificate_serial: p.certificate_serial,
  key_type: p.key_type,
  created_at: p.created_at,
  ...(workers
    ? {
        workers: {
          total: workers.length,
          idle: workers.filter((w) => workerStatus(w) === "IDLE").length,
          busy: workers.filter((w) => workerStatus(w) === "BUSY").length,
          drained: workers.filter((w) => workerStatus(w) === "DRAINED").length,
          docker_unreachable: workers.filter((w) => !w.docker_ok).length,
        },
      }
    : {}),
});

export const stackView = (s: Stack) => ({
  id: s.id,
  name: s.name,
  pool: s.pool,
  image: s.image,
  environment: s.environment.map((e) => ({ name: e.name, value: e.secret ? null : e.value, secret: e.secret })),
  phases: s.phases,
  repository: s.repository,
  branch: s.branch,
  labels: s.labels,
  vcs_pool: s.vcs_pool,
  created_at: s.created_at,
});
