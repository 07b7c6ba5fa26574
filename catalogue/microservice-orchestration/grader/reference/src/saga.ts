import { randomUUID } from "node:crypto";
import type { CheckoutRequest, Deps } from "./checkout.js";
import {
  DeclinedError,
  HoldExpiredError,
  InsufficientPointsError,
  SoldOutError,
  TimeoutError,
  UnavailableError,
} from "./clients.js";

/** Time as the orchestrator sees it. Tests pass the fakes' `FakeClock`, whose `sleep` advances it. */
export interface Time {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemTime: Time = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface CheckoutView {
  checkoutId: string;
  outcome: "pending" | "completed" | "failed";
  state: string;
}

// Forward:      holding -> authorizing -> debiting -> confirming | PIVOT | capturing -> notifying -> completed
// Compensating: compensating (credit points, void payment, release hold, tell the customer) -> failed
// Stuck after the pivot: needs_attention (alert + manual queue; the booking stands).
export type SagaState =
  | "holding"
  | "authorizing"
  | "debiting"
  | "confirming"
  | "capturing"
  | "notifying"
  | "completed"
  | "compensating"
  | "failed"
  | "needs_attention";

const TERMINAL: SagaState[] = ["completed", "failed", "needs_attention"];

/** One row of the `checkout_sagas` table. */
export interface SagaRecord {
  id: string;
  idempotencyKey: string; // UNIQUE
  request: CheckoutRequest;
  state: SagaState;
  version: number; // optimistic concurrency: UPDATE … WHERE id = $1 AND version = $2
  attempts: number; // attempts of the current step
  holdId?: string;
  paymentId?: string;
  bookingRef?: string;
  /** Intent recorded before each non-idempotent Loyalty call, reconciled after the replica lag. */
  debitAttemptAt?: number;
  debited?: boolean;
  creditAttemptAt?: number;
  credited?: boolean;
  failureReason?: string;
  updatedAt: number;
}

export class ConcurrentUpdateError extends Error {}

export interface SagaRepository {
  /** Inserts a new saga, or returns the existing one with the same idempotency key. */
  insertOrGet(record: SagaRecord): Promise<SagaRecord>;
  get(id: string): Promise<SagaRecord | undefined>;
  /** Writes `record` if the stored version is `record.version - 1`; throws ConcurrentUpdateError otherwise. */
  update(record: SagaRecord): Promise<void>;
  listInFlight(): Promise<SagaRecord[]>;
}

export class InMemorySagaRepository implements SagaRepository {
  private rows = new Map<string, SagaRecord>();

  async insertOrGet(record: SagaRecord): Promise<SagaRecord> {
    const existing = [...this.rows.values()].find((r) => r.idempotencyKey === record.idempotencyKey);
    if (existing) return structuredClone(existing);
    this.rows.set(record.id, structuredClone(record));
    return structuredClone(record);
  }

  async get(id: string): Promise<SagaRecord | undefined> {
    const r = this.rows.get(id);
    return r && structuredClone(r);
  }

  async update(record: SagaRecord): Promise<void> {
    const current = this.rows.get(record.id);
    if (!current || current.version !== record.version - 1) throw new ConcurrentUpdateError(record.id);
    this.rows.set(record.id, structuredClone(record));
  }

  async listInFlight(): Promise<SagaRecord[]> {
    return [...this.rows.values()].filter((r) => !TERMINAL.includes(r.state)).map((r) => structuredClone(r));
  }
}

const LEDGER_LAG_MS = 2_000;
const MAX_PRE_PIVOT_ATTEMPTS = 5;
const MAX_POST_PIVOT_ATTEMPTS = 30;

const retryable = (err: unknown) => err instanceof UnavailableError || err instanceof TimeoutError;

export class CheckoutOrchestrator {
  constructor(
    readonly deps: Deps,
    readonly repository: SagaRepository,
    readonly time: Time = systemTime,
  ) {}

