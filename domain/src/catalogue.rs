//! The built-in library: seven backend assessments every organization can use without writing
//! its own.
//!
//! Each entry is an ordinary [`AssessmentSpec`] (a take-home task with a markdown prompt, starter
//! files and a weighted rubric) under a fixed id. `clarity seed` loads the library idempotently:
//! it creates each assessment under its id (with `org_id: None`, visible to every organization)
//! if it does not exist yet, and revises and publishes a new version only when the spec here
//! differs from the latest published one. The ids are therefore part of the public contract:
//! they are hard-coded constants that must never change across releases, and the content is
//! plain data so that [`builtin`] returns the same specs (and the same digests) on every call.
//!
//! Editing an entry is a product change: it becomes a new published version the next time the
//! library is seeded, while sessions already invited keep the version (and digest) they were
//! invited to.

use uuid::Uuid;

use crate::assessment::{
    AssessmentKind, AssessmentSpec, Criterion, Difficulty, Format, IntegrityPolicy, Level, Rubric,
    StarterFile, Task,
};

/// One assessment of the built-in library under its stable id.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogueEntry {
    pub id: Uuid,
    pub spec: AssessmentSpec,
}

/// Stable id of "REST API Design & Implementation".
pub const REST_API_DESIGN_ID: Uuid = Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0001);
/// Stable id of "Database Schema Optimization".
pub const DATABASE_SCHEMA_OPTIMIZATION_ID: Uuid =
    Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0002);
/// Stable id of "Distributed Cache Strategy".
pub const DISTRIBUTED_CACHE_STRATEGY_ID: Uuid =
    Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0003);
/// Stable id of "Microservice Orchestration".
pub const MICROSERVICE_ORCHESTRATION_ID: Uuid =
    Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0004);
/// Stable id of "Real-world Bug Hunt".
pub const BUG_HUNT_ID: Uuid = Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0005);
/// Stable id of "Async Task Queue Implementation".
pub const ASYNC_TASK_QUEUE_ID: Uuid = Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0006);
/// Stable id of "Rate Limiting & Throttling Design".
pub const RATE_LIMITING_ID: Uuid = Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0007);

/// The built-in library, in presentation order.
///
/// Stable ids: every entry's id is a fixed UUID (`Uuid::from_u128` over a hard-coded constant), so
/// ids never change across releases and seeding stays idempotent.
pub fn builtin() -> Vec<CatalogueEntry> {
    vec![
        rest_api_design(),
        database_schema_optimization(),
        distributed_cache_strategy(),
        microservice_orchestration(),
        bug_hunt(),
        async_task_queue(),
        rate_limiting(),
    ]
}

/// The integrity monitors of every library assessment: the defaults, without face continuity
/// (a take-home should not require a camera).
fn integrity_policy() -> IntegrityPolicy {
    IntegrityPolicy {
        face_continuity: false,
        ..IntegrityPolicy::default()
    }
}

/// Drops the newline that follows the opening quote of an indented raw string.
fn text(s: &str) -> String {
    s.strip_prefix('\n').unwrap_or(s).to_string()
}

fn file(path: &str, content: &str) -> StarterFile {
    StarterFile {
        path: path.to_string(),
        content: text(content),
    }
}

fn task(title: &str, prompt: &str, starter_files: Vec<StarterFile>) -> Task {
    Task {
        title: title.to_string(),
        prompt: text(prompt),
        starter_files,
    }
}

/// A criterion with four levels scored 1 (weakest) to 4 (strongest).
fn criterion(key: &str, name: &str, weight: u32, levels: [&str; 4]) -> Criterion {
    Criterion {
        key: key.to_string(),
        name: name.to_string(),
        weight,
        levels: levels
            .iter()
            .zip(1u8..)
            .map(|(descriptor, score)| Level {
                score,
                descriptor: descriptor.to_string(),
            })
            .collect(),
    }
}

/// The fields every library entry shares; keeps each entry below to its content.
struct Entry {
    id: Uuid,
    title: &'static str,
    kind: AssessmentKind,
    difficulty: Difficulty,
    best_for: &'static str,
    time_limit_minutes: u32,
    task: Task,
    criteria: Vec<Criterion>,
}

