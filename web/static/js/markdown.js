// Markdown-lite (bold, italic, strike, code, code blocks, links, ||spoilers||) and a safe HTML
// renderer.
//
// What we send: our own parse → a small tree → DOM nodes (for display) or an escaped HTML string
// (for `formatted_body`). What others send: their `formatted_body` is parsed in an inert document
// and rebuilt node by node from an allow-list; no HTML string ever reaches the live page.

const HTML_FORMAT = "org.matrix.custom.html";
const SAFE_URL = /^(https?:\/\/|mailto:)/i;

/** Parse markdown-lite into a tree of {type, text?, href?, children?}. */
export function parseMarkdown(source) {
  const nodes = [];
  const fence = /```(?:[a-z0-9_+-]*\n)?([\s\S]*?)```/gi;
  let last = 0;
  for (const match of source.matchAll(fence)) {
    if (match.index > last) nodes.push(...parseInline(source.slice(last, match.index)));
    nodes.push({ type: "pre", text: match[1].replace(/\n$/, "") });
    last = match.index + match[0].length;
  }
  if (last < source.length) nodes.push(...parseInline(source.slice(last)));
  return nodes;
}

/** @type {Array<[string, RegExp]>} */
const INLINE_RULES = [
  ["code", /^`([^`\n]+)`/],
  ["strong", /^\*\*(?=\S)([\s\S]*?\S)\*\*/],
  ["del", /^~~(?=\S)([\s\S]*?\S)~~/],
  ["em", /^\*(?=[^\s*])([^*]*?[^\s*])\*/],
  ["em", /^_(?=[^\s_])([^_]*?[^\s_])_(?![A-Za-z0-9])/],
  ["link", /^\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/],
  // Discord's spoiler mark; sent as the spec's <span data-mx-spoiler>.
  ["spoiler", /^\|\|(?=\S)([\s\S]*?\S)\|\|/],
];

function parseInline(text, depth = 0) {
  const out = [];
  let buffer = "";
  const flush = () => {
    if (buffer) out.push({ type: "text", text: buffer });
    buffer = "";
  };
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i);
    const prev = i > 0 ? text[i - 1] : " ";
    let matched = false;
    if ("`*~_[|".includes(rest[0]) && depth < 8) {
      for (const [type, re] of INLINE_RULES) {
        if (type === "em" && rest[0] === "_" && /[A-Za-z0-9]/.test(prev)) continue;
        const m = re.exec(rest);
        if (!m) continue;
        flush();
        if (type === "code") out.push({ type, text: m[1] });
        else if (type === "link") out.push({ type, href: m[2], children: parseInline(m[1], depth + 1) });
        else out.push({ type, children: parseInline(m[1], depth + 1) });
        i += m[0].length;
        matched = true;
        break;
      }
    }
    if (matched) continue;
    const url = /^https?:\/\/[^\s<]*[^\s<.,:;"')\]!?*_~]/.exec(rest);
    if (url && /[\s(]/.test(prev)) {
      flush();
      out.push({ type: "link", href: url[0], children: [{ type: "text", text: url[0] }] });
      i += url[0].length;
      continue;
    }
    if (rest[0] === "\n") {
      flush();
      out.push({ type: "br" });
      i++;
      continue;
    }
    buffer += rest[0];
    i++;
  }
  flush();
  return out;
}

/** Whether a tree has anything beyond text and line breaks (else we send a plain body only). */
export function hasFormatting(nodes) {
  return nodes.some((n) => n.type !== "text" && n.type !== "br");
}

const TAGS = { strong: "strong", em: "em", del: "del", code: "code", link: "a" };

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The tree as an HTML string for `formatted_body`: every text escaped. */
export function toHtml(nodes) {
  return nodes
    .map((node) => {
      switch (node.type) {
        case "text":
          return escapeHtml(node.text);
        case "br":
          return "<br>";
        case "code":
          return `<code>${escapeHtml(node.text)}</code>`;
        case "pre":
          return `<pre><code>${escapeHtml(node.text)}</code></pre>`;
        case "link":
          return `<a href="${escapeHtml(node.href)}">${toHtml(node.children)}</a>`;
        case "spoiler":
          return `<span data-mx-spoiler>${toHtml(node.children)}</span>`;
        default:
          return `<${TAGS[node.type]}>${toHtml(node.children)}</${TAGS[node.type]}>`;
      }
    })
    .join("");
}

/** The tree as DOM nodes (for showing what we parse ourselves). */
export function toNodes(nodes) {
  return nodes.map((node) => {
    switch (node.type) {
      case "text":
        return document.createTextNode(node.text);
      case "br":
        return document.createElement("br");
      case "code":
      case "pre": {
        const code = document.createElement("code");
        code.textContent = node.text;
        if (node.type === "code") return code;
        const pre = document.createElement("pre");
        pre.append(code);
        return pre;
      }
      case "link":
        return safeLink(node.href, toNodes(node.children));
      case "spoiler":
        return spoiler(toNodes(node.children), "");
      default: {
        const el = document.createElement(TAGS[node.type]);
        el.append(...toNodes(node.children));
        return el;
      }
    }
  });
}

