/**
 * Key classes from keyboard events. Only the class leaves this function: the character is read
 * to classify it and never stored, queued or sent.
 */

import type { KeyClass } from "./wire";

const NAVIGATION = new Set([
  "ArrowLeft",
  "ArrowRight",
  "ArrowUp",
  "ArrowDown",
  "Home",
  "End",
  "PageUp",
  "PageDown",
]);

const MODIFIERS = new Set([
  "Shift",
  "Control",
  "Alt",
  "AltGraph",
  "Meta",
  "OS",
  "Super",
  "Hyper",
  "Fn",
  "FnLock",
  "CapsLock",
  "NumLock",
  "ScrollLock",
  "Symbol",
  "SymbolLock",
]);

const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{N}$/u;
const WHITESPACE = /^\s$/u;
const PUNCTUATION = /^[\p{P}\p{S}]$/u;

/**
 * The class of a key from its `KeyboardEvent.key` value: named keys by name, a printed
 * character by its Unicode category. Dead keys, IME composition (`Process`), function keys and
 * anything unknown are `other`.
 */
export function keyClass(key: string): KeyClass {
  switch (key) {
    case "Enter":
      return "enter";
    case "Backspace":
      return "backspace";
    case "Delete":
      return "delete";
    case "Tab":
    case " ":
      return "whitespace";
  }
  if (NAVIGATION.has(key)) return "navigation";
  if (MODIFIERS.has(key)) return "modifier";
  // One printed character (one code point; `[...key]` keeps a surrogate pair together).
  if ([...key].length === 1) {
    if (LETTER.test(key)) return "letter";
    if (DIGIT.test(key)) return "digit";
    if (WHITESPACE.test(key)) return "whitespace";
    if (PUNCTUATION.test(key)) return "punctuation";
  }
  return "other";
}
