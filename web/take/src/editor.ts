/**
 * The code editor: one CodeMirror view, one state per file (each keeps its own undo history and
 * selection), switched when the candidate opens another file. Every transaction of the shown
 * file goes to `onTransaction` with that file's path: the page hands it to the capture library.
 */

import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { go } from "@codemirror/lang-go";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import { sql } from "@codemirror/lang-sql";
import { bracketMatching, defaultHighlightStyle, indentOnInput, syntaxHighlighting } from "@codemirror/language";
import { Compartment, EditorState, type Extension, type Transaction } from "@codemirror/state";
import {
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from "@codemirror/view";
import { languageOf } from "./files";

function languageExtension(path: string): Extension {
  switch (languageOf(path)) {
    case "python":
      return python();
    case "javascript":
      return javascript();
    case "typescript":
      return javascript({ typescript: true });
    case "json":
      return javascript();
    case "sql":
      return sql();
    case "markdown":
      // Shown as plain text: the Markdown mode brings HTML, CSS and JS modes with it (~110 KB).
      return [];
    case "go":
      return go();
    case null:
      return [];
  }
}

const theme = EditorView.theme({
  "&": { height: "100%", fontSize: "15px", backgroundColor: "#ffffff" },
  ".cm-scroller": { fontFamily: "var(--mono)", lineHeight: "1.55" },
  ".cm-content": { caretColor: "#1a2433" },
  "&.cm-focused": { outline: "none" },
  ".cm-gutters": { backgroundColor: "#f5f7fa", color: "#5b6677", borderRight: "1px solid #dde3ea" },
  ".cm-activeLine": { backgroundColor: "#f3f7fd" },
  ".cm-activeLineGutter": { backgroundColor: "#e6eef9", color: "#1a2433" },
  "&.cm-focused .cm-selectionBackground, ::selection": { backgroundColor: "#c9dcf5" },
  ".cm-selectionBackground": { backgroundColor: "#dbe4ee" },
});

export class Editor {
  readonly view: EditorView;
  private readonly states = new Map<string, EditorState>();
  private readonly editable = new Compartment();
  private isEditable = true;
  current: string | null = null;

  constructor(
    parent: HTMLElement,
    private readonly onTransaction: (file: string, tr: Transaction) => void,
  ) {
    // CodeMirror writes its styles with style-mod, which uses a `<style>` element in a document
    // (refused by the page's CSP, `style-src 'self'`) but a constructed style sheet in a shadow
    // root (not subject to it). So the editor lives in a shadow root.
    const shadow = parent.attachShadow({ mode: "open" });
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(":host { display: block; } .wrap { height: 100%; }");
    shadow.adoptedStyleSheets = [sheet];
    const wrap = document.createElement("div");
    wrap.className = "wrap";
    shadow.append(wrap);
    this.view = new EditorView({
      parent: wrap,
      root: shadow,
      state: EditorState.create({ doc: "", extensions: [EditorView.editable.of(false), theme] }),
    });
  }

  private makeState(path: string, content: string): EditorState {
    return EditorState.create({
      doc: content,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightActiveLine(),
        drawSelection(),
        // Wrapped lines: no horizontal scrolling, readable at 800 px wide and at 200 % zoom.
        EditorView.lineWrapping,
        history(),
        indentOnInput(),
        bracketMatching(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
        languageExtension(path),
        theme,
        this.editable.of(EditorView.editable.of(this.isEditable)),
        EditorView.contentAttributes.of({ "aria-label": `Code editor, file ${path}`, "data-testid": "editor-content" }),
        EditorView.updateListener.of((u) => {
          const file = this.current;
          if (file === null) return;
          for (const tr of u.transactions) this.onTransaction(file, tr);
        }),
      ],
    });
  }

  /** Replaces every file (a resume); opens `open` or the first file. */
  load(files: ReadonlyMap<string, string>, open?: string): void {
    this.states.clear();
    for (const [path, content] of files) this.states.set(path, this.makeState(path, content));
    const first = open && files.has(open) ? open : [...files.keys()].sort()[0];
    this.current = null;
    if (first !== undefined) this.open(first);
    else this.view.setState(EditorState.create({ doc: "", extensions: [EditorView.editable.of(false), theme] }));
  }

  /** Shows `path` (keeping the state of the file shown before). */
  open(path: string): void {
    const state = this.states.get(path);
    if (!state) return;
    this.saveCurrent();
    this.current = path;
    this.view.setState(state);
  }

  private saveCurrent(): void {
    if (this.current !== null && this.states.has(this.current)) this.states.set(this.current, this.view.state);
  }

  paths(): string[] {
    return [...this.states.keys()];
  }

  has(path: string): boolean {
    return this.states.has(path);
  }

  /** Every file's current content. */
  files(): Map<string, string> {
    this.saveCurrent();
    return new Map([...this.states].map(([p, s]) => [p, s.doc.toString()]));
  }

  create(path: string, content = ""): void {
    this.saveCurrent();
    this.states.set(path, this.makeState(path, content));
  }

  rename(from: string, to: string): void {
    this.saveCurrent();
    const state = this.states.get(from);
    if (!state) return;
    this.states.delete(from);
    // A new state: the language and the accessible name follow the new name.
    this.states.set(to, this.makeState(to, state.doc.toString()));
    if (this.current === from) {
      this.current = null;
      this.open(to);
    }
  }

  remove(path: string): void {
    this.saveCurrent();
    this.states.delete(path);
    if (this.current === path) {
      this.current = null;
      const next = [...this.states.keys()].sort()[0];
      if (next !== undefined) this.open(next);
      else this.view.setState(EditorState.create({ doc: "", extensions: [EditorView.editable.of(false), theme] }));
    }
  }

  /** Stops (or allows) editing, e.g. once the work is submitted. */
  setEditable(on: boolean): void {
    this.isEditable = on;
    this.view.dispatch({ effects: this.editable.reconfigure(EditorView.editable.of(on)) });
  }

  focus(): void {
    this.view.focus();
  }
}
