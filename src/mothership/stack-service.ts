/**
 * Stacks as operators manage them: made against an existing pool and checked by the run-spec
 * builder (a stack that could never produce a valid run is refused at creation), deleted only
 * when none of its runs still needs it.
 */
import { SpaceliftError } from "../errors.ts";
import { isTerminalRunState } from "../protocol/states.ts";
import { validateStack } from "./run-spec-builder.ts";
import type { EnvVar, Repos, Stack, StackPhase, Store } from "./store/index.ts";
import { ulid } from "../protocol/ulid.ts";

export interface StackInput {
  name: string;
  pool: string;
  image: string;
  environment: EnvVar[];
  phases: StackPhase[];
  repository?: string | null;
  branch?: string | null;
  labels?: string[];
  /** The VCS agent pool that reaches `repository`; needs a repository. */
  vcs_pool?: string | null;
}

export class StackService {
  constructor(private readonly store: Store) {}

  async get(id: string, repos: Repos = this.store): Promise<Stack> {
    const s = await repos.stacks.get(id);
    if (!s) throw new SpaceliftError("not-found", `stack ${id} does not exist`);
    return s;
  }

  async create(input: StackInput): Promise<Stack> {
    if (!(await this.store.pools.get(input.pool))) throw new SpaceliftError("not-found", `pool ${input.pool} does not exist`);
    if (input.vcs_pool && !input.repository) {
      throw new SpaceliftError("invalid-request", "vcs_pool: a VCS agent pool reaches a repository; give the stack a repository (--repository URL) too");
    }
    const labels = input.labels ?? [];
    const twice = labels.find((l, i) => labels.indexOf(l) !== i);
    if (twice !== undefined) throw new SpaceliftError("invalid-request", `labels: ${JSON.stringify(twice)} is given twice; give each label once`);
    const stack: Stack = {
      ...input,
      id: ulid(),
      repository: input.repository ?? null,
      branch: input.branch ?? null,
      labels,
      vcs_pool: input.vcs_pool ?? null,
      created_at: new Date().toISOString(),
    };
    validateStack(stack);
    await this.store.stacks.insert(stack);
    return stack;
  }

  /** The check and the delete are one transaction. */
  async delete(id: string): Promise<void> {
    await this.store.transaction(async (tx) => {
      await this.get(id, tx);
      // Runs that have not ended still need their stack (a queued run is built from it when scheduled).
      const open = (await tx.runs.list({ stack: id })).filter((r) => !isTerminalRunState(r.state)).map((r) => r.id);
      if (open.length > 0) throw new SpaceliftError("conflict", `stack ${id} has runs that have not ended: ${open.join(", ")}; cancel them first (mothership run cancel ID)`);
      // Its ended runs and their logs stay readable.
      await tx.stacks.delete(id);
    });
  }
}
