// Times and numbers as the operator reads them: in the browser's time zone and the chosen
// language's conventions (the API speaks Unix milliseconds).
import { language } from "./i18n.js";

const LOCALES = { en: "en-GB", vi: "vi-VN" };

function locale() {
  return LOCALES[language()] || "en-GB";
}

export function formatTime(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "—";
  return new Intl.DateTimeFormat(locale(), { dateStyle: "short", timeStyle: "medium" }).format(new Date(ms));
}

export function formatClock(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "—";
  return new Intl.DateTimeFormat(locale(), { timeStyle: "medium" }).format(new Date(ms));
}

export function formatScore(score) {
  if (typeof score !== "number" || !Number.isFinite(score)) return "—";
  return new Intl.NumberFormat(locale(), { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(score);
}

/** A <input type="datetime-local"> value (the browser's time zone) as Unix ms; null if empty. */
export function localInputToMs(value) {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : null;
}