  async start(idempotencyKey: string, request: CheckoutRequest): Promise<{ checkoutId: string }> {
    const record = await this.repository.insertOrGet({
      id: `chk_${randomUUID()}`,
      idempotencyKey,
      request,
      state: "holding",
      version: 1,
      attempts: 0,
      updatedAt: this.time.now(),
    });
    return { checkoutId: record.id };
  }

  async status(checkoutId: string): Promise<CheckoutView | undefined> {
    const r = await this.repository.get(checkoutId);
    return r && view(r);
  }

  async recover(): Promise<void> {
    for (const saga of await this.repository.listInFlight()) await this.run(saga.id);
  }

  async run(checkoutId: string): Promise<CheckoutView> {
    let saga = await this.repository.get(checkoutId);
    if (!saga) throw new Error(`unknown checkout ${checkoutId}`);
    while (!TERMINAL.includes(saga.state)) {
      saga = await this.step(saga);
    }
    return view(saga);
  }

  // --- persistence helpers ----------------------------------------------------------------

  private async save(saga: SagaRecord, changes: Partial<SagaRecord>): Promise<SagaRecord> {
    const next: SagaRecord = { ...saga, ...changes, version: saga.version + 1, updatedAt: this.time.now() };
    await this.repository.update(next);
    return next;
  }

  private moveTo(saga: SagaRecord, state: SagaState, changes: Partial<SagaRecord> = {}) {
    return this.save(saga, { ...changes, state, attempts: 0 });
  }

  private async backoff(saga: SagaRecord): Promise<SagaRecord> {
    const base = Math.min(200 * 2 ** saga.attempts, 30_000);
    await this.time.sleep(base / 2 + Math.random() * (base / 2));
    return this.save(saga, { attempts: saga.attempts + 1 });
  }

  private compensate(saga: SagaRecord, reason: string) {
    return this.moveTo(saga, "compensating", { failureReason: reason });
  }

  // --- the steps ------------------------------------------------------------------------------

  private async step(saga: SagaRecord): Promise<SagaRecord> {
    const { inventory, payments, loyalty, notifications } = this.deps;
    const req = saga.request;
    const id = saga.id;
    try {
      switch (saga.state) {
        case "holding": {
          const hold = await inventory.hold({ holdKey: `${id}:hold`, items: req.items });
          return this.moveTo(saga, "authorizing", { holdId: hold.holdId });
        }
        case "authorizing": {
          const { paymentId } = await payments.authorize({
            idempotencyKey: `${id}:auth`,
            customerId: req.customerId,
            amountMinor: req.amountMinor,
            currency: req.currency,
          });
          return this.moveTo(saga, "debiting", { paymentId });
        }
        case "debiting": {
          if (req.pointsToRedeem <= 0) return this.moveTo(saga, "confirming");
          if (saga.debitAttemptAt !== undefined) {
            // An earlier attempt may have landed: ask the ledger once its replica has caught up.
            if (await this.ledgerHas(`${id}:debit`, "debit", saga.debitAttemptAt)) return this.moveTo(saga, "confirming", { debited: true });
          }
          saga = await this.save(saga, { debitAttemptAt: this.time.now() }); // intent before the call
          try {
            await loyalty.debit({ customerId: req.customerId, points: req.pointsToRedeem, reference: `${id}:debit` });
          } catch (err) {
            if (err instanceof UnavailableError) saga = await this.save(saga, { debitAttemptAt: undefined }); // not processed
            throw err;
          }
          return this.moveTo(saga, "confirming", { debited: true });
        }
        case "confirming": {
          const booking = await inventory.confirm(saga.holdId!);
          return this.moveTo(saga, "capturing", { bookingRef: booking.bookingRef }); // the pivot
        }
        case "capturing": {
          await payments.capture(saga.paymentId!);
          return this.moveTo(saga, "notifying");
        }
        case "notifying": {
          await notifications.send({
            dedupeKey: `booking-confirmed:${id}`,
            to: req.email,
            template: "booking-confirmed",
            data: { bookingRef: saga.bookingRef, checkoutId: id },
          });
          return this.moveTo(saga, "completed");
        }
        case "compensating":
          return await this.runCompensation(saga);
        default:
          return saga;
      }
    } catch (err) {
      return this.onError(saga, err);
    }
  }

