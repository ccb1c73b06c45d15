/**
 * Stacks: the list with the runs in progress, creation (image, environment with write-only secret
 * values, phases, the VCS fields and labels the CLI takes), and a stack's page to trigger a run.
 */
import { RUN_TYPES } from "../../../protocol/states.ts";
import { api, live } from "./api.ts";
import { busy, confirmDialog, fields, h, link, notice, replaceKeepingFocus, status, table, when } from "./dom.ts";
import type { Unmount } from "./main.ts";

export interface StackJson {
  id: string;
  name: string;
  pool: string;
  image: string;
  environment: Array<{ name: string; value: string | null; secret: boolean }>;
  phases: Array<{ name: string; commands: string[] }>;
  repository: string | null;
  branch: string | null;
  labels: string[];
  vcs_pool: string | null;
  created_at: string;
}

export interface RunJson {
  id: string;
  stack: string;
  stack_name: string;
  type: string;
  state: string;
  reason: string | null;
  exit_code: number | null;
  worker: string | null;
  created_at: string;
  finished_at: string | null;
}

const runRows = (runs: RunJson[]) =>
  runs.map((r) => [link(`#/runs/${encodeURIComponent(r.id)}`, r.id), r.stack_name, r.type, status(r.state), r.reason ?? "—", when(r.created_at)]);
const RUN_HEADERS = ["Run", "Stack", "Type", "State", "Reason", "Created"];

let rowCounter = 0;

/** A list of rows that grows with an "Add" button; each row can be removed. */
function rowList(legend: string, addLabel: string, make: () => { row: HTMLElement; read(): unknown | null }): { element: HTMLElement; values(): unknown[] } {
  const readers = new Map<HTMLElement, () => unknown>();
  const rows = h("div");
  const add = () => {
    const { row, read } = make();
    const remove = h("button", { type: "button", "aria-label": `Remove this ${legend.toLowerCase()} row` }, "Remove");
    remove.addEventListener("click", () => {
      readers.delete(wrap);
      wrap.remove();
    });
    const wrap = h("div", { class: "row" }, row, remove);
    readers.set(wrap, read);
    rows.append(wrap);
  };
  const element = h("fieldset", {}, h("legend", {}, legend), rows, h("button", { type: "button", onclick: add }, addLabel));
  return { element, values: () => [...readers.values()].map((r) => r()).filter((v) => v !== null) };
}

function envRow() {
  const n = ++rowCounter;
  const name = h("input", { id: `env-name-${n}`, placeholder: "NAME", spellcheck: "false" });
  const value = h("input", { id: `env-value-${n}`, spellcheck: "false", autocomplete: "off" });
  const secret = h("input", { id: `env-secret-${n}`, type: "checkbox" });
  secret.addEventListener("change", () => (value.type = secret.checked ? "password" : "text"));
  const row = h(
    "div",
    { class: "row" },
    h("div", {}, h("label", { for: `env-name-${n}` }, "Name"), name),
    h("div", {}, h("label", { for: `env-value-${n}` }, "Value"), value),
    h("label", { class: "inline", for: `env-secret-${n}` }, secret, "Secret (write-only, masked in logs)"),
  );
  return { row, read: () => (name.value.trim() ? { name: name.value.trim(), value: value.value, secret: secret.checked } : null) };
}

function phaseRow() {
  const n = ++rowCounter;
  const name = h("input", { id: `phase-name-${n}`, placeholder: "plan", spellcheck: "false" });
  const commands = h("textarea", { id: `phase-commands-${n}`, class: "mono", rows: "3", spellcheck: "false" });
  const row = h("div", { class: "row" }, h("div", {}, h("label", { for: `phase-name-${n}` }, "Phase"), name), h("div", {}, h("label", { for: `phase-commands-${n}` }, "Commands (one per line)"), commands));
  return { row, read: () => (name.value.trim() ? { name: name.value.trim(), commands: commands.value.split("\n").map((c) => c.trim()).filter(Boolean) } : null) };
}

function createForm(pools: Record<string, string>): HTMLElement {
  const input = (id: string, label: string, attrs: Record<string, string> = {}) => {
    const el = h("input", { id, spellcheck: "false", ...attrs });
    return { el, block: h("div", {}, h("label", { for: id }, label), el) };
  };
  const name = input("stack-name", "Name", { required: "" });
  const image = input("stack-image", "Runner image", { required: "", placeholder: "e.g. registry.example.com/runner:1" });
  const pool = h("select", { id: "stack-pool", required: true }, ...Object.entries(pools).map(([id, n]) => h("option", { value: id }, `${n} (${id})`)));
  const repository = input("stack-repository", "Repository URL (optional)");
  const branch = input("stack-branch", "Branch");
  const vcsPool = input("stack-vcs-pool", "VCS agent pool (optional)");
  const labels = input("stack-labels", "Labels (comma-separated, optional)");
  const env = rowList("Environment", "Add a variable", envRow);
  const phases = rowList("Phases", "Add a phase", phaseRow);
  const submit = h("button", { type: "submit", class: "primary" }, "Create stack");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "create-stack-title" },
    h("h2", { id: "create-stack-title" }, "Create a stack"),
    name.block,
    h("label", { for: "stack-pool" }, "Worker pool"),
    pool,
    image.block,
    env.element,
    phases.element,
    h("div", { class: "row" }, repository.block, branch.block, vcsPool.block),
    labels.block,
    h("div", { class: "actions" }, submit),
  );
  phases.element.querySelector("button")?.click();
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(submit, async () => {
      const s = await api<StackJson>("POST", "/stacks", {
        name: name.el.value.trim(),
        pool: pool.value,
        image: image.el.value.trim(),
        environment: env.values(),
        phases: phases.values(),
        repository: repository.el.value.trim() || null,
        branch: branch.el.value.trim() || null,
        vcs_pool: vcsPool.el.value.trim() || null,
        labels: labels.el.value.split(",").map((l) => l.trim()).filter(Boolean),
      });
      location.hash = `#/stacks/${encodeURIComponent(s.id)}`;
    });
  });
  return form;
}

