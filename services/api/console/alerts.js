// The live alert feed: the alerts so far (GET /api/v1/alerts?status=all), then every change as
// it happens (Server-Sent Events on /api/v1/alerts/stream; the browser's EventSource reconnects
// by itself and the API replays what was missed, or says "resync"). Runs from sign-in to
// sign-out, whichever tab is showing, so that "speak new alerts" keeps working.
import { api, atLeast, session } from "./api.js";
import { framePicture, h, safeUrl, show } from "./dom.js";
import { formatTime, formatScore } from "./format.js";
import { language, t } from "./i18n.js";

const SPEAK_KEY = "vigil.console.speak";
const SEVERITIES = ["info", "warning", "critical"];
const SHOWN = 200; // cards on the page; older alerts stay in the API
const KEPT = 1000;
const RECONNECT_MS = 5000;

export function createAlertsView(section, context) {
  const alerts = new Map(); // alert_id -> AlertView (services/alerter/api.py)
  const cards = new Map(); // alert_id -> {key, element}: a card is rebuilt only when it changes
  const audios = new Map(); // alert_id -> <audio>, kept so that re-rendering never cuts playback
  const problems = new Map(); // alert_id -> what went wrong acknowledging it
  const arrivedLive = new Set();
  let filter = "all";
  let connection = "connecting";
  let source = null;
  let reconnectTimer = null;
  let listError = null;
  let stopped = false;

  const list = h("div", { class: "alert-list", id: "alert-list", "aria-live": "polite" });
  const toolbar = h("div", { class: "toolbar" });
  section.replaceChildren(toolbar, list);

  function merge(previous, next) {
    // A list fetched while the stream runs may be older than an event already applied.
    if (!previous) return next;
    const merged = { ...next };
    if (previous.status === "acknowledged" && next.status !== "acknowledged") {
      Object.assign(merged, {
        status: previous.status,
        acknowledged_by: previous.acknowledged_by,
        acknowledged_ts_ms: previous.acknowledged_ts_ms,
      });
    }
    if (merged.end_ts_ms == null && previous.end_ts_ms != null) merged.end_ts_ms = previous.end_ts_ms;
    return merged;
  }

  function upsert(view) {
    if (!view || typeof view.alert_id !== "string" || !view.alert) return;
    alerts.set(view.alert_id, merge(alerts.get(view.alert_id), view));
    if (alerts.size > KEPT) {
      const oldest = [...alerts.values()].sort((a, b) => a.alert.raised_ts_ms - b.alert.raised_ts_ms)[0];
      alerts.delete(oldest.alert_id);
    }
  }

  async function load() {
    try {
      const body = await api("/api/v1/alerts", { params: { status: "all", limit: SHOWN } });
      for (const view of body.alerts || []) upsert(view);
      listError = null;
    } catch (error) {
      listError = error.message;
    }
    render();
  }

  function connect() {
    if (stopped) return;
    const url = `/api/v1/alerts/stream?access_token=${encodeURIComponent(session.token || "")}`;
    source = new EventSource(url);
    source.addEventListener("open", () => {
      connection = "live";
      renderToolbar();
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (401 after a token was revoked, or the server said something else): ask /me,
        // which signs out on a 401, else try again in a while.
        source = null;
        api("/api/v1/me").catch(() => {});
        clearTimeout(reconnectTimer);
        reconnectTimer = setTimeout(connect, RECONNECT_MS);
      }
      connection = "reconnecting";
      renderToolbar();
    });
    for (const kind of ["raised", "acknowledged", "ended"]) {
      source.addEventListener(kind, (event) => {
        let view;
        try {
          view = JSON.parse(event.data);
        } catch {
          return;
        }
        if (kind === "raised") arrivedLive.add(view.alert_id);
        upsert(view);
        render();
        if (kind === "raised") speakNew(view);
      });
    }
    source.addEventListener("resync", () => load());
  }

  // --- audio -----------------------------------------------------------------------------
  function audioFor(view) {
    const url = safeUrl(view.audio_url);
    if (!url) return null;
    let audio = audios.get(view.alert_id);
    if (!audio) {
      audio = h("audio", { class: "alert-audio", preload: "none", src: url });
      audio.addEventListener("play", renderCardsOnly);
      audio.addEventListener("pause", renderCardsOnly);
      audio.addEventListener("ended", renderCardsOnly);
      audios.set(view.alert_id, audio);
    }
    return audio;
  }

  function toggle(audio) {
    if (audio.paused) {
      for (const other of audios.values()) if (other !== audio) other.pause();
      audio.play().catch(() => {});
    } else {
      audio.pause();
    }
  }

  function speakNew(view) {
    if (window.localStorage.getItem(SPEAK_KEY) !== "on" || view.alert.muted) return;
    const audio = audioFor(view);
    if (audio && [...audios.values()].every((other) => other.paused)) audio.play().catch(() => {});
  }

  // --- acknowledging -------------------------------------------------------------------------
  async function acknowledge(alertId) {
    problems.delete(alertId);
    try {
      upsert(await api(`/api/v1/alerts/${encodeURIComponent(alertId)}/acknowledge`, { method: "POST" }));
    } catch (error) {
      const known = alerts.get(alertId);
      if (error.status === 409 && error.body && known) {
        // Someone was first: show who, as the stream will.
        upsert({
          ...known,
          status: "acknowledged",
          acknowledged_by: error.body.acknowledged_by,
          acknowledged_ts_ms: error.body.acknowledged_ts_ms,
        });
      }
      problems.set(alertId, error.message);
    }
    render();
  }

  // --- rendering ----------------------------------------------------------------------------
  function renderToolbar() {
    const open = [...alerts.values()].filter((view) => view.status === "open").length;
    const filterSelect = h(
      "select",
      { id: "feed-filter", onchange: (event) => ((filter = event.target.value), render()) },
      ["all", "open", "acknowledged"].map((value) =>
        h("option", { value, selected: value === filter }, t(`feed.filter.${value}`)),
      ),
    );
    const speak = h("input", {
      type: "checkbox",
      id: "feed-speak",
      checked: window.localStorage.getItem(SPEAK_KEY) === "on",
      onchange: (event) => window.localStorage.setItem(SPEAK_KEY, event.target.checked ? "on" : "off"),
    });
    show(
      toolbar,
      h("h1", {}, t("feed.title")),
      h("span", { class: `connection connection-${connection}`, id: "feed-connection" }, t(`feed.${connection}`)),
      h("span", { class: "count", id: "feed-open-count" }, t("feed.openCount", { n: open })),
      h("span", { class: "spacer" }),
      h("label", { for: "feed-filter" }, t("feed.show")),
      filterSelect,
      h("label", { class: "check" }, speak, t("feed.speak")),
    );
  }

  function card(view) {
    const alert = view.alert;
    const severity = SEVERITIES.includes(alert.severity) ? alert.severity : "warning";
    const audio = audioFor(view);
    const canAcknowledge = view.status === "open" && atLeast(context.me.role, "operator");
    const status =
      view.status === "acknowledged"
        ? t("alert.acknowledgedBy", { name: view.acknowledged_by || "?", time: formatTime(view.acknowledged_ts_ms) })
        : t("alert.open");
    const tags = [
      h("span", { class: `badge severity-${severity}` }, t(`severity.${severity}`)),
      arrivedLive.has(view.alert_id) && h("span", { class: "badge badge-new" }, t("alert.new")),
      alert.escalated && h("span", { class: "badge" }, t("alert.escalated")),
      alert.muted && h("span", { class: "badge" }, t("alert.muted")),
    ];
    const facts = [
      ["alert.query", alert.query_text || alert.query_id, "alert-query"],
      ["alert.camera", alert.camera_id, "alert-camera"],
      ["alert.time", formatTime(alert.peak_ts_ms ?? alert.raised_ts_ms), "alert-time"],
      ["alert.score", formatScore(alert.peak_score), "alert-score"],
      ["alert.spoken", alert.text, "alert-text"],
    ];
    const actions = [
      audio
        ? h(
            "button",
            { type: "button", class: "play", onclick: () => toggle(audio) },
            audio.paused ? `▶ ${t("alert.play")}` : `❚❚ ${t("alert.pause")}`,
          )
        : h("span", { class: "muted" }, t("alert.noAudio")),
      canAcknowledge &&
        h(
          "button",
          {
            type: "button",
            class: "acknowledge primary",
            onclick: (event) => ((event.target.disabled = true), acknowledge(view.alert_id)),
          },
          t("alert.acknowledge"),
        ),
      alert.peak_ts_ms != null &&
        h(
          "button",
          { type: "button", class: "moment", onclick: () => context.openMoment(alert.camera_id, alert.peak_ts_ms) },
          t("alert.moment"),
        ),
      audio,
    ];
    return h(
      "article",
      {
        class: `alert-card severity-${severity} status-${view.status === "acknowledged" ? "acknowledged" : "open"}`,
        dataset: { alertId: view.alert_id, arrived: arrivedLive.has(view.alert_id) ? "live" : "listed" },
      },
      framePicture(view.thumbnail_url, alert.box, alert.query_text || alert.query_id, t("alert.noPicture")),
      h(
        "div",
        { class: "alert-body" },
        h("div", { class: "tags" }, tags),
        h("dl", {}, facts.map(([label, value, name]) => [h("dt", {}, t(label)), h("dd", { class: name }, value)])),
        h("p", { class: "alert-status" }, status),
        view.end_ts_ms != null && h("p", { class: "muted" }, t("alert.ended", { time: formatTime(view.end_ts_ms) })),
        problems.has(view.alert_id) && h("p", { class: "error", role: "alert" }, problems.get(view.alert_id)),
        h("div", { class: "actions" }, actions),
      ),
    );
  }

  function renderCardsOnly() {
    const shown = [...alerts.values()]
      .filter((view) => filter === "all" || view.status === filter)
      .sort((a, b) => b.alert.raised_ts_ms - a.alert.raised_ts_ms)
      .slice(0, SHOWN);
    if (!shown.length) {
      show(list, h("p", { class: "empty" }, listError || t("feed.empty")));
      return;
    }
    const elements = shown.map((view) => {
      const audio = audioFor(view);
      const key = JSON.stringify([view, language(), context.me.role, problems.get(view.alert_id), audio?.paused]);
      const known = cards.get(view.alert_id);
      if (known && known.key === key) return known.element;
      const element = card(view);
      cards.set(view.alert_id, { key, element });
      return element;
    });
    for (const id of cards.keys()) if (!alerts.has(id)) cards.delete(id);
    show(list, listError && h("p", { class: "error" }, listError), elements);
  }

  function render() {
    renderToolbar();
    renderCardsOnly();
  }

  return {
    start() {
      render();
      connect();
      load();
    },
    stop() {
      stopped = true;
      clearTimeout(reconnectTimer);
      if (source) source.close();
      for (const audio of audios.values()) audio.pause();
    },
    render,
  };
}
