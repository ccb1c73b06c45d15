/**
 * A run's page: state, reason, exit code, worker, phases with their durations, messages, and the log
 * as it is stored (secrets already masked by the launcher), streamed live; cancel.
 */
import { api, live } from "./api.ts";
import { busy, confirmDialog, duration, fields, h, link, replaceKeepingFocus, status, when } from "./dom.ts";
import type { Unmount } from "./main.ts";
import type { RunJson } from "./stacks.ts";

interface RunSnapshot {
  missing?: true;
  run: RunJson & { pool: string; phase: string | null; cancel_requested: boolean; messages: string[]; updated_at: string };
  stack: { id: string; name: string } | null;
  pool_name: string | null;
  phases: Array<{ name: string; started_at: string; ended_at: string | null }>;
  log_complete: boolean;
}

const ENDED = new Set(["FINISHED", "FAILED", "CANCELED"]);
/** The page keeps at most this much of the log; the CLI (`mothership run logs`) prints all of it. */
const MAX_SHOWN_CHARS = 2_000_000;
// Terminal control sequences (colours, cursor moves) are dropped; the text stays.
const CONTROL = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]/g;

export function runPage(main: HTMLElement, runId: string): Unmount {
  const title = h("h1", {}, `Run ${runId}`);
  const summary = h("div");
  const phases = h("div", { id: "run-phases" });
  const messages = h("div");
  const logState = h("p", { class: "muted", role: "status" }, "Waiting for output…");
  const log = h("pre", { class: "log", id: "run-log", role: "log", "aria-label": "Run log", tabindex: "0" });
  const trimmed = h("p", { class: "hint", hidden: true }, `Only the end of a long log is shown; \`mothership run logs ${runId}\` prints the whole log.`);
  const cancel = h("button", { type: "button", class: "danger", hidden: true }, "Cancel run");
  cancel.addEventListener("click", () => void busy(cancel, async () => {
    if (!(await confirmDialog(`Cancel run ${runId}?`, "A queued run ends at once; a running one is stopped by its launcher.", "Cancel run"))) return;
    await api("POST", `/runs/${encodeURIComponent(runId)}/cancel`);
  }));
  main.replaceChildren(title, summary, h("div", { class: "actions" }, cancel), h("h2", {}, "Phases"), phases, messages, h("h2", {}, "Log"), logState, trimmed, log);

  const decoder = new TextDecoder();
  let lastSeq = -1;
  let shown = 0;
  let last: RunSnapshot | null = null;

  const drawPhases = () => {
    if (!last) return;
    const now = Date.now();
    const ended = ENDED.has(last.run.state);
    const rows = last.phases.map((p) => {
      const end = p.ended_at ? Date.parse(p.ended_at) : ended ? Date.parse(last!.run.finished_at ?? p.started_at) : now;
      const going = !p.ended_at && !ended;
      return h("tr", {}, h("td", { "data-label": "Phase" }, p.name), h("td", { "data-label": "Started" }, when(p.started_at)), h("td", { "data-label": "Duration" }, `${duration(end - Date.parse(p.started_at))}${going ? " (running)" : ""}`));
    });
    replaceKeepingFocus(
      phases,
      rows.length
        ? h("div", { class: "table-wrap" }, h("table", { class: "stack" }, h("thead", {}, h("tr", {}, h("th", {}, "Phase"), h("th", {}, "Started"), h("th", {}, "Duration"))), h("tbody", {}, ...rows)))
        : h("p", { class: "muted" }, "No phase has started."),
    );
  };
  const ticker = setInterval(drawPhases, 1000);

  const stop = live<RunSnapshot>(`run:${runId}`, {
    snapshot: (s) => {
      if (s.missing) {
        title.textContent = "No such run";
        summary.replaceChildren(h("p", {}, `Run ${runId} does not exist.`));
        return;
      }
      last = s;
      const r = s.run;
      replaceKeepingFocus(
        summary,
        fields([
          ["State", [status(r.state), r.cancel_requested && !ENDED.has(r.state) ? " (cancel requested)" : ""]],
          ["Reason", r.reason ?? "—"],
          ["Exit code", r.exit_code === null ? "—" : String(r.exit_code)],
          ["Worker", r.worker ? h("code", {}, r.worker) : "—"],
          ["Stack", s.stack ? link(`#/stacks/${encodeURIComponent(s.stack.id)}`, s.stack.name) : r.stack],
          ["Pool", link(`#/pools/${encodeURIComponent(r.pool)}/queued`, s.pool_name ?? r.pool)],
          ["Type", r.type],
          ["Created", when(r.created_at)],
          ["Finished", when(r.finished_at)],
        ]),
      );
      cancel.hidden = ENDED.has(r.state);
      messages.replaceChildren(...(r.messages.length ? [h("h2", {}, "Messages"), h("ul", {}, ...r.messages.map((m) => h("li", {}, m)))] : []));
      logState.textContent = s.log_complete ? "The run ended; this is its whole log." : ENDED.has(r.state) ? "The run ended; the rest of its log is still arriving." : lastSeq < 0 ? "Waiting for output…" : "Streaming…";
      drawPhases();
    },
    log: (seq, bytes) => {
      if (seq <= lastSeq) return;
      lastSeq = seq;
      const follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      const text = decoder.decode(bytes, { stream: true }).replace(CONTROL, "");
      log.append(text);
      shown += text.length;
      if (shown > MAX_SHOWN_CHARS) {
        log.textContent = (log.textContent ?? "").slice(-MAX_SHOWN_CHARS / 2);
        shown = MAX_SHOWN_CHARS / 2;
        trimmed.hidden = false;
      }
      if (follow) log.scrollTop = log.scrollHeight;
      if (last && !ENDED.has(last.run.state)) logState.textContent = "Streaming…";
    },
  });
  return () => {
    clearInterval(ticker);
    stop();
  };
}
