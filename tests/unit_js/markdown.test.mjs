// The composer's markdown-lite (web/static/js/markdown.js): what is parsed, and the escaped
// `formatted_body` it becomes. sanitizeHtml, for others' HTML, is in sanitize.test.mjs.

import assert from "node:assert/strict";
import { test } from "node:test";

import { messageContent, parseMarkdown, toHtml } from "../../web/static/js/markdown.js";

test("plain text stays a plain body, with no HTML sent", () => {
  assert.deepEqual(messageContent("just words, 2 * 3 = 6"), { msgtype: "m.text", body: "just words, 2 * 3 = 6" });
});

test("bold, italic, strike, code and links become HTML", () => {
  const content = messageContent("**b** *i* _u_ ~~s~~ `c` [site](https://example.org/x)");
  assert.equal(content.format, "org.matrix.custom.html");
  assert.equal(
    content.formatted_body,
    '<strong>b</strong> <em>i</em> <em>u</em> <del>s</del> <code>c</code> <a href="https://example.org/x">site</a>',
  );
});

test("every text is escaped: typed HTML is shown, never run", () => {
  const content = messageContent('**<img src=x onerror="alert(1)">** & `<b>`');
  assert.equal(
    content.formatted_body,
    "<strong>&#60;img src=x onerror=&#34;alert(1)&#34;&#62;</strong> &#38; <code>&#60;b&#62;</code>",
  );
});

test("only http(s) links are made; a javascript: one stays text", () => {
  const tree = parseMarkdown("[click](javascript:alert(1)) and https://example.org/a.");
  assert.ok(!toHtml(tree).includes('href="javascript'));
  assert.match(toHtml(tree), /<a href="https:\/\/example\.org\/a">https:\/\/example\.org\/a<\/a>\.$/);
});

test("a code block keeps its lines and its markup unparsed", () => {
  const content = messageContent("```js\nconst a = **b**;\n```");
  assert.equal(content.formatted_body, "<pre><code>const a = **b**;</code></pre>");
});

test("an underscore inside a word is not emphasis", () => {
  assert.deepEqual(messageContent("snake_case_name"), { msgtype: "m.text", body: "snake_case_name" });
});

test("||text|| is a spoiler, sent as the spec's data-mx-spoiler span; a lone | is text", () => {
  assert.deepEqual(messageContent("the end: ||Bruce is **dead**||!"), {
    msgtype: "m.text",
    body: "the end: ||Bruce is **dead**||!",
    format: "org.matrix.custom.html",
    formatted_body: "the end: <span data-mx-spoiler>Bruce is <strong>dead</strong></span>!",
  });
  assert.deepEqual(messageContent("a || b | c"), { msgtype: "m.text", body: "a || b | c" });
  assert.equal(toHtml(parseMarkdown("||<img src=x>||")), "<span data-mx-spoiler>&#60;img src=x&#62;</span>");
});
