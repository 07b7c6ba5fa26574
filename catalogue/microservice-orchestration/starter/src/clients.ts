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
