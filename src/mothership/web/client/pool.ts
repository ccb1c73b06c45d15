/**
 * A pool's page: its tabs Workers (status, metadata tags, version, arch, last seen; drain and
 * undrain one worker or every worker with a tag), Queued (runs in progress first, then waiting,
 * filtered by state) and Used by (its stacks); reset with a new CSR, cycle, delete.
 */
import { api, live } from "./api.ts";
import { busy, confirmDialog, fields, h, link, notice, replaceKeepingFocus, status, table, when } from "./dom.ts";
import type { Unmount } from "./main.ts";
import { csrField, tokenPanel, type PoolJson } from "./pools.ts";
import type { RunJson, StackJson } from "./stacks.ts";

interface WorkerJson {
  id: string;
  status: string;
  metadata: Record<string, string>;
  version: string;
  arch: string;
  last_seen: string;
  problem: string | null;
}

interface PoolSnapshot {
  missing?: true;
  pool: PoolJson;
  workers: WorkerJson[];
  runs: RunJson[];
  stacks: StackJson[];
}

const TABS = [
  ["workers", "Workers"],
  ["queued", "Queued"],
  ["used-by", "Used by"],
] as const;
const FILTERS = [
  ["", "All (in progress first)"],
  ["progress", "In progress"],
  ["QUEUED", "Waiting (QUEUED)"],
  ["SCHEDULED", "SCHEDULED"],
  ["PREPARING", "PREPARING"],
  ["RUNNING", "RUNNING"],
] as const;

const tags = (m: Record<string, string>) => Object.entries(m).map(([k, v]) => h("span", { class: "tag" }, `${k}=${v}`));

function tabList(poolId: string, selected: string): HTMLElement {
  const list = h("div", { role: "tablist", "aria-label": "Pool views" });
  for (const [key, label] of TABS) {
    const on = key === selected;
    list.append(h("button", { type: "button", role: "tab", id: `tab-${key}`, "aria-selected": String(on), "aria-controls": "tab-panel", tabindex: on ? "0" : "-1", onclick: () => (location.hash = `#/pools/${encodeURIComponent(poolId)}/${key}`) }, label));
  }
  // Arrow keys move between tabs, as in any tab list.
  list.addEventListener("keydown", (e) => {
    const i = TABS.findIndex(([k]) => k === selected);
    const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
    if (step === 0) return;
    const next = TABS[(i + step + TABS.length) % TABS.length]![0];
    location.hash = `#/pools/${encodeURIComponent(poolId)}/${next}`;
    queueMicrotask(() => document.getElementById(`tab-${next}`)?.focus());
  });
  return list;
}

function drainByTag(poolId: string): HTMLElement {
  const key = h("input", { id: "tag-key", placeholder: "e.g. instance_id", maxlength: "128" });
  const value = h("input", { id: "tag-value", maxlength: "1000" });
  const result = h("p", { role: "status", class: "muted" });
  const act = (drain: boolean) => {
    const button = h("button", { type: "button", class: drain ? "danger" : "" }, drain ? "Drain matching" : "Undrain matching");
    button.addEventListener("click", () => {
      void busy(button, async () => {
        const tagsGiven = key.value.trim() ? { [key.value.trim()]: value.value } : {};
        const which = key.value.trim() ? `workers tagged ${key.value.trim()}=${value.value}` : "every worker of this pool";
        if (drain && !(await confirmDialog(`Drain ${which}?`, "They finish the run they hold and take no new runs until undrained.", "Drain"))) return;
        const r = await api<{ workers: WorkerJson[] }>("POST", `/pools/${encodeURIComponent(poolId)}/${drain ? "drain" : "undrain"}`, { tags: tagsGiven });
        result.textContent = `${drain ? "Drained" : "Undrained"} ${r.workers.length} worker(s).`;
      });
    });
    return button;
  };
  return h(
    "form",
    { class: "card", "aria-labelledby": "by-tag-title", onsubmit: (e: Event) => e.preventDefault() },
    h("h2", { id: "by-tag-title" }, "Drain or undrain by metadata tag"),
    h("div", { class: "row" }, h("div", {}, h("label", { for: "tag-key" }, "Tag (SPACELIFT_METADATA_…)"), key), h("div", {}, h("label", { for: "tag-value" }, "Value"), value)),
    h("p", { class: "hint" }, "No tag: every live worker of the pool."),
    h("div", { class: "actions" }, act(true), act(false)),
    result,
  );
}

function workersView(s: PoolSnapshot): HTMLElement {
  return table(
    ["Worker", "Status", "Tags", "Version", "Arch", "Last seen", "Action"],
    s.workers.map((w) => {
      const drained = w.status === "DRAINED";
      const button = h("button", { type: "button", "data-key": `drain-${w.id}`, "aria-label": `${drained ? "Undrain" : "Drain"} worker ${w.id}` }, drained ? "Undrain" : "Drain");
      button.addEventListener("click", () => void busy(button, () => api("POST", `/workers/${encodeURIComponent(w.id)}/${drained ? "undrain" : "drain"}`)));
      return [h("code", {}, w.id), [status(w.status), w.problem ? h("div", { class: "hint" }, w.problem) : null], tags(w.metadata), w.version, w.arch, when(w.last_seen), button];
    }),
    "No live workers. Start a launcher with this pool's token.",
  );
}

