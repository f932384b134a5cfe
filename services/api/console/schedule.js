// A standing query's own schedule in the editor: when it may alert (armed windows) and when its
// alerts stay silent (quiet hours), typed as "mon-fri 22:00-06:00; sat,sun 00:00-24:00" in a time
// zone. The same syntax as `vigil queries add --armed` (pipelines/alerting/schedules.py,
// TimeWindow.parse); the API checks every value and names what is wrong.

import { h } from "./dom.js";
import { t } from "./i18n.js";

const WINDOW = /^(?:(.+)\s+)?(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$/;
const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/** The browser's time zone (IANA), the default of a new schedule. */
export function localTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** "mon-fri 22:00-06:00; 23:00-06:00" -> [{days, start, end}, ...] (days omitted: every day).
 * A part that is not "[days ]HH:MM-HH:MM" is sent as typed, so that the API's refusal names it. */
export function parseWindows(text) {
  return String(text)
    .split(/[;\n]+/)
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const match = WINDOW.exec(part);
      if (!match) return { start: part, end: "" };
      const window = { start: match[2], end: match[3] };
      if (match[1]) window.days = match[1].split(/[\s,]+/).filter(Boolean);
      return window;
    });
}

function describeDays(days) {
  if (!Array.isArray(days) || days.length === WEEKDAYS.length) return "";
  const indexes = days.map((day) => WEEKDAYS.indexOf(day)).filter((index) => index >= 0);
  const runs = [];
  for (const index of indexes) {
    const last = runs[runs.length - 1];
    if (last && index === last[last.length - 1] + 1) last.push(index);
    else runs.push([index]);
  }
  return runs.map((run) => (run.length === 1 ? WEEKDAYS[run[0]] : `${WEEKDAYS[run[0]]}-${WEEKDAYS[run[run.length - 1]]}`)).join(",");
}

/** [{days, start, end}] -> "mon-fri 22:00-06:00; 23:00-06:00" (what parseWindows reads). */
export function describeWindows(windows) {
  return (windows || [])
    .map((window) => [describeDays(window.days), `${window.start}-${window.end}`].filter(Boolean).join(" "))
    .join("; ");
}

/** The editor's values of a query's schedule. */
export function scheduleValues(schedule) {
  return schedule
    ? {
        scheduleMode: "windows",
        timezone: schedule.timezone || "UTC",
        armed: describeWindows(schedule.armed),
        quiet: describeWindows(schedule.quiet_hours),
      }
    : { scheduleMode: "always", timezone: localTimeZone(), armed: "", quiet: "" };
}

/** The API's `schedule` from the editor's values: null (always armed) or {timezone, armed?, quiet_hours}. */
export function scheduleBody(values) {
  if (values.scheduleMode !== "windows") return null;
  const body = { timezone: values.timezone.trim() || "UTC", quiet_hours: parseWindows(values.quiet) };
  if (values.armed.trim()) body.armed = parseWindows(values.armed);
  return body;
}

/** One line for the list: "armed mon-fri 22:00-06:00 · quiet 23:00-06:00 (Asia/Ho_Chi_Minh)". */
export function describeSchedule(schedule) {
  if (!schedule) return t("schedule.always");
  const parts = [];
  if (schedule.armed) parts.push(t("schedule.armedAt", { windows: describeWindows(schedule.armed) }));
  if (schedule.quiet_hours && schedule.quiet_hours.length)
    parts.push(t("schedule.quietAt", { windows: describeWindows(schedule.quiet_hours) }));
  return `${parts.join(" · ") || t("schedule.always")} (${schedule.timezone})`;
}

/** The editor's inputs: always / on a schedule, armed windows, quiet hours, time zone.
 * `radio(name, value, label)` is the editor's radio button (it re-renders on change). */
export function scheduleInputs(values, radio) {
  const off = values.scheduleMode !== "windows";
  const input = (name, label, placeholder) =>
    h("label", { class: "stacked" }, t(label), h("input", { id: `query-${name}`, name, value: values[name], placeholder, disabled: off }));
  return h(
    "div",
    { class: "choice" },
    radio("scheduleMode", "always", "schedule.always"),
    radio("scheduleMode", "windows", "schedule.windows"),
    input("armed", "schedule.armed", "mon-fri 22:00-06:00"),
    input("quiet", "schedule.quiet", "23:00-05:00"),
    input("timezone", "schedule.timezone", "Asia/Ho_Chi_Minh"),
  );
}
