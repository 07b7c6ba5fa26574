/**
 * A very small, safe subset of Markdown for task prompts: headings, paragraphs, lists, block
 * quotes, fenced code, tables shown as preformatted text, and inline `code`, **strong** and
 * *emphasis*. Server text is parsed into a tree and turned into elements with `textContent`,
 * never `innerHTML`: whatever the prompt holds (HTML, scripts, links) is shown as text. Links
 * are not made clickable (`[text](url)` shows as "text (url)").
 */

export type Inline =
  | { kind: "text"; text: string }
  | { kind: "code"; text: string }
  | { kind: "strong"; children: Inline[] }
  | { kind: "em"; children: Inline[] };

export type Block =
  | { kind: "heading"; level: number; children: Inline[] }
  | { kind: "paragraph"; children: Inline[] }
  | { kind: "list"; ordered: boolean; items: Inline[][] }
  | { kind: "quote"; children: Inline[] }
  | { kind: "pre"; text: string; language: string };

const FENCE = /^(```|~~~)\s*([\w+-]*)\s*$/;
const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const NUMBERED = /^\s{0,3}\d{1,9}[.)]\s+(.*)$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const TABLE = /^\s{0,3}\|/;

/** The blocks of `source` (line endings normalised). */
export function parseMarkdown(source: string): Block[] {
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === "") {
      i++;
      continue;
    }
    const fence = FENCE.exec(line.trim());
    if (fence) {
      const close = fence[1]!;
      const body: string[] = [];
      i++;
      while (i < lines.length && lines[i]!.trim() !== close) body.push(lines[i++]!);
      i++; // the closing fence (or the end)
      blocks.push({ kind: "pre", text: body.join("\n"), language: fence[2] ?? "" });
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      blocks.push({ kind: "heading", level: heading[1]!.length, children: parseInline(heading[2]!) });
      i++;
      continue;
    }
    if (TABLE.test(line)) {
      const rows: string[] = [];
      while (i < lines.length && TABLE.test(lines[i]!)) rows.push(lines[i++]!.trim());
      blocks.push({ kind: "pre", text: rows.join("\n"), language: "table" });
      continue;
    }
    if (BULLET.test(line) || NUMBERED.test(line)) {
      const ordered = !BULLET.test(line);
      const pattern = ordered ? NUMBERED : BULLET;
      const items: string[] = [];
      while (i < lines.length && lines[i]!.trim() !== "") {
        const m = pattern.exec(lines[i]!);
        if (m) items.push(m[1]!);
        else if (/^\s+\S/.test(lines[i]!) && items.length) items[items.length - 1] += ` ${lines[i]!.trim()}`;
        else break;
        i++;
      }
      blocks.push({ kind: "list", ordered, items: items.map(parseInline) });
      continue;
    }
    if (QUOTE.test(line)) {
      const body: string[] = [];
      let m: RegExpExecArray | null;
      while (i < lines.length && (m = QUOTE.exec(lines[i]!))) {
        body.push(m[1]!);
        i++;
      }
      blocks.push({ kind: "quote", children: parseInline(body.join(" ")) });
      continue;
    }
    const para: string[] = [];
    while (
      i < lines.length &&
      lines[i]!.trim() !== "" &&
      !FENCE.test(lines[i]!.trim()) &&
      !HEADING.test(lines[i]!) &&
      !BULLET.test(lines[i]!) &&
      !NUMBERED.test(lines[i]!) &&
      !QUOTE.test(lines[i]!) &&
      !TABLE.test(lines[i]!)
    ) {
      para.push(lines[i++]!.trim());
    }
    blocks.push({ kind: "paragraph", children: parseInline(para.join(" ")) });
  }
  return blocks;
}

/** Inline spans: `code` first (nothing inside it is markup), then **strong**, *em*, links as text. */
export function parseInline(text: string): Inline[] {
  const out: Inline[] = [];
  const push = (node: Inline) => {
    const last = out[out.length - 1];
    if (node.kind === "text" && last?.kind === "text") last.text += node.text;
    else if (node.kind !== "text" || node.text) out.push(node);
  };
  let i = 0;
  let plain = "";
  const flush = () => {
    if (plain) push({ kind: "text", text: plain });
    plain = "";
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === "`") {
      const ticks = /^`+/.exec(text.slice(i))![0];
      const end = text.indexOf(ticks, i + ticks.length);
      if (end > 0) {
        flush();
        push({ kind: "code", text: text.slice(i + ticks.length, end).trim() || text.slice(i + ticks.length, end) });
        i = end + ticks.length;
        continue;
      }
      plain += ticks;
      i += ticks.length;
      continue;
    }
    if (text.startsWith("**", i) || text.startsWith("__", i)) {
      const mark = text.slice(i, i + 2);
      const end = text.indexOf(mark, i + 2);
      if (end > i + 2) {
        flush();
        push({ kind: "strong", children: parseInline(text.slice(i + 2, end)) });
        i = end + 2;
        continue;
      }
    }
    if (c === "*" && text[i + 1] !== " ") {
      const end = text.indexOf("*", i + 1);
      if (end > i + 1 && text[end - 1] !== " ") {
        flush();
        push({ kind: "em", children: parseInline(text.slice(i + 1, end)) });
        i = end + 1;
        continue;
      }
    }
    if (c === "[") {
      const m = /^\[([^\]]+)\]\(([^)\s]+)\)/.exec(text.slice(i));
      if (m) {
        plain += m[1] === m[2] ? m[1] : `${m[1]} (${m[2]})`;
        i += m[0].length;
        continue;
      }
    }
    plain += c;
    i++;
  }
  flush();
  return out;
}

/** The subset of `Document` the renderer needs. */
export interface ElementFactory {
  createElement(tag: string): HTMLElement;
  createTextNode(text: string): Text;
}

function inlines(doc: ElementFactory, parent: HTMLElement, nodes: Inline[]): void {
  for (const node of nodes) {
    switch (node.kind) {
      case "text":
        parent.append(doc.createTextNode(node.text));
        break;
      case "code": {
        const el = doc.createElement("code");
        el.textContent = node.text;
        parent.append(el);
        break;
      }
      case "strong":
      case "em": {
        const el = doc.createElement(node.kind);
        inlines(doc, el, node.children);
        parent.append(el);
        break;
      }
    }
  }
}

/**
 * Elements for `source`, headings shifted so that the prompt's `#` is `headingBase` (the page
 * owns its `h1`). Only `textContent` and `createElement` of fixed tags are used.
 */
