/**
 * The UI's few DOM helpers. Everything shown is set as text (textContent, attribute values), never
 * parsed as HTML, so names, metadata and log output from launchers cannot inject markup.
 */

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | boolean | EventListener | undefined>;

/** `h("button", {class: "primary", onclick: f}, "Save")`: an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Array<Child | Child[]>): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/**
 * Replaces the children of `parent`, keeping keyboard focus on the element with the same `data-key`
 * (live updates must not steal focus from the button being used).
 */
export function replaceKeepingFocus(parent: HTMLElement, ...children: Child[]): void {
  const active = document.activeElement;
  const key = active instanceof HTMLElement && parent.contains(active) ? active.dataset.key : undefined;
  parent.replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
  if (key) parent.querySelector<HTMLElement>(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

const SYMBOLS: Record<string, string> = { IDLE: "○", BUSY: "●", DRAINED: "■", QUEUED: "…", SCHEDULED: "→", PREPARING: "↻", RUNNING: "▶", FINISHED: "✓", FAILED: "✗", CANCELED: "⊘" };

/** A status word (IDLE, RUNNING, ...), with a symbol and a colour that only repeat it. */
export function status(word: string): HTMLElement {
  return h("span", { class: `status s-${word}`, "data-symbol": SYMBOLS[word] ?? "" }, word);
}

/** A table that stacks into labelled cards on a narrow screen. */
export function table(headers: string[], rows: Array<Array<Child | Child[]>>, empty: string): HTMLElement {
  if (rows.length === 0) return h("p", { class: "muted" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "stack" },
      h("thead", {}, h("tr", {}, ...headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, ...rows.map((cells) => h("tr", {}, ...cells.map((c, i) => h("td", { "data-label": headers[i] ?? "" }, ...(Array.isArray(c) ? c : [c])))))),
    ),
  );
}

export function fields(pairs: Array<[string, Child | Child[]]>): HTMLElement {
  return h("dl", { class: "fields" }, ...pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, ...(Array.isArray(v) ? v : [v ?? "—"]))]));
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** 83000 -> "1m 23s". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function link(href: string, text: string): HTMLAnchorElement {
  return h("a", { href }, text);
}

/** Shows a message at the top of the page (errors by default); empty text hides it. */
export function notice(text: string, kind: "error" | "info" = "error"): void {
  const el = document.getElementById("notice");
  if (!el) return;
  el.textContent = text;
  el.className = kind === "info" ? "notice info" : "notice";
  el.hidden = text === "";
}

/** A modal question with a cancel and a confirm button; resolves true when confirmed. */
export function confirmDialog(question: string, detail: string, action: string): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, question),
      h("p", {}, detail),
      h("form", { method: "dialog", class: "actions" }, h("button", { value: "cancel", autofocus: true }, "Cancel"), h("button", { value: "confirm", class: "danger" }, action)),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * Runs `action` once at a time per button, showing a failure in the notice. The button is marked
 * aria-disabled, not disabled, so it keeps keyboard focus meanwhile.
 */
export async function busy(button: HTMLButtonElement, action: () => Promise<unknown>): Promise<void> {
  if (button.getAttribute("aria-disabled") === "true") return;
  button.setAttribute("aria-disabled", "true");
  try {
    notice("");
    await action();
  } catch (err) {
    notice(err instanceof Error ? err.message : String(err));
  } finally {
    button.removeAttribute("aria-disabled");
  }
}
