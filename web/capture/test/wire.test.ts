// The TypeScript mirror of the wire contract against the committed JSON Schemas and OpenAPI
// document (docs/schemas/, generated from the Rust types): the two cannot drift apart unnoticed.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { EDIT_ORIGINS, KEY_CLASSES, KINDS, SERVER_LIMITS, type TelemetryData, type TelemetryKind } from "../src/wire";

// Tests run from web/ (`npm test`); CLARITY_SCHEMAS overrides.
const SCHEMAS = process.env["CLARITY_SCHEMAS"] ?? join(process.cwd(), "..", "docs", "schemas");

type Of<K extends TelemetryKind> = Extract<TelemetryData, { type: K }>;
type OptionalKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? K : never }[keyof T];

// One event of each kind with every field present: `Required<...>` makes the compiler insist on
// each field of the TypeScript type, and an object literal may not name any other.
const SAMPLES: { [K in TelemetryKind]: Required<Of<K>> } = {
  keystroke: { type: "keystroke", down_ms: 1, up_ms: 2, key_class: "letter" },
  edit: { type: "edit", file: "a", position: 0, deleted: 0, inserted: "", origin: "typed" },
  file_created: { type: "file_created", file: "a", content: "" },
  file_renamed: { type: "file_renamed", file: "a", new_file: "b" },
  file_deleted: { type: "file_deleted", file: "a" },
  focus_lost: { type: "focus_lost" },
  focus_regained: { type: "focus_regained" },
  cursor: { type: "cursor", file: "a", position: 0, selection_end: 0 },
  code_run: { type: "code_run", command: "x", exit_code: 0, tests_passed: 0, tests_failed: 0, duration_ms: 0 },
  face_check: { type: "face_check", similarity: 1, model_id: "m", model_version: "1", face_count: 1, quality: 1 },
};

// The optional fields of each kind; the declarations below fail to compile if this list and the
// TypeScript types disagree in either direction.
const OPTIONAL = {
  keystroke: ["up_ms"],
  edit: [],
  file_created: ["content"],
  file_renamed: [],
  file_deleted: [],
  focus_lost: [],
  focus_regained: [],
  cursor: ["selection_end"],
  code_run: ["tests_passed", "tests_failed"],
  face_check: [],
} as const satisfies { [K in TelemetryKind]: readonly OptionalKeys<Of<K>>[] };
type Unlisted = { [K in TelemetryKind]: Exclude<OptionalKeys<Of<K>>, (typeof OPTIONAL)[K][number]> };
const everyOptionalListed: { [K in TelemetryKind]: never } = null as unknown as Unlisted;
void everyOptionalListed;

interface Schema {
  properties: Record<string, unknown>;
  maxItems?: number;
  maxLength?: number;
  required?: string[];
  enum?: string[];
  const?: string;
}

function eventSchema(kind: string): Schema {
  const file = join(SCHEMAS, "events", `clarity.Telemetry.${kind}.v1.json`);
  return JSON.parse(readFileSync(file, "utf8")) as Schema;
}

test("every telemetry kind has a published schema and every published telemetry schema is a kind", () => {
  const published = readdirSync(join(SCHEMAS, "events"))
    .map((f) => /^clarity\.Telemetry\.([a-z_]+)\.v1\.json$/.exec(f)?.[1])
    .filter((k): k is string => k !== undefined)
    .sort();
  assert.deepEqual(published, [...KINDS].sort());
  assert.deepEqual(Object.keys(SAMPLES).sort(), [...KINDS].sort());
});

test("each kind's fields and required fields are the schema's", () => {
  for (const kind of KINDS) {
    const data = eventSchema(kind).properties["data"] as Schema;
    assert.deepEqual(Object.keys(data.properties).sort(), Object.keys(SAMPLES[kind]).sort(), kind);
    const optional: readonly string[] = OPTIONAL[kind];
    const required = Object.keys(SAMPLES[kind]).filter((f) => !optional.includes(f));
    assert.deepEqual([...(data.required ?? [])].sort(), required.sort(), kind);
    assert.deepEqual((data.properties["type"] as Schema).enum, [kind]);
  }
});

test("key classes, edit origins and the batch and answer shapes are the OpenAPI document's", () => {
  const openapi = JSON.parse(readFileSync(join(SCHEMAS, "openapi.json"), "utf8")) as {
    components: { schemas: Record<string, Schema & { oneOf?: Schema[] }> };
  };
  const schemas = openapi.components.schemas;
  assert.deepEqual(schemas["KeyClass"]!.enum, [...KEY_CLASSES]);
  assert.deepEqual(schemas["EditOrigin"]!.enum, [...EDIT_ORIGINS]);
  assert.deepEqual(
    schemas["TelemetryData"]!.oneOf!.map((s) => (s.properties["type"] as Schema).enum![0]),
    [...KINDS],
  );
  assert.deepEqual(Object.keys(schemas["TelemetryEvent"]!.properties).sort(), ["data", "seq", "ts"]);
  assert.deepEqual(Object.keys(schemas["TelemetryBatch"]!.properties), ["events"]);
  assert.deepEqual(Object.keys(schemas["IngestResult"]!.properties).sort(), ["accepted", "duplicates", "last_seq"]);
});

test("the limits the capture checks locally are the published ones", () => {
  const openapi = JSON.parse(readFileSync(join(SCHEMAS, "openapi.json"), "utf8")) as {
    components: { schemas: Record<string, Schema> };
  };
  const events = openapi.components.schemas["TelemetryBatch"]!.properties["events"] as Schema;
  assert.equal(events.maxItems, SERVER_LIMITS.maxBatchEvents);
  const data = (kind: string) => eventSchema(kind).properties["data"] as Schema;
  for (const kind of ["edit", "file_created", "file_deleted", "cursor"]) {
    assert.equal((data(kind).properties["file"] as Schema).maxLength, SERVER_LIMITS.maxPathChars, kind);
  }
  assert.equal((data("code_run").properties["command"] as Schema).maxLength, SERVER_LIMITS.maxCommandChars);
});
