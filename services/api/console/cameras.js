// The camera grid: each camera's health (from "camera-status") and its latest snapshot, from
// GET /api/v1/cameras, refreshed while the tab is open. A server without that route (404) shows
// that it is not available rather than an empty grid.
import { api } from "./api.js";
import { framePicture, h, show } from "./dom.js";
import { formatTime } from "./format.js";
import { t } from "./i18n.js";

const REFRESH_MS = 10000;
const STATES = ["connecting", "streaming", "stalled", "down", "disabled"];

export function createCamerasView(section) {
  let cameras = null;
  let failure = null;
  let timer = null;

  async function refresh() {
    try {
      const body = await api("/api/v1/cameras");
      cameras = Array.isArray(body.cameras) ? body.cameras : [];
      failure = null;
    } catch (error) {
      failure = error;
    }
    render();
  }

  function card(camera) {
    const state = STATES.includes(camera.status) ? camera.status : "unknown";
    return h(
      "article",
      { class: `camera-card state-${state}`, dataset: { cameraId: String(camera.camera_id ?? "") } },
      framePicture(camera.snapshot_url, null, camera.name || camera.camera_id, t("cameras.noSnapshot")),
      h(
        "div",
        { class: "camera-body" },
        h("h2", {}, camera.name || camera.camera_id),
        h("p", { class: "muted" }, camera.camera_id),
        h(
          "p",
          {},
          h("span", { class: `badge state-${state}` }, t(`state.${state}`)),
          camera.status_ts_ms != null && ` ${t("cameras.since", { time: formatTime(camera.status_ts_ms) })}`,
          camera.enabled === false && ` · ${t("cameras.off")}`,
        ),
        camera.url && h("p", { class: "muted url" }, camera.url),
      ),
    );
  }

  function render() {
    const toolbar = h(
      "div",
      { class: "toolbar" },
      h("h1", {}, t("cameras.title")),
      h("span", { class: "spacer" }),
      h("button", { type: "button", onclick: refresh }, t("refresh")),
    );
    let body;
    if (failure && failure.status === 404) {
      body = h("p", { class: "unavailable", id: "cameras-unavailable" }, t("unavailable", { route: "GET /api/v1/cameras" }));
    } else if (failure) {
      body = h("p", { class: "error" }, failure.message);
    } else if (cameras === null) {
      body = h("p", { class: "muted" }, t("loading"));
    } else if (!cameras.length) {
      body = h("p", { class: "empty" }, t("cameras.empty"));
    } else {
      body = h("div", { class: "camera-grid" }, cameras.map(card));
    }
    show(section, toolbar, body);
  }

  return {
    activate() {
      render();
      refresh();
      clearInterval(timer);
      timer = setInterval(refresh, REFRESH_MS);
    },
    deactivate() {
      clearInterval(timer);
    },
    stop() {
      clearInterval(timer);
    },
    render,
  };
}

/** Camera ids for suggestions in forms (a <datalist>); none when the route is missing. */
export async function knownCameraIds() {
  try {
    const body = await api("/api/v1/cameras");
    return (body.cameras || []).map((camera) => camera.camera_id).filter((id) => typeof id === "string");
  } catch {
    return [];
  }
}
