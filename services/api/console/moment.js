// "The moment": the frame a result or an alert points at and its neighbours, from
// GET /api/v1/frames?camera_id=&around_ts_ms=, in a dialog. The frame nearest the time is shown
// large; a click on a neighbour shows that one instead.
import { api } from "./api.js";
import { framePicture, h, show } from "./dom.js";
import { formatClock, formatTime } from "./format.js";
import { t } from "./i18n.js";

const SPAN_S = 10;

export function createMoment(dialog) {
  let current = null; // {cameraId, aroundMs, frames, failure, selected}

  function nearest(frames, aroundMs) {
    let best = 0;
    frames.forEach((frame, index) => {
      if (Math.abs(frame.ts_ms - aroundMs) < Math.abs(frames[best].ts_ms - aroundMs)) best = index;
    });
    return best;
  }

  function render() {
    if (!current) return;
    const { cameraId, aroundMs, frames, failure, selected, box } = current;
    let body;
    if (failure && failure.status === 404) {
      body = h("p", { class: "unavailable", id: "moment-unavailable" }, t("unavailable", { route: "GET /api/v1/frames" }));
    } else if (failure) {
      body = h("p", { class: "error" }, failure.message);
    } else if (frames === null) {
      body = h("p", { class: "muted" }, t("loading"));
    } else if (!frames.length) {
      body = h("p", { class: "empty" }, t("moment.empty"));
    } else {
      const main = frames[selected];
      const mainBox = main.ts_ms === aroundMs ? box : null;
      body = [
        h("div", { class: "moment-main" }, framePicture(main.thumbnail_url, mainBox, formatTime(main.ts_ms), "—")),
        h("p", { class: "moment-time" }, formatTime(main.ts_ms)),
        h(
          "div",
          { class: "moment-strip" },
          frames.map((frame, index) =>
            h(
              "button",
              {
                type: "button",
                class: index === selected ? "moment-frame selected" : "moment-frame",
                onclick: () => ((current.selected = index), render()),
              },
              framePicture(frame.thumbnail_url, null, formatClock(frame.ts_ms), "—"),
              h("span", {}, formatClock(frame.ts_ms)),
            ),
          ),
        ),
      ];
    }
    show(
      dialog,
      h(
        "div",
        { class: "toolbar" },
        h("h2", {}, t("moment.title", { camera: cameraId, time: formatTime(aroundMs) })),
        h("span", { class: "spacer" }),
        h("button", { type: "button", class: "close", onclick: () => dialog.close() }, t("moment.close")),
      ),
      body,
    );
  }

  return {
    async open(cameraId, aroundMs, box = null) {
      current = { cameraId, aroundMs, box, frames: null, failure: null, selected: 0 };
      render();
      if (!dialog.open) dialog.showModal();
      const asked = current;
      try {
        const body = await api("/api/v1/frames", {
          params: { camera_id: cameraId, around_ts_ms: aroundMs, span_s: SPAN_S },
        });
        const frames = (body.frames || []).filter((frame) => typeof frame.ts_ms === "number");
        frames.sort((a, b) => a.ts_ms - b.ts_ms);
        asked.frames = frames;
        asked.selected = frames.length ? nearest(frames, aroundMs) : 0;
      } catch (error) {
        asked.failure = error;
      }
      if (current === asked) render();
    },
    render,
  };
}