impl From<Entry> for CatalogueEntry {
    fn from(e: Entry) -> Self {
        CatalogueEntry {
            id: e.id,
            spec: AssessmentSpec {
                title: e.title.to_string(),
                kind: e.kind,
                difficulty: e.difficulty,
                best_for: e.best_for.to_string(),
                format: Format::TakeHome,
                time_limit_minutes: e.time_limit_minutes,
                tasks: vec![e.task],
                rubric: Rubric {
                    criteria: e.criteria,
                },
                integrity_policy: integrity_policy(),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. REST API Design & Implementation
// ---------------------------------------------------------------------------------------------

fn rest_api_design() -> CatalogueEntry {
    Entry {
        id: REST_API_DESIGN_ID,
        title: "REST API Design & Implementation",
        kind: AssessmentKind::RestApiDesign,
        difficulty: Difficulty::Mid,
        best_for: "Evaluating API design sense and REST principles",
        time_limit_minutes: 120,
        task: task(
            "Design and implement the public v1 bookings API",
            r#"
# Deskly bookings API, v1

## Scenario

Deskly runs 40 co-working sites in Europe and North America. Members book desks and meeting
rooms through the Deskly app and, since last quarter, through partner integrations: a calendar
plug-in and two corporate travel tools. The "API" those partners use grew out of the app's
private backend (`src/app.ts`): it puts verbs in URLs (`/getSpaces`, `/makeBooking`), answers
`200` with `{"ok": false}` for every error, and compares times as strings. Partners retry
aggressively on timeouts, and last month that produced 260 duplicate bookings.

You are designing and implementing the first public version, `/v1`, which partners will build
against for years. The legacy endpoints must keep working until the app migrates.

## Requirements

1. **List spaces**: `GET` the spaces of the network, filterable by site, type (`desk` or
   `meeting_room`) and minimum capacity, with cursor-based pagination that neither repeats nor
   skips spaces when new ones are added between two page requests.
2. **Availability**: the free slots of one space on one date, where "date" means the calendar day
   in the site's own time zone (see `opensAt` / `closesAt` in the store).
3. **Create a booking** for a space and a time range. Two confirmed bookings of the same space must
   never overlap, even when the requests arrive concurrently. A client that retries a request with
   the same `Idempotency-Key` header must receive the original response, not a second booking.
4. **Read, reschedule and cancel** a booking. Cancelling twice must be harmless. Rescheduling into
   a taken slot must fail and leave the booking unchanged.
5. **Errors** in one consistent, documented format (we suggest `application/problem+json`,
   RFC 9457) with the right status code for each case and field-level detail for validation
   failures.
6. `openapi.yaml` must describe exactly what you built.

## Constraints

- Keep the in-memory store in `src/store.ts`; no database is needed. Its methods are asynchronous
  on purpose: treat each call as a round trip to a database shared by several API instances, and
  do not rely on Node's single thread for correctness where a real deployment would not give it
  to you. Say in your notes what you would do differently on PostgreSQL.
- Bookings start and end on 15-minute boundaries, last between 30 minutes and 10 hours, fall inside
  the site's opening hours and may not start in the past.
- Times on the wire are RFC 3339 with an offset. Ids are opaque strings.
- No authentication work: the gateway puts the caller's member id in the `X-Member-Id` header.

## What to hand in

- The working service; `npm test` must pass.
- `openapi.yaml`, complete for the endpoints you implemented.
- `DESIGN.md` (one page at most): your resource model, the status code of every failure case, how
  idempotency and overlap prevention work, and what you deliberately left out.
- Tests for the cases you consider most likely to break.

## How it will be evaluated

Reviewers read `DESIGN.md` first, then exercise your API with a script that replays duplicate
requests, fires overlapping bookings concurrently and sends malformed input, and compare what
they see with your OpenAPI document. A small, consistent API a partner could use without asking
questions scores higher than a large one. Unfinished parts are fine when `DESIGN.md` says what
they would look like.
"#,
            vec![
                file(
                    "package.json",
                    r#"
{
  "name": "deskly-bookings-api",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "scripts": {
    "dev": "tsx watch src/app.ts",
    "start": "tsx src/app.ts",
    "test": "vitest run"
  },
  "dependencies": {
    "express": "^4.21.2",
    "zod": "^3.24.1"
  },
  "devDependencies": {
    "@types/express": "^4.17.21",
    "@types/node": "^22.10.2",
    "@types/supertest": "^6.0.2",
    "supertest": "^7.0.0",
    "tsx": "^4.19.2",
    "typescript": "^5.7.2",
    "vitest": "^2.1.8"
  }
}
"#,
                ),
                file(
                    "src/app.ts",
                    r#"
import express from "express";
import { store } from "./store.js";

export const app = express();
app.use(express.json());

// ---------------------------------------------------------------------------
// Legacy endpoints used by the Deskly app. Keep them working until the app
// migrates, but do not carry their conventions into /v1.
// ---------------------------------------------------------------------------

app.get("/getSpaces", async (req, res) => {
  const siteId = req.query.site as string | undefined;
  const spaces = await store.listSpaces();
  res.json({ ok: true, spaces: spaces.filter((s) => !siteId || s.siteId === siteId) });
});

app.post("/makeBooking", async (req, res) => {
  const { spaceId, start, end } = req.body ?? {};
  const memberId = req.header("X-Member-Id");
  if (!spaceId || !start || !end || !memberId) {
    res.json({ ok: false, error: "missing fields" });
    return;
  }
  const existing = await store.bookingsForSpace(spaceId);
  const clash = existing.some(
    (b) => b.status === "confirmed" && b.start < end && start < b.end,
  );
  if (clash) {
    res.json({ ok: false, error: "taken" });
    return;
  }
  const booking = await store.insertBooking({ spaceId, memberId, start, end });
  res.json({ ok: true, booking });
});

app.post("/cancelBooking", async (req, res) => {
  const booking = await store.getBooking(req.body?.id);
  if (!booking) {
    res.json({ ok: false, error: "not found" });
    return;
  }
  await store.updateBooking({ ...booking, status: "cancelled" });
  res.json({ ok: true });
});

// TODO: mount the /v1 router here.

if (process.env.NODE_ENV !== "test") {
  const port = Number(process.env.PORT ?? 3000);
  app.listen(port, () => console.log(`deskly api listening on :${port}`));
}
"#,
                ),
                file(
                    "src/store.ts",
                    r#"
import { randomUUID } from "node:crypto";

export type SpaceType = "desk" | "meeting_room";

export interface Site {
  id: string;
  name: string;
  timeZone: string; // IANA name, e.g. "Europe/London"
  opensAt: string; // local wall-clock time, "08:00"
  closesAt: string; // local wall-clock time, "20:00"
}

export interface Space {
  id: string;
  siteId: string;
  name: string;
  type: SpaceType;
  capacity: number;
  createdAt: string;
}

export interface Booking {
  id: string;
  spaceId: string;
  memberId: string;
  start: string; // RFC 3339
  end: string; // RFC 3339
  status: "confirmed" | "cancelled";
  createdAt: string;
  version: number;
}

/** Simulates the network round trip to the database: other requests run in between. */
const roundTrip = () => new Promise<void>((resolve) => setTimeout(resolve, 5 + Math.random() * 10));

/**
 * In-memory stand-in for the bookings database. In production several API instances share it,
 * so nothing here is atomic across calls.
 */
export class Store {
  private sites = new Map<string, Site>();
  private spaces = new Map<string, Space>();
  private bookings = new Map<string, Booking>();

  async getSite(id: string): Promise<Site | undefined> {
    await roundTrip();
    return this.sites.get(id);
  }

  async listSpaces(): Promise<Space[]> {
    await roundTrip();
    return [...this.spaces.values()];
  }

  async getSpace(id: string): Promise<Space | undefined> {
    await roundTrip();
    return this.spaces.get(id);
  }

  async bookingsForSpace(spaceId: string): Promise<Booking[]> {
    await roundTrip();
    return [...this.bookings.values()].filter((b) => b.spaceId === spaceId);
  }

  async getBooking(id: string): Promise<Booking | undefined> {
    await roundTrip();
    return this.bookings.get(id);
  }

  async insertBooking(input: Pick<Booking, "spaceId" | "memberId" | "start" | "end">): Promise<Booking> {
    await roundTrip();
    const booking: Booking = {
      ...input,
      id: `bk_${randomUUID().replaceAll("-", "")}`,
      status: "confirmed",
      createdAt: new Date().toISOString(),
      version: 1,
    };
    this.bookings.set(booking.id, booking);
    return booking;
  }

  async updateBooking(booking: Booking): Promise<Booking> {
    await roundTrip();
    const next = { ...booking, version: booking.version + 1 };
    this.bookings.set(next.id, next);
    return next;
  }

  seed(sites: Site[], spaces: Space[]): void {
    for (const s of sites) this.sites.set(s.id, s);
    for (const s of spaces) this.spaces.set(s.id, s);
  }
}

export const store = new Store();

store.seed(
  [
    { id: "site_ldn_shoreditch", name: "London Shoreditch", timeZone: "Europe/London", opensAt: "07:00", closesAt: "21:00" },
    { id: "site_nyc_flatiron", name: "New York Flatiron", timeZone: "America/New_York", opensAt: "08:00", closesAt: "20:00" },
  ],
  [
    { id: "spc_01", siteId: "site_ldn_shoreditch", name: "Hot desk 1", type: "desk", capacity: 1, createdAt: "2024-03-01T09:00:00Z" },
    { id: "spc_02", siteId: "site_ldn_shoreditch", name: "Hot desk 2", type: "desk", capacity: 1, createdAt: "2024-03-01T09:00:00Z" },
    { id: "spc_03", siteId: "site_ldn_shoreditch", name: "Turing room", type: "meeting_room", capacity: 8, createdAt: "2024-03-01T09:00:00Z" },
    { id: "spc_04", siteId: "site_nyc_flatiron", name: "Desk 14", type: "desk", capacity: 1, createdAt: "2024-06-12T14:30:00Z" },
    { id: "spc_05", siteId: "site_nyc_flatiron", name: "Hopper room", type: "meeting_room", capacity: 12, createdAt: "2024-06-12T14:30:00Z" },
  ],
);
"#,
                ),
                file(
                    "openapi.yaml",
                    r#"
openapi: 3.1.0
info:
  title: Deskly Bookings API
  version: 1.0.0
  description: >
    Public API for Deskly partners. The paths below are a starting point: rename, add and
    complete them so that this document describes exactly what you implement.
servers:
  - url: https://api.deskly.example/v1
paths:
  /spaces:
    get:
      summary: List spaces
      # TODO: filters, pagination parameters, response headers
      responses:
        '200':
          description: A page of spaces.
          content:
            application/json:
              schema:
                type: object
                properties:
                  data:
                    type: array
                    items:
                      $ref: '#/components/schemas/Space'
  # TODO: availability, bookings
components:
  schemas:
    Space:
      type: object
      required: [id, site_id, name, type, capacity]
      properties:
        id: { type: string, example: spc_03 }
        site_id: { type: string, example: site_ldn_shoreditch }
        name: { type: string, example: Turing room }
        type: { type: string, enum: [desk, meeting_room] }
        capacity: { type: integer, minimum: 1 }
    # TODO: Booking, error format
"#,
                ),
            ],
        ),
        criteria: vec![
            criterion(
                "resource_modeling",
                "Resource model and HTTP semantics",
                25,
                [
                    "Verb-style URLs carried into /v1, methods misused (reads via POST, side effects on GET), or most failures still answered with 200 or 500.",
                    "Nouns and methods mostly right, but two or more status codes are wrong for their case (e.g. 400 for an overlap, 200 on create, 404 for a validation error) or cancellation semantics are unclear.",
                    "Consistent plural-noun resources; 201 with Location on create, 409 on an overlap, 400/422 on validation with the choice applied consistently, 404 for unknown ids; cancellation modelled deliberately (state change or DELETE) and idempotent.",
                    "All of level 3, plus choices a partner can rely on for years: reschedule via PATCH/PUT guarded by a version or ETag/If-Match, an explicit booking status, and the trade-offs behind each choice argued in DESIGN.md.",
                ],
            ),
            criterion(
                "idempotency_and_concurrency",
                "Idempotency and overlap prevention",
                25,
                [
                    "Replaying a request with the same Idempotency-Key creates a second booking, or two concurrent overlapping requests both succeed in the replay script.",
                    "Sequential retries are deduplicated, but the overlap check and the insert are separate awaited store calls, so concurrent requests still double-book; a reused key with a different body is not considered.",
                    "No duplicates and no overlaps under the replay script: the response is stored under the key and replayed; check and insert are atomic for a space (per-space serialization or a single store operation); a key reused with a different body is rejected.",
                    "Level 3, plus DESIGN.md maps the approach to PostgreSQL (exclusion constraint over a tstzrange, idempotency table with a unique key and expiry) and handles a duplicate that arrives while the first request is still in flight.",
                ],
            ),
            criterion(
                "error_contract",
                "Error format",
                15,
                [
                    "Errors keep the legacy 200 + {ok: false} shape, or are ad-hoc strings that differ per endpoint.",
                    "A JSON error body exists but its shape varies between endpoints, or validation errors do not say which field failed and why.",
                    "One documented format (e.g. problem+json) on every error path, with a stable machine-readable type or code and per-field validation details.",
                    "Level 3, plus errors are actionable: a 409 identifies the conflicting booking or slot, malformed JSON and unknown fields get the same format, and no stack traces or internals leak.",
                ],
            ),
            criterion(
                "pagination_and_time",
                "Pagination, filtering and time handling",
                15,
                [
                    "No pagination, or offset/limit paging that repeats or skips spaces when one is inserted between page requests; times compared as strings as in the legacy code.",
                    "A cursor exists but is built on a non-unique sort key, or invalid filter values are silently ignored; availability uses the server's time zone rather than the site's.",
                    "Opaque cursor over a unique, stable ordering (e.g. created_at then id), a default and a maximum page size, validation errors for bad filters; availability and opening hours computed in the site's time zone.",
                    "Level 3, plus the cursor is bound to its filters (or rejected when reused with different ones) and availability is correct on a daylight-saving transition day, with a test proving it.",
                ],
            ),
            criterion(
                "documentation_and_tests",
                "OpenAPI document, notes and tests",
                20,
                [
                    "openapi.yaml left as the stub or contradicting the implementation; no tests beyond those provided; no DESIGN.md.",
                    "The spec lists the endpoints but omits error responses, headers or pagination; tests cover happy paths only.",
                    "The spec matches the implementation including errors, Idempotency-Key and pagination; tests cover duplicate retries, overlaps, validation failures and double cancellation; DESIGN.md answers each question asked.",
                    "Level 3, plus a test that fires overlapping bookings in parallel, and DESIGN.md states clearly what was left out and why, within one page.",
                ],
            ),
        ],
    }
    .into()
}

// ---------------------------------------------------------------------------------------------
// 2. Database Schema Optimization
// ---------------------------------------------------------------------------------------------

fn database_schema_optimization() -> CatalogueEntry {
    Entry {
        id: DATABASE_SCHEMA_OPTIMIZATION_ID,
        title: "Database Schema Optimization",
        kind: AssessmentKind::DatabaseSchemaOptimization,
        difficulty: Difficulty::Mid,
        best_for: "Assessing data modeling and query efficiency",
        time_limit_minutes: 120,
        task: task(
            "Make Cartwheel's order history fast again, without downtime",
            r#"
# Order history at Cartwheel

## Scenario

Cartwheel is a marketplace for independent homeware shops: 2.3 million customers, 18,000
merchants and 40 million orders, on a single PostgreSQL 16 primary (16 vCPU, 64 GB RAM, NVMe
storage) with two streaming replicas. Since Black Friday the "My orders" page has a p95 of 2.4 s,
the merchant revenue dashboard times out for large merchants, and login is slow at peak.

The starter files contain the current schema (`schema.sql`), the three statements that dominate
`pg_stat_statements` (`slow_queries.sql`), their `EXPLAIN (ANALYZE, BUFFERS)` output captured on
a replica (`explain.txt`), and table statistics and server settings (`stats.md`).

## Requirements

1. **Diagnose** each slow statement from its plan: what the planner does, why, and what it costs
   (rows read versus rows returned, buffers, sorts, estimates versus actuals).
2. **Fix** them with indexes and, where that helps more, query rewrites. For every index you add,
   say which statement it serves, why its columns are in that order, and what it costs on writes.
   Remove or question indexes that do not earn their keep.
3. **Pagination**: "My orders" pages with `OFFSET`, and customers with thousands of orders page far
   back. Redesign it so that page 200 costs about the same as page 1.
4. **Money**: `orders.total_amount`, `order_items.unit_price` and `products.unit_price` are
   `double precision`, and Finance has found cent-level differences between order totals and the
   sum of their lines. Plan the move to an exact type.
5. Write the **migration** as it would actually be run against the live primary.

## Constraints

- There is no maintenance window. A lock that blocks writes to `orders` for more than about two
  seconds makes checkouts fail; the table takes ~35 inserts/s and ~60 updates/s at peak.
- Application deploys and migrations are separate; during a rollout, old and new application
  versions run side by side for up to 30 minutes.
- 180 GB of free disk on the primary. Stock PostgreSQL 16: no third-party extensions.
- You cannot run anything against production; reason from the statistics you are given. (A local
  PostgreSQL with the schema is fine for checking syntax.)

## What to hand in

- `migration.sql`: the forward migration in the order you would run it, with comments wherever a
  statement must run outside a transaction, in batches, or with particular settings.
- `queries.sql`: the rewritten statements.
- `ANALYSIS.md`: your diagnosis of each plan, the plan shape you expect after your changes and why,
  the trade-offs you accepted, and how you would verify the improvement after deploying.

## How it will be evaluated

Reviewers check that your diagnosis matches the evidence in the plans, that each index serves its
query (column order, selectivity, avoiding the sort) without piling up redundant indexes, that the
rewrites return the same results, and that the migration could run on a busy primary without an
outage. A few well-justified changes score higher than a long list of indexes.
"#,
            vec![
                file(
                    "schema.sql",
                    r#"
-- Cartwheel production schema (excerpt). PostgreSQL 16.
-- Row counts, sizes and write rates are in stats.md.

CREATE TABLE customers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email        text        NOT NULL,
    full_name    text        NOT NULL,
    country_code char(2)     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- Emails are stored as typed at sign-up, so "Ann@Example.com" and "ann@example.com" both occur.
CREATE UNIQUE INDEX customers_email_key ON customers (email);

CREATE TABLE merchants (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL,
    plan       text        NOT NULL DEFAULT 'standard',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id bigint           NOT NULL REFERENCES merchants (id),
    sku         text             NOT NULL,
    title       text             NOT NULL,
    unit_price  double precision NOT NULL,
    active      boolean          NOT NULL DEFAULT true,
    created_at  timestamptz      NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX products_merchant_sku_key ON products (merchant_id, sku);

CREATE TABLE orders (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id      bigint           NOT NULL REFERENCES customers (id),
    -- 'pending' | 'paid' | 'shipped' | 'delivered' | 'cancelled' | 'refunded'
    status           text             NOT NULL,
    total_amount     double precision NOT NULL,
    currency         char(3)          NOT NULL DEFAULT 'GBP',
    shipping_address jsonb            NOT NULL,
    created_at       timestamptz      NOT NULL DEFAULT now(),
    updated_at       timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX orders_status_idx     ON orders (status);
CREATE INDEX orders_created_at_idx ON orders (created_at);

CREATE TABLE order_items (
    order_id   bigint           NOT NULL REFERENCES orders (id),
    line_no    smallint         NOT NULL,
    product_id bigint           NOT NULL REFERENCES products (id),
    quantity   integer          NOT NULL CHECK (quantity > 0),
    unit_price double precision NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
"#,
                ),
                file(
                    "slow_queries.sql",
                    r#"
-- Top statements by total execution time, pg_stat_statements, 7 days to 2 December (primary).
--
--   #   calls       mean      total     caller
--   1   1,310,422   1,184 ms  431 h     storefront: "My orders" page
--   2      61,882   9,870 ms  170 h     merchant-portal: revenue dashboard
--   3   3,402,117     212 ms  200 h     auth: login and password reset lookup

-- #1 "My orders". $2 = (page - 1) * 20; the UI shows "page N of M" and next/previous links.
SELECT o.id, o.created_at, o.status, o.total_amount, o.currency, count(*) AS item_count
FROM orders o
JOIN order_items oi ON oi.order_id = o.id
WHERE o.customer_id = $1
  AND o.status <> 'cancelled'
GROUP BY o.id
ORDER BY o.created_at DESC
LIMIT 20 OFFSET $2;

-- #2 Merchant revenue dashboard: revenue and order count per day (UK time), last 30 days.
SELECT date_trunc('day', o.created_at AT TIME ZONE 'Europe/London') AS day,
       sum(oi.quantity * oi.unit_price)                             AS revenue,
       count(DISTINCT o.id)                                         AS orders
FROM order_items oi
JOIN products p ON p.id = oi.product_id
JOIN orders o   ON o.id = oi.order_id
WHERE p.merchant_id = $1
  AND o.status IN ('paid', 'shipped', 'delivered')
  AND o.created_at >= now() - interval '30 days'
GROUP BY 1
ORDER BY 1;

-- #3 Login and password reset: emails are matched case-insensitively.
SELECT id, full_name, country_code
FROM customers
WHERE lower(email) = lower($1);
"#,
                ),
                file(
                    "explain.txt",
                    r#"
=== #1, customer_id = 4821337 (188 orders), page 2 ($2 = 20); replica-1, warm cache ===

Limit  (cost=1196870.02..1196870.07 rows=20 width=45) (actual time=2296.615..2302.331 rows=20 loops=1)
  Buffers: shared hit=2931 read=1186240
  ->  Sort  (cost=1196869.97..1196871.22 rows=501 width=45) (actual time=2296.609..2302.322 rows=40 loops=1)
        Sort Key: o.created_at DESC
        Sort Method: top-N heapsort  Memory: 30kB
        Buffers: shared hit=2931 read=1186240
        ->  GroupAggregate  (cost=1196796.10..1196854.73 rows=501 width=45) (actual time=2295.902..2302.171 rows=188 loops=1)
              Group Key: o.id
              Buffers: shared hit=2931 read=1186240
              ->  Nested Loop  (cost=1196795.54..1196846.21 rows=1702 width=37) (actual time=2295.871..2301.766 rows=655 loops=1)
                    Buffers: shared hit=2931 read=1186240
                    ->  Gather Merge  (cost=1196794.97..1196853.37 rows=501 width=37) (actual time=2295.844..2300.918 rows=188 loops=1)
                          Workers Planned: 2
                          Workers Launched: 2
                          Buffers: shared hit=2011 read=1186240
                          ->  Sort  (cost=1195794.95..1195795.47 rows=209 width=37) (actual time=2290.112..2290.127 rows=63 loops=3)
                                Sort Key: o.id
                                Sort Method: quicksort  Memory: 29kB
                                Buffers: shared hit=2011 read=1186240
                                ->  Parallel Seq Scan on orders o  (cost=0.00..1195786.88 rows=209 width=37) (actual time=412.118..2289.977 rows=63 loops=3)
                                      Filter: ((status <> 'cancelled'::text) AND (customer_id = 4821337))
                                      Rows Removed by Filter: 13456211
                                      Buffers: shared hit=2011 read=1186240
                    ->  Index Only Scan using order_items_pkey on order_items oi  (cost=0.57..0.68 rows=3 width=8) (actual time=0.004..0.004 rows=3 loops=188)
                          Index Cond: (order_id = o.id)
                          Heap Fetches: 14
                          Buffers: shared hit=920
Planning Time: 0.412 ms
Execution Time: 2302.408 ms


=== #2, merchant_id = 7731 (2,412 products, ~310,000 order lines all time); replica-1 ===

GroupAggregate  (cost=2291876.12..2298410.55 rows=200 width=48) (actual time=9702.330..9731.918 rows=30 loops=1)
  Group Key: (date_trunc('day'::text, (o.created_at AT TIME ZONE 'Europe/London'::text)))
  Buffers: shared hit=1243511 read=823190
  ->  Sort  (cost=2291876.12..2293503.70 rows=651032 width=28) (actual time=9699.870..9703.102 rows=20911 loops=1)
        Sort Key: (date_trunc('day'::text, (o.created_at AT TIME ZONE 'Europe/London'::text))), o.id
        Sort Method: quicksort  Memory: 2150kB
        Buffers: shared hit=1243511 read=823190
        ->  Nested Loop  (cost=1003.89..2213377.41 rows=651032 width=28) (actual time=31.912..9684.655 rows=20911 loops=1)
              Buffers: shared hit=1243511 read=823190
              ->  Gather  (cost=1003.32..1726488.09 rows=871210 width=22) (actual time=31.640..8305.514 rows=311876 loops=1)
                    Workers Planned: 2
                    Workers Launched: 2
                    Buffers: shared hit=2113 read=801544
                    ->  Parallel Hash Join  (cost=3.32..1638367.09 rows=363004 width=22) (actual time=28.122..8270.776 rows=103959 loops=3)
                          Hash Cond: (oi.product_id = p.id)
                          Buffers: shared hit=2113 read=801544
                          ->  Parallel Seq Scan on order_items oi  (cost=0.00..1521946.10 rows=46694210 width=30) (actual time=0.391..5512.004 rows=37348017 loops=3)
                                Buffers: shared hit=1032 read=800610
                          ->  Parallel Hash  (cost=2911.40..2911.40 rows=1005 width=8) (actual time=27.311..27.313 rows=804 loops=3)
                                Buckets: 4096  Batches: 1  Memory Usage: 160kB
                                Buffers: shared hit=1081 read=934
                                ->  Parallel Bitmap Heap Scan on products p  (cost=24.89..2911.40 rows=1005 width=8) (actual time=2.105..26.930 rows=804 loops=3)
                                      Recheck Cond: (merchant_id = 7731)
                                      Heap Blocks: exact=917
                                      Buffers: shared hit=1081 read=934
                                      ->  Bitmap Index Scan on products_merchant_sku_key  (cost=0.00..24.29 rows=2412 width=0) (actual time=1.817..1.818 rows=2412 loops=1)
                                            Index Cond: (merchant_id = 7731)
                                            Buffers: shared read=17
              ->  Index Scan using orders_pkey on orders o  (cost=0.57..0.56 rows=1 width=22) (actual time=0.004..0.004 rows=0 loops=311876)
                    Index Cond: (id = oi.order_id)
                    Filter: ((status = ANY ('{paid,shipped,delivered}'::text[])) AND (created_at >= (now() - '30 days'::interval)))
                    Rows Removed by Filter: 1
                    Buffers: shared hit=1241398 read=21646
Planning Time: 1.204 ms
Execution Time: 9733.447 ms


=== #3, email = 'j.okafor@example.net'; primary ===

Gather  (cost=1000.00..58344.10 rows=11502 width=41) (actual time=148.902..211.376 rows=1 loops=1)
  Workers Planned: 2
  Workers Launched: 2
  Buffers: shared hit=31870 read=4
  ->  Parallel Seq Scan on customers  (cost=0.00..56193.90 rows=4792 width=41) (actual time=171.533..190.455 rows=0 loops=3)
        Filter: (lower(email) = 'j.okafor@example.net'::text)
        Rows Removed by Filter: 766666
        Buffers: shared hit=31870 read=4
Planning Time: 0.145 ms
Execution Time: 211.412 ms
"#,
                ),
                file(
                    "stats.md",
                    r#"
# Table statistics and settings (2 December)

| table       | rows        | heap size | index size | inserts/s (peak) | updates/s (peak) |
|-------------|-------------|-----------|------------|------------------|------------------|
| customers   | 2,300,118   | 249 MB    | 142 MB     | 0.4              | 0.1              |
| merchants   | 18,240      | 2 MB      | 1 MB       | ~0               | ~0               |
| products    | 1,906,552   | 310 MB    | 98 MB      | 1.5              | 4                |
| orders      | 40,368,950  | 9.1 GB    | 2.1 GB     | 35               | 60               |
| order_items | 112,044,051 | 6.1 GB    | 3.4 GB     | 98               | 0                |

Order status distribution: delivered 78.2 %, cancelled 9.6 %, refunded 5.8 %, shipped 4.1 %,
paid 2.0 %, pending 0.3 %. Orders move pending -> paid -> shipped -> delivered within ~5 days;
older rows are rarely updated.

Orders per customer: median 9, p99 210, max 14,880 (a reseller account). 31 % of customers have
more than 20 orders; the "My orders" page is the second most visited logged-in page.

Orders per merchant in the last 30 days: median 40, p99 9,800. Lines per order: mean 2.8.

`pg_stat_user_indexes` over 30 days: `orders_status_idx` idx_scan = 212 (a weekly report),
`orders_created_at_idx` idx_scan = 8,911.

Settings: shared_buffers = 16GB, effective_cache_size = 48GB, work_mem = 4MB,
maintenance_work_mem = 1GB, random_page_cost = 4, max_parallel_workers_per_gather = 2,
default_statistics_target = 100. Last ANALYZE of `orders`: 19 days ago (autovacuum defaults).
"#,
                ),
            ],
        ),
        criteria: vec![
            criterion(
                "plan_diagnosis",
                "Reading the plans",
                25,
                [
                    "Proposes indexes without referring to the plans, or misreads a node (e.g. blames the top-N heapsort for the 2.3 s of #1).",
                    "Identifies the sequential scan on orders in #1 but misses the root cause of another statement: order_items read in full in #2, or lower(email) defeating customers_email_key in #3.",
                    "Correct root cause for all three, quantified from the plans: ~40M orders filtered down to 188 in #1, ~112M order lines read to keep 20,911 in #2, a non-sargable lower(email) in #3.",
                    "Level 3, plus the secondary evidence weighed: the 651,032 vs 20,911 misestimate in #2, OFFSET cost growing with page number, random_page_cost = 4 on NVMe and a 19-day-old ANALYZE, saying which of these matter and which do not.",
                ],
            ),
            criterion(
                "index_design",
                "Index design",
                25,
                [
                    "Adds a single-column index on every filtered column, or indexes that no statement uses; leaves #3 without a matching expression index.",
                    "Adds orders(customer_id) and order_items(product_id) but with column orders that still need a sort per page, or duplicates products(merchant_id), which products_merchant_sku_key already serves.",
                    "orders (customer_id, created_at DESC, id) serving both filter and order; an index on order_items (product_id) for #2; a unique index on lower(email) for #3 (after checking for case-insensitive duplicates); write cost at 35 inserts/s discussed; orders_status_idx questioned given 212 scans in 30 days.",
                    "Level 3, plus refinements with stated cost and benefit: a partial index excluding cancelled orders or INCLUDE columns for index-only scans, or a daily per-merchant revenue rollup for #2 with its freshness trade-off.",
                ],
            ),
            criterion(
                "query_rewrites",
                "Query rewrites and pagination",
                20,
                [
                    "Keeps OFFSET paging and the statements unchanged.",
                    "Replaces OFFSET with keyset paging on created_at alone, so orders sharing a timestamp are skipped or repeated; or a rewrite changes results (e.g. drops orders without lines).",
                    "Keyset paging on (created_at, id) with a row comparison that matches the index; item counts computed for the 20 selected orders only (subquery or LATERAL); #3 made a single index probe; results unchanged.",
                    "Level 3, plus #2 driven from the merchant's recent orders or a rollup with UK day boundaries handled correctly, and the product consequence of keyset paging (no 'page N of M') addressed with an alternative.",
                ],
            ),
            criterion(
                "migration_safety",
                "Migration safety",
                20,
                [
                    "Plain CREATE INDEX or ALTER COLUMN ... TYPE on orders, which would block writes for minutes.",
                    "Uses CREATE INDEX CONCURRENTLY, but inside a transaction block, or converts the money columns with ALTER TYPE (a full rewrite under an ACCESS EXCLUSIVE lock).",
                    "CONCURRENTLY outside a transaction, lock_timeout set, and a check for INVALID indexes after a failed build; money moved via new numeric(12,2) columns with a batched backfill and dual writes, so old and new application versions work side by side.",
                    "Level 3, plus explicit rounding in the conversion with a reconciliation of totals against their lines before the switch, NOT VALID then VALIDATE for new constraints, index sizes checked against 180 GB of headroom, and a rollback path.",
                ],
            ),
            criterion(
                "analysis_write_up",
                "Analysis write-up",
                10,
                [
                    "ANALYSIS.md missing, or a list of changes without reasons.",
                    "Reasons given, but neither the expected plans after the changes nor the trade-offs are described.",
                    "For each statement: expected plan shape after the change, the trade-off accepted, and how to verify (EXPLAIN on a replica, pg_stat_statements before and after, index usage).",
                    "Level 3, prioritised by impact and risk, and short enough to review in five minutes.",
                ],
            ),
        ],
    }
    .into()
}

// ---------------------------------------------------------------------------------------------
// 3. Distributed Cache Strategy
// ---------------------------------------------------------------------------------------------

fn distributed_cache_strategy() -> CatalogueEntry {
    Entry {
        id: DISTRIBUTED_CACHE_STRATEGY_ID,
        title: "Distributed Cache Strategy",
        kind: AssessmentKind::DistributedCacheStrategy,
        difficulty: Difficulty::Hard,
        best_for: "Testing scalability thinking and trade-off analysis",
        time_limit_minutes: 180,
        task: task(
            "Design and implement the catalogue caching strategy",
            r#"
# Caching the catalogue at Kestrel Outdoor

## Scenario

Kestrel Outdoor sells outdoor gear online in 14 countries. Every product page and listing calls
`catalog-service` (Go), which reads a product, its price for the visitor's country and its stock
level from PostgreSQL read replicas, and caches the result in a 6-shard Redis Cluster with a
10-minute TTL (`catalog/catalog.go`).

`docs/traffic.md` has the traffic figures and three recent incidents:

- During a flash sale, tens of thousands of requests per second for one jacket reached the
  database the moment its cache entry expired; the replicas' connection pools were exhausted for
  90 seconds.
- After a bulk repricing, customers saw old prices for up to 10 minutes, and some saw an old price
  *indefinitely*, although the code deletes the cache key on every price update.
- A Redis shard failover came back empty; the cold misses that followed took the site down again.

## Requirements

Design the caching strategy for the catalogue, and implement its core in `catalog/`:

1. **Freshness.** A price change must be visible on product pages within 5 seconds (p99). Stock
   may be up to 30 seconds stale; titles and descriptions up to 10 minutes. (Checkout re-reads the
   price from the primary and is out of scope.)
2. **No stampedes.** At most one database load per key per instance at a time, and the expiry of
   popular keys must not line up.
3. **Hot keys.** During a flash sale a single SKU receives up to 40 % of all traffic.
4. **Failures.** Redis being slow or unavailable must degrade latency, not availability, and must
   not push the full read load onto PostgreSQL, whose replicas absorb about 3,000 product reads/s.
5. **The stale-forever bug.** Explain exactly how the current code can show an old price
   indefinitely, and make sure your design cannot.

## Constraints

- Go 1.22 and the interfaces in `catalog/catalog.go`. You may add an in-process cache, and may
  consume the `price_changed` events described in `docs/traffic.md`; no other new infrastructure.
- 24 `catalog-service` instances, each with 2 GB of memory available for caching.
- `go test -race ./...` must pass with no network: use the fakes in `catalog/fakes_test.go` and
  the fake clock rather than sleeps.

## What to hand in

- `DESIGN.md` (two pages at most): the policy for each kind of data, invalidation, stampede and
  hot-key handling, behaviour under each failure, a capacity estimate, and the metrics and alerts
  you would add.
- Your changes in `catalog/`, with tests showing that concurrent misses cause one load, that
  expiries are jittered within the bounds you chose, and that a price update can no longer leave
  a stale price behind.

## How it will be evaluated

We look for consistency promises you can defend under concurrency and failure, backed by numbers.
The code does not need to be production-complete, but what you implement must be correct and
deterministic under the race detector. Write down the parts you designed but did not build.
"#,
            vec![
                file(
                    "go.mod",
                    r#"
module github.com/kestrel-outdoor/catalog-service

go 1.22
"#,
                ),
                file(
                    "catalog/catalog.go",
                    r#"
// Package catalog serves product data to the storefront.
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrNotFound is returned by Database for an unknown product and by Cache on a miss.
var ErrNotFound = errors.New("not found")

// Product is what a product page shows, for one country.
type Product struct {
	SKU          string    `json:"sku"`
	Country      string    `json:"country"`
	Title        string    `json:"title"`
	Description  string    `json:"description"`
	PriceMinor   int64     `json:"price_minor"`
	Currency     string    `json:"currency"`
	PriceVersion int64     `json:"price_version"` // incremented by every price change
	Stock        int       `json:"stock"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Database is the PostgreSQL access layer. GetProduct reads from a replica that lags the primary
// by 50-800 ms; UpdatePrice writes to the primary.
type Database interface {
	GetProduct(ctx context.Context, sku, country string) (Product, error)
	UpdatePrice(ctx context.Context, sku, country string, priceMinor int64) (newVersion int64, err error)
}

// Cache wraps the Redis Cluster client. Keys are distributed over shards by hash slot.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, error)
	// GetEx returns the value and resets its TTL to ttl.
	GetEx(ctx context.Context, key string, ttl time.Duration) ([]byte, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Delete(ctx context.Context, key string) error
}

// PriceChanged is the payload of the pricing.price_changed.v1 topic (see docs/traffic.md).
type PriceChanged struct {
	SKU          string    `json:"sku"`
	Country      string    `json:"country"`
	PriceMinor   int64     `json:"price_minor"`
	Currency     string    `json:"currency"`
	PriceVersion int64     `json:"price_version"`
	ChangedAt    time.Time `json:"changed_at"`
}

// Clock is injected so that tests control time.
type Clock interface{ Now() time.Time }

const productTTL = 10 * time.Minute

// Service is the current implementation: cache-aside over Redis.
type Service struct {
	db    Database
	cache Cache
	clock Clock
	log   *slog.Logger
}

func NewService(db Database, cache Cache, clock Clock, log *slog.Logger) *Service {
	return &Service{db: db, cache: cache, clock: clock, log: log}
}

func key(sku, country string) string { return fmt.Sprintf("product:%s:%s", country, sku) }

// GetProduct serves the product page.
func (s *Service) GetProduct(ctx context.Context, sku, country string) (Product, error) {
	k := key(sku, country)
	// Keep popular products warm: every hit pushes the expiry back.
	raw, err := s.cache.GetEx(ctx, k, productTTL)
	switch {
	case err == nil:
		var p Product
		if err := json.Unmarshal(raw, &p); err == nil {
			return p, nil
		}
		s.log.Warn("corrupt cache entry", "key", k)
	case !errors.Is(err, ErrNotFound):
		return Product{}, fmt.Errorf("cache: %w", err)
	}

	p, err := s.db.GetProduct(ctx, sku, country)
	if err != nil {
		return Product{}, err
	}
	raw, _ = json.Marshal(p)
	if err := s.cache.Set(ctx, k, raw, productTTL); err != nil {
		s.log.Warn("cache set failed", "key", k, "err", err)
	}
	return p, nil
}

// UpdatePrice is called by the pricing back office.
func (s *Service) UpdatePrice(ctx context.Context, sku, country string, priceMinor int64) error {
	// Invalidate first so nobody reads the old price from the cache.
	if err := s.cache.Delete(ctx, key(sku, country)); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if _, err := s.db.UpdatePrice(ctx, sku, country, priceMinor); err != nil {
		return err
	}
	return nil
}

// OnPriceChanged is wired to the price_changed consumer but does nothing yet.
func (s *Service) OnPriceChanged(ctx context.Context, ev PriceChanged) error {
	return nil
}
"#,
                ),
                file(
                    "catalog/fakes_test.go",
                    r#"
package catalog

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 11, 29, 8, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeDB behaves like a primary plus a lagging replica: a write becomes visible to GetProduct
// only once replicaLag has passed on the clock. Loads counts GetProduct calls. When Gate is
// non-nil, GetProduct blocks until it is closed, which lets a test hold a load in flight.
type fakeDB struct {
	mu         sync.Mutex
	clock      *fakeClock
	replicaLag time.Duration
	history    map[string][]write // key -> writes, oldest first
	Loads      atomic.Int64
	Gate       chan struct{}
}

type write struct {
	p  Product
	at time.Time
}

func newFakeDB(clock *fakeClock, replicaLag time.Duration, products ...Product) *fakeDB {
	db := &fakeDB{clock: clock, replicaLag: replicaLag, history: map[string][]write{}}
	for _, p := range products {
		k := key(p.SKU, p.Country)
		db.history[k] = append(db.history[k], write{p: p, at: clock.Now().Add(-time.Hour)})
	}
	return db
}

func (db *fakeDB) GetProduct(ctx context.Context, sku, country string) (Product, error) {
	db.Loads.Add(1)
	if db.Gate != nil {
		select {
		case <-db.Gate:
		case <-ctx.Done():
			return Product{}, ctx.Err()
		}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	visibleUpTo := db.clock.Now().Add(-db.replicaLag)
	writes := db.history[key(sku, country)]
	for i := len(writes) - 1; i >= 0; i-- {
		if !writes[i].at.After(visibleUpTo) {
			return writes[i].p, nil
		}
	}
	return Product{}, ErrNotFound
}

func (db *fakeDB) UpdatePrice(ctx context.Context, sku, country string, priceMinor int64) (int64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	k := key(sku, country)
	writes := db.history[k]
	if len(writes) == 0 {
		return 0, ErrNotFound
	}
	p := writes[len(writes)-1].p
	p.PriceMinor = priceMinor
	p.PriceVersion++
	p.UpdatedAt = db.clock.Now()
	db.history[k] = append(writes, write{p: p, at: db.clock.Now()})
	return p.PriceVersion, nil
}

var errRedisUnavailable = errors.New("dial tcp 10.0.3.17:6379: connect: connection refused")

// fakeCache is an in-memory stand-in for Redis with expiry on the fake clock. Set Failing to
// simulate an outage; Calls counts every operation.
type fakeCache struct {
	mu      sync.Mutex
	clock   *fakeClock
	entries map[string]entry
	Failing atomic.Bool
	Calls   atomic.Int64
}

type entry struct {
	value   []byte
	expires time.Time
}

func newFakeCache(clock *fakeClock) *fakeCache {
	return &fakeCache{clock: clock, entries: map[string]entry{}}
}

func (c *fakeCache) Get(ctx context.Context, k string) ([]byte, error) {
	return c.get(k, 0)
}

func (c *fakeCache) GetEx(ctx context.Context, k string, ttl time.Duration) ([]byte, error) {
	return c.get(k, ttl)
}

func (c *fakeCache) get(k string, resetTTL time.Duration) ([]byte, error) {
	c.Calls.Add(1)
	if c.Failing.Load() {
		return nil, errRedisUnavailable
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !c.clock.Now().Before(e.expires) {
		delete(c.entries, k)
		return nil, ErrNotFound
	}
	if resetTTL > 0 {
		e.expires = c.clock.Now().Add(resetTTL)
		c.entries[k] = e
	}
	return append([]byte(nil), e.value...), nil
}

func (c *fakeCache) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	c.Calls.Add(1)
	if c.Failing.Load() {
		return errRedisUnavailable
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[k] = entry{value: append([]byte(nil), v...), expires: c.clock.Now().Add(ttl)}
	return nil
}

func (c *fakeCache) Delete(ctx context.Context, k string) error {
	c.Calls.Add(1)
	if c.Failing.Load() {
		return errRedisUnavailable
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
	return nil
}
"#,
                ),
                file(
                    "docs/traffic.md",
                    r#"
# Catalogue traffic and incidents, Q4

## Traffic (all 24 instances together)

|                                        | normal peak  | flash-sale peak |
|----------------------------------------|--------------|-----------------|
| product reads                          | 45,000 /s    | 110,000 /s      |
| distinct SKU x country keys read / hour| 380,000      | 120,000         |
| share of reads on the top key          | 0.3 %        | 40 %            |
| price changes                          | 20 /min      | 1,200 /min (at sale start) |
| stock changes                          | 600 /min     | 9,000 /min      |

- 2.1 million SKU x country combinations. Serialized product: 1.4 KB on average, p99 9 KB
  (long descriptions).
- Redis Cluster: 6 primaries with one replica each, 13 GB per node; p99 GET 0.9 ms. A single
  shard saturates at ~90,000 operations/s.
- PostgreSQL: replicas lag the primary by 50-800 ms and together sustain ~3,000 product reads/s.
- Cache hit rate at normal peak: 97.8 %.

## The price_changed events

The pricing service publishes `pricing.price_changed.v1` to Kafka through a transactional
outbox, keyed by SKU: delivered at least once, in order per SKU, ~200 ms after the commit (p99
2 s, but up to several minutes while the consumer group rebalances). Payload:

    {"sku": "KJ-2291-M", "country": "DE", "price_minor": 12900, "currency": "EUR",
     "price_version": 42, "changed_at": "2024-11-21T18:00:01.204Z"}

There is no equivalent event for stock or description changes.

## Incidents

**INC-412, 14 Nov, flash-sale stampede.** The entry for `product:GB:KJ-2291-M` expired at
12:00:07 under 38,000 reads/s. Every instance missed at once; ~9,000 database queries for the
same row were in flight within 200 ms and the replica pools were exhausted for 90 s. Redis CPU on
the shard holding that key was at 100 % for the whole sale.

**INC-419, 21 Nov, stale prices after bulk repricing.** 1,180 prices changed between 18:00 and
18:01. Most product pages showed the new price within 10 minutes; 37 popular products still
showed the old price the next morning, until someone flushed their keys by hand.

**INC-425, 28 Nov, shard failover.** A Redis primary was replaced; its replica had been lagging
and the promoted node started nearly empty. Misses for 1/6 of the key space went to PostgreSQL,
replica latency reached 4 s, and catalogue requests started timing out, which retried and made it
worse. Recovery took 14 minutes.
"#,
                ),
            ],
        ),
        criteria: vec![
            criterion(
                "consistency_and_invalidation",
                "Consistency and invalidation",
                25,
                [
                    "Keeps TTL-only freshness or delete-on-write without recognising its race; cannot explain how a price stays stale indefinitely.",
                    "Explains one cause of the stale-forever price (delete before the write, repopulation from a lagging replica, or the sliding GetEx TTL), but the proposed design still admits another.",
                    "Explains how the three interact (a miss between delete and commit or within replica lag repopulates the old price, and GetEx on every hit keeps it alive); invalidation driven by price_changed with versioned writes that never replace a newer price_version, plus a bounded TTL as a backstop; a test shows an update cannot leave a stale price.",
                    "Level 3, plus a separate policy per kind of data justified against the 5 s / 30 s / 10 min budgets, and handling of duplicate or out-of-order events and of consumer lag beyond 5 s (detection and fallback to short TTLs).",
                ],
            ),
            criterion(
                "stampede_and_hot_keys",
                "Stampedes and hot keys",
                20,
                [
                    "No request coalescing, and expiries of popular keys still line up.",
                    "Either per-instance coalescing (singleflight) or TTL jitter, not both; the single Redis shard holding a hot key is not considered.",
                    "Singleflight per key per instance, jittered TTLs, and stale-while-revalidate or early probabilistic refresh for popular keys; a test shows N concurrent misses cause exactly one load.",
                    "Level 3, plus a hot-key plan that removes the single-shard bottleneck (a short-TTL in-process cache invalidated by events, or replicated keys) with its extra staleness counted against the 5-second budget.",
                ],
            ),
            criterion(
                "failure_modes",
                "Behaviour under failure",
                20,
                [
                    "Redis errors are still returned to callers, or a Redis outage sends every read to PostgreSQL.",
                    "Falls back to the database on Redis errors, with timeouts, but with nothing bounding the load against the replicas' 3,000 reads/s.",
                    "Tight Redis timeouts and a circuit breaker; database loads bounded (concurrency limit or load shedding) while stale in-process data is served where it exists; recovery from an empty shard addressed.",
                    "Level 3, plus a failure table (Redis slow, shard failover, event consumer stalled, replica lagging) giving the customer-visible effect of each and the metric or alert that detects it.",
                ],
            ),
            criterion(
                "implementation_quality",
                "Implementation and tests",
                20,
                [
                    "Code does not build, or fails go test -race.",
                    "Builds and passes, but the concurrency tests rely on sleeps or do not exercise the race they claim to.",
                    "Focused changes using the fakes and the fake clock; deterministic tests for coalescing, jitter bounds and the update race; passes -race.",
                    "Level 3, plus small readable code with observable behaviour (hit, miss, stale-served and coalesced counters) and context cancellation handled for callers waiting on a shared load.",
                ],
            ),
            criterion(
                "capacity_reasoning",
                "Quantitative reasoning",
                15,
                [
                    "No numbers, or numbers unrelated to the figures in docs/traffic.md.",
                    "Some estimates, but inconsistent with the given figures (e.g. ignoring the 1.4 KB average size or the 24 instances).",
                    "Estimates Redis memory (~2.1M x 1.4 KB, about 3 GB plus overhead, across 6 shards), the in-process working set per instance within 2 GB, hot-key load per shard against ~90,000 ops/s, and database load when 1/6 of keys go cold, against 3,000 reads/s.",
                    "Level 3, plus the numbers drive the parameters chosen (TTLs, jitter range, in-process cache size, breaker thresholds) and the design says what must change at three times the traffic.",
                ],
            ),
        ],
    }
    .into()
}

// ---------------------------------------------------------------------------------------------
// 4. Microservice Orchestration
// ---------------------------------------------------------------------------------------------

fn microservice_orchestration() -> CatalogueEntry {
    Entry {
        id: MICROSERVICE_ORCHESTRATION_ID,
        title: "Microservice Orchestration",
        kind: AssessmentKind::MicroserviceOrchestration,
        difficulty: Difficulty::Hard,
        best_for: "Evaluating system design and inter-service communication",
        time_limit_minutes: 180,
        task: task(
            "Replace the checkout call chain with an orchestrated saga",
            r#"
# The checkout saga at Wayfarer

## Scenario

Wayfarer sells hotel-and-activity packages. A checkout touches four services owned by different
teams: **Inventory** (holds and confirms rooms and activity slots with suppliers), **Payments**
(a wrapper over the card processor), **Loyalty** (points balances) and **Notifications**. Today
the Orders service calls them one after the other inside a single HTTP request
(`src/checkout.ts`).

Last month's incident (`docs/INCIDENT-2291.md`) left 37 customers charged without a booking and
11 customers with their loyalty points debited twice. You are replacing the call chain with an
orchestrated saga run by the Orders service.

## Requirements

1. Model the checkout as an explicit, persisted state machine, with a compensation for every step
   that can be undone and a clear *pivot* after which the saga only moves forward.
2. Every call must be safe to retry. Use the idempotency mechanism each service offers (documented
   in `src/clients.ts`) and work around the one that offers none.
3. Handle ambiguous outcomes: a Payments timeout does not tell you whether the card was
   authorised.
4. The orchestrator can crash at any point. On restart, every saga in flight must resume and end
   (completed or compensated) without charging, debiting or crediting anyone twice.
5. `POST /checkout` must answer quickly with `202` and a checkout id; a client that retries the
   request must get the same checkout, and the client must be able to learn the outcome.
6. Inventory holds expire after 15 minutes; card authorisations after 7 days. Some bookings become
   non-refundable as soon as they are confirmed.

## Constraints

- TypeScript on Node 20. There is no `package.json` yet: set up the project with the test runner
  you prefer (`npm test` must run your tests). Do not change the interfaces in `src/clients.ts`:
  other teams own them.
- Persist saga state through a `SagaRepository` interface of your own. An in-memory implementation
  is enough, but design it to map one-to-one onto a PostgreSQL table with optimistic concurrency.
- No new infrastructure. Orders already has a transactional outbox for publishing events.

## What to hand in

- The orchestrator and its tests (`npm test`). `src/fakes.ts` can inject declines, timeouts (before
  or after the effect), unavailability and crashes; include at least one test per row of your
  failure table.
- `ARCHITECTURE.md`: the state diagram, a failure table (step x failure: what the saga does and
  what the customer sees), why orchestration rather than choreography here, and what you would
  monitor in production.

## How it will be evaluated

We replay fault scenarios against your orchestrator (a crash between every pair of steps,
timeouts that actually succeeded, duplicate requests) and check the final state of every
service. Clear reasoning about the cases you did not get to counts almost as much as code for
them.
"#,
            vec![
                file(
                    "src/clients.ts",
                    r#"
/**
 * Clients of the services a checkout touches. Owned by other teams: do not change.
 *
 * Every method may throw:
 * - `UnavailableError`: the request was not processed; safe to retry.
 * - `TimeoutError`: no answer within the deadline; the request MAY have been processed.
 */
export class UnavailableError extends Error {}
export class TimeoutError extends Error {}
export class DeclinedError extends Error {
  constructor(public readonly reason: "insufficient_funds" | "card_declined" | "fraud_suspected") {
    super(reason);
  }
}
export class SoldOutError extends Error {}
export class HoldExpiredError extends Error {}
export class NonRefundableError extends Error {}
export class InsufficientPointsError extends Error {}

export interface LineItem {
  sku: string; // e.g. "HTL-LIS-2291-DBL" or "ACT-LIS-TUKTUK"
  date: string; // "2025-06-14"
  quantity: number;
}

export interface InventoryClient {
  /**
   * Places a hold that lapses after 15 minutes. Idempotent on `holdKey`: repeating it returns the
   * same hold. Throws `SoldOutError` when any item is unavailable.
   */
  hold(input: { holdKey: string; items: LineItem[] }): Promise<{ holdId: string; expiresAt: string }>;
  /** Turns a hold into a supplier booking. Idempotent. Throws `HoldExpiredError` once the hold has lapsed. */
  confirm(holdId: string): Promise<{ bookingRef: string; refundable: boolean }>;
  /** Releases a hold. Idempotent; releasing an unknown or lapsed hold succeeds. */
  release(holdId: string): Promise<void>;
  /** Cancels a confirmed booking. Idempotent. Throws `NonRefundableError` for non-refundable bookings. */
  cancelBooking(bookingRef: string): Promise<void>;
}

export type PaymentStatus = "authorized" | "captured" | "voided" | "refunded" | "declined";

export interface PaymentsClient {
  /** Authorises an amount on the customer's saved card. Idempotent on `idempotencyKey` for 24 hours. */
  authorize(input: {
    idempotencyKey: string;
    customerId: string;
    amountMinor: number;
    currency: string;
  }): Promise<{ paymentId: string }>;
  /** The payment created with this idempotency key, or `null` if none was created. Strongly consistent. */
  findByIdempotencyKey(idempotencyKey: string): Promise<{ paymentId: string; status: PaymentStatus } | null>;
  /** Captures an authorised payment. Idempotent. */
  capture(paymentId: string): Promise<void>;
  /** Voids an authorisation that was not captured. Idempotent. */
  void(paymentId: string): Promise<void>;
  /** Refunds a captured payment. Idempotent on `idempotencyKey`. */
  refund(paymentId: string, amountMinor: number, idempotencyKey: string): Promise<void>;
}

export interface LoyaltyClient {
  /**
   * Debits points. NOT idempotent: every call creates a new ledger entry. `reference` is stored on
   * the entry. Throws `InsufficientPointsError`.
   */
  debit(input: { customerId: string; points: number; reference: string }): Promise<{ entryId: string }>;
  /** Credits points. NOT idempotent either. */
  credit(input: { customerId: string; points: number; reference: string }): Promise<{ entryId: string }>;
  /** Ledger entries carrying `reference`, newest first. Read from a replica: may lag writes by up to 2 s. */
  entriesByReference(reference: string): Promise<{ entryId: string; points: number; kind: "debit" | "credit" }[]>;
}

export interface NotificationsClient {
  /** Sends an email at least once; duplicates with the same `dedupeKey` within 24 hours are dropped. */
  send(input: { dedupeKey: string; to: string; template: string; data: Record<string, unknown> }): Promise<void>;
}
"#,
                ),
                file(
                    "src/checkout.ts",
                    r#"
import { randomUUID } from "node:crypto";
import express from "express";
import type { InventoryClient, LineItem, LoyaltyClient, NotificationsClient, PaymentsClient } from "./clients.js";

export interface CheckoutRequest {
  customerId: string;
  email: string;
  items: LineItem[];
  amountMinor: number;
  currency: string;
  pointsToRedeem: number;
}

export interface Deps {
  inventory: InventoryClient;
  payments: PaymentsClient;
  loyalty: LoyaltyClient;
  notifications: NotificationsClient;
}

/** The current implementation: one synchronous chain per HTTP request. */
export function checkoutRouter(deps: Deps): express.Router {
  const router = express.Router();

  router.post("/checkout", async (req, res) => {
    const body = req.body as CheckoutRequest;
    const orderId = randomUUID();
    try {
      const payment = await deps.payments.authorize({
        idempotencyKey: orderId,
        customerId: body.customerId,
        amountMinor: body.amountMinor,
        currency: body.currency,
      });
      await deps.payments.capture(payment.paymentId);

      if (body.pointsToRedeem > 0) {
        await deps.loyalty.debit({ customerId: body.customerId, points: body.pointsToRedeem, reference: orderId });
      }

      const hold = await deps.inventory.hold({ holdKey: orderId, items: body.items });
      const booking = await deps.inventory.confirm(hold.holdId);

      await deps.notifications.send({
        dedupeKey: `booking-confirmed:${orderId}`,
        to: body.email,
        template: "booking-confirmed",
        data: { bookingRef: booking.bookingRef },
      });
      res.status(200).json({ orderId, bookingRef: booking.bookingRef });
    } catch (err) {
      // TODO(INC-2291): undo whatever already happened?
      console.error("checkout failed", orderId, err);
      res.status(502).json({ error: "Checkout failed, please try again." });
    }
  });

  return router;
}
"#,
                ),
                file(
                    "src/fakes.ts",
                    r#"
import {
  DeclinedError,
  HoldExpiredError,
  InsufficientPointsError,
  NonRefundableError,
  SoldOutError,
  TimeoutError,
  UnavailableError,
  type InventoryClient,
  type LineItem,
  type LoyaltyClient,
  type NotificationsClient,
  type PaymentStatus,
  type PaymentsClient,
} from "./clients.js";

/**
 * - `unavailable`: throw UnavailableError, nothing happens.
 * - `timeout-before`: throw TimeoutError, nothing happens.
 * - `timeout-after`: the effect happens, then TimeoutError is thrown.
 * - `decline`: the call fails with its domain error (SoldOutError, DeclinedError, ...).
 * - `crash-after`: the effect happens, then CrashError is thrown. Tests treat it as the process
 *   dying: discard the orchestrator and build a new one over the same repository.
 */
export type Fault = "unavailable" | "timeout-before" | "timeout-after" | "decline" | "crash-after";

export class CrashError extends Error {}

/** Faults keyed by "service.method", applied to the nth call (1-based) of that method. */
export class FaultPlan {
  private faults = new Map<string, Map<number, Fault>>();
  private calls = new Map<string, number>();

  on(method: string, nth: number, fault: Fault): this {
    if (!this.faults.has(method)) this.faults.set(method, new Map());
    this.faults.get(method)!.set(nth, fault);
    return this;
  }

  /** Runs `effect` under the fault planned for this call, if any. */
  async apply<T>(method: string, effect: () => T, decline: () => Error): Promise<T> {
    const n = (this.calls.get(method) ?? 0) + 1;
    this.calls.set(method, n);
    switch (this.faults.get(method)?.get(n)) {
      case "unavailable":
        throw new UnavailableError(method);
      case "timeout-before":
        throw new TimeoutError(method);
      case "decline":
        throw decline();
      case "timeout-after":
        effect();
        throw new TimeoutError(method);
      case "crash-after":
        effect();
        throw new CrashError(method);
      default:
        return effect();
    }
  }

  callCount(method: string): number {
    return this.calls.get(method) ?? 0;
  }
}

/** A manually advanced clock shared by the fakes (holds lapse, ledger replica lag). */
export class FakeClock {
  constructor(public nowMs = Date.parse("2025-05-02T10:00:00Z")) {}
  advance(ms: number): void {
    this.nowMs += ms;
  }
}

export interface World {
  holds: Map<string, { holdId: string; items: LineItem[]; expiresAtMs: number; state: "held" | "released" | "confirmed" }>;
  bookings: Map<string, { holdId: string; refundable: boolean; cancelled: boolean }>;
  payments: Map<string, { paymentId: string; amountMinor: number; status: PaymentStatus }>;
  ledger: { entryId: string; customerId: string; points: number; kind: "debit" | "credit"; reference: string; atMs: number }[];
  emails: { dedupeKey: string; to: string; template: string }[];
}

export function makeFakes(plan: FaultPlan, clock = new FakeClock()) {
  const world: World = { holds: new Map(), bookings: new Map(), payments: new Map(), ledger: [], emails: [] };
  let seq = 0;
  const id = (prefix: string) => `${prefix}_${++seq}`;

  const inventory: InventoryClient = {
    hold: ({ holdKey, items }) =>
      plan.apply("inventory.hold", () => {
        const existing = world.holds.get(holdKey);
        if (existing) return { holdId: existing.holdId, expiresAt: new Date(existing.expiresAtMs).toISOString() };
        const hold = { holdId: holdKey, items, expiresAtMs: clock.nowMs + 15 * 60_000, state: "held" as const };
        world.holds.set(holdKey, hold);
        return { holdId: hold.holdId, expiresAt: new Date(hold.expiresAtMs).toISOString() };
      }, () => new SoldOutError(holdKey)),
    confirm: (holdId) =>
      plan.apply("inventory.confirm", () => {
        const hold = world.holds.get(holdId);
        if (!hold || (hold.state === "held" && clock.nowMs >= hold.expiresAtMs) || hold.state === "released") {
          throw new HoldExpiredError(holdId);
        }
        const bookingRef = `BK-${holdId}`;
        if (hold.state !== "confirmed") {
          hold.state = "confirmed";
          world.bookings.set(bookingRef, { holdId, refundable: !hold.items.some((i) => i.sku.startsWith("ACT-")), cancelled: false });
        }
        return { bookingRef, refundable: world.bookings.get(bookingRef)!.refundable };
      }, () => new HoldExpiredError(holdId)),
    release: (holdId) =>
      plan.apply("inventory.release", () => {
        const hold = world.holds.get(holdId);
        if (hold && hold.state === "held") hold.state = "released";
      }, () => new UnavailableError("release")),
    cancelBooking: (bookingRef) =>
      plan.apply("inventory.cancelBooking", () => {
        const booking = world.bookings.get(bookingRef);
        if (booking && !booking.refundable) throw new NonRefundableError(bookingRef);
        if (booking) booking.cancelled = true;
      }, () => new UnavailableError("cancel")),
  };

  const payments: PaymentsClient = {
    authorize: ({ idempotencyKey, amountMinor }) =>
      plan.apply("payments.authorize", () => {
        const existing = world.payments.get(idempotencyKey);
        if (existing) return { paymentId: existing.paymentId };
        const payment = { paymentId: id("pay"), amountMinor, status: "authorized" as PaymentStatus };
        world.payments.set(idempotencyKey, payment);
        return { paymentId: payment.paymentId };
      }, () => new DeclinedError("card_declined")),
    findByIdempotencyKey: (key) =>
      plan.apply("payments.findByIdempotencyKey", () => {
        const p = world.payments.get(key);
        return p ? { paymentId: p.paymentId, status: p.status } : null;
      }, () => new UnavailableError("find")),
    capture: (paymentId) =>
      plan.apply("payments.capture", () => {
        const p = [...world.payments.values()].find((x) => x.paymentId === paymentId);
        if (p && p.status === "authorized") p.status = "captured";
      }, () => new DeclinedError("card_declined")),
    void: (paymentId) =>
      plan.apply("payments.void", () => {
        const p = [...world.payments.values()].find((x) => x.paymentId === paymentId);
        if (p && p.status === "authorized") p.status = "voided";
      }, () => new UnavailableError("void")),
    refund: (paymentId) =>
      plan.apply("payments.refund", () => {
        const p = [...world.payments.values()].find((x) => x.paymentId === paymentId);
        if (p && p.status === "captured") p.status = "refunded";
      }, () => new UnavailableError("refund")),
  };

  const loyalty: LoyaltyClient = {
    debit: ({ customerId, points, reference }) =>
      plan.apply("loyalty.debit", () => {
        const entry = { entryId: id("led"), customerId, points, kind: "debit" as const, reference, atMs: clock.nowMs };
        world.ledger.push(entry);
        return { entryId: entry.entryId };
      }, () => new InsufficientPointsError(customerId)),
    credit: ({ customerId, points, reference }) =>
      plan.apply("loyalty.credit", () => {
        const entry = { entryId: id("led"), customerId, points, kind: "credit" as const, reference, atMs: clock.nowMs };
        world.ledger.push(entry);
        return { entryId: entry.entryId };
      }, () => new UnavailableError("credit")),
    entriesByReference: (reference) =>
      plan.apply("loyalty.entriesByReference", () =>
        world.ledger
          .filter((e) => e.reference === reference && e.atMs <= clock.nowMs - 2_000) // replica lag
          .reverse()
          .map(({ entryId, points, kind }) => ({ entryId, points, kind })),
      () => new UnavailableError("entries")),
  };

  const notifications: NotificationsClient = {
    send: ({ dedupeKey, to, template }) =>
      plan.apply("notifications.send", () => {
        if (!world.emails.some((e) => e.dedupeKey === dedupeKey)) world.emails.push({ dedupeKey, to, template });
      }, () => new UnavailableError("send")),
  };

  return { inventory, payments, loyalty, notifications, world, clock };
}
"#,
                ),
                file(
                    "docs/INCIDENT-2291.md",
                    r#"
# INC-2291: customers charged without a booking (postmortem summary)

**Date:** 7 April, 19:40-21:15 UTC. **Severity:** 2. **Status:** mitigated, follow-ups open.

## What happened

The card processor's latency rose from ~300 ms to 6-12 s for 95 minutes. The Orders service's
HTTP client times out after 8 s, so many `capture` calls timed out after the processor had in fact
captured the money. `checkout.ts` then returned 502, and the web app retried the whole checkout,
creating a fresh order id (and so a fresh authorisation) each time.

Separately, Inventory returned "sold out" for a popular Lisbon hotel during the same window. Because
the chain captures payment before holding inventory, those customers were charged and then told
the checkout failed.

## Impact

- 37 customers charged without a booking (51 captures, 14.2k EUR); refunded manually over 3 days.
- 11 customers had loyalty points debited twice: the debit succeeded, the response was lost to a
  timeout, and the retried checkout debited again.
- 212 support contacts. Two suppliers flagged us for confirming and cancelling the same rooms.

## Contributing factors

- Money is captured before anything else is secured; there is no compensation for any step.
- Each retry of `POST /checkout` is a new order, so idempotency keys never match.
- Loyalty has no idempotency support and its ledger lookup reads a lagging replica.
- Nothing records how far a checkout got, so on-call could not tell which customers to fix.

## Follow-ups

1. Replace the chain with a persisted saga (this task).
2. Client-supplied idempotency key on `POST /checkout`.
3. Alert on captures without a confirmed booking after 30 minutes.
"#,
                ),
            ],
        ),
        criteria: vec![
            criterion(
                "saga_design",
                "Saga design",
                25,
                [
                    "No explicit states or compensations: the chain is wrapped in a try/catch with a best-effort undo.",
                    "States and compensations exist, but money is still captured or points debited before inventory is secured, or a step lacks its compensation (e.g. the loyalty debit).",
                    "Holds inventory first, authorises rather than captures, debits points, then confirms inventory as the pivot and captures afterwards; every pre-pivot step has an idempotent compensation (release, void, credit) and post-pivot steps are retried until they succeed.",
                    "Level 3, plus the pivot justified from the services' semantics (non-refundable confirmations, 15-minute holds vs 7-day authorisations), a hold lapsing mid-saga handled, and a defined path for a post-pivot step that keeps failing (alert, manual queue).",
                ],
            ),
            criterion(
                "failure_handling",
                "Retries, idempotency and ambiguous outcomes",
                25,
                [
                    "Retries blindly, so a Payments timeout can create a second authorisation or a retried loyalty debit a second ledger entry.",
                    "Uses the idempotency keys offered, but treats a timeout as a failure (compensating a payment that may not exist, or leaving one that does) or trusts entriesByReference without accounting for its 2-second lag.",
                    "Deterministic keys derived from the checkout id; ambiguous payment timeouts resolved with findByIdempotencyKey before deciding; the loyalty debit guarded by recording intent before the call and reconciling against the ledger after its lag; bounded retries with backoff and jitter.",
                    "Level 3, plus retryable and terminal errors distinguished per call (Declined, HoldExpired, NonRefundable, InsufficientPoints), total saga time bounded by the hold expiry, and every row of the failure table covered by a test.",
                ],
            ),
            criterion(
                "durability_and_recovery",
                "Durability and crash recovery",
                20,
                [
                    "Saga state lives only in the request handler's memory; a crash loses it.",
                    "State is persisted, but after the side effect it describes, so a crash between the call and the write repeats or forgets the call; nothing resumes sagas after a restart.",
                    "Intent persisted before each call and outcome after it, optimistic concurrency on the saga record, and a recovery loop that resumes every non-terminal saga; crash tests pass at every step boundary.",
                    "Level 3, plus two orchestrator instances cannot drive the same saga (lease or version check), the outcome event is written to the outbox in the same transaction as the final state, and the PostgreSQL table is specified.",
                ],
            ),
            criterion(
                "api_and_contracts",
                "API and service contracts",
                15,
                [
                    "The endpoint still blocks for the whole checkout, and a client retry starts a second checkout.",
                    "Returns 202, but the client cannot learn the outcome, or a retried request still creates a second checkout.",
                    "202 with a checkout id and a status resource; a client-supplied idempotency key makes retries return the same checkout; the outcome is also published as an event.",
                    "Level 3, plus documented customer-facing statuses and messages for every terminal state, and a correlation id carried through every downstream call.",
                ],
            ),
            criterion(
                "code_and_communication",
                "Code and architecture notes",
                15,
                [
                    "The code does not run, or ARCHITECTURE.md is missing.",
                    "Works for the happy path; the state diagram or failure table is missing or disagrees with the code.",
                    "A readable orchestrator with its transitions in one place; the state diagram and failure table match the code; the choice of orchestration over choreography is argued.",
                    "Level 3, plus tests read as the failure-table scenarios, and monitoring names concrete signals (sagas per state, age of the oldest in-flight saga, compensation rate, captures without a booking).",
                ],
            ),
        ],
    }
    .into()
}

// ---------------------------------------------------------------------------------------------
// 5. Real-world Bug Hunt
// ---------------------------------------------------------------------------------------------

fn bug_hunt() -> CatalogueEntry {
    Entry {
        id: BUG_HUNT_ID,
        title: "Real-world Bug Hunt",
        kind: AssessmentKind::BugHunt,
        difficulty: Difficulty::Mid,
        best_for: "Measuring debugging skills and code reading",
        time_limit_minutes: 90,
        task: task(
            "Find, prove and fix the defects behind four support tickets",
            r#"
# Bug hunt: the Ledgerline invoicing service

## Scenario

Ledgerline sends invoices on behalf of 9,000 small businesses. Its `invoices` service is a small
Flask application (Python 3.12, PostgreSQL 16, psycopg 3) run by gunicorn with 4 threads per
worker process. Support has escalated the tickets in `SUPPORT_TICKETS.md`. The original author
left a year ago and nobody has touched the code since.

We know of at least four distinct defects in the starter code that produce the symptoms in the
tickets. They are real bugs, not style issues.

Two helpers are not included: `invoices/db.py`, whose `get_db()` returns a psycopg 3 connection
in **autocommit mode** with named-tuple rows (use `with db.transaction():` for a transaction),
and `invoices/signing.py`, whose `verify_signature(request)` checks the provider's signature and
returns the parsed event.

## Requirements

For each defect you find:

1. Point to the exact lines and explain the root cause: why the code produces the symptom.
2. Write a test that fails because of the defect. Unit tests are fine; stub the database where the
   defect does not depend on SQL semantics.
3. Fix it with the smallest correct change, and make the test pass.
4. Rate its impact (money, data, availability, annoyance) and say what you would query in
   production to find the customers affected.

## Constraints

- 90 minutes. Work in order of impact: a precise analysis of three defects beats a shallow list
  of ten.
- Do not refactor beyond what a fix needs; note other concerns separately.
- Test-only dependencies are allowed (`pytest`, `freezegun` and `time-machine` are already
  approved).

## What to hand in

- Your fixes and tests.
- `FINDINGS.md`: one section per defect (location, root cause, fix, impact, how to find affected
  customers), ordered by impact, followed by a short list of anything else you noticed.

## How it will be evaluated

Reviewers know where the planted defects are. They check that you found them, that the cause you
give is the real one and not a symptom, that each test fails before your fix and passes after it,
and that your impact assessment is sensible.
"#,
            vec![
                file(
                    "invoices/listing.py",
                    r#"
"""Invoice list for the customer dashboard, and the hourly overdue-reminder job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flask import Blueprint, jsonify, request

from .db import get_db
from .fx import rates

bp = Blueprint("invoices", __name__)

PAGE_SIZE = 20
LATE_FEE_CENTS = 1500

INVOICE_COLUMNS = (
    "id, number, customer_name, currency, amount_cents, balance_cents,"
    " due_date, status, late_fee_applied"
)


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    email: str
    timezone: str  # IANA name, e.g. "America/Los_Angeles"
    display_currency: str


@dataclass(frozen=True)
class Invoice:
    id: int
    number: str
    customer_name: str
    currency: str
    amount_cents: int
    balance_cents: int
    due_date: date  # payable until the end of this day, in the account's time zone
    status: str  # 'open' | 'paid' | 'void'
    late_fee_applied: bool


def load_account(db, account_id: int) -> Account:
    row = db.execute(
        "SELECT id, name, email, timezone, display_currency FROM accounts WHERE id = %s",
        (account_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"account {account_id} not found")
    return Account(*row)


def is_overdue(invoice: Invoice) -> bool:
    return invoice.status == "open" and datetime.utcnow().date() > invoice.due_date


def serialize(invoice: Invoice, account: Account) -> dict:
    return {
        "id": invoice.id,
        "number": invoice.number,
        "customer_name": invoice.customer_name,
        "currency": invoice.currency,
        "amount_cents": invoice.amount_cents,
        "balance_cents": invoice.balance_cents,
        "display_amount_cents": rates.convert(
            invoice.amount_cents, invoice.currency, account.display_currency
        ),
        "display_currency": account.display_currency,
        "due_date": invoice.due_date.isoformat(),
        "status": invoice.status,
        "overdue": is_overdue(invoice),
    }


@bp.get("/accounts/<int:account_id>/invoices")
def list_invoices(account_id: int):
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        return jsonify({"error": "page must be an integer"}), 400
    if page < 1:
        return jsonify({"error": "page must be 1 or more"}), 400

    db = get_db()
    account = load_account(db, account_id)
    total = db.execute(
        "SELECT count(*) FROM invoices WHERE account_id = %s", (account_id,)
    ).fetchone()[0]
    total_pages = max(total // PAGE_SIZE, 1)
    if page > total_pages:
        return jsonify({"error": "page out of range"}), 404

    rows = db.execute(
        f"""
        SELECT {INVOICE_COLUMNS}
        FROM invoices
        WHERE account_id = %s
        ORDER BY issued_at DESC, id DESC
        LIMIT %s OFFSET %s
        """,
        (account_id, PAGE_SIZE, (page - 1) * PAGE_SIZE),
    ).fetchall()
    return jsonify(
        {
            "page": page,
            "total_pages": total_pages,
            "total": total,
            "invoices": [serialize(Invoice(*row), account) for row in rows],
        }
    )


def send_overdue_reminders(db, mailer) -> int:
    """Runs hourly from cron. The first time an open invoice is seen overdue, adds the late fee
    and emails the account owner. Returns the number of reminders sent."""
    accounts = [
        Account(*row)
        for row in db.execute(
            "SELECT id, name, email, timezone, display_currency FROM accounts WHERE active"
        ).fetchall()
    ]
    sent = 0
    for account in accounts:
        invoices = [
            Invoice(*row)
            for row in db.execute(
                f"SELECT {INVOICE_COLUMNS} FROM invoices"
                " WHERE account_id = %s AND status = 'open' AND NOT late_fee_applied",
                (account.id,),
            ).fetchall()
        ]
        for invoice in invoices:
            if not is_overdue(invoice):
                continue
            with db.transaction():
                updated = db.execute(
                    "UPDATE invoices"
                    " SET balance_cents = balance_cents + %s, late_fee_applied = true"
                    " WHERE id = %s AND status = 'open' AND NOT late_fee_applied",
                    (LATE_FEE_CENTS, invoice.id),
                ).rowcount
            if updated:
                mailer.send_overdue_notice(account.email, invoice, LATE_FEE_CENTS)
                sent += 1
    return sent
"#,
                ),
                file(
                    "invoices/payments.py",
                    r#"
"""Webhook from the card payment provider."""

from __future__ import annotations

from flask import Blueprint, request

from .db import get_db
from .signing import verify_signature

bp = Blueprint("payments", __name__)


@bp.post("/webhooks/payments")
def payment_webhook():
    event = verify_signature(request)  # aborts with 400 on a bad signature
    if event["type"] != "payment.succeeded":
        return "", 204
    payment = event["data"]
    record_payment(
        get_db(),
        invoice_id=int(payment["metadata"]["invoice_id"]),
        amount_cents=payment["amount"],
        provider_ref=payment["id"],
    )
    return "", 204


def record_payment(db, invoice_id: int, amount_cents: int, provider_ref: str) -> None:
    """Applies a successful payment to its invoice.

    The provider delivers each event at least once and retries until it receives a 2xx, so this
    must be safe to call twice with the same provider_ref. Invoices may be paid in several parts.
    """
    already = db.execute(
        "SELECT 1 FROM payments WHERE provider_ref = %s", (provider_ref,)
    ).fetchone()
    if already:
        return

    invoice = db.execute(
        "SELECT balance_cents, status FROM invoices WHERE id = %s", (invoice_id,)
    ).fetchone()
    if invoice is None:
        raise LookupError(f"invoice {invoice_id} not found")

    db.execute(
        "INSERT INTO payments (invoice_id, amount_cents, provider_ref, received_at)"
        " VALUES (%s, %s, %s, now())",
        (invoice_id, amount_cents, provider_ref),
    )

    balance = invoice.balance_cents - amount_cents
    db.execute(
        "UPDATE invoices SET balance_cents = %s, status = %s WHERE id = %s",
        (balance, "paid" if balance <= 0 else "open", invoice_id),
    )
"#,
                ),
                file(
                    "invoices/fx.py",
                    r#"
"""Exchange rates, for showing invoice amounts in the account's display currency."""

from __future__ import annotations

import time
from decimal import ROUND_HALF_EVEN, Decimal

import requests

RATES_URL = "https://fx.internal.ledgerline.example/v1/latest?base=EUR"


def fetch_rates() -> dict[str, Decimal]:
    """Rates against EUR, e.g. {"EUR": 1, "USD": 1.0842, "GBP": 0.8571, ...}."""
    resp = requests.get(RATES_URL, timeout=3)
    resp.raise_for_status()
    table = {code: Decimal(str(rate)) for code, rate in resp.json()["rates"].items()}
    table["EUR"] = Decimal(1)
    return table


class RateCache:
    """Keeps the rate table for five minutes. One instance is shared by all request threads of a
    gunicorn worker."""

    def __init__(self, fetch=fetch_rates, ttl_seconds: float = 300.0, clock=time.monotonic):
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._clock = clock
        self._rates: dict[str, Decimal] = {}
        self._fetched_at: float | None = None

    def _refresh_if_stale(self) -> None:
        now = self._clock()
        if self._fetched_at is not None and now - self._fetched_at < self._ttl:
            return
        # Mark the table fresh first so that concurrent requests don't all call the FX service.
        self._fetched_at = now
        self._rates.clear()
        self._rates.update(self._fetch())

    def rate(self, currency: str) -> Decimal:
        self._refresh_if_stale()
        return self._rates[currency]

    def convert(self, amount_cents: int, from_currency: str, to_currency: str) -> int:
        if from_currency == to_currency:
            return amount_cents
        in_eur = Decimal(amount_cents) / self.rate(from_currency)
        converted = in_eur * self.rate(to_currency)
        return int(converted.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


rates = RateCache()
"#,
                ),
                file(
                    "SUPPORT_TICKETS.md",
                    r#"
# Escalated support tickets

## SUP-1184: "Older invoices missing from the dashboard" (normal)

Hartley Joinery (account 5521): "We've sent 47 invoices this year but the invoice list only goes
back to February, and there is no page 3." Support reproduced it: `?page=3` answers 404 "page out
of range". Another customer with exactly 60 invoices sees all of them.

## SUP-1201: "Overdue notice before the invoice was due" (high)

Sunset Pilates, Los Angeles (account 8830, time zone America/Los_Angeles): "My client received an
overdue notice and a $15 late fee at 5:12 pm on the day the invoice was due. Our terms say payment
by the end of the due date." Three similar tickets this month, all from accounts on the US West
Coast or in Hawaii; none from Europe.

## SUP-1207: "Paid invoice still open, and a late fee added" (urgent)

Brindle & Co (account 3104): the customer's card payment of 3 March, 14:02 UTC appears under
Payments, but invoice INV-20931 still shows as open with its full balance, and a late fee was
added on 10 March. Engineering note: a deploy restarted every pod between 14:01 and 14:03 that
day, and the provider's dashboard shows the webhook was retried and answered 204. Finance has
also seen two invoices paid in two parts at the same minute whose balance only reflects one of
the parts.

## SUP-1212: "Error page when opening invoices" (normal)

Several accounts whose display currency differs from their invoice currency get an error page
"every now and then"; reloading fixes it. Sentry groups them as `KeyError: 'USD'` raised in
`invoices/fx.py`, in bursts roughly every five minutes, worse at peak. On 11 March the FX provider
timed out once and the errors continued without a break for five minutes.
"#,
                ),
            ],
        ),
        criteria: vec![
            criterion(
                "defects_found",
                "Defects found and root causes",
                30,
                [
                    "Finds at most one planted defect, or describes symptoms without identifying the lines responsible.",
                    "Finds two planted defects with correct root causes, or more with a wrong cause for one (e.g. blaming the FX provider for the KeyError rather than the cache being marked fresh while empty).",
                    "Finds three of the four (floor division in total_pages, the UTC date in is_overdue, record_payment's insert and update outside one transaction, RateCache marked fresh and cleared before refilling) with correct root causes.",
                    "Finds all four with correct causes, including the secondary effects: the provider_ref check making a half-applied payment permanent on retry, lost updates between concurrent partial payments, and a failed FX fetch leaving the table empty for the whole TTL.",
                ],
            ),
            criterion(
                "fix_quality",
                "Quality of the fixes",
                25,
                [
                    "Fixes missing or wrong, or treating symptoms (catching KeyError and retrying, adding a day of grace to every due date).",
                    "Fixes remove the reported symptom but leave the defect reachable (e.g. one transaction for record_payment but the balance still computed from an unlocked read; a lock around the refresh that still clears the shared table readers use).",
                    "Minimal correct fixes: ceiling division; the due date compared with today in the account's time zone; insert and balance update in one transaction with the row locked or an atomic balance_cents = balance_cents - amount; a new rate table built aside and swapped in, with a single refresher.",
                    "Level 3, plus the hardening each defect calls for and no more: a unique constraint on payments.provider_ref, the previous rates kept when a refresh fails, and the reminder job checked to use the corrected overdue rule.",
                ],
            ),
            criterion(
                "regression_tests",
                "Regression tests",
                25,
                [
                    "No tests, or tests that pass with the defect still present.",
                    "Tests for some fixes, but relying on the real clock or sleeps, or not failing against the original code.",
                    "One test per fixed defect that fails before and passes after, using frozen time or an injected clock for the time-zone and cache cases and a fake or real database for the payment case.",
                    "Level 3, plus the boundaries pinned: exactly 40 and 41 invoices, 23:59 and 00:01 local time on the due date (including across a DST change), a reader during a refresh, and a failure between insert and update.",
                ],
            ),
            criterion(
                "findings_write_up",
                "FINDINGS.md",
                20,
                [
                    "FINDINGS.md missing, or a list of changes without explanation.",
                    "Root causes explained, but no impact assessment or ordering.",
                    "Ordered by impact with the money-affecting defects first (payments, late fees), each with a concrete way to count affected customers (payments whose invoice balance never changed, late fees applied before local end of day).",
                    "Level 3, plus remediation for affected customers (refund wrongly charged late fees, reconcile open invoices against payments) and other observations kept separate from the defects.",
                ],
            ),
        ],
    }
    .into()
}

// ---------------------------------------------------------------------------------------------
// 6. Async Task Queue Implementation
// ---------------------------------------------------------------------------------------------

fn async_task_queue() -> CatalogueEntry {
    Entry {
        id: ASYNC_TASK_QUEUE_ID,
        title: "Async Task Queue Implementation",
        kind: AssessmentKind::AsyncTaskQueue,
        difficulty: Difficulty::MidHard,
        best_for: "Testing concurrency patterns and job processing",
        time_limit_minutes: 150,
        task: task(
            "Build a durable PostgreSQL-backed job queue and its asyncio worker",
            r#"
# A durable job queue for Paperwell

## Scenario

Paperwell lets accountants upload receipts and bank statements. Every upload triggers background
jobs: a virus scan, a thumbnail, OCR and categorisation. Today a worker pops job ids off a Redis
list. Jobs vanish whenever a worker is restarted mid-job, one slow OCR job holds up everything
queued behind it, and last month a malformed PDF crashed every worker in turn for an hour.

You will replace it with a small job queue on PostgreSQL, which Paperwell already runs, and a
worker that runs jobs concurrently with `asyncio`. The skeleton is in `jobqueue/`.

## Requirements

1. `Queue.enqueue(kind, payload, *, dedupe_key=None, run_at=None, priority=0)` is durable once it
   returns. Enqueueing with a `dedupe_key` that belongs to a job still pending or running returns
   that job's id instead of creating a second job; once that job has finished, the key may be used
   again.
2. `Worker.run()` runs up to `concurrency` jobs at once (default 8). No two workers, in the same
   process or in different ones, may run the same job at the same time.
3. A running job holds a **lease** (default 60 s), which the worker extends while the handler runs.
   If the worker dies, the job becomes available to others when the lease runs out.
4. Handlers raise `TransientError` (retry later) or `PermanentError` (never retry); any other
   exception counts as transient. Retries use exponential backoff with jitter
   (`retry_delay`). After `max_attempts` (default 5) a job is marked dead, keeping its last error.
5. **Graceful shutdown** on SIGTERM: stop claiming, give running jobs up to 25 s to finish, then
   cancel them and release their leases so another worker can pick them up immediately.
6. Jobs with a higher `priority` are claimed first, then the earliest `run_at`. A flood of
   low-priority jobs must not delay high-priority ones.

## Constraints

- Python 3.12, `asyncpg`, PostgreSQL 16 (point `DATABASE_URL` at any scratch database). No other
  broker or queue library.
- Delivery is at least once. Explain what a handler must do to be safe under it, and make the
  example `make_thumbnail` handler safe.
- Plan for 200 jobs/s enqueued at peak and up to 40 worker processes.

## What to hand in

- `jobqueue/schema.sql` and `jobqueue/worker.py` completed, the handler fixed, and your tests
  (`pytest`), including one that kills a worker with SIGKILL mid-job and shows the job completing
  elsewhere.
- `NOTES.md`: your claim query and why it is correct under concurrency, the job state machine,
  what happens at each failure point, how you keep the table from bloating at 200 jobs/s, and what
  you would monitor.

## How it will be evaluated

We run your worker against a stress harness that enqueues thousands of jobs with random transient
failures, sends SIGTERM and SIGKILL to workers at random moments, then checks that every job
either completed or is dead (none lost, none run twice at the same time) and that retries were
spaced as specified. Reviewers then read `NOTES.md` and the code.
"#,
            vec![
                file(
                    "jobqueue/schema.sql",
                    r#"
-- Job queue schema (PostgreSQL 16). Complete the jobs table and its indexes.

CREATE TABLE jobs (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text        NOT NULL,
    payload    jsonb       NOT NULL,
    priority   smallint    NOT NULL DEFAULT 0,
    run_at     timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now()
    -- TODO: state, attempts, lease, last error, dedupe key, finished_at, ...
);

-- TODO: indexes for claiming and for deduplication.


-- Tables used by the example handler.

CREATE TABLE documents (
    id           bigint PRIMARY KEY,
    account_id   bigint      NOT NULL,
    storage_key  text        NOT NULL,
    content_type text        NOT NULL,
    uploaded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE document_thumbnails (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id bigint      NOT NULL REFERENCES documents (id),
    storage_key text        NOT NULL,
    width       integer     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
"#,
                ),
                file(
                    "jobqueue/worker.py",
                    r#"
"""A PostgreSQL-backed job queue and its asyncio worker. Complete the TODOs."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

log = logging.getLogger("jobqueue")


class TransientError(Exception):
    """The job may succeed later: a timeout, a 5xx from a dependency, a lock conflict."""


class PermanentError(Exception):
    """Retrying cannot help: a malformed payload, a deleted document."""


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int  # 1 on the first run


Handler = Callable[[Job], Awaitable[None]]


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 8
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 5
    backoff_base: timedelta = timedelta(seconds=2)
    backoff_cap: timedelta = timedelta(minutes=10)
    shutdown_grace: timedelta = timedelta(seconds=25)
    poll_interval: timedelta = timedelta(milliseconds=500)


def retry_delay(attempt: int, config: WorkerConfig, rng: random.Random | None = None) -> timedelta:
    """How long to wait before retrying a job whose attempt number `attempt` failed.

    TODO: exponential from config.backoff_base, capped at config.backoff_cap, with jitter.
    """
    raise NotImplementedError


class Queue:
    def __init__(self, pool: asyncpg.Pool):
        self._pool = pool

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        dedupe_key: str | None = None,
        run_at: datetime | None = None,
        priority: int = 0,
    ) -> int:
        """Durably enqueues a job and returns its id. If `dedupe_key` belongs to a job that is
        still pending or running, returns that job's id instead."""
        raise NotImplementedError  # TODO


class Worker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        handlers: dict[str, Handler],
        config: WorkerConfig = WorkerConfig(),
    ):
        self._pool = pool
        self._handlers = handlers
        self._config = config
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Asks run() to shut down gracefully."""
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGINT, self.stop)

    async def run(self) -> None:
        """Claims and runs jobs until stop() is called, then shuts down gracefully.

        TODO: claim up to `concurrency` jobs at a time, extend their leases while the handlers
        run, record success, retry or death, and drain on shutdown.
        """
        raise NotImplementedError


async def main() -> None:
    import os

    from .handlers import S3Storage, registry

    logging.basicConfig(level=logging.INFO)
    pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=2, max_size=10)
    worker = Worker(pool, registry(pool, S3Storage.from_env()))
    worker.install_signal_handlers()
    try:
        await worker.run()
    finally:
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
"#,
                ),
                file(
                    "jobqueue/handlers.py",
                    r#"
"""Job handlers. The queue delivers every job at least once: a handler may run again after a
crash, a lease expiry or a retry, possibly after having partly succeeded the first time."""

from __future__ import annotations

import io
import uuid
from typing import Protocol

import asyncpg
from PIL import Image

from .worker import Handler, Job, PermanentError, TransientError

THUMBNAIL_WIDTH = 320


class StorageUnavailable(Exception):
    pass


class Storage(Protocol):
    """S3-compatible object storage."""

    async def get(self, key: str) -> bytes:
        """Raises KeyError if the object does not exist, StorageUnavailable on 5xx or timeout."""
        ...

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Creates or overwrites the object."""
        ...


class S3Storage:
    """The production client (not included in this exercise)."""

    @classmethod
    def from_env(cls) -> Storage:
        raise NotImplementedError


def registry(pool: asyncpg.Pool, storage: Storage) -> dict[str, Handler]:
    async def make_thumbnail(job: Job) -> None:
        document_id = job.payload["document_id"]
        doc = await pool.fetchrow(
            "SELECT storage_key, content_type FROM documents WHERE id = $1", document_id
        )
        if doc is None:
            raise PermanentError(f"document {document_id} no longer exists")
        if not doc["content_type"].startswith("image/"):
            raise PermanentError(f"cannot make a thumbnail of {doc['content_type']}")
        try:
            original = await storage.get(doc["storage_key"])
        except StorageUnavailable as exc:
            raise TransientError(str(exc)) from exc

        image = Image.open(io.BytesIO(original))
        image.thumbnail((THUMBNAIL_WIDTH, THUMBNAIL_WIDTH * 4))
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=82)

        key = f"thumbnails/{document_id}/{uuid.uuid4()}.jpg"
        await storage.put(key, out.getvalue(), content_type="image/jpeg")
        await pool.execute(
            "INSERT INTO document_thumbnails (document_id, storage_key, width)"
            " VALUES ($1, $2, $3)",
            document_id,
            key,
            image.width,
        )

    return {"make_thumbnail": make_thumbnail}
"#,
                ),
                file(
                    "tests/test_worker.py",
                    r#"
"""Queue tests. Set DATABASE_URL to a scratch PostgreSQL database; each test gets a fresh schema."""

from __future__ import annotations

import asyncio
import os
import pathlib
import random
from datetime import timedelta

import asyncpg
import pytest
import pytest_asyncio

from jobqueue.worker import Job, Queue, TransientError, Worker, WorkerConfig, retry_delay

SCHEMA = pathlib.Path(__file__).parent.parent / "jobqueue" / "schema.sql"
FAST = WorkerConfig(
    lease=timedelta(seconds=2),
    backoff_base=timedelta(milliseconds=10),
    backoff_cap=timedelta(milliseconds=200),
    poll_interval=timedelta(milliseconds=10),
)


@pytest_asyncio.fixture
async def pool():
    admin = await asyncpg.connect(os.environ["DATABASE_URL"])
    await admin.execute("DROP SCHEMA IF EXISTS jobqueue_test CASCADE; CREATE SCHEMA jobqueue_test")
    await admin.close()
    pool = await asyncpg.create_pool(
        os.environ["DATABASE_URL"],
        min_size=1,
        max_size=20,
        server_settings={"search_path": "jobqueue_test"},
    )
    await pool.execute(SCHEMA.read_text())
    yield pool
    await pool.close()


async def wait_until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_enqueueing_twice_with_one_dedupe_key_returns_the_same_job(pool):
    queue = Queue(pool)

    first = await queue.enqueue("make_thumbnail", {"document_id": 1}, dedupe_key="thumb:1")
    second = await queue.enqueue("make_thumbnail", {"document_id": 1}, dedupe_key="thumb:1")

    assert first == second


@pytest.mark.asyncio
async def test_a_transient_failure_is_retried_until_the_job_succeeds(pool):
    attempts: list[int] = []

    async def flaky(job: Job) -> None:
        attempts.append(job.attempt)
        if job.attempt < 3:
            raise TransientError("storage timed out")

    await Queue(pool).enqueue("flaky", {})
    worker = Worker(pool, {"flaky": flaky}, FAST)
    running = asyncio.create_task(worker.run())

    await wait_until(lambda: len(attempts) == 3)
    worker.stop()
    await running

    assert attempts == [1, 2, 3]


def test_retry_delays_are_capped():
    rng = random.Random(7)

    delays = [retry_delay(attempt, FAST, rng) for attempt in range(1, 12)]

    assert all(timedelta(0) <= d <= FAST.backoff_cap for d in delays)
    # TODO: assert the growth and jitter properties you chose.


@pytest.mark.skip(reason="TODO: run a worker in a subprocess, SIGKILL it mid-job, show the job completes")
def test_a_job_survives_its_worker_being_killed():
    ...
"#,
                ),
            ],
        ),
        criteria: vec![
            criterion(
                "claiming_and_leases",
                "Claiming and leases",
                25,
                [
                    "Claims with a SELECT followed by an UPDATE without locking, so two workers can run the same job; or keeps a transaction open for the whole job.",
                    "Uses FOR UPDATE SKIP LOCKED, but holds the row lock for the job's duration instead of a lease, or has a lease that is never extended, so long jobs are run twice or a killed worker's jobs wait on connection timeouts.",
                    "A short claim statement (UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING) that sets the state, a lease expiry and a worker token; a heartbeat extends the lease; expired leases are reclaimable; completion checks the token so a worker that lost its lease cannot overwrite the new owner's result.",
                    "Level 3, plus the claim is served by a partial index matching its ORDER BY, heartbeat and lease timings are derived (heartbeat well inside the lease, the database's now() as the only clock), and the stress harness finds no concurrent double runs.",
                ],
            ),
            criterion(
                "retries_and_failures",
                "Retries, failures and dead jobs",
                25,
                [
                    "Failed jobs are dropped or retried immediately in a loop; there is no dead state.",
                    "Backoff exists, but without jitter or without honouring PermanentError, or attempts are counted only on handler errors so that a job which crashes its worker loops forever.",
                    "Exponential backoff with jitter and a cap; the attempt counted at claim time so crashes and lease expiries count; PermanentError and max_attempts move the job to dead with its last error kept.",
                    "Level 3, plus a handler timeout distinct from the lease, an operator path to re-queue dead jobs, and a state machine in NOTES.md that matches every transition in the code.",
                ],
            ),
            criterion(
                "shutdown_and_lifecycle",
                "Graceful shutdown",
                15,
                [
                    "SIGTERM kills running jobs mid-flight, or is ignored.",
                    "Stops claiming on SIGTERM, but waits indefinitely, or exits without releasing leases so the jobs wait for expiry.",
                    "Stops claiming, gives running jobs up to 25 s, cancels the rest and releases their leases (without counting a failed attempt) before exiting; covered by a test.",
                    "Level 3, plus heartbeats continue during the drain, a second signal forces a prompt exit, and the connection pool is closed cleanly.",
                ],
            ),
            criterion(
                "idempotency_and_fairness",
                "Deduplication, idempotency and priorities",
                15,
                [
                    "No deduplication, or a racy check-then-insert; make_thumbnail still writes a new object and row on every run.",
                    "Deduplication through a plain unique constraint that also blocks re-enqueueing after completion; or priorities that a flood of low-priority jobs can overtake.",
                    "A partial unique index on dedupe_key for pending and running jobs with INSERT ... ON CONFLICT returning the existing id; make_thumbnail made idempotent (deterministic object key and an upsert); the claim orders by priority, then run_at.",
                    "Level 3, plus NOTES.md states precisely where duplicates can still occur and what handlers must tolerate, and addresses starvation of low-priority jobs and CPU-bound handler work blocking the event loop.",
                ],
            ),
            criterion(
                "tests_and_operations",
                "Tests and operations",
                20,
                [
                    "No tests beyond the starter ones.",
                    "Tests cover enqueue and a successful run only, or rely on sleeps long enough to be flaky.",
                    "Tests for concurrent claiming, retry spacing, dead-lettering, lease expiry after a SIGKILL and graceful shutdown, with short leases and polling helpers rather than fixed sleeps.",
                    "Level 3, plus NOTES.md covers table bloat at 200 jobs/s (deleting or partitioning finished jobs, autovacuum settings) and concrete metrics: queue depth and age of the oldest ready job per kind, claim latency, retries and dead jobs per kind.",
                ],
            ),
        ],
    }
    .into()
}

// ---------------------------------------------------------------------------------------------
// 7. Rate Limiting & Throttling Design
// ---------------------------------------------------------------------------------------------

fn rate_limiting() -> CatalogueEntry {
    Entry {
        id: RATE_LIMITING_ID,
        title: "Rate Limiting & Throttling Design",
        kind: AssessmentKind::RateLimiting,
        difficulty: Difficulty::Mid,
        best_for: "Assessing security and reliability mindset",
        time_limit_minutes: 120,
        task: task(
            "Design and implement rate limiting for a public API",
            r#"
# Rate limiting for the Parcelbase API

## Scenario

Parcelbase sells shipping labels through a public REST API, used by 3,800 merchants and a dozen
e-commerce platforms, and through a web dashboard. Six stateless API instances (Go) sit behind a
load balancer, and a 3-shard Redis Cluster is available. The only limiting today is a hackathon
prototype (`internal/ratelimit/limiter.go`). In the last month:

- A credential-stuffing run tried 1.9 million email and password pairs against
  `POST /v1/sessions` from about 40,000 IP addresses; 212 accounts were taken over.
- One platform's nightly job requested 900 quotes/s from `POST /v1/rates` for 40 minutes. Each
  quote fans out to four carrier APIs, which then throttled *all* Parcelbase traffic.
- A merchant's broken retry loop sent 15,000 requests/s to `GET /v1/labels/{id}` and raised p99
  latency for everyone.

## Requirements

Design rate limiting for the API and implement it in the skeleton:

1. **Per API key** limits by plan, with bursts: `starter` 10 requests/s (burst 20), `growth`
   50 requests/s (burst 100), `platform` 200 requests/s (burst 400).
2. **Expensive endpoint**: `POST /v1/rates` is additionally limited to 20 requests *in flight* per
   API key and 150 in flight across all keys, to stay inside the carriers' limits.
3. **Login protection** on `POST /v1/sessions`, which has no API key: make credential stuffing
   slow and visible, without letting an attacker lock genuine users out of their accounts.
4. Limits hold across all six instances, not per instance.
5. Rejected requests get `429 Too Many Requests` with `Retry-After`, and responses tell
   well-behaved clients how much of their budget is left.

## Constraints

- Go 1.22 and `net/http`; Redis only through the interface in `internal/ratelimit/redis.go`. A
  Redis round trip costs about 0.4 ms, and limiting may add at most 2 ms to p99 latency.
- Redis can fail. Decide per endpoint what happens then, and justify it.
- Client addresses arrive in `X-Forwarded-For`; the load balancer appends the address it saw to
  whatever the client sent.

## What to hand in

- The limiter and middleware with tests (`go test -race ./...`, no network). A fake Redis is fine
  if it preserves the atomicity of real Redis scripts.
- `DESIGN.md`: the algorithms you chose and why, the Redis data model and its memory footprint,
  the login protection scheme (what it stops and what it does not), behaviour when Redis fails,
  and the contract for API clients (headers, documentation, how a customer gets a higher limit).

## How it will be evaluated

Reviewers run a load script against two instances sharing one Redis: bursts at and above each
plan's limit, concurrent quotes, a login attack from many IPs against a few accounts and from one
IP against many accounts, forged `X-Forwarded-For` headers, and Redis stopped mid-test. They then
read `DESIGN.md` with the results next to it.
"#,
            vec![
                file(
                    "go.mod",
                    r#"
module github.com/parcelbase/api

go 1.22
"#,
                ),
                file(
                    "cmd/api/main.go",
                    r#"
// Command api is the Parcelbase public API. Handlers are reduced to what matters for this
// exercise; users, carriers and API keys are fakes with realistic latency.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/parcelbase/api/internal/ratelimit"
)

type Plan string

const (
	PlanStarter  Plan = "starter"
	PlanGrowth   Plan = "growth"
	PlanPlatform Plan = "platform"
)

// Account owns an API key.
type Account struct {
	ID   string
	Plan Plan
}

type accountKey struct{}

// AccountFrom returns the account authenticated by withAPIKey, if any.
func AccountFrom(ctx context.Context) (Account, bool) {
	a, ok := ctx.Value(accountKey{}).(Account)
	return a, ok
}

var errBadCredentials = errors.New("bad credentials")

// fakeKeys stands in for the accounts database (~3 ms per lookup in production).
type fakeKeys map[string]Account

func (k fakeKeys) Lookup(ctx context.Context, token string) (Account, error) {
	time.Sleep(3 * time.Millisecond)
	if a, ok := k[token]; ok {
		return a, nil
	}
	return Account{}, errors.New("unknown key")
}

// fakeUsers checks dashboard passwords. Production uses bcrypt at cost 12: ~80 ms of CPU.
type fakeUsers struct{}

func (fakeUsers) Authenticate(ctx context.Context, email, password string) (string, error) {
	time.Sleep(80 * time.Millisecond)
	if email == "ops@merchant.example" && password == "correct horse battery staple" {
		return "sess_2b7e151628aed2a6", nil
	}
	return "", errBadCredentials // same error for unknown emails and wrong passwords
}

// fakeCarriers asks four carrier APIs for prices. The carriers together accept about 600 quote
// requests/s from Parcelbase and throttle all of our traffic when we exceed that.
type fakeCarriers struct{}

func (fakeCarriers) Quote(ctx context.Context, from, to string, grams int) ([]map[string]any, error) {
	select {
	case <-time.After(400 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []map[string]any{{"carrier": "dpd", "service": "next_day", "price_minor": 689}}, nil
}

type server struct {
	keys     fakeKeys
	users    fakeUsers
	carriers fakeCarriers
	log      *slog.Logger
}

func main() {
	s := &server{
		keys: fakeKeys{
			"pb_live_starter_5f1c": {ID: "acct_1001", Plan: PlanStarter},
			"pb_live_growth_9a2e":  {ID: "acct_2002", Plan: PlanGrowth},
			"pb_live_platf_c07d":   {ID: "acct_3003", Plan: PlanPlatform},
		},
		log: slog.New(slog.NewJSONHandler(os.Stdout, nil)),
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sessions", s.handleLogin)
	mux.HandleFunc("POST /v1/rates", s.requireAccount(s.handleRates))
	mux.HandleFunc("POST /v1/labels", s.requireAccount(s.handleCreateLabel))
	mux.HandleFunc("GET /v1/labels/{id}", s.requireAccount(s.handleGetLabel))

	limiter := &ratelimit.FixedWindow{Limit: 100, Window: time.Second}
	handler := rateLimit(limiter, s.withAPIKey(mux))

	s.log.Info("listening", "addr", ":8080")
	if err := http.ListenAndServe(":8080", handler); err != nil {
		s.log.Error("server stopped", "err", err)
		os.Exit(1)
	}
}

// rateLimit is the hackathon prototype: one limit for everybody, keyed by client IP.
func rateLimit(l ratelimit.Limiter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := l.Allow(r.Context(), ratelimit.ClientIP(r))
		if err == nil && !d.Allowed {
			writeError(w, http.StatusServiceUnavailable, "slow_down", "Too many requests.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withAPIKey authenticates "Authorization: Bearer pb_live_..." keys. Requests without a key pass
// through unauthenticated; handlers that need an account use requireAccount.
func (s *server) withAPIKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			account, err := s.keys.Lookup(r.Context(), token)
			if err != nil {
				writeError(w, http.StatusUnauthorized, "invalid_api_key", "The API key is not valid.")
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), accountKey{}, account))
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) requireAccount(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := AccountFrom(r.Context()); !ok {
			writeError(w, http.StatusUnauthorized, "missing_api_key", "An API key is required.")
			return
		}
		h(w, r)
	}
}

func (s *server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_body", "Expected email and password.")
		return
	}
	token, err := s.users.Authenticate(r.Context(), body.Email, body.Password)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "invalid_credentials", "Email or password is incorrect.")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"session": token})
}

func (s *server) handleRates(w http.ResponseWriter, r *http.Request) {
	rates, err := s.carriers.Quote(r.Context(), "GB-EC1V", "DE-10115", 1200)
	if err != nil {
		writeError(w, http.StatusBadGateway, "carrier_error", "Carriers did not answer in time.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rates": rates})
}

func (s *server) handleCreateLabel(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusCreated, map[string]string{"id": "lbl_8c1f", "status": "created"})
}

func (s *server) handleGetLabel(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id"), "status": "in_transit"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]string{"error": code, "message": message})
}
"#,
                ),
                file(
                    "internal/ratelimit/limiter.go",
                    r#"
// Package ratelimit decides whether a request may proceed.
package ratelimit

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"
)

// Decision is the outcome of one check.
type Decision struct {
	Allowed    bool
	Limit      int           // requests allowed per window, or bucket capacity
	Remaining  int           // budget left
	ResetAfter time.Duration // until the budget is fully restored
	RetryAfter time.Duration // when not allowed: until a retry can succeed
}

// Limiter is what the middleware calls. Implementations must be safe for concurrent use.
type Limiter interface {
	Allow(ctx context.Context, key string) (Decision, error)
}

// FixedWindow is the hackathon prototype: Limit requests per Window per key, counted in this
// process.
type FixedWindow struct {
	Limit  int
	Window time.Duration

	counts  map[string]int
	resetAt time.Time
}

func (l *FixedWindow) Allow(ctx context.Context, key string) (Decision, error) {
	now := time.Now()
	if l.counts == nil || now.After(l.resetAt) {
		l.counts = map[string]int{}
		l.resetAt = now.Add(l.Window)
	}
	l.counts[key]++
	remaining := l.Limit - l.counts[key]
	if remaining < 0 {
		return Decision{Allowed: false, Limit: l.Limit, RetryAfter: l.resetAt.Sub(now)}, nil
	}
	return Decision{Allowed: true, Limit: l.Limit, Remaining: remaining, ResetAfter: l.resetAt.Sub(now)}, nil
}

// ClientIP returns the address of the client that sent the request.
func ClientIP(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		return strings.TrimSpace(strings.Split(xff, ",")[0])
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
"#,
                ),
                file(
                    "internal/ratelimit/redis.go",
                    r#"
package ratelimit

import (
	"context"
	"time"
)

// Redis is the part of the Redis Cluster client the limiter may use (an adapter over
// go-redis's ClusterClient in production). Keys touched by one script must hash to the same
// slot: use a hash tag, e.g. "rl:{acct_1001}:tokens" and "rl:{acct_1001}:ts".
type Redis interface {
	// Eval runs a Lua script atomically on the shard that owns keys.
	Eval(ctx context.Context, script string, keys []string, args ...any) (any, error)
	// EvalSha runs a script loaded with ScriptLoad. The error contains "NOSCRIPT" when the
	// shard does not have it (e.g. after a failover).
	EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) (any, error)
	ScriptLoad(ctx context.Context, script string) (string, error)
	// Time returns the clock of the shard that answers (TIME).
	Time(ctx context.Context) (time.Time, error)
}
"#,
                ),
            ],
        ),
        criteria: vec![
            criterion(
                "algorithm_choice",
                "Algorithms and their fit",
                20,
                [
                    "Keeps the per-instance fixed window, or a global fixed window whose boundary lets a client send twice its limit in a burst.",
                    "A global algorithm, but plan bursts are not honoured, or the /v1/rates limit is implemented as a request rate rather than a count of requests in flight.",
                    "Token bucket or GCRA per API key with each plan's rate and burst; an in-flight limit on /v1/rates per key and globally, with slots released on completion and on client disconnect; the choices argued in DESIGN.md.",
                    "Level 3, plus in-flight slots cannot leak when an instance dies mid-request (slots expire or are leased), and DESIGN.md explains why the chosen algorithm fits the plans better than sliding-window counters.",
                ],
            ),
            criterion(
                "distributed_correctness",
                "Correctness across instances",
                25,
                [
                    "Reads a counter from Redis and writes it back from Go, so concurrent instances exceed the limit.",
                    "Atomic increments, but INCR and EXPIRE sent separately (a crash leaves keys without a TTL), or timestamps taken from each instance's own clock.",
                    "Each decision is one atomic Lua script using a single clock (Redis TIME or the script's own), every key has a TTL, keys of one script share a hash slot; the two-instance load test stays within rate plus burst.",
                    "Level 3, plus the 2 ms budget met with one round trip per request (EVALSHA with a NOSCRIPT fallback), memory per key and in total estimated, and hot keys on a single shard discussed.",
                ],
            ),
            criterion(
                "security_mindset",
                "Abuse resistance",
                25,
                [
                    "Login limited by the leftmost X-Forwarded-For address (which the client controls), or a per-account lockout that lets anyone lock out any user.",
                    "Takes the client address from the hop the load balancer appended, but login protection is per IP only (useless against 40,000 addresses) or per account only (a lockout weapon).",
                    "Layers per IP and per account with progressive delays or step-up rather than hard lockouts, failed attempts counted separately from successes, identical responses for unknown and known emails, and a global failure-rate signal for the attack as a whole.",
                    "Level 3, plus a clear statement of what is not stopped (low-and-slow attempts across many addresses) with next steps (breached-password checks, CAPTCHA, device cookies), and cheap limits applied before expensive work such as the 80 ms password check or the key lookup.",
                ],
            ),
            criterion(
                "client_contract",
                "Contract with API clients",
                15,
                [
                    "Rejections are not 429 (the prototype's 503 is kept) or give no indication of when to retry.",
                    "429 with Retry-After, but no remaining-budget headers, or headers inconsistent with the actual limit.",
                    "429 with Retry-After, and RateLimit-Limit / RateLimit-Remaining / RateLimit-Reset (or the IETF RateLimit and RateLimit-Policy fields) on every response, computed from the same decision; documented for clients.",
                    "Level 3, plus guidance for clients (backoff with jitter, batching quotes) and limits read from configuration or the accounts database so that a customer's limit can be raised without a deploy.",
                ],
            ),
            criterion(
                "failure_and_operations",
                "Failure behaviour and operations",
                15,
                [
                    "A Redis failure makes every request fail, or is not considered.",
                    "One fail-open or fail-closed choice applied to every endpoint without justification.",
                    "A justified choice per endpoint (e.g. fail open to a conservative in-process limiter for ordinary API calls, stricter local limits for login and for the carrier-facing quotes), tight Redis timeouts and a circuit breaker.",
                    "Level 3, plus metrics (decisions by outcome and endpoint, Redis errors and latency, top limited keys) and a dry-run mode to roll out new limits without rejecting traffic.",
                ],
            ),
        ],
    }
    .into()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const LIBRARY_KINDS: [AssessmentKind; 7] = [
        AssessmentKind::RestApiDesign,
        AssessmentKind::DatabaseSchemaOptimization,
        AssessmentKind::DistributedCacheStrategy,
        AssessmentKind::MicroserviceOrchestration,
        AssessmentKind::BugHunt,
        AssessmentKind::AsyncTaskQueue,
        AssessmentKind::RateLimiting,
    ];

    #[test]
    fn every_entry_passes_spec_validation() {
        for entry in builtin() {
            assert_eq!(entry.spec.validate(), Ok(()), "{}", entry.spec.title);
        }
    }

    #[test]
    fn the_library_has_seven_entries_with_unique_ids() {
        let entries = builtin();
        let ids: HashSet<Uuid> = entries.iter().map(|e| e.id).collect();
        assert_eq!(entries.len(), 7);
        assert_eq!(ids.len(), 7);
    }

    #[test]
    fn ids_are_stable_across_releases() {
        // These literals are a published contract: never change them.
        let entries = builtin();
        assert_eq!(
            entries[0].id.to_string(),
            "c1a71700-0000-4000-8000-000000000001"
        );
        assert_eq!(entries[0].spec.kind, AssessmentKind::RestApiDesign);
        assert_eq!(
            RATE_LIMITING_ID,
            Uuid::parse_str("c1a71700-0000-4000-8000-000000000007").unwrap()
        );
        let expected = [
            REST_API_DESIGN_ID,
            DATABASE_SCHEMA_OPTIMIZATION_ID,
            DISTRIBUTED_CACHE_STRATEGY_ID,
            MICROSERVICE_ORCHESTRATION_ID,
            BUG_HUNT_ID,
            ASYNC_TASK_QUEUE_ID,
            RATE_LIMITING_ID,
        ];
        assert_eq!(entries.iter().map(|e| e.id).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn builtin_is_deterministic_so_seeding_is_idempotent() {
        let first: Vec<(Uuid, String)> = builtin()
            .into_iter()
            .map(|e| (e.id, e.spec.digest()))
            .collect();
        let second: Vec<(Uuid, String)> = builtin()
            .into_iter()
            .map(|e| (e.id, e.spec.digest()))
            .collect();
        assert_eq!(first, second);
    }

    #[test]
    fn titles_are_unique() {
        let entries = builtin();
        let titles: HashSet<&str> = entries.iter().map(|e| e.spec.title.as_str()).collect();
        assert_eq!(titles.len(), entries.len());
    }

    #[test]
    fn the_seven_library_kinds_are_each_covered_once() {
        let kinds: Vec<AssessmentKind> = builtin().iter().map(|e| e.spec.kind).collect();
        for kind in LIBRARY_KINDS {
            assert_eq!(kinds.iter().filter(|k| **k == kind).count(), 1, "{kind:?}");
        }
        assert!(!kinds.contains(&AssessmentKind::Custom));
    }

    #[test]
    fn rubric_weights_sum_to_one_hundred() {
        for entry in builtin() {
            let total: u32 = entry.spec.rubric.criteria.iter().map(|c| c.weight).sum();
            assert_eq!(total, 100, "{}", entry.spec.title);
        }
    }

    #[test]
    fn every_rubric_has_four_or_five_criteria_each_with_levels_one_to_four() {
        for entry in builtin() {
            let criteria = &entry.spec.rubric.criteria;
            assert!((4..=5).contains(&criteria.len()), "{}", entry.spec.title);
            for c in criteria {
                let scores: Vec<u8> = c.levels.iter().map(|l| l.score).collect();
                assert_eq!(scores, [1, 2, 3, 4], "{}", c.key);
                assert!(c.levels.iter().all(|l| !l.descriptor.trim().is_empty()));
            }
        }
    }

    #[test]
    fn entries_are_take_homes_of_ninety_to_one_hundred_eighty_minutes() {
        for entry in builtin() {
            assert_eq!(entry.spec.format, Format::TakeHome);
            assert!(
                (90..=180).contains(&entry.spec.time_limit_minutes),
                "{}",
                entry.spec.title
            );
        }
    }

    #[test]
    fn each_task_has_a_prompt_with_the_expected_sections_and_two_to_four_starter_files() {
        for entry in builtin() {
            for task in &entry.spec.tasks {
                for section in [
                    "## Scenario",
                    "## Requirements",
                    "## Constraints",
                    "## What to hand in",
                    "## How it will be evaluated",
                ] {
                    assert!(
                        task.prompt.contains(section),
                        "{}: {section}",
                        entry.spec.title
                    );
                }
                assert!(
                    (2..=4).contains(&task.starter_files.len()),
                    "{}",
                    entry.spec.title
                );
                assert!(task
                    .starter_files
                    .iter()
                    .all(|f| !f.content.starts_with('\n') && f.content.ends_with('\n')));
            }
        }
    }

    #[test]
    fn integrity_policy_is_the_default_without_face_continuity() {
        for entry in builtin() {
            let policy = entry.spec.integrity_policy;
            assert!(!policy.face_continuity);
            assert_eq!(
                policy,
                IntegrityPolicy {
                    face_continuity: false,
                    ..IntegrityPolicy::default()
                }
            );
        }
    }

    #[test]
    fn difficulty_and_best_for_match_the_published_library() {
        let got: Vec<(&'static str, Difficulty, String)> = builtin()
            .into_iter()
            .map(|e| {
                let kind = match e.spec.kind {
                    AssessmentKind::RestApiDesign => "rest",
                    AssessmentKind::DatabaseSchemaOptimization => "db",
                    AssessmentKind::DistributedCacheStrategy => "cache",
                    AssessmentKind::MicroserviceOrchestration => "micro",
                    AssessmentKind::BugHunt => "bug",
                    AssessmentKind::AsyncTaskQueue => "queue",
                    AssessmentKind::RateLimiting => "rate",
                    AssessmentKind::Custom => "custom",
                };
                (kind, e.spec.difficulty, e.spec.best_for)
            })
            .collect();
        let expected = [
            (
                "rest",
                Difficulty::Mid,
                "Evaluating API design sense and REST principles",
            ),
            (
                "db",
                Difficulty::Mid,
                "Assessing data modeling and query efficiency",
            ),
            (
                "cache",
                Difficulty::Hard,
                "Testing scalability thinking and trade-off analysis",
            ),
            (
                "micro",
                Difficulty::Hard,
                "Evaluating system design and inter-service communication",
            ),
            (
                "bug",
                Difficulty::Mid,
                "Measuring debugging skills and code reading",
            ),
            (
                "queue",
                Difficulty::MidHard,
                "Testing concurrency patterns and job processing",
            ),
            (
                "rate",
                Difficulty::Mid,
                "Assessing security and reliability mindset",
            ),
        ];
        assert_eq!(got.len(), expected.len());
        for ((kind, difficulty, best_for), (ek, ed, eb)) in got.iter().zip(expected) {
            assert_eq!((*kind, *difficulty, best_for.as_str()), (ek, ed, eb));
        }
    }
}
