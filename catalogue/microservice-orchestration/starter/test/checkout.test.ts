// First fault scenarios, in the shape of the reviewers' replays. They fail until the saga exists;
// add one test per row of your failure table beside them (`npm test` runs test/*.test.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CheckoutRequest } from "../src/checkout.js";
import { FakeClock, FaultPlan, makeFakes } from "../src/fakes.js";
import { CheckoutOrchestrator, InMemorySagaRepository } from "../src/saga.js";

const request: CheckoutRequest = {
  customerId: "cus_1",
  email: "ana@example.com",
  items: [{ sku: "HTL-LIS-2291-DBL", date: "2025-06-14", quantity: 1 }],
  amountMinor: 48_000,
  currency: "EUR",
  pointsToRedeem: 500,
};

function setup(plan = new FaultPlan()) {
  const clock = new FakeClock();
  const fakes = makeFakes(plan, clock);
  const repository = new InMemorySagaRepository();
  const orchestrator = () => new CheckoutOrchestrator(fakes, repository, clock);
  return { ...fakes, plan, repository, orchestrator };
}

const netPoints = (ledger: { kind: string; points: number }[]) =>
  ledger.reduce((sum, e) => sum + (e.kind === "debit" ? e.points : -e.points), 0);

describe("checkout saga", () => {
  it("completes a checkout without faults", async () => {
    const { world, orchestrator } = setup();
    const o = orchestrator();
    const { checkoutId } = await o.start("key-1", request);
    const view = await o.run(checkoutId);
    assert.equal(view.outcome, "completed");
    assert.deepEqual([...world.payments.values()].map((p) => p.status), ["captured"]);
    assert.equal(netPoints(world.ledger), 500);
    assert.equal([...world.bookings.values()].filter((b) => !b.cancelled).length, 1);
  });

  it("returns the same checkout for a repeated idempotency key", async () => {
    const { orchestrator } = setup();
    const o = orchestrator();
    const first = await o.start("key-2", request);
    const second = await o.start("key-2", request);
    assert.equal(second.checkoutId, first.checkoutId);
  });

  it("recovers after a crash right after the payment was authorised, charging once", async () => {
    const { world, orchestrator, plan } = setup(new FaultPlan().on("payments.authorize", 1, "crash-after"));
    const first = orchestrator();
    const { checkoutId } = await first.start("key-3", request);
    await assert.rejects(first.run(checkoutId)); // the process "dies"
    assert.equal(plan.callCount("payments.authorize"), 1);
    const restarted = orchestrator(); // a new process over the same repository
    await restarted.recover();
    const view = await restarted.status(checkoutId);
    assert.ok(view && view.outcome !== "pending", "the checkout ended");
    assert.equal(world.payments.size, 1, "one authorisation");
    const statuses = [...world.payments.values()].map((p) => p.status);
    assert.ok(view.outcome === "completed" ? statuses[0] === "captured" : statuses[0] === "voided");
  });
});
