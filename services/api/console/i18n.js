// The English / Vietnamese switch. The choice is remembered in localStorage; the first visit
// follows the browser's language. Static text carries data-i18n="key" (data-i18n-placeholder
// for placeholders); views built from data call t() and re-render on "vigil:language".
import { STRINGS } from "./strings.js";

const LANGUAGE_KEY = "vigil.console.language";
export const LANGUAGES = ["en", "vi"];

let current = initialLanguage();

function initialLanguage() {
  const saved = window.localStorage.getItem(LANGUAGE_KEY);
  if (LANGUAGES.includes(saved)) return saved;
  return (navigator.language || "").toLowerCase().startsWith("vi") ? "vi" : "en";
}

export function language() {
  return current;
}

/** The string for `key` in the current language, with {name} placeholders filled in. */
export function t(key, params = {}) {
  const entry = STRINGS[key];
  const template = entry ? entry[current] ?? entry.en : key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export function setLanguage(next) {
  if (!LANGUAGES.includes(next)) return;
  current = next;
  window.localStorage.setItem(LANGUAGE_KEY, next);
  translateStatic();
  window.dispatchEvent(new CustomEvent("vigil:language", { detail: next }));
}

/** Fills every element marked with data-i18n / data-i18n-placeholder under `root`. */
export function translateStatic(root = document) {
  document.documentElement.lang = current;
  for (const element of root.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of root.querySelectorAll("[data-i18n-placeholder]")) {
    element.setAttribute("placeholder", t(element.dataset.i18nPlaceholder));
  }
  for (const button of root.querySelectorAll("[data-language]")) {
    button.setAttribute("aria-pressed", String(button.dataset.language === current));
  }
  document.title = t("app.title");
}