function safeLink(href, children) {
  if (!SAFE_URL.test(href)) {
    const span = document.createElement("span");
    span.append(...children);
    return span;
  }
  const a = document.createElement("a");
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer ugc";
  a.append(...children);
  return a;
}

/**
 * A spoiler (the spec's `data-mx-spoiler`): its content hidden until clicked or chosen with
 * Enter or Space, its reason (text from the sender) shown beside it. The first click only
 * reveals: it follows no link or pill inside.
 */
function spoiler(children, reason) {
  const el = document.createElement("span");
  el.className = "spoiler";
  el.dataset.spoiler = "hidden";
  el.setAttribute("role", "button");
  el.setAttribute("tabindex", "0");
  el.setAttribute("aria-expanded", "false");
  el.title = reason ? `Spoiler: ${reason}. Click to show` : "Spoiler. Click to show";
  if (reason) {
    const why = document.createElement("span");
    why.className = "spoiler-reason";
    why.textContent = `(${reason})`;
    el.append(why);
  }
  const content = document.createElement("span");
  content.className = "spoiler-content";
  content.append(...children);
  el.append(content);
  const reveal = (/** @type {Event} */ event) => {
    if (el.dataset.spoiler !== "hidden") return;
    event.preventDefault();
    event.stopPropagation();
    el.dataset.spoiler = "shown";
    el.setAttribute("aria-expanded", "true");
    el.removeAttribute("title");
  };
  el.addEventListener("click", reveal);
  el.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") reveal(event);
  });
  return el;
}

/** The message content for `text` typed in the composer: plain body, plus HTML when formatted. */
export function messageContent(text, msgtype = "m.text") {
  const tree = parseMarkdown(text);
  const content = { msgtype, body: text };
  if (hasFormatting(tree)) {
    content.format = HTML_FORMAT;
    content.formatted_body = toHtml(tree);
  }
  return content;
}

// --- Others' HTML, rebuilt from an allow-list ---------------------------------------------------

const ALLOWED = new Set([
  "b", "strong", "i", "em", "u", "s", "del", "strike", "code", "pre", "br", "p", "blockquote",
  "ul", "ol", "li", "a", "span", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "sup", "sub", "div",
  "table", "thead", "tbody", "tr", "th", "td", "caption", "details", "summary",
  "font", // deprecated by the spec for a span with the same colours, which it becomes
]);
// The spec's colour value: "#" and six hex digits, nothing a stylesheet could read otherwise.
const MX_COLOR = /^#[0-9a-f]{6}$/i;
// A numbered list that starts past 1 (markdown's "3. …" is sent as <ol start="3">): nine digits
// at most, inside the DOM's `long`.
const OL_START = /^[1-9][0-9]{0,8}$/;
// The spec allows `class` on code for syntax highlighting, and only classes of that form.
const CODE_LANGUAGE = /^language-[A-Za-z0-9_+-]+$/;
// Dropped with everything inside; other unknown tags are unwrapped (their text kept).
const DROPPED = new Set(["script", "style", "mx-reply", "head", "title", "iframe", "object", "embed", "template", "svg", "math"]);
const MAX_DEPTH = 24;

/**
 * Rebuild `html` as a DocumentFragment of allowed elements and text. It is parsed into a
 * detached <template>'s content, which is inert (no script runs, no image loads), and never
 * put in the page: we copy from it only tag names we know, the `href` of links with a safe scheme,
 * a spoiler's reason (as text), a span's "#rrggbb" colours, a list's start and a code block's
 * `language-…` class. Images become their alt text.
 */
export function sanitizeHtml(html) {
  const template = document.createElement("template");
  // Handlers never run here either way; renaming them first spares the console a CSP report
  // (Chromium checks on* attributes against the page's policy even in inert content). A tag is
  // matched up to the next "<" too: with `[^>]*` alone, 64 KiB of "<" and no ">" (one event's
  // worth) cost quadratic backtracking, a frozen tab for everyone who reads it (1 s per such
  // message in Chromium 156, 12 s in Node 20).
  template.innerHTML = html.replace(/<[^<>]*>/g, (tag) => tag.replace(/(\s)on([a-z]+\s*=)/gi, "$1data-removed-on$2"));
  const fragment = document.createDocumentFragment();
  copyChildren(template.content, fragment, 0);
  return fragment;
}

