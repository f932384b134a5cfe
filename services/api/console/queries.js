// The standing-query editor on /api/v1/queries: list, add, edit, delete, and each query's
// history. A refusal from the API (409, 422, ...) is shown next to the field it names, or above
// the buttons when it names none. Viewers read; operators and admins write.
import { api, atLeast } from "./api.js";
import { knownCameraIds } from "./cameras.js";
import { h, show } from "./dom.js";
import { formatScore, formatTime } from "./format.js";
import { t } from "./i18n.js";
import { describeSchedule, scheduleBody, scheduleInputs, scheduleValues } from "./schedule.js";

const FIELDS = ["query_id", "text", "language", "threshold", "cameras", "severity", "enabled", "schedule"];
const SEVERITIES = ["info", "warning", "critical"];
const EMPTY = {
  query_id: "",
  text: "",
  language: "auto",
  thresholdMode: "auto",
  threshold: "0.5",
  camerasMode: "all",
  cameras: "",
  severity: "warning",
  enabled: true,
  ...scheduleValues(null),
};

export function createQueriesView(section, context) {
  let queries = null;
  let failure = null;
  let editing = null; // null, "new", or the query_id being edited
  let values = { ...EMPTY };
  let errors = {}; // field -> the API's message
  let formMessage = null;
  let notice = null;
  let history = null; // {id, changes, failure}
  let confirming = null; // the query_id whose delete awaits a second click
  let cameraIds = [];

  const canWrite = () => atLeast(context.me.role, "operator");

  async function refresh() {
    try {
      const body = await api("/api/v1/queries");
      queries = Array.isArray(body.queries) ? body.queries : [];
      failure = null;
    } catch (error) {
      failure = error;
    }
    render();
  }

  function capture() {
    const form = section.querySelector("#query-form");
    if (!form) return;
    const data = new FormData(form);
    for (const name of Object.keys(EMPTY)) {
      if (name === "enabled") values.enabled = data.get("enabled") === "on";
      else if (data.has(name)) values[name] = String(data.get(name));
    }
  }

  function edit(query) {
    section.querySelector("#query-form")?.remove(); // its values are not the ones to keep
    editing = query ? query.query_id : "new";
    values = query
      ? {
          query_id: query.query_id,
          text: query.text,
          language: query.language,
          thresholdMode: query.threshold === "auto" ? "auto" : "fixed",
          threshold: query.threshold === "auto" ? "0.5" : String(query.threshold),
          camerasMode: query.cameras && query.cameras.length ? "some" : "all",
          cameras: (query.cameras || []).join(", "),
          severity: query.severity,
          enabled: query.enabled !== false,
          ...scheduleValues(query.schedule),
        }
      : { ...EMPTY };
    errors = {};
    formMessage = null;
    notice = null;
    render();
    section.querySelector("#query-text")?.focus();
  }

  function body() {
    const threshold = values.threshold.trim();
    const number = Number(threshold);
    const payload = {
      text: values.text,
      language: values.language,
      // A value that is not a number goes as typed: the API's refusal names the field.
      threshold: values.thresholdMode === "auto" ? "auto" : threshold !== "" && Number.isFinite(number) ? number : threshold,
      cameras:
        values.camerasMode === "all"
          ? []
          : values.cameras
              .split(",")
              .map((id) => id.trim())
              .filter(Boolean),
      severity: values.severity,
      enabled: values.enabled,
      schedule: scheduleBody(values),
    };
    if (editing === "new" && values.query_id.trim()) payload.query_id = values.query_id.trim();
    return payload;
  }

  async function save(event) {
    event.preventDefault();
    capture();
    errors = {};
    formMessage = null;
    const creating = editing === "new";
    try {
      const saved = await api(creating ? "/api/v1/queries" : `/api/v1/queries/${encodeURIComponent(editing)}`, {
        method: creating ? "POST" : "PUT",
        body: body(),
      });
      notice = t("queries.saved", { id: saved.query_id });
      editing = null;
      await refresh();
      return;
    } catch (error) {
      errors = { ...error.fields };
      if (error.status === 409) errors.query_id = error.message;
      const named = Object.keys(errors).some((field) => FIELDS.includes(field));
      if (error.status === 404 && !named) formMessage = t("unavailable", { route: `${creating ? "POST" : "PUT"} /api/v1/queries` });
      else if (error.status === 403) formMessage = t("error.forbidden", { detail: error.message });
      else if (!named) formMessage = error.message;
    }
    render();
  }

  async function remove(query) {
    if (confirming !== query.query_id) {
      confirming = query.query_id;
      render();
      return;
    }
    confirming = null;
    try {
      await api(`/api/v1/queries/${encodeURIComponent(query.query_id)}`, { method: "DELETE" });
      notice = t("queries.deleted", { id: query.query_id });
      if (editing === query.query_id) editing = null;
    } catch (error) {
      notice = error.message;
    }
    await refresh();
  }

  async function showHistory(query) {
    history = { id: query.query_id, changes: null, failure: null };
    render();
    const asked = history;
    try {
      const result = await api(`/api/v1/queries/${encodeURIComponent(query.query_id)}/history`);
      asked.changes = Array.isArray(result.changes) ? result.changes : [];
    } catch (error) {
      asked.failure = error;
    }
    if (history === asked) render();
  }

  // --- rendering ----------------------------------------------------------------------------
  function field(name, label, input, hint) {
    return h(
      "div",
      { class: errors[name] ? "field invalid" : "field" },
      h("label", { for: `query-${name}` }, t(label)),
      input,
      hint && h("p", { class: "hint" }, t(hint)),
      errors[name] && h("p", { class: "field-error", id: `query-${name}-error`, role: "alert" }, errors[name]),
    );
  }

  function radio(name, value, label) {
    return h(
      "label",
      { class: "check" },
      h("input", { type: "radio", name, value, checked: values[name] === value, onchange: () => (capture(), render()) }),
      t(label),
    );
  }

  function form() {
    const creating = editing === "new";
    const select = (name, options, label) =>
      h(
        "select",
        { id: `query-${name}`, name },
        options.map((value) => h("option", { value, selected: values[name] === value }, t(`${label}.${value}`))),
      );
    return h(
      "form",
      { id: "query-form", class: "query-form", onsubmit: save, novalidate: true },
      h("h2", {}, creating ? t("queries.new") : t("queries.editing", { id: editing })),
      field(
        "query_id",
        "field.id",
        h("input", { id: "query-query_id", name: "query_id", value: values.query_id, readonly: !creating, maxlength: 128 }),
        creating && "field.id.hint",
      ),
      field(
        "text",
        "field.text",
        h("textarea", { id: "query-text", name: "text", rows: 2, maxlength: 500, placeholder: t("field.text.placeholder") }, values.text),
      ),
      field("language", "field.language", select("language", ["auto", "en", "vi"], "language")),
      field(
        "threshold",
        "field.threshold",
        h(
          "div",
          { class: "choice" },
          radio("thresholdMode", "auto", "threshold.auto"),
          radio("thresholdMode", "fixed", "threshold.fixed"),
          h("input", {
            id: "query-threshold",
            name: "threshold",
            type: "number",
            min: 0,
            max: 1,
            step: 0.01,
            value: values.threshold,
            disabled: values.thresholdMode === "auto",
          }),
        ),
      ),
      field(
        "cameras",
        "field.cameras",
        h(
          "div",
          { class: "choice" },
          radio("camerasMode", "all", "cameras.choice.all"),
          radio("camerasMode", "some", "cameras.choice.some"),
          h("input", {
            id: "query-cameras",
            name: "cameras",
            value: values.cameras,
            list: "query-camera-ids",
            disabled: values.camerasMode === "all",
          }),
          h("datalist", { id: "query-camera-ids" }, cameraIds.map((id) => h("option", { value: id }))),
        ),
        "field.cameras.hint",
      ),
      field("severity", "field.severity", select("severity", SEVERITIES, "severity")),
      field(
        "enabled",
        "field.enabled",
        h("input", { id: "query-enabled", name: "enabled", type: "checkbox", checked: values.enabled }),
      ),
      field("schedule", "field.schedule", scheduleInputs(values, radio), "schedule.hint"),
      formMessage && h("p", { class: "error", id: "query-form-error", role: "alert" }, formMessage),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit", class: "primary", id: "query-save" }, creating ? t("queries.create") : t("queries.save")),
        h("button", { type: "button", onclick: () => ((editing = null), render()) }, t("queries.cancel")),
      ),
    );
  }

  function threshold(value) {
    return value === "auto" ? t("threshold.auto") : formatScore(value);
  }

  function row(query) {
    const write = canWrite();
    return h(
      "tr",
      { dataset: { queryId: query.query_id } },
      h("td", {}, h("strong", { class: "query-text" }, query.text), h("div", { class: "muted" }, query.query_id)),
      h("td", {}, t(`language.${["auto", "en", "vi"].includes(query.language) ? query.language : "auto"}`)),
      h("td", {}, threshold(query.threshold)),
      h("td", {}, query.cameras && query.cameras.length ? query.cameras.join(", ") : t("queries.allCameras")),
      h("td", {}, SEVERITIES.includes(query.severity) ? t(`severity.${query.severity}`) : query.severity),
      h("td", { class: "query-schedule" }, describeSchedule(query.schedule)),
      h("td", {}, query.enabled === false ? t("queries.off") : t("queries.on")),
      h("td", {}, formatTime(query.updated_ts_ms), h("div", { class: "muted" }, query.created_by)),
      h(
        "td",
        { class: "actions" },
        write && h("button", { type: "button", onclick: () => edit(query) }, t("queries.edit")),
        write &&
          h(
            "button",
            { type: "button", class: confirming === query.query_id ? "danger" : "", onclick: () => remove(query) },
            confirming === query.query_id ? t("queries.confirmDelete") : t("queries.delete"),
          ),
        h("button", { type: "button", onclick: () => showHistory(query) }, t("queries.history")),
      ),
    );
  }

  function historyPanel() {
    if (!history) return null;
    let content;
    if (history.failure) content = h("p", { class: "error" }, history.failure.message);
    else if (history.changes === null) content = h("p", { class: "muted" }, t("loading"));
    else if (!history.changes.length) content = h("p", { class: "empty" }, t("history.empty"));
    else
      content = h(
        "ol",
        { class: "history" },
        history.changes.map((change) => {
          const action = ["created", "updated", "deleted"].includes(change.action) ? change.action : "updated";
          const query = change.query;
          return h(
            "li",
            {},
            h("strong", {}, formatTime(change.ts_ms)),
            ` · ${change.by ?? "?"} · ${t(`history.${action}`)}`,
            query && h("div", { class: "muted" }, `“${query.text}” · ${threshold(query.threshold)} · ${query.severity}`),
          );
        }),
      );
    return h(
      "section",
      { class: "panel", id: "query-history" },
      h(
        "div",
        { class: "toolbar" },
        h("h2", {}, t("history.title", { id: history.id })),
        h("span", { class: "spacer" }),
        h("button", { type: "button", onclick: () => ((history = null), render()) }, t("moment.close")),
      ),
      content,
    );
  }

  function render() {
    capture();
    const toolbar = h(
      "div",
      { class: "toolbar" },
      h("h1", {}, t("queries.title")),
      h("span", { class: "spacer" }),
      canWrite() && h("button", { type: "button", class: "primary", id: "query-new", onclick: () => edit(null) }, t("queries.new")),
      h("button", { type: "button", onclick: refresh }, t("refresh")),
    );
    let list;
    if (failure && failure.status === 404)
      list = h("p", { class: "unavailable", id: "queries-unavailable" }, t("unavailable", { route: "GET /api/v1/queries" }));
    else if (failure) list = h("p", { class: "error" }, failure.message);
    else if (queries === null) list = h("p", { class: "muted" }, t("loading"));
    else if (!queries.length) list = h("p", { class: "empty" }, t("queries.empty"));
    else
      list = h(
        "table",
        { class: "queries", id: "query-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["field.text", "field.language", "field.threshold", "field.cameras", "field.severity", "field.schedule", "field.enabled", "queries.updated", ""].map(
              (label) => h("th", {}, label && t(label)),
            ),
          ),
        ),
        h("tbody", {}, queries.map(row)),
      );
    show(
      section,
      toolbar,
      !canWrite() && h("p", { class: "muted" }, t("queries.readOnly")),
      notice && h("p", { class: "notice", id: "query-notice", role: "status" }, notice),
      editing !== null && form(),
      list,
      historyPanel(),
    );
  }

  return {
    async activate() {
      render();
      refresh();
      cameraIds = await knownCameraIds();
    },
    deactivate() {},
    stop() {},
    render,
  };
}