export function renderMarkdown(doc: ElementFactory, source: string, headingBase = 3): HTMLElement[] {
  return parseMarkdown(source).map((block) => {
    switch (block.kind) {
      case "heading": {
        const el = doc.createElement(`h${Math.min(6, block.level + headingBase - 1)}`);
        inlines(doc, el, block.children);
        return el;
      }
      case "paragraph": {
        const el = doc.createElement("p");
        inlines(doc, el, block.children);
        return el;
      }
      case "quote": {
        const el = doc.createElement("blockquote");
        inlines(doc, el, block.children);
        return el;
      }
      case "list": {
        const el = doc.createElement(block.ordered ? "ol" : "ul");
        for (const item of block.items) {
          const li = doc.createElement("li");
          inlines(doc, li, item);
          el.append(li);
        }
        return el;
      }
      case "pre": {
        const el = doc.createElement("pre");
        const code = doc.createElement("code");
        code.textContent = block.text;
        el.append(code);
        return el;
      }
    }
  });
}

/** Plain-text paragraphs (the monitoring notice): blocks separated by blank lines. */
export function paragraphs(text: string): string[] {
  return text
    .replace(/\r\n?/g, "\n")
    .split(/\n[ \t]*\n/)
    .map((p) => p.trim())
    .filter((p) => p !== "");
}
