import { test } from "node:test";
import assert from "node:assert/strict";
import { keyClass } from "../src/keys";

test("keys are classified by name or by the category of the character they print", () => {
  const cases: Array<[string, string]> = [
    ["a", "letter"], ["Z", "letter"], ["é", "letter"], ["ж", "letter"], ["中", "letter"],
    ["7", "digit"], ["٣", "digit"],
    [" ", "whitespace"], ["Tab", "whitespace"],
    [";", "punctuation"], ["{", "punctuation"], ["+", "punctuation"], ["$", "punctuation"],
    ["Enter", "enter"], ["Backspace", "backspace"], ["Delete", "delete"],
    ["ArrowLeft", "navigation"], ["PageDown", "navigation"], ["Home", "navigation"],
    ["Shift", "modifier"], ["Control", "modifier"], ["Meta", "modifier"], ["CapsLock", "modifier"],
    ["Dead", "other"], ["Process", "other"], ["F5", "other"], ["Escape", "other"], ["Unidentified", "other"],
    ["😀", "punctuation"],
  ];
  for (const [key, expected] of cases) assert.equal(keyClass(key), expected, key);
});
