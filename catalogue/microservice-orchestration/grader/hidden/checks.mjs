// The reviewers' fault replays against the checkout saga, as weighted checks (run by runner/harness/node_grade.mjs).
// Relies only on the fixed interface of the prompt and starter: src/saga.ts (CheckoutOrchestrator
// with start/run/recover/status, InMemorySagaRepository, a Time such as the fakes' FakeClock),
// src/fakes.ts (FaultPlan, FakeClock, makeFakes, CrashError), and checkoutRouter(orchestrator)
// in src/checkout.ts serving POST /checkout (Idempotency-Key) and GET /checkout/:id.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const WORK = process.cwd();

async function load(rel) {
  try {
    return await import(pathToFileURL(join(WORK, rel)).href);
  } catch (err) {
    throw new Error(`${rel} could not be loaded: ${String(err?.message ?? err).split("\n").slice(0, 5).join(" ").slice(0, 500)}`);
  }
}

const HOTEL = { sku: "HTL-LIS-2291-DBL", date: "2025-06-14", quantity: 1 };
const request = (over = {}) => ({
  customerId: "cus_42",
  email: "ana@example.com",
  items: [HOTEL],
  amountMinor: 48_000,
  currency: "EUR",
  pointsToRedeem: 500,
  ...over,
});

function expect(cond, message) {
  if (!cond) throw new Error(message);
}

async function setup(faults = []) {
  const fakesMod = await load("src/fakes.ts");
  const saga = await load("src/saga.ts");
  expect(typeof saga.CheckoutOrchestrator === "function", "src/saga.ts does not export the CheckoutOrchestrator class");
  expect(typeof saga.InMemorySagaRepository === "function", "src/saga.ts does not export InMemorySagaRepository");
  const plan = new fakesMod.FaultPlan();
  for (const [method, nth, fault] of faults) plan.on(method, nth, fault);
  const clock = new fakesMod.FakeClock();
  const fakes = makeFakesSafe(fakesMod, plan, clock);
  const repository = new saga.InMemorySagaRepository();
  const deps = { inventory: fakes.inventory, payments: fakes.payments, loyalty: fakes.loyalty, notifications: fakes.notifications };
  const orchestrator = () => new saga.CheckoutOrchestrator(deps, repository, clock);
  return { ...fakes, plan, clock, repository, deps, orchestrator, saga, fakesMod };
}

function makeFakesSafe(mod, plan, clock) {
  const f = mod.makeFakes(plan, clock);
  expect(f.world && f.inventory && f.payments, "src/fakes.ts makeFakes no longer returns the world and the clients");
  return f;
}

function netPoints(world) {
  return world.ledger.reduce((sum, e) => sum + (e.kind === "debit" ? e.points : -e.points), 0);
}

function describeWorld(world) {
  const pays = [...world.payments.values()].map((p) => p.status);
  const holds = [...world.holds.values()].map((h) => h.state);
  const books = [...world.bookings.values()].map((b) => (b.cancelled ? "cancelled" : "confirmed"));
  const ledger = world.ledger.map((e) => `${e.kind} ${e.points}`);
  return `payments [${pays.join(", ")}], holds [${holds.join(", ")}], bookings [${books.join(", ")}], ledger [${ledger.join(", ")}], emails ${world.emails.length}`;
}

/**
 * The final state of every service is consistent with the checkout's outcome: completed means
 * booked, captured once, points debited once, confirmation sent; failed means nothing booked,
 * nothing captured or left authorised, points net zero. Never two authorisations.
 */
