import { test } from "node:test";
import assert from "node:assert/strict";
import { paragraphs, parseInline, parseMarkdown, renderMarkdown, type ElementFactory } from "../src/markdown";

test("blocks: headings, paragraphs, lists, quotes, fences and tables", () => {
  const md = "# Title\n\nSome *text*\nwrapped.\n\n- one\n- two\n  continued\n\n1. first\n2. second\n\n> quoted\n\n```py\nx = 1\n```\n\n| a | b |\n|---|---|\n";
  const blocks = parseMarkdown(md);
  assert.deepEqual(blocks.map((b) => b.kind), ["heading", "paragraph", "list", "list", "quote", "pre", "pre"]);
  assert.deepEqual(blocks[2], { kind: "list", ordered: false, items: [[{ kind: "text", text: "one" }], [{ kind: "text", text: "two continued" }]] });
  assert.deepEqual(blocks[5], { kind: "pre", text: "x = 1", language: "py" });
  assert.deepEqual(blocks[6], { kind: "pre", text: "| a | b |\n|---|---|", language: "table" });
});

test("inline: code is literal, strong and em nest, links become text with their address", () => {
  assert.deepEqual(parseInline("use `a*b*c` **now** and *x*"), [
    { kind: "text", text: "use " },
    { kind: "code", text: "a*b*c" },
    { kind: "text", text: " " },
    { kind: "strong", children: [{ kind: "text", text: "now" }] },
    { kind: "text", text: " and " },
    { kind: "em", children: [{ kind: "text", text: "x" }] },
  ]);
  assert.deepEqual(parseInline("see [RFC 9457](https://x.test/9457)"), [{ kind: "text", text: "see RFC 9457 (https://x.test/9457)" }]);
  assert.deepEqual(parseInline("2 * 3 * 4"), [{ kind: "text", text: "2 * 3 * 4" }], "spaced asterisks are text");
});

/** A fake document that records what was built; it has no way to parse HTML at all. */
function fakeDoc(): ElementFactory {
  class El {
    children: Array<El | { text: string }> = [];
    textContent = "";
    constructor(readonly tag: string) {}
    append(...nodes: Array<El | { text: string }>) {
      this.children.push(...nodes);
    }
  }
  return {
    createElement: (tag: string) => new El(tag) as unknown as HTMLElement,
    createTextNode: (text: string) => ({ text }) as unknown as Text,
  };
}

function flat(node: unknown): string {
  const n = node as { tag?: string; text?: string; textContent?: string; children?: unknown[] };
  if (n.tag === undefined) return n.text ?? "";
  const inner = (n.children ?? []).map(flat).join("") + (n.textContent ?? "");
  return `<${n.tag}>${inner}</${n.tag}>`;
}

test("HTML in server text is rendered as text, never as markup", () => {
  const evil = "# <img src=x onerror=alert(1)>\n\nHello <script>alert(1)</script> `<b>` **<i>x</i>**";
  const out = renderMarkdown(fakeDoc(), evil, 3).map(flat).join("");
  assert.equal(
    out,
    "<h3><img src=x onerror=alert(1)></h3><p>Hello <script>alert(1)</script> <code><b></code> <strong><i>x</i></strong></p>",
  );
  // The fake's only element tags are the renderer's own: the `<img>` above is text inside h3.
  const tags = JSON.stringify(renderMarkdown(fakeDoc(), evil, 3)).match(/"tag":"(\w+)"/g);
  assert.deepEqual(tags, ['"tag":"h3"', '"tag":"p"', '"tag":"code"', '"tag":"strong"']);
});

test("the notice body splits into paragraphs at blank lines", () => {
  assert.deepEqual(paragraphs("One\nline.\r\n\r\nTwo.\n   \n\nThree."), ["One\nline.", "Two.", "Three."]);
});