function copyChildren(from, to, depth) {
  for (const node of from.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      to.append(document.createTextNode(node.nodeValue ?? ""));
      continue;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) continue;
    const tag = node.localName;
    if (DROPPED.has(tag)) continue;
    if (tag === "img") {
      const alt = node.getAttribute("alt") || node.getAttribute("title") || "";
      if (alt) to.append(document.createTextNode(alt));
      continue;
    }
    if (!ALLOWED.has(tag) || depth >= MAX_DEPTH) {
      copyChildren(node, to, depth + 1);
      continue;
    }
    let el;
    if (tag === "span" && node.hasAttribute("data-mx-spoiler")) {
      // Its colours go on what it hides, and are hidden with it (`.spoiler-content *`) until shown.
      const coloured = document.createElement("span");
      const inner = applyColours(coloured, node) ? coloured : document.createDocumentFragment();
      copyChildren(node, inner, depth + 1);
      el = spoiler([inner], node.getAttribute("data-mx-spoiler") ?? "");
    } else if (tag === "span" || tag === "font") {
      el = document.createElement("span");
      applyColours(el, node);
      copyChildren(node, el, depth + 1);
    } else if (tag === "a") {
      const href = node.getAttribute("href") ?? "";
      const inner = document.createDocumentFragment();
      copyChildren(node, inner, depth + 1);
      el = safeLink(href, [inner]);
    } else {
      el = document.createElement(tag);
      const start = node.getAttribute("start") ?? "";
      if (tag === "ol" && OL_START.test(start)) el.setAttribute("start", start);
      const language = node.getAttribute("class") ?? "";
      if (tag === "code" && CODE_LANGUAGE.test(language)) el.className = language;
      copyChildren(node, el, depth + 1);
    }
    to.append(el);
  }
}

/**
 * Give `el` the colours a span or a <font> asks for with the spec's `data-mx-color` and
 * `data-mx-bg-color` (or the older `color` of a font, which some clients' /rainbow still sends);
 * whether it got any. Set through the CSSOM, which the page's `style-src 'self'` allows where a
 * style attribute in markup is refused; and only a "#rrggbb" value, so no url() or other CSS.
 */
function applyColours(el, node) {
  const color = node.getAttribute("data-mx-color") ?? (node.localName === "font" ? node.getAttribute("color") : null) ?? "";
  const background = node.getAttribute("data-mx-bg-color") ?? "";
  if (MX_COLOR.test(color)) el.style.color = color;
  if (MX_COLOR.test(background)) el.style.backgroundColor = background;
  return MX_COLOR.test(color) || MX_COLOR.test(background);
}

/** Plain text with bare links made clickable (for messages without HTML). */
export function linkifiedText(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(/https?:\/\/[^\s<]*[^\s<.,:;"')\]!?]/g)) {
    if (match.index > last) fragment.append(document.createTextNode(text.slice(last, match.index)));
    fragment.append(safeLink(match[0], [document.createTextNode(match[0])]));
    last = match.index + match[0].length;
  }
  if (last < text.length) fragment.append(document.createTextNode(text.slice(last)));
  return fragment;
}

const SPOILER_MARK = "[Spoiler]";
// Elements whose end starts a new line in one line of text.
const BLOCKS = new Set([
  "p", "div", "li", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
  "table", "caption", "tr", "details", "summary",
]);
// A table's cells are tab-separated, the text the spec suggests for a client that draws no tables.
const CELLS = new Set(["td", "th"]);
// Text between a table's rows and cells is the markup's own line breaks, not the message's.
const ROWS = new Set(["table", "thead", "tbody", "tfoot", "tr"]);

/**
 * The text that stands in for a message in one line (a reply's quote, a pin, a search hit, a
 * thread's preview, a desktop notification): its `body`, or when its HTML hides spoilers, that
 * HTML's text with each spoiler as "[Spoiler]" (and its reason): the plain body of most clients,
 * ours included, carries the hidden words as typed. Text only: never put in the page as HTML.
 */
export function plainPreview(content) {
  const body = typeof content?.body === "string" ? content.body : "";
  const html = content?.format === HTML_FORMAT && typeof content.formatted_body === "string" ? content.formatted_body : "";
  if (!/data-mx-spoiler/i.test(html)) return body;
  const template = document.createElement("template");
  template.innerHTML = html;
  const parts = [];
  textOf(template.content, parts, 0);
  return parts.join("").replace(/[ \t]*\n[ \t]*/g, "\n").replace(/\n{2,}/g, "\n").trim();
}

function textOf(from, parts, depth) {
  for (const node of from.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      if (!ROWS.has(from.localName)) parts.push(node.nodeValue ?? "");
      continue;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) continue;
    const tag = node.localName;
    if (DROPPED.has(tag)) continue;
    if (tag === "br") {
      parts.push("\n");
    } else if (tag === "img") {
      parts.push(node.getAttribute("alt") || node.getAttribute("title") || "");
    } else if (node.hasAttribute("data-mx-spoiler")) {
      const reason = node.getAttribute("data-mx-spoiler")?.trim();
      parts.push(reason ? `[Spoiler: ${reason}]` : SPOILER_MARK);
    } else if (depth < MAX_DEPTH) {
      textOf(node, parts, depth + 1);
    }
    if (BLOCKS.has(tag)) parts.push("\n");
    else if (CELLS.has(tag)) parts.push("\t");
  }
}

/** A body without the quoted reply fallback older clients put in front of a reply. */
export function stripReplyFallback(body) {
  const lines = body.split("\n");
  let i = 0;
  while (i < lines.length && lines[i].startsWith("> ")) i++;
  if (i > 0 && i < lines.length && lines[i] === "") return lines.slice(i + 1).join("\n");
  return body;
}

export { HTML_FORMAT };
