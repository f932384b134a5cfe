// The console's shell: sign-in with a pasted token (kept in sessionStorage, for this tab only),
// who you are (GET /api/v1/me), the tabs (#alerts, #cameras, #queries, #search), the language
// switch, and sign-out. Each tab is its own module; the alert feed runs while signed in.
import { ApiError, api, session } from "./api.js";
import { createAlertsView } from "./alerts.js";
import { createCamerasView } from "./cameras.js";
import { show } from "./dom.js";
import { setLanguage, t, translateStatic } from "./i18n.js";
import { createMoment } from "./moment.js";
import { createQueriesView } from "./queries.js";
import { createSearchView } from "./search.js";

const TABS = ["alerts", "cameras", "queries", "search"];
const $ = (selector) => document.querySelector(selector);

let me = null;
let views = null;
let signOutReason = null;
const moment = createMoment($("#moment-dialog"));

async function signIn(token) {
  session.token = token;
  try {
    me = await api("/api/v1/me");
  } catch (error) {
    session.token = null;
    showSignIn(error instanceof ApiError && error.status === 401 ? { key: "login.invalid" } : { text: error.message });
    return;
  }
  signOutReason = null;
  startViews();
}

function startViews() {
  const context = { me, openMoment: (camera, ts, box) => moment.open(camera, ts, box) };
  views = {
    alerts: createAlertsView($("#alerts-view"), context),
    cameras: createCamerasView($("#cameras-view"), context),
    queries: createQueriesView($("#queries-view"), context),
    search: createSearchView($("#search-view"), context),
  };
  $("#login-view").hidden = true;
  $("#nav").hidden = false;
  $("#logout").hidden = false;
  $("#whoami").hidden = false;
  renderWhoAmI();
  views.alerts.start();
  route();
}

function signOut(reason = null) {
  if (views) for (const view of Object.values(views)) view.stop();
  views = null;
  me = null;
  session.token = null;
  for (const tab of TABS) show($(`#${tab}-view`));
  showSignIn(reason);
}

function showSignIn(reason) {
  signOutReason = reason;
  for (const tab of TABS) $(`#${tab}-view`).hidden = true;
  $("#nav").hidden = true;
  $("#logout").hidden = true;
  $("#whoami").hidden = true;
  $("#login-view").hidden = false;
  renderSignInReason();
  $("#token-input").value = "";
  $("#token-input").focus();
}

function renderSignInReason() {
  // {key} is translated again when the language changes; {text} is the server's own words.
  const reason = signOutReason;
  $("#login-error").textContent = !reason ? "" : reason.key ? t(reason.key) : reason.text;
}

function renderWhoAmI() {
  if (!me) return;
  show($("#whoami"), t("me.signedInAs", { name: me.name, role: t(`role.${me.role}`) }));
}

function route() {
  if (!views) return;
  const wanted = window.location.hash.replace(/^#\/?/, "");
  const current = TABS.includes(wanted) ? wanted : "alerts";
  for (const tab of TABS) {
    const active = tab === current;
    const section = $(`#${tab}-view`);
    const link = $(`#nav a[data-tab="${tab}"]`);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
    if (section.hidden === !active) continue;
    section.hidden = !active;
    if (tab === "alerts") continue; // always running
    if (active) views[tab].activate();
    else views[tab].deactivate();
  }
}

$("#login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("#token-input").value.trim();
  if (!token) {
    signOutReason = { key: "login.empty" };
    renderSignInReason();
    return;
  }
  signIn(token);
});
$("#logout").addEventListener("click", () => signOut());
for (const button of document.querySelectorAll("[data-language]")) {
  button.addEventListener("click", () => setLanguage(button.dataset.language));
}
window.addEventListener("hashchange", route);
window.addEventListener("vigil:unauthorized", () => {
  if (me) signOut({ key: "login.expired" });
});
window.addEventListener("vigil:language", () => {
  if (!me) renderSignInReason();
  renderWhoAmI();
  if (views) for (const view of Object.values(views)) view.render();
  moment.render();
});

translateStatic();
if (session.token) signIn(session.token);
else showSignIn(null);
