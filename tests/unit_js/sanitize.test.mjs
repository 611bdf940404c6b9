// Others' `formatted_body` (web/static/js/markdown.js sanitizeHtml): hostile and ordinary Matrix
// HTML rebuilt from the allow-list, run on linkedom's DOM. Safety does not rest on the parser:
// whatever tree it builds, only allowed tag names, text and a link's safe href are copied out.
// The same function in Chromium: tests/browser/test_chat.py (formatted body from another client).

import assert from "node:assert/strict";
import { test } from "node:test";

import { parseHTML } from "linkedom";

const { document, Node, NodeFilter, Event } = parseHTML("<!doctype html><html><head></head><body></body></html>");
Object.assign(globalThis, { document, Node, NodeFilter });

const { messageContent, plainPreview, sanitizeHtml } = await import("../../web/static/js/markdown.js");
const { readSearchAnswer } = await import("../../web/static/js/search.js");
const { drawMentionPills } = await import("../../web/static/js/views/mention-pills.js");

const KEPT = new Set([
  "b", "strong", "i", "em", "u", "s", "del", "strike", "code", "pre", "br", "p", "blockquote",
  "ul", "ol", "li", "a", "span", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "sup", "sub", "div",
  "table", "thead", "tbody", "tr", "th", "td", "caption", "details", "summary",
]);
const LINK_ATTRIBUTES = ["href", "rel", "target"];

/** The sanitised message in a detached <div>, after checking every element that came out. */
function render(html) {
  const wrap = document.createElement("div");
  wrap.append(sanitizeHtml(html));
  for (const el of wrap.querySelectorAll("*")) {
    assert.ok(KEPT.has(el.localName), `<${el.localName}> came out of ${html}`);
    const names = Array.from(el.attributes, (a) => a.name).sort();
    assert.deepEqual(names, attributesOf(el), `attributes of <${el.localName}> from ${html}`);
    const value = (name) => el.getAttribute(name) ?? "";
    if (el.hasAttribute("style")) assert.match(value("style"), COLOURS_ONLY, `style from ${html}`);
    if (el.localName === "ol" && el.hasAttribute("start")) assert.match(value("start"), /^[1-9][0-9]*$/);
    if (el.localName === "code" && el.hasAttribute("class")) assert.match(value("class"), /^language-[A-Za-z0-9_+-]+$/);
  }
  return wrap;
}

