import type { CheckoutRequest, Deps } from "./checkout.js";

/**
 * The fixed interface our fault-replay tests drive (see the prompt). The bodies are yours to write;
 * keep these names and signatures.
 */

/** Time as the orchestrator sees it. Tests pass the fakes' `FakeClock`, whose `sleep` advances it. */
export interface Time {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemTime: Time = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** What a client can learn about a checkout (also the body of `GET /checkout/:id`). */
export interface CheckoutView {
  checkoutId: string;
  /**
   * `pending` while the saga runs; `completed`: booked, charged once, points debited once;
   * `failed`: nothing booked and nothing charged or debited (everything compensated).
   */
  outcome: "pending" | "completed" | "failed";
  /** Your saga's current state, free-form (e.g. "authorizing", "compensating"). */
  state: string;
}

/** Persisted saga state: design it to map one-to-one onto a PostgreSQL table. */
export interface SagaRepository {
  // TODO
}

/** The in-memory implementation the tests use; a restarted orchestrator gets the same instance. */
export class InMemorySagaRepository implements SagaRepository {
  // TODO
}

export class CheckoutOrchestrator {
  constructor(
    readonly deps: Deps,
    readonly repository: SagaRepository,
    readonly time: Time = systemTime,
  ) {}

  /**
   * Records a new checkout without running it and returns its id. Idempotent: the same
   * `idempotencyKey` returns the same checkout.
   */
  async start(idempotencyKey: string, request: CheckoutRequest): Promise<{ checkoutId: string }> {
    throw new Error("not implemented");
  }

  /**
   * Drives one checkout until it ends (`completed` or `failed`) and returns its view. A
   * `CrashError` thrown by the fakes is the process dying: let it propagate.
   */
  async run(checkoutId: string): Promise<CheckoutView> {
    throw new Error("not implemented");
  }

  /** What a restarted orchestrator does first: resumes every checkout in flight until each ends. */
  async recover(): Promise<void> {
    throw new Error("not implemented");
  }

  /** The checkout's view, or undefined for an unknown id. */
  async status(checkoutId: string): Promise<CheckoutView | undefined> {
    throw new Error("not implemented");
  }
}
