// Retrospective search (GET /api/v1/search): a description in any language the encoder reads,
// optional camera and time range (entered in the browser's time zone), results as thumbnails
// with their region box; a click opens the moment (moment.js).
import { api } from "./api.js";
import { knownCameraIds } from "./cameras.js";
import { framePicture, h, show } from "./dom.js";
import { formatScore, formatTime, localInputToMs } from "./format.js";
import { t } from "./i18n.js";

const LIMITS = [20, 50, 100];

export function createSearchView(section, context) {
  const values = { text: "", camera_id: "", since: "", until: "", limit: "20" };
  let results = null;
  let failure = null;
  let searching = false;
  let cameraIds = [];

  function capture() {
    // What is typed survives a re-render (a language switch, results arriving).
    const form = section.querySelector("form");
    if (!form) return;
    const data = new FormData(form);
    for (const name of Object.keys(values)) values[name] = String(data.get(name) ?? "");
  }

  async function run(event) {
    event.preventDefault();
    capture();
    searching = true;
    failure = null;
    render();
    try {
      const body = await api("/api/v1/search", {
        params: {
          text: values.text.trim(),
          camera_id: values.camera_id.trim(),
          since_ts_ms: localInputToMs(values.since),
          until_ts_ms: localInputToMs(values.until),
          limit: values.limit,
        },
      });
      results = Array.isArray(body.results) ? body.results : [];
    } catch (error) {
      failure = error;
      results = null;
    }
    searching = false;
    render();
  }

  function field(name, label, input) {
    const message = failure && failure.fields[name];
    return h(
      "div",
      { class: "field" },
      h("label", { for: `search-${name}` }, t(label)),
      input,
      message && h("p", { class: "field-error", id: `search-${name}-error`, role: "alert" }, message),
    );
  }

  function result(item) {
    const source = item.source === "hit" ? "hit" : "frame";
    const span =
      item.start_ts_ms != null && item.end_ts_ms != null && item.end_ts_ms > item.start_ts_ms
        ? `${formatTime(item.start_ts_ms)} – ${formatTime(item.end_ts_ms)}`
        : formatTime(item.ts_ms);
    return h(
      "button",
      {
        type: "button",
        class: "search-result",
        title: t("search.open"),
        onclick: () => context.openMoment(item.camera_id, item.ts_ms, item.box),
      },
      framePicture(item.thumbnail_url, item.box, `${item.camera_id} ${formatTime(item.ts_ms)}`, "—"),
      h(
        "span",
        { class: "result-body" },
        h("strong", {}, item.camera_id),
        h("span", {}, span),
        h(
          "span",
          { class: "muted" },
          `${formatScore(item.score)} · ${t("search.frames", { n: item.frames ?? 1 })} · ${t(`search.source.${source}`)}`,
        ),
      ),
    );
  }

  function render() {
    capture();
    const form = h(
      "form",
      { class: "search-form", id: "search-form", onsubmit: run, novalidate: true },
      field(
        "text",
        "search.text",
        h("input", { id: "search-text", name: "text", value: values.text, placeholder: t("search.placeholder") }),
      ),
      field(
        "camera_id",
        "search.camera",
        h("input", { id: "search-camera_id", name: "camera_id", value: values.camera_id, list: "search-cameras" }),
      ),
      h("datalist", { id: "search-cameras" }, cameraIds.map((id) => h("option", { value: id }))),
      field("since_ts_ms", "search.since", h("input", { id: "search-since_ts_ms", name: "since", type: "datetime-local", step: 1, value: values.since })),
      field("until_ts_ms", "search.until", h("input", { id: "search-until_ts_ms", name: "until", type: "datetime-local", step: 1, value: values.until })),
      field(
        "limit",
        "search.limit",
        h("select", { id: "search-limit", name: "limit" }, LIMITS.map((n) => h("option", { value: n, selected: String(n) === values.limit }, n))),
      ),
      h("button", { type: "submit", class: "primary", disabled: searching }, t("search.submit")),
    );
    let body = null;
    if (searching) body = h("p", { class: "muted" }, t("search.searching"));
    else if (failure && failure.status === 404 && !Object.keys(failure.fields).length)
      body = h("p", { class: "unavailable", id: "search-unavailable" }, t("unavailable", { route: "GET /api/v1/search" }));
    else if (failure) body = h("p", { class: "error", role: "alert" }, failure.message);
    else if (results && !results.length) body = h("p", { class: "empty" }, t("search.empty"));
    else if (results)
      body = [
        h("p", { class: "muted", id: "search-count" }, t("search.count", { n: results.length })),
        h("div", { class: "search-results", id: "search-results" }, results.map(result)),
      ];
    show(section, h("div", { class: "toolbar" }, h("h1", {}, t("search.title"))), form, body);
  }

  return {
    async activate() {
      render();
      cameraIds = await knownCameraIds();
      const suggestions = section.querySelector("#search-cameras");
      if (suggestions) show(suggestions, cameraIds.map((id) => h("option", { value: id })));
    },
    deactivate() {},
    stop() {},
    render,
  };
}