function assertConsistent(view, world, clock, req, { expectOutcome } = {}) {
  expect(view && typeof view === "object", `status() returned ${JSON.stringify(view)} after recovery`);
  expect(view.outcome === "completed" || view.outcome === "failed", `the checkout did not end: outcome "${view.outcome}", state "${view.state}" (${describeWorld(world)})`);
  if (expectOutcome) expect(view.outcome === expectOutcome, `outcome "${view.outcome}" (state "${view.state}"), expected "${expectOutcome}" (${describeWorld(world)})`);
  const payments = [...world.payments.values()];
  expect(payments.length <= 1, `${payments.length} authorisations were created for one checkout (${describeWorld(world)})`);
  const bookings = [...world.bookings.values()].filter((b) => !b.cancelled);
  const points = netPoints(world);
  if (view.outcome === "completed") {
    expect(bookings.length === 1, `completed, but ${bookings.length} confirmed bookings exist (${describeWorld(world)})`);
    expect(payments.length === 1 && payments[0].status === "captured", `completed, but the payment is ${payments.map((p) => p.status).join(", ") || "missing"} (${describeWorld(world)})`);
    expect(points === req.pointsToRedeem, `completed, but the ledger's net debit is ${points} points, expected ${req.pointsToRedeem} (${describeWorld(world)})`);
    expect(world.emails.some((e) => e.template !== "" && /confirm/i.test(e.template)), `completed, but no confirmation email was sent (${describeWorld(world)})`);
  } else {
    expect(bookings.length === 0, `failed, but a confirmed booking remains (${describeWorld(world)})`);
    expect(payments.every((p) => p.status === "voided" || p.status === "refunded" || p.status === "declined"),
      `failed, but the payment is left ${payments.map((p) => p.status).join(", ")} (${describeWorld(world)})`);
    expect(points === 0, `failed, but the ledger's net debit is ${points} points, expected 0 (${describeWorld(world)})`);
    const liveHolds = [...world.holds.values()].filter((h) => h.state === "held" && h.expiresAtMs > clock.nowMs);
    expect(liveHolds.length === 0, `failed, but ${liveHolds.length} hold(s) were neither released nor lapsed (${describeWorld(world)})`);
  }
}

/** start + run; returns the view, or "crashed" when run threw (the process died). */
async function startAndRun(env, key, req) {
  const o = env.orchestrator();
  const { checkoutId } = await o.start(key, req);
  expect(typeof checkoutId === "string" && checkoutId.length > 0, `start() returned ${JSON.stringify(checkoutId)} as the checkout id`);
  try {
    const view = await o.run(checkoutId);
    return { checkoutId, view, crashed: false };
  } catch (err) {
    return { checkoutId, crashed: true, error: err };
  }
}

async function recoverAndStatus(env, checkoutId) {
  const o = env.orchestrator();
  await o.recover();
  return o.status(checkoutId);
}

/** A crash right after `method`'s effect; the restarted orchestrator must finish consistently. */
function crashCheck(method, label, weight, { over = {}, extra = [] } = {}) {
  return {
    key: `crash_after_${method.replace(".", "_").toLowerCase()}`,
    name: `Crash right after ${label}: a restarted orchestrator resumes the checkout and every service ends consistent (nothing charged, debited or credited twice)`,
    weight,
    async run() {
      const env = await setup([[method, 1, "crash-after"], ...extra]);
      const req = request(over);
      const { checkoutId, crashed, error, view } = await startAndRun(env, `crash-${method}`, req);
      expect(env.plan.callCount(method) >= 1, `the saga never called ${method}, so the crash could not be injected (${describeWorld(env.world)})${crashed ? `; run() threw: ${error?.message}` : ""}`);
      if (!crashed) {
        // The crash was swallowed; a restart must still leave everything consistent.
        void view;
      }
      const after = await recoverAndStatus(env, checkoutId);
      assertConsistent(after, env.world, env.clock, req);
    },
  };
}