  private async onError(saga: SagaRecord, err: unknown): Promise<SagaRecord> {
    const postPivot = saga.state === "capturing" || saga.state === "notifying";
    if (err instanceof SoldOutError) return this.compensate(saga, "sold_out");
    if (err instanceof DeclinedError) {
      if (postPivot) return this.moveTo(saga, "needs_attention", { failureReason: `capture declined: ${err.reason}` });
      return this.compensate(saga, `payment_declined:${err.reason}`);
    }
    if (err instanceof HoldExpiredError) return this.compensate(saga, "hold_expired");
    if (err instanceof InsufficientPointsError) return this.compensate(saga, "insufficient_points");
    if (retryable(err)) {
      const limit = postPivot || saga.state === "compensating" ? MAX_POST_PIVOT_ATTEMPTS : MAX_PRE_PIVOT_ATTEMPTS;
      if (saga.attempts + 1 >= limit) {
        if (postPivot || saga.state === "compensating") return this.moveTo(saga, "needs_attention", { failureReason: `gave up in ${saga.state}` });
        return this.compensate(saga, `${saga.state}_unavailable`);
      }
      return this.backoff(saga);
    }
    throw err; // a crash, a concurrent update, a bug: the process ends; recovery resumes the saga
  }

  /** Each compensation is idempotent and re-checks the real state, so it can run again after a crash. */
  private async runCompensation(saga: SagaRecord): Promise<SagaRecord> {
    const { inventory, payments, loyalty, notifications } = this.deps;
    const req = saga.request;
    const id = saga.id;

    // 1. Points: credit back what was (or may have been) debited, exactly once.
    if (req.pointsToRedeem > 0 && !saga.credited) {
      let debited = saga.debited === true;
      if (!debited && saga.debitAttemptAt !== undefined) debited = await this.ledgerHas(`${id}:debit`, "debit", saga.debitAttemptAt);
      if (debited) {
        let credited = false;
        if (saga.creditAttemptAt !== undefined) credited = await this.ledgerHas(`${id}:credit`, "credit", saga.creditAttemptAt);
        if (!credited) {
          saga = await this.save(saga, { debited: true, creditAttemptAt: this.time.now() });
          try {
            await loyalty.credit({ customerId: req.customerId, points: req.pointsToRedeem, reference: `${id}:credit` });
          } catch (err) {
            if (err instanceof UnavailableError) saga = await this.save(saga, { creditAttemptAt: undefined });
            throw err;
          }
        }
      }
      saga = await this.save(saga, { credited: true });
    }

    // 2. Payment: void whatever authorisation exists under our key (a timeout may have created one).
    const payment = await payments.findByIdempotencyKey(`${id}:auth`);
    if (payment && payment.status === "authorized") await payments.void(payment.paymentId);

    // 3. Inventory: release the hold (idempotent; unknown or lapsed holds succeed).
    if (saga.bookingRef) {
      await inventory.cancelBooking(saga.bookingRef); // only reachable if a pivot step was undone by hand
    } else {
      await inventory.release(saga.holdId ?? `${id}:hold`);
    }

    // 4. Tell the customer (deduplicated by the Notifications service).
    await notifications.send({ dedupeKey: `checkout-failed:${id}`, to: req.email, template: "checkout-failed", data: { checkoutId: id, reason: saga.failureReason } });
    return this.moveTo(saga, "failed");
  }

  /** Whether the ledger has an entry of `kind` for `reference`, read once the replica has caught up with `since`. */
  private async ledgerHas(reference: string, kind: "debit" | "credit", since: number): Promise<boolean> {
    const wait = since + LEDGER_LAG_MS + 100 - this.time.now();
    if (wait > 0) await this.time.sleep(wait);
    const entries = await this.deps.loyalty.entriesByReference(reference);
    return entries.some((e) => e.kind === kind);
  }
}

function view(r: SagaRecord): CheckoutView {
  const outcome = r.state === "completed" ? "completed" : r.state === "failed" ? "failed" : "pending";
  return { checkoutId: r.id, outcome, state: r.state };
}
