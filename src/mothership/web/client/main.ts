/**
 * The web UI's entry: sign-in, the header, and hash routes (#/pools, #/pools/ID/workers|queued|used-by,
 * #/stacks, #/stacks/ID, #/runs/ID). Each view mounts into <main> and returns how to stop its live
 * updates, called when the route changes.
 */
import { resumeSession, setSignedOutHandler, signIn, signOut } from "./api.ts";
import { busy, h, notice } from "./dom.ts";
import { poolPage } from "./pool.ts";
import { poolsPage } from "./pools.ts";
import { runPage } from "./run.ts";
import { stackPage, stacksPage } from "./stacks.ts";

export type Unmount = () => void;

const main = document.getElementById("main") as HTMLElement;
const nav = document.getElementById("nav") as HTMLElement;
const signOutButton = document.getElementById("sign-out") as HTMLButtonElement;
let unmount: Unmount = () => {};
let signedIn = false;

function signInPage(): Unmount {
  const input = h("input", { id: "token", type: "password", name: "token", autocomplete: "off", required: true, spellcheck: "false" });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("label", { for: "token" }, "Admin token"),
    input,
    h("p", { class: "hint" }, "The token is in the data dir's admin-token file (mothership serve prints its path). It is kept only in a session cookie this page cannot read."),
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(submit, async () => {
      await signIn(input.value);
      input.value = "";
      signedIn = true;
      render();
    });
  });
  main.replaceChildren(form);
  input.focus();
  return () => {};
}

function route(): Unmount {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  for (const a of nav.querySelectorAll("a")) a.toggleAttribute("aria-current", false);
  const current = nav.querySelector(`a[href="#/${parts[0] === "stacks" ? "stacks" : "pools"}"]`);
  current?.setAttribute("aria-current", "page");
  const [section, id, tab] = parts;
  if (section === "pools" && id) return poolPage(main, id, tab ?? "workers");
  if (section === "stacks" && id) return stackPage(main, id);
  if (section === "stacks") return stacksPage(main);
  if (section === "runs" && id) return runPage(main, id);
  return poolsPage(main);
}

function render(): void {
  unmount();
  nav.hidden = !signedIn;
  signOutButton.hidden = !signedIn;
  unmount = signedIn ? route() : signInPage();
}

setSignedOutHandler(() => {
  if (!signedIn) return;
  signedIn = false;
  notice("You are signed out (the session ended). Sign in again.");
  render();
});

signOutButton.addEventListener("click", () => {
  void busy(signOutButton, async () => {
    unmount();
    unmount = () => {};
    await signOut();
    signedIn = false;
    notice("Signed out.", "info");
    render();
  });
});

window.addEventListener("hashchange", () => {
  notice("");
  render();
  main.focus();
});

void resumeSession().then((ok) => {
  signedIn = ok;
  render();
});