function queuedView(s: PoolSnapshot, filter: string): HTMLElement {
  const runs = s.runs.filter((r) => filter === "" || (filter === "progress" ? r.state !== "QUEUED" : r.state === filter));
  return table(
    ["Run", "Stack", "Type", "State", "Worker", "Queued at"],
    runs.map((r) => [link(`#/runs/${encodeURIComponent(r.id)}`, r.id), r.stack_name, r.type, status(r.state), r.worker ? h("code", {}, r.worker) : "—", when(r.created_at)]),
    filter ? "No runs in this state." : "Nothing queued or in progress.",
  );
}

function usedByView(s: PoolSnapshot): HTMLElement {
  return table(["Stack", "Image", "Created"], s.stacks.map((st) => [link(`#/stacks/${encodeURIComponent(st.id)}`, st.name), h("code", {}, st.image), when(st.created_at)]), "No stack uses this pool.");
}

export function poolPage(main: HTMLElement, poolId: string, tab: string): Unmount {
  const selected = TABS.some(([k]) => k === tab) ? tab : "workers";
  const title = h("h1", {}, "Pool");
  const summary = h("div");
  const panel = h("div", { id: "tab-panel", role: "tabpanel", "aria-labelledby": `tab-${selected}` });
  const extra = h("div");
  const tokenSlot = h("div");
  let last: PoolSnapshot | null = null;
  let filter = "";
  const filterSelect = h("select", { id: "queue-filter" }, ...FILTERS.map(([v, label]) => h("option", { value: v }, label)));
  filterSelect.addEventListener("change", () => {
    filter = filterSelect.value;
    if (last) draw(last);
  });

  const reset = h("button", { type: "button" }, "Reset with a new CSR");
  const cycle = h("button", { type: "button" }, "Cycle workers");
  const remove = h("button", { type: "button", class: "danger" }, "Delete pool");
  const name = () => last?.pool.name ?? poolId;
  reset.addEventListener("click", () => {
    const csr = csrField("reset-csr");
    const submit = h("button", { type: "submit", class: "primary" }, "Reset pool");
    const form = h("form", { class: "card", "aria-label": "Reset pool" }, h("p", {}, "A new certificate from a new CSR: the old token and key stop working at once and connected launchers are dropped."), csr.element, h("div", { class: "actions" }, submit, h("button", { type: "button", onclick: () => tokenSlot.replaceChildren() }, "Cancel")));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void busy(submit, async () => {
        if (!(await confirmDialog(`Reset pool ${name()}?`, "Launchers using the current token stop working until they get the new one.", "Reset"))) return;
        const r = await api<{ pool: PoolJson; token: string }>("POST", `/pools/${encodeURIComponent(poolId)}/reset`, { csr: csr.value() });
        tokenSlot.replaceChildren(tokenPanel(r.pool.name, r.token, () => tokenSlot.replaceChildren()));
      });
    });
    tokenSlot.replaceChildren(form);
  });
  cycle.addEventListener("click", () => void busy(cycle, async () => {
    if (!(await confirmDialog(`Cycle the workers of ${name()}?`, "Each live launcher finishes its run and exits, to be replaced (e.g. by its auto-scaling group).", "Cycle"))) return;
    const r = await api<{ cycled: number }>("POST", `/pools/${encodeURIComponent(poolId)}/cycle`);
    notice(`Cycling ${r.cycled} worker(s).`, "info");
  }));
  remove.addEventListener("click", () => void busy(remove, async () => {
    if (!(await confirmDialog(`Delete pool ${name()}?`, "Its certificate is revoked and its launchers disconnected. A pool that stacks use cannot be deleted.", "Delete"))) return;
    await api("DELETE", `/pools/${encodeURIComponent(poolId)}`);
    notice(`Deleted pool ${name()}.`, "info");
    location.hash = "#/pools";
  }));

  function draw(s: PoolSnapshot): void {
    last = s;
    title.textContent = `Pool ${s.pool.name}`;
    const w = s.pool.workers;
    replaceKeepingFocus(
      summary,
      fields([
        ["ID", h("code", {}, s.pool.id)],
        ["Description", s.pool.description || "—"],
        ["Workers", `${w?.busy ?? 0} busy, ${w?.idle ?? 0} idle, ${w?.drained ?? 0} drained, ${w?.total ?? 0} total`],
        ["Runs", `${s.runs.filter((r) => r.state === "QUEUED").length} queued, ${s.runs.filter((r) => r.state !== "QUEUED").length} in progress`],
      ]),
    );
    if (selected === "workers") replaceKeepingFocus(panel, workersView(s));
    else if (selected === "queued") replaceKeepingFocus(panel, queuedView(s, filter));
    else replaceKeepingFocus(panel, usedByView(s));
  }

  if (selected === "workers") extra.append(drainByTag(poolId));
  const filterRow = selected === "queued" ? h("div", { class: "row" }, h("div", {}, h("label", { for: "queue-filter" }, "Show"), filterSelect)) : null;
  main.replaceChildren(h("p", {}, link("#/pools", "← Pools")), title, summary, h("div", { class: "actions" }, reset, cycle, remove), tokenSlot, tabList(poolId, selected), filterRow ?? "", panel, extra);

  return live<PoolSnapshot>(`pool:${poolId}`, {
    snapshot: (s) => {
      if (s.missing) {
        title.textContent = "No such pool";
        replaceKeepingFocus(panel, h("p", {}, `Pool ${poolId} does not exist (deleted?).`));
        return;
      }
      draw(s);
    },
  });
}