export function stacksPage(main: HTMLElement): Unmount {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const active = h("div");
  const formSlot = h("div");
  let poolsKey = "";
  main.replaceChildren(h("h1", {}, "Stacks"), list, h("h2", {}, "Runs in progress or queued"), active, formSlot);
  return live<{ stacks: StackJson[]; pools: Record<string, string>; runs: RunJson[] }>("stacks", {
    snapshot: (s) => {
      replaceKeepingFocus(
        list,
        table(
          ["Stack", "Pool", "Image", "Labels"],
          s.stacks.map((st) => [link(`#/stacks/${encodeURIComponent(st.id)}`, st.name), s.pools[st.pool] ?? st.pool, h("code", {}, st.image), st.labels.join(", ") || "—"]),
          "No stacks yet.",
        ),
      );
      replaceKeepingFocus(active, table(RUN_HEADERS, runRows(s.runs), "None."));
      // The form is rebuilt only when the pools change, so typing is never lost to an update.
      const key = JSON.stringify(s.pools);
      if (key === poolsKey) return;
      poolsKey = key;
      formSlot.replaceChildren(Object.keys(s.pools).length ? createForm(s.pools) : h("p", {}, "Create a ", link("#/pools", "pool"), " first: a stack runs on one."));
    },
  });
}

export function stackPage(main: HTMLElement, stackId: string): Unmount {
  const title = h("h1", {}, "Stack");
  const details = h("div");
  const runs = h("div");
  const type = h("select", { id: "run-type" }, ...RUN_TYPES.map((t) => h("option", { value: t, selected: t === "TRACKED" }, t)));
  const commit = h("input", { id: "run-commit", placeholder: "commit SHA (optional)", spellcheck: "false" });
  const trigger = h("button", { type: "submit", class: "primary" }, "Trigger run");
  const form = h("form", { class: "card", "aria-label": "Trigger a run" }, h("div", { class: "row" }, h("div", {}, h("label", { for: "run-type" }, "Run type"), type), h("div", {}, h("label", { for: "run-commit" }, "Commit"), commit)), h("div", { class: "actions" }, trigger));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(trigger, async () => {
      const r = await api<RunJson>("POST", "/runs", { stack: stackId, type: type.value, commit: commit.value.trim() || null });
      location.hash = `#/runs/${encodeURIComponent(r.id)}`;
    });
  });
  const remove = h("button", { type: "button", class: "danger" }, "Delete stack");
  remove.addEventListener("click", () => void busy(remove, async () => {
    if (!(await confirmDialog(`Delete ${title.textContent ?? "this stack"}?`, "Its ended runs and their logs stay readable. A stack with runs that have not ended cannot be deleted.", "Delete"))) return;
    await api("DELETE", `/stacks/${encodeURIComponent(stackId)}`);
    notice("Stack deleted.", "info");
    location.hash = "#/stacks";
  }));
  main.replaceChildren(h("p", {}, link("#/stacks", "← Stacks")), title, details, form, h("h2", {}, "Runs"), runs, h("div", { class: "actions" }, remove));
  return live<{ missing?: true; stack: StackJson; pool_name: string | null; runs: RunJson[]; runs_total: number }>(`stack:${stackId}`, {
    snapshot: (s) => {
      if (s.missing) {
        title.textContent = "No such stack";
        details.replaceChildren(h("p", {}, `Stack ${stackId} does not exist (deleted?).`));
        form.hidden = true;
        return;
      }
      const st = s.stack;
      title.textContent = `Stack ${st.name}`;
      replaceKeepingFocus(
        details,
        fields([
          ["ID", h("code", {}, st.id)],
          ["Pool", link(`#/pools/${encodeURIComponent(st.pool)}/workers`, s.pool_name ?? st.pool)],
          ["Image", h("code", {}, st.image)],
          ["Environment", st.environment.length ? st.environment.map((e) => h("div", {}, h("code", {}, e.name), " = ", e.secret ? h("em", {}, "secret (write-only)") : h("code", {}, e.value ?? ""))) : "—"],
          ["Phases", st.phases.map((p) => h("div", {}, h("strong", {}, p.name), ": ", h("code", {}, p.commands.join(" && "))))],
          ["Repository", st.repository ? `${st.repository}${st.branch ? ` (${st.branch})` : ""}${st.vcs_pool ? `, VCS agent pool ${st.vcs_pool}` : ""}` : "—"],
          ["Labels", st.labels.join(", ") || "—"],
          ["Created", when(st.created_at)],
        ]),
      );
      const more = s.runs_total > s.runs.length ? h("p", { class: "hint" }, `The newest ${s.runs.length} of ${s.runs_total} runs; mothership run list --stack ${st.id} lists all.`) : null;
      replaceKeepingFocus(runs, table(RUN_HEADERS, runRows(s.runs), "No runs yet."), more);
    },
  });
}
