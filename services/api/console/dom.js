// Building the page from data without ever parsing it as HTML: every string the API returns
// goes in as a text node or an attribute value (setAttribute), never through innerHTML.

/** An element: h("div", {class: "card", onclick: f}, "text", child, [more]). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** A link the API gave us, if it is http(s): a `javascript:` or `data:` link is never used. */
export function safeUrl(url) {
  if (typeof url !== "string" || !url) return null;
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/** A picture with its region box drawn over it. `box` is [x0, y0, x1, y1], fractions of the
 * frame (services/common/contract.py), so it fits the picture at any displayed size. */
export function framePicture(url, box, alt, placeholder) {
  const source = safeUrl(url);
  if (!source) return h("div", { class: "frame frame-missing" }, placeholder);
  const picture = h("img", { src: source, alt, decoding: "async" });
  const frame = h("div", { class: "frame" }, picture);
  // A picture that cannot be had (a camera with no frame yet, an expired link) says so.
  picture.addEventListener("error", () => frame.replaceWith(h("div", { class: "frame frame-missing" }, placeholder)));
  const region = validBox(box);
  if (region) {
    const [x0, y0, x1, y1] = region;
    const overlay = h("div", { class: "frame-box", "aria-hidden": "true" });
    overlay.style.left = `${x0 * 100}%`;
    overlay.style.top = `${y0 * 100}%`;
    overlay.style.width = `${(x1 - x0) * 100}%`;
    overlay.style.height = `${(y1 - y0) * 100}%`;
    frame.append(overlay);
  }
  return frame;
}

function validBox(box) {
  if (!Array.isArray(box) || box.length !== 4) return null;
  if (!box.every((v) => typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= 1)) return null;
  return box[0] < box[2] && box[1] < box[3] ? box : null;
}

/** Replaces what `element` shows. */
export function show(element, ...children) {
  element.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}
