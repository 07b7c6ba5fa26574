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

/**
 * A manually advanced clock shared by the fakes (holds lapse, ledger replica lag). It is also a
 * `Time` (src/saga.ts): `sleep` advances it at once, so backoffs and waits cost no real time.
 */
export class FakeClock {
  constructor(public nowMs = Date.parse("2025-05-02T10:00:00Z")) {}
  advance(ms: number): void {
    this.nowMs += ms;
  }
  now(): number {
    return this.nowMs;
  }
  async sleep(ms: number): Promise<void> {
    this.advance(ms);
    await new Promise<void>((resolve) => setImmediate(resolve));
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
