/**
 * The pools list (name, description, workers busy / total, queued runs) and pool creation from a
 * CSR, uploaded or pasted. The token that comes back is shown once, with the launcher's commands.
 */
import { api, live } from "./api.ts";
import { busy, h, link, replaceKeepingFocus, table } from "./dom.ts";
import type { Unmount } from "./main.ts";

export interface PoolJson {
  id: string;
  name: string;
  description: string;
  created_at: string;
  workers?: { total: number; idle: number; busy: number; drained: number; docker_unreachable: number };
}

const OPENSSL = "openssl req -new -newkey rsa:4096 -nodes -keyout spacelift.key -out spacelift.csr";
const MAX_CSR_BYTES = 64 * 1024;

/** The CSR field: a file picker that fills a text area, where a CSR can also be pasted. */
export function csrField(id: string): { element: HTMLElement; value(): string } {
  const area = h("textarea", { id, class: "mono", rows: "6", required: true, spellcheck: "false", placeholder: "-----BEGIN CERTIFICATE REQUEST-----" });
  const file = h("input", { id: `${id}-file`, type: "file", accept: ".csr,.pem,.req,text/plain" });
  file.addEventListener("change", () => {
    const f = file.files?.[0];
    if (!f) return;
    if (f.size > MAX_CSR_BYTES) {
      area.value = "";
      area.setCustomValidity(`that file is ${f.size} bytes; a CSR is a few KiB (spacelift.csr)`);
      area.reportValidity();
      return;
    }
    void f.text().then((text) => {
      area.value = text;
      area.setCustomValidity("");
    });
  });
  const element = h(
    "div",
    {},
    h("label", { for: `${id}-file` }, "Certificate signing request (spacelift.csr)"),
    file,
    h("label", { for: id }, "…or paste it"),
    area,
    h("p", { class: "hint" }, "Make the key and the CSR with:"),
    h("pre", {}, OPENSSL),
    h("p", { class: "hint" }, "Keep spacelift.key safe: the launchers need it, and the mothership never sees it."),
  );
  return { element, value: () => area.value.trim() };
}

/** The token, shown once: copy button and the launcher's commands. */
export function tokenPanel(poolName: string, token: string, onDone: () => void): HTMLElement {
  const area = h("textarea", { id: "pool-token", class: "mono", rows: "4", readonly: true, spellcheck: "false" });
  area.value = token;
  const copied = h("span", { role: "status", class: "muted" });
  const copy = h("button", { type: "button", class: "primary" }, "Copy token");
  copy.addEventListener("click", () => {
    area.select();
    const done = () => (copied.textContent = "Copied.");
    navigator.clipboard.writeText(token).then(done, () => {
      // Older browsers, or no clipboard permission: the selected text is copied the old way.
      if (document.execCommand("copy")) done();
      else copied.textContent = "Copy failed: select the token and copy it by hand.";
    });
  });
  const commands = [`export SPACELIFT_TOKEN=${token}`, "export SPACELIFT_POOL_PRIVATE_KEY=$(cat spacelift.key | base64 -w 0)", "./spacelift-launcher"].join("\n");
  const panel = h(
    "section",
    { class: "card token-panel", "aria-labelledby": "token-title", tabindex: "-1" },
    h("h2", { id: "token-title" }, `Token of pool ${poolName}`),
    h("p", {}, h("strong", {}, "Save it now: it is shown only this once."), " It holds the pool's certificate and where to connect; the private key stays with you."),
    h("label", { for: "pool-token" }, "SPACELIFT_TOKEN"),
    area,
    h("div", { class: "actions" }, copy, copied),
    h("p", {}, "Start a launcher on a Docker host with:"),
    h("pre", { id: "launcher-commands" }, commands),
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => { area.value = ""; onDone(); } }, "I saved it, hide the token")),
  );
  queueMicrotask(() => panel.focus());
  return panel;
}

export function poolsPage(main: HTMLElement): Unmount {
  const list = h("div", { id: "pool-list" }, h("p", { class: "muted" }, "Loading…"));
  const tokenSlot = h("div");
  const name = h("input", { id: "pool-name", required: true, maxlength: "200" });
  const description = h("input", { id: "pool-description", maxlength: "1000" });
  const csr = csrField("pool-csr");
  const create = h("button", { type: "submit", class: "primary" }, "Create pool");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "create-pool-title" },
    h("h2", { id: "create-pool-title" }, "Create a pool"),
    h("label", { for: "pool-name" }, "Name"),
    name,
    h("label", { for: "pool-description" }, "Description (optional)"),
    description,
    csr.element,
    h("div", { class: "actions" }, create),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(create, async () => {
      const r = await api<{ pool: PoolJson; token: string }>("POST", "/pools", { name: name.value.trim(), description: description.value.trim(), csr: csr.value() });
      form.reset();
      tokenSlot.replaceChildren(tokenPanel(r.pool.name, r.token, () => tokenSlot.replaceChildren()));
    });
  });
  main.replaceChildren(h("h1", {}, "Worker pools"), tokenSlot, list, form);

  return live<{ pools: Array<PoolJson & { queued: number; in_progress: number }> }>("pools", {
    snapshot: ({ pools }) => {
      replaceKeepingFocus(
        list,
        table(
          ["Name", "Description", "Workers", "Queued runs"],
          pools.map((p) => [
            link(`#/pools/${encodeURIComponent(p.id)}/workers`, p.name),
            p.description || "—",
            `${p.workers?.busy ?? 0} busy / ${p.workers?.total ?? 0} total`,
            `${p.queued} queued${p.in_progress ? `, ${p.in_progress} in progress` : ""}`,
          ]),
          "No pools yet: create one below.",
        ),
      );
    },
  });
}