export const checks = [
  {
    key: "happy_path",
    name: "Without faults a checkout completes: booking confirmed, payment captured, points debited once, confirmation sent",
    weight: 2,
    async run() {
      const env = await setup();
      const req = request();
      const { checkoutId, view, crashed, error } = await startAndRun(env, "happy", req);
      expect(!crashed, `run() threw: ${error?.message ?? error}`);
      assertConsistent(view, env.world, env.clock, req, { expectOutcome: "completed" });
      const status = await env.orchestrator().status(checkoutId);
      expect(status?.outcome === "completed", `status() from a fresh orchestrator reads ${JSON.stringify(status)}`);
    },
  },
  {
    key: "duplicate_start",
    name: "Starting the same checkout twice (same idempotency key) returns one checkout and charges once",
    weight: 1.5,
    async run() {
      const env = await setup();
      const req = request();
      const o = env.orchestrator();
      const a = await o.start("dup", req);
      const b = await env.orchestrator().start("dup", req);
      expect(a.checkoutId === b.checkoutId, `the same key gave checkouts ${a.checkoutId} and ${b.checkoutId}`);
      await o.run(a.checkoutId);
      await env.orchestrator().run(b.checkoutId); // a duplicate delivery of the same run
      const view = await o.status(a.checkoutId);
      assertConsistent(view, env.world, env.clock, req, { expectOutcome: "completed" });
    },
  },
  crashCheck("inventory.hold", "the inventory hold", 1.5),
  crashCheck("payments.authorize", "the payment authorisation", 1.5),
  crashCheck("loyalty.debit", "the loyalty debit (Loyalty is not idempotent and its ledger lags 2 s)", 2),
  crashCheck("inventory.confirm", "the inventory confirmation", 1.5),
  crashCheck("payments.capture", "the capture", 1.5),
  crashCheck("notifications.send", "the confirmation email", 1),
  {
    key: "crash_during_compensation",
    name: "The hold lapses before confirmation and the orchestrator crashes right after voiding: recovery finishes compensating (void, points credited back once, hold released)",
    weight: 2,
    async run() {
      const env = await setup([["inventory.confirm", 1, "decline"], ["payments.void", 1, "crash-after"]]);
      const req = request();
      const { checkoutId } = await startAndRun(env, "comp-crash", req);
      const after = await recoverAndStatus(env, checkoutId);
      assertConsistent(after, env.world, env.clock, req, { expectOutcome: "failed" });
      expect(env.world.ledger.filter((e) => e.kind === "credit").length <= 1, `points were credited back ${env.world.ledger.filter((e) => e.kind === "credit").length} times (${describeWorld(env.world)})`);
    },
  },
  {
    key: "crash_after_credit",
    name: "The hold lapses before confirmation and the orchestrator crashes right after crediting the points back: recovery does not credit them twice",
    weight: 1.5,
    async run() {
      const env = await setup([["inventory.confirm", 1, "decline"], ["loyalty.credit", 1, "crash-after"]]);
      const req = request();
      const { checkoutId } = await startAndRun(env, "credit-crash", req);
      const after = await recoverAndStatus(env, checkoutId);
      assertConsistent(after, env.world, env.clock, req, { expectOutcome: "failed" });
    },
  },
  {
    key: "payment_declined",
    name: "A declined card fails the checkout with everything compensated (hold released, points back, nothing charged)",
    weight: 2,
    async run() {
      const env = await setup([["payments.authorize", 1, "decline"]]);
      const req = request();
      const { view, crashed, error } = await startAndRun(env, "declined", req);
      expect(!crashed, `run() threw: ${error?.message ?? error}`);
      assertConsistent(view, env.world, env.clock, req, { expectOutcome: "failed" });
    },
  },
  {
    key: "sold_out",
    name: "Sold-out inventory fails the checkout before any money or points move",
    weight: 1,
    async run() {
      const env = await setup([["inventory.hold", 1, "decline"]]);
      const req = request();
      const { view, crashed, error } = await startAndRun(env, "soldout", req);
      expect(!crashed, `run() threw: ${error?.message ?? error}`);
      assertConsistent(view, env.world, env.clock, req, { expectOutcome: "failed" });
      expect(env.world.payments.size === 0 || [...env.world.payments.values()].every((p) => p.status !== "captured"), `money moved for a sold-out checkout (${describeWorld(env.world)})`);
    },
  },
  {
    key: "authorize_timeout_succeeded",
    name: "A payment authorisation that timed out but succeeded is not duplicated: one authorisation, captured once",
    weight: 2,
    async run() {
      const env = await setup([["payments.authorize", 1, "timeout-after"]]);
      const req = request();
      const { view, crashed, error } = await startAndRun(env, "auth-timeout", req);
      expect(!crashed, `run() threw: ${error?.message ?? error}`);
      assertConsistent(view, env.world, env.clock, req);
    },
  },
  {
    key: "capture_timeout_succeeded",
    name: "A capture that timed out but succeeded leaves the checkout completed with one capture",
    weight: 1,
    async run() {
      const env = await setup([["payments.capture", 1, "timeout-after"]]);
      const req = request();
      const { view, crashed, error } = await startAndRun(env, "capture-timeout", req);
      expect(!crashed, `run() threw: ${error?.message ?? error}`);
      assertConsistent(view, env.world, env.clock, req, { expectOutcome: "completed" });
    },
  },
  {
    key: "debit_timeout_succeeded",
    name: "A loyalty debit that timed out but succeeded is not repeated: the points are debited exactly once",
    weight: 2,
    async run() {
      const env = await setup([["loyalty.debit", 1, "timeout-after"]]);
      const req = request();
      const { view, crashed, error } = await startAndRun(env, "debit-timeout", req);
      expect(!crashed, `run() threw: ${error?.message ?? error}`);
      assertConsistent(view, env.world, env.clock, req);
    },
  },
  {
    key: "debit_timeout_not_applied",
    name: "A loyalty debit that timed out before taking effect is retried: the points are debited exactly once",
    weight: 1,
    async run() {
      const env = await setup([["loyalty.debit", 1, "timeout-before"]]);
      const req = request();
      const { view, crashed, error } = await startAndRun(env, "debit-timeout-before", req);
      expect(!crashed, `run() threw: ${error?.message ?? error}`);
      assertConsistent(view, env.world, env.clock, req);
    },
  },
  {
    key: "transient_unavailability",
    name: "Every service unavailable on its first call (and capture three times): retries complete the checkout",
    weight: 1.5,
    async run() {
      const env = await setup([
        ["inventory.hold", 1, "unavailable"],
        ["payments.authorize", 1, "unavailable"],
        ["loyalty.debit", 1, "unavailable"],
        ["inventory.confirm", 1, "unavailable"],
        ["payments.capture", 1, "unavailable"],
        ["payments.capture", 2, "unavailable"],
        ["payments.capture", 3, "unavailable"],
        ["notifications.send", 1, "unavailable"],
      ]);
      const req = request();
      const { view, crashed, error } = await startAndRun(env, "unavailable", req);
      expect(!crashed, `run() threw: ${error?.message ?? error}`);
      assertConsistent(view, env.world, env.clock, req, { expectOutcome: "completed" });
    },
  },
  {
    key: "http_202_and_status",
    name: "POST /checkout answers 202 with a checkout id before the saga ends, a retry with the same Idempotency-Key gets the same id, and GET /checkout/:id reports the outcome",
    weight: 2,
    timeoutMs: 8_000,
    async run() {
      const env = await setup();
      const checkout = await load("src/checkout.ts");
      const expressMod = await import(pathToFileURL(join(WORK, "node_modules/express/index.js")).href);
      const express = expressMod.default ?? expressMod;
      expect(typeof checkout.checkoutRouter === "function", "src/checkout.ts does not export checkoutRouter");
      // Capture takes 400 ms of real time, so a handler that waits for the saga answers late.
      const slowDeps = { ...env.deps, payments: { ...env.deps.payments, capture: async (id) => { await new Promise((r) => setTimeout(r, 400)); return env.deps.payments.capture(id); } } };
      const orchestrator = new env.saga.CheckoutOrchestrator(slowDeps, env.repository, env.clock);
      const app = express();
      app.use(express.json());
      app.use(checkout.checkoutRouter(orchestrator));
      const server = await new Promise((resolve) => { const s = app.listen(0, "127.0.0.1", () => resolve(s)); });
      const base = `http://127.0.0.1:${server.address().port}`;
      try {
        const req = request();
        const post = async () => {
          const t0 = Date.now();
          const r = await fetch(`${base}/checkout`, { method: "POST", headers: { "content-type": "application/json", "Idempotency-Key": "http-1" }, body: JSON.stringify(req) });
          const text = await r.text();
          let json;
          try { json = JSON.parse(text); } catch {}
          return { status: r.status, json, text: text.slice(0, 200), ms: Date.now() - t0 };
        };
        const first = await post();
        expect(first.status === 202, `POST /checkout answered ${first.status} ${first.text}, expected 202`);
        const id = first.json?.checkoutId;
        expect(typeof id === "string", `the 202 body has no checkoutId: ${first.text}`);
        expect(first.ms < 350, `POST /checkout took ${first.ms} ms with a 400 ms capture: it waited for the saga instead of answering at once`);
        const second = await post();
        expect((second.status === 202 || second.status === 200) && second.json?.checkoutId === id, `the retry answered ${second.status} ${second.text}, expected the same checkoutId ${id}`);
        let view;
        for (let i = 0; i < 40; i++) {
          const r = await fetch(`${base}/checkout/${encodeURIComponent(id)}`);
          view = { status: r.status, json: await r.json().catch(() => undefined) };
          if (view.json?.outcome && view.json.outcome !== "pending") break;
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(view.status === 200 && view.json?.outcome === "completed", `GET /checkout/${id} answered ${view.status} ${JSON.stringify(view.json)}, expected outcome "completed"`);
        assertConsistent(view.json, env.world, env.clock, req, { expectOutcome: "completed" });
      } finally {
        server.close();
      }
    },
  },
];