// The only style the sanitiser sets (through the CSSOM): a span's colours, each "#rrggbb".
const COLOURS_ONLY = /^(?:(?:color|background-color):#[0-9a-f]{6};?)+$/i;

// What Guilds itself puts on the spans it draws for a spoiler (markdown.js `spoiler`).
const SPOILER_ATTRIBUTES = ["aria-expanded", "class", "data-spoiler", "role", "tabindex", "title"];

/**
 * The attributes an element may carry out of the sanitiser: a link's, a spoiler's, a span's
 * colours, a list's start, a code block's language, or none.
 */
function attributesOf(el) {
  if (el.localName === "a") return LINK_ATTRIBUTES;
  if (el.classList.contains("spoiler")) return SPOILER_ATTRIBUTES;
  if (el.classList.contains("spoiler-content") || el.classList.contains("spoiler-reason")) return ["class"];
  // The spec's other attributes, their values checked in `render`.
  const allowed = { span: "style", ol: "start", code: "class" }[el.localName];
  return allowed && el.hasAttribute(allowed) ? [allowed] : [];
}

const out = (html) => render(html).innerHTML;

function depth(node) {
  let deepest = 0;
  for (const child of node.children) deepest = Math.max(deepest, 1 + depth(child));
  return deepest;
}

test("ordinary formatting from other clients is kept as it is", () => {
  assert.equal(
    out("<b>b</b> <strong>st</strong> <i>i</i> <em>em</em> <u>u</u> <s>s</s> <del>d</del> <strike>k</strike> x<sup>2</sup>y<sub>3</sub>"),
    "<b>b</b> <strong>st</strong> <i>i</i> <em>em</em> <u>u</u> <s>s</s> <del>d</del> <strike>k</strike> x<sup>2</sup>y<sub>3</sub>",
  );
  assert.equal(
    out("<h1>a</h1><h2>b</h2><h3>c</h3><h4>d</h4><h5>e</h5><h6>f</h6><hr><p>one<br>two</p><div><span>s</span></div>"),
    "<h1>a</h1><h2>b</h2><h3>c</h3><h4>d</h4><h5>e</h5><h6>f</h6><hr><p>one<br>two</p><div><span>s</span></div>",
  );
  assert.equal(
    out("<blockquote><p>quoted</p></blockquote><ul><li>one</li></ul><ol><li>two</li></ol>"),
    "<blockquote><p>quoted</p></blockquote><ul><li>one</li></ul><ol><li>two</li></ol>",
  );
});

// The tags the Matrix spec suggests for m.room.message `formatted_body` (client-server API,
// "m.room.message msgtypes"), and what becomes of each here: kept, or unwrapped to its text.
const SPEC_TAGS = [
  "font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol", "sup", "sub",
  "li", "b", "i", "u", "strong", "em", "s", "code", "hr", "br", "div", "table", "thead", "tbody",
  "tr", "th", "td", "caption", "pre", "span", "img", "details", "summary",
];

test("every tag of the spec's list is kept or unwrapped to its text; none is lost", () => {
  const kept = [];
  for (const tag of SPEC_TAGS) {
    if (["hr", "br", "img"].includes(tag)) continue; // void: no text to keep
    // Table parts are parsed only inside a table.
    const html = ["thead", "tbody", "tr", "th", "td", "caption"].includes(tag)
      ? `<table><${tag}>text</${tag}></table>`
      : `<${tag}>text</${tag}>`;
    const wrap = render(html);
    assert.equal(wrap.textContent, "text", tag);
    if (wrap.querySelector(tag)) kept.push(tag);
  }
  // A <font> becomes a <span> (the spec's replacement), as does a link with no href.
  const unwrapped = SPEC_TAGS.filter((t) => !kept.includes(t) && !["hr", "br", "img"].includes(t));
  assert.deepEqual(unwrapped, ["font", "a"]);
  assert.equal(out("a<hr>b<br>c"), "a<hr>b<br>c");
});

test("a code block keeps its text and its markup as text", () => {
  const wrap = render('<pre><code class="language-html">&lt;b&gt;not bold&lt;/b&gt;\n  indented</code></pre>');
  assert.equal(wrap.querySelector("pre > code")?.textContent, "<b>not bold</b>\n  indented");
  assert.equal(wrap.querySelector("b"), null);
});

test("attributes are never copied: styles, classes, ids, colours and every on* handler go", () => {
  const wrap = render(
    '<p style="position:fixed;inset:0" class="overlay" id="app" onclick="alert(1)" data-mx-color="#ff0000">p</p>' +
      '<span style="color:red" class="spoiler" data-mx-color="red" data-mx-bg-color="#000" onmouseover="alert(2)">red</span>' +
      '<b ONLOAD="alert(3)" onfocus=alert(4) autofocus tabindex="1">b</b>' +
      '<ol start="3" reversed type="a" class="x"><li value="9">three</li></ol><ul start="3"><li>u</li></ul>' +
      '<code class="language-js" id="c" style="color:red">c</code><pre class="language-js">p</pre>' +
      '<table class="t" border="1" style="width:9999px"><tbody><tr style="x"><td colspan="9" onclick="x()">a</td><th scope="col">b</th></tr></tbody></table>' +
      '<details open ontoggle="alert(5)"><summary class="s" onclick="x()">more</summary>d</details>',
  );
  assert.equal(
    wrap.innerHTML,
    '<p>p</p><span>red</span><b>b</b><ol start="3"><li>three</li></ol><ul><li>u</li></ul>' +
      '<code class="language-js">c</code><pre>p</pre>' +
      "<table><tbody><tr><td>a</td><th>b</th></tr></tbody></table><details><summary>more</summary>d</details>",
  );
});

test("tables from other clients are kept as tables, captions and header cells too", () => {
  // As Element's markdown sends one (a newline between tags).
  const wrap = render(
    "<table>\n<caption>Scores</caption>\n<thead>\n<tr>\n<th>name</th>\n<th>points</th>\n</tr>\n</thead>\n" +
      "<tbody>\n<tr>\n<td><b>alice</b></td>\n<td>3</td>\n</tr>\n<tr>\n<td>bob</td>\n<td>2</td>\n</tr>\n</tbody>\n</table>",
  );
  const table = wrap.querySelector("table");
  assert.ok(table);
  assert.equal(table.querySelector("caption")?.textContent, "Scores");
  assert.deepEqual([...table.querySelectorAll("thead > tr > th")].map((c) => c.textContent), ["name", "points"]);
  const rows = [...table.querySelectorAll("tbody > tr")].map((r) => [...r.querySelectorAll("td")].map((c) => c.textContent));
  assert.deepEqual(rows, [["alice", "3"], ["bob", "2"]]);
  assert.equal(table.querySelector("td > b")?.textContent, "alice");
});

test("a fold (details and summary) is kept, closed, with what it holds", () => {
  const wrap = render("<details open><summary>Logs <i>(long)</i></summary><pre><code>line 1\nline 2</code></pre></details>");
  const details = wrap.querySelector("details");
  assert.ok(details);
  assert.equal(details.hasAttribute("open"), false);
  assert.equal(details.querySelector("summary")?.textContent, "Logs (long)");
  assert.equal(details.querySelector("summary > i")?.textContent, "(long)");
  assert.equal(details.querySelector("pre > code")?.textContent, "line 1\nline 2");
});

test("the spec's colours are applied to a span, and only a # with six hex digits", () => {
  const span = (html) => render(html).querySelector("span");
  const both = span('<span data-mx-color="#FF0000" data-mx-bg-color="#00ff7f">both</span>');
  assert.equal(both?.style.color, "#FF0000");
  assert.equal(both?.style.backgroundColor, "#00ff7f");
  assert.equal(both?.textContent, "both");
  const fg = span('<span data-mx-color="#123abc">fg</span>');
  assert.equal(fg?.style.color, "#123abc");
  assert.equal(fg?.style.backgroundColor, "");
  for (const bad of [
    "red", "#fff", "#12345g", "#1234567", "123456", " #123456", "#123456 ", "#123456;background:url(https://evil.example/x)",
    "url(https://evil.example/x)", "expression(alert(1))", "rgb(1,2,3)", "var(--brand)", "",
  ]) {
    const quoted = bad.replace(/"/g, "&quot;");
    const html = `<span data-mx-color="${quoted}" data-mx-bg-color="${quoted}">x</span>`;
    assert.equal(out(html), "<span>x</span>", bad);
  }
});

test("a <font> becomes a span with its colours: data-mx ones first, else its color", () => {
  assert.equal(out('<font color="#00ff00">g</font>'), '<span style="color:#00ff00">g</span>');
  assert.equal(out('<font data-mx-color="#0000ff" color="#00ff00" data-mx-bg-color="#ffffff">b</font>'), '<span style="color:#0000ff;background-color:#ffffff">b</span>');
  assert.equal(out('<font color="red" face="Comic Sans" size="7">red</font>'), "<span>red</span>");
  // A span has no `color` attribute in the spec.
  assert.equal(out('<span color="#00ff00">x</span>'), "<span>x</span>");
  // A rainbow, as /rainbow sends it, keeps a colour per letter.
  const rainbow = render('<font color="#ff0000">a</font><font color="#00ff00">b</font>');
  assert.deepEqual([...rainbow.querySelectorAll("span")].map((s) => s.style.color), ["#ff0000", "#00ff00"]);
});

test("a coloured spoiler hides its colours with its words until shown", () => {
  const wrap = render('<span data-mx-spoiler="why" data-mx-color="#ff0000" data-mx-bg-color="#000000">secret</span>');
  const spoiler = wrap.querySelector(".spoiler");
  assert.ok(spoiler);
  assert.equal(spoiler.hasAttribute("style"), false);
  assert.equal(spoiler.querySelector(".spoiler-reason")?.hasAttribute("style"), false);
  const coloured = spoiler.querySelector(".spoiler-content > span");
  assert.equal(coloured?.style.color, "#ff0000");
  assert.equal(coloured?.style.backgroundColor, "#000000");
  assert.equal(coloured?.textContent, "secret");
  // Without colours, the content is the words themselves.
  assert.equal(render("<span data-mx-spoiler>s</span>").querySelector(".spoiler-content")?.innerHTML, "s");
});

test("a list's start is kept when it is a positive integer; a code block's language when plain", () => {
  assert.equal(out('<ol start="3"><li>three</li></ol>'), '<ol start="3"><li>three</li></ol>');
  for (const start of ["0", "-1", "1.5", "3a", " 3", "1e3", "", "9999999999"]) {
    assert.equal(out(`<ol start="${start}"><li>x</li></ol>`), "<ol><li>x</li></ol>", start);
  }
  assert.equal(out('<pre><code class="language-c++">x</code></pre>'), '<pre><code class="language-c++">x</code></pre>');
  assert.equal(out('<code class="language-objective_c-2">x</code>'), '<code class="language-objective_c-2">x</code>');
  for (const cls of ["language-", "lang-js", "language-js hljs", "hljs language-js", "language-js\"x", "language-<b>", "spoiler", "message"]) {
    assert.equal(out(`<code class="${cls.replace(/"/g, "&quot;")}">x</code>`), "<code>x</code>", cls);
  }
});

test("script, style, frames, objects, SVG, MathML, templates and the reply fallback go with all inside", () => {
  for (const html of [
    "<script>window.x = 1</script>",
    "<script src='https://evil.example/x.js'></script>",
    "<style>body { display: none }</style>",
    "<iframe src='https://evil.example/'>frame text</iframe>",
    "<object data='https://evil.example/x.swf'>object text</object>",
    "<embed src='https://evil.example/x'>",
    "<svg><script>alert(1)</script><text>svg text</text><a href='javascript:alert(1)'>x</a></svg>",
    "<math><mi>math text</mi></math>",
    "<template><b>template text</b></template>",
    "<mx-reply><blockquote><a href='https://matrix.to/#/!room/$event'>In reply to</a> quoted</blockquote></mx-reply>",
    "<title>title text</title>",
  ]) {
    assert.equal(out(`before ${html} after`), "before  after", html);
  }
});

test("links keep only http(s) and mailto targets, open in a new tab and pass no referrer", () => {
  const wrap = render('<a href="https://example.org/a?b=1#c" target="_self" rel="opener" title="t" onclick="x()">site</a>');
  const link = wrap.querySelector("a");
  assert.equal(link?.getAttribute("href"), "https://example.org/a?b=1#c");
  assert.equal(link?.getAttribute("target"), "_blank");
  assert.equal(link?.getAttribute("rel"), "noopener noreferrer ugc");
  assert.equal(wrap.textContent, "site");
  for (const href of ["http://example.org/", "HTTPS://EXAMPLE.ORG/", "mailto:someone@example.org"]) {
    assert.equal(render(`<a href="${href}">x</a>`).querySelector("a")?.getAttribute("href"), href);
  }
});

test("a link to anything else stays its text, with no href: script, data, relative and mxc URLs", () => {
  for (const href of [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "&#106;avascript:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
    "//evil.example/x",
    "/_matrix/client/v3/logout",
    "#fragment",
    "mxc://example.org/abc",
    "file:///etc/passwd",
    "https:evil.example",
  ]) {
    const wrap = render(`<a href="${href.replace(/"/g, "&quot;")}">click <b>me</b></a>`);
    assert.equal(wrap.innerHTML, "<span>click <b>me</b></span>", href);
  }
  assert.equal(out("<a>no href</a>"), "<span>no href</span>");
});

test("an image is never loaded: it becomes its alt text, else its title, else nothing", () => {
  assert.equal(out('<img src="mxc://example.org/abc" alt=":party:" title="party">!'), ":party:!");
  assert.equal(out('<img src="https://tracker.example/pixel.gif" title="a title">'), "a title");
  assert.equal(out('<img src="https://tracker.example/pixel.gif">'), "");
  assert.equal(out('<img src=x onerror="alert(1)" alt="&lt;script&gt;alert(1)&lt;/script&gt;">'), "&lt;script&gt;alert(1)&lt;/script&gt;");
  assert.equal(render('<a href="https://example.org/"><img src="https://tracker.example/x.png" alt="logo"></a>').textContent, "logo");
});

test("tags outside the allow-list are unwrapped: their text stays, they do not", () => {
  assert.equal(out("<marquee>moving</marquee> <blink>blink</blink> <custom-thing>custom</custom-thing>"), "moving blink custom");
  assert.equal(out("<form action='https://evil.example/'><input value='v'><button formaction='javascript:x'>go</button></form>"), "go");
  assert.equal(out("<video src='https://evil.example/v.mp4' poster='https://evil.example/p.png'>no video</video>"), "no video");
  assert.equal(out("<audio><source src='https://evil.example/a.ogg'>no audio</audio>"), "no audio");
  assert.equal(out("<table><tfoot><tr><td>a</td></tr></tfoot><colgroup><col span='2'></colgroup></table>"), "<table><tr><td>a</td></tr></table>");
  assert.equal(out("<base href='https://evil.example/'><link rel=stylesheet href='https://evil.example/x.css'><meta http-equiv=refresh content='0;url=https://evil.example/'>text"), "text");
  assert.equal(out("<textarea><b>typed</b></textarea>"), "&lt;b&gt;typed&lt;/b&gt;");
});

test("comments and processing instructions are dropped", () => {
  assert.equal(out("a<!-- <script>alert(1)</script> -->b<?xml-stylesheet href='x'?>c<![CDATA[d]]>"), "abc");
});

test("text is text: escaped markup in a message makes no element", () => {
  const wrap = render("&lt;img src=x onerror=alert(1)&gt; &amp;amp; \"quotes\" 'single' &#60;b&#62;");
  assert.equal(wrap.textContent, "<img src=x onerror=alert(1)> &amp; \"quotes\" 'single' <b>");
  assert.equal(wrap.children.length, 0);
});

test("nesting past 24 levels is flattened, its text kept", () => {
  const html = "<blockquote>".repeat(40) + "deep <b>bold</b>" + "</blockquote>".repeat(40);
  const wrap = render(html);
  assert.equal(depth(wrap), 24);
  assert.equal(wrap.textContent, "deep bold");
  assert.equal(depth(render("<blockquote>".repeat(23) + "<b>x</b>" + "</blockquote>".repeat(23))), 24);
});

test("a message of one event's worth of unclosed tags is read in linear time", () => {
  // With a `<[^>]*>` scan the first took 7 to 11 s here (quadratic backtracking; Chromium 156 is
  // faster, but still about 1 s for "<" × 65 536, which is not used here because linkedom's
  // parser makes a text node of each "<", slow in Node and not in Chromium).
  for (const html of ["<a".repeat(32_768), "<a x='<".repeat(9_000), "<b title='".repeat(6_000)]) {
    const start = performance.now();
    sanitizeHtml(html);
    const ms = performance.now() - start;
    assert.ok(ms < 2_000, `${html.slice(0, 8)}… took ${Math.round(ms)} ms`);
  }
});

test("a matrix.to link to a user becomes a pill with the member's name as text", () => {
  const wrap = render(
    '<a href="https://matrix.to/#/@eve:example.org" onclick="x()">Eve</a> and ' +
      '<a href="https://matrix.to/#/%40bob%3Aexample.org">Bob</a> in ' +
      '<a href="https://matrix.to/#/#room:example.org">#room</a>',
  );
  const names = { "@eve:example.org": "<img src=x onerror=alert(1)>", "@bob:example.org": "Bob" };
  drawMentionPills(wrap, {}, { me: "@bob:example.org", nameOf: (id) => names[id], roleOf: () => null });
  const pills = [...wrap.querySelectorAll("[data-testid=mention-pill]")];
  assert.deepEqual(
    pills.map((p) => [p.textContent, p.getAttribute("data-user-id"), p.className]),
    [
      ["@<img src=x onerror=alert(1)>", "@eve:example.org", "mention"],
      ["@Bob", "@bob:example.org", "mention me"],
    ],
  );
  assert.equal(wrap.querySelector("img"), null);
  // A room link is no pill: it stays a link.
  assert.equal(wrap.querySelector("a")?.getAttribute("href"), "https://matrix.to/#/#room:example.org");
});

test("a spoiler hides its content until clicked; its reason shows as text, never as markup", () => {
  const wrap = render(
    'the end: <span data-mx-spoiler="plot &lt;b&gt;twist&lt;/b&gt;">Bruce <b>is</b> <a href="https://example.org/">dead</a></span>!',
  );
  const spoiler = wrap.querySelector(".spoiler");
  assert.ok(spoiler);
  assert.equal(spoiler.getAttribute("data-spoiler"), "hidden");
  assert.equal(spoiler.getAttribute("role"), "button");
  assert.equal(spoiler.getAttribute("aria-expanded"), "false");
  assert.equal(spoiler.querySelector(".spoiler-reason")?.textContent, "(plot <b>twist</b>)");
  assert.equal(spoiler.querySelector(".spoiler-reason b"), null);
  const content = spoiler.querySelector(".spoiler-content");
  assert.equal(content?.querySelector("b")?.textContent, "is");
  assert.equal(content?.querySelector("a")?.getAttribute("href"), "https://example.org/");
  assert.equal(content?.textContent, "Bruce is dead");
  // The first click reveals and goes no further (a link inside is not followed).
  const click = new Event("click", { bubbles: true, cancelable: true });
  spoiler.dispatchEvent(click);
  assert.equal(click.defaultPrevented, true);
  assert.equal(spoiler.getAttribute("data-spoiler"), "shown");
  assert.equal(spoiler.getAttribute("aria-expanded"), "true");
  const again = new Event("click", { bubbles: true, cancelable: true });
  spoiler.dispatchEvent(again);
  assert.equal(again.defaultPrevented, false);
  // Without a reason, no reason is drawn.
  assert.equal(render("<span data-mx-spoiler>x</span>").querySelector(".spoiler-reason"), null);
  // A plain span, or one with other data-mx attributes, is no spoiler.
  assert.equal(out('<span data-mx-color="#f00">x</span>'), "<span>x</span>");
});

test("one line standing in for a message never shows what a spoiler hides", () => {
  const html = (formatted_body, body = "plain") => ({ msgtype: "m.text", body, format: "org.matrix.custom.html", formatted_body });
  // Ours: `||…||` is sent verbatim in the body, as Element's /spoiler does.
  const ours = messageContent("the end: ||Bruce is dead|| !");
  assert.match(ours.body, /Bruce/);
  assert.equal(plainPreview(ours), "the end: [Spoiler] !");
  // Another client's, with a reason, markup and a reply fallback to drop.
  assert.equal(
    plainPreview(html('<mx-reply><blockquote>quoted</blockquote></mx-reply><p>Ending: <span data-mx-spoiler="film &lt;i&gt;x&lt;/i&gt;"><b>Bruce</b> dies</span></p><p>bye<br>now</p>', "> quoted\n\nEnding: Bruce dies")),
    "Ending: [Spoiler: film <i>x</i>]\nbye\nnow",
  );
  // A table reads a row to a line, its cells tab-separated (the spec's fallback for tables); a
  // fold's summary is a line of its own.
  assert.equal(
    plainPreview(html(
      "<table>\n<thead>\n<tr>\n<th>who</th>\n<th>what</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td>Bruce</td>\n" +
        "<td><span data-mx-spoiler>a ghost</span></td>\n</tr>\n</tbody>\n</table><details><summary>more</summary>text</details>after",
    )),
    "who\twhat\nBruce\t[Spoiler]\nmore\ntext\nafter",
  );
  // Without a spoiler, the body as sent (its HTML is not needed for one line).
  assert.equal(plainPreview(html("<b>bold</b> move", "**bold** move")), "**bold** move");
  assert.equal(plainPreview({ body: "text" }), "text");
  assert.equal(plainPreview({}), "");
  // A search hit's line reads the same way (server-side search matches the body's words).
  const { hits } = readSearchAnswer({
    search_categories: {
      room_events: {
        count: 1,
        results: [{ rank: 1, result: { event_id: "$e", room_id: "!r", sender: "@a:x", origin_server_ts: 1, content: ours } }],
      },
    },
  });
  assert.equal(hits[0].body, "the end: [Spoiler] !");
});
