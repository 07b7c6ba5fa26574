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

export interface IdempotencyRecord {
  fingerprint: string;
  state: "in_progress" | "done";
  response?: { status: number; headers: Record<string, string>; body: unknown };
  expiresAt: number;
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

  // --- Atomic operations: one round trip each, like one SQL statement or transaction. -------

  /**
   * Inserts the booking unless a confirmed booking of the same space overlaps it. On PostgreSQL:
   * an exclusion constraint `EXCLUDE USING gist (space_id WITH =, tstzrange(start, "end") WITH &&)
   * WHERE (status = 'confirmed')`, the insert failing with 23P01.
   */
  async insertBookingIfFree(
    input: Pick<Booking, "spaceId" | "memberId" | "start" | "end">,
  ): Promise<{ booking: Booking } | { conflict: Booking }> {
    await roundTrip();
    const conflict = this.overlapping(input.spaceId, input.start, input.end);
    if (conflict) return { conflict };
    const booking: Booking = {
      ...input,
      id: `bk_${randomUUID().replaceAll("-", "")}`,
      status: "confirmed",
      createdAt: new Date().toISOString(),
      version: 1,
    };
    this.bookings.set(booking.id, booking);
    return { booking };
  }

  /** Moves a confirmed booking if the new range is free and its version is still `expectedVersion`. */
  async rescheduleBooking(
    id: string,
    start: string,
    end: string,
    expectedVersion?: number,
  ): Promise<{ booking: Booking } | { conflict: Booking } | { notFound: true } | { stale: Booking } | { cancelled: Booking }> {
    await roundTrip();
    const current = this.bookings.get(id);
    if (!current) return { notFound: true };
    if (expectedVersion !== undefined && current.version !== expectedVersion) return { stale: current };
    if (current.status === "cancelled") return { cancelled: current };
    const conflict = this.overlapping(current.spaceId, start, end, id);
    if (conflict) return { conflict };
    const booking = { ...current, start, end, version: current.version + 1 };
    this.bookings.set(id, booking);
    return { booking };
  }

  /** Cancels a booking; cancelling a cancelled booking changes nothing. */
  async cancelBooking(id: string): Promise<Booking | undefined> {
    await roundTrip();
    const current = this.bookings.get(id);
    if (!current || current.status === "cancelled") return current;
    const booking = { ...current, status: "cancelled" as const, version: current.version + 1 };
    this.bookings.set(id, booking);
    return booking;
  }

  private overlapping(spaceId: string, start: string, end: string, except?: string): Booking | undefined {
    const s = Date.parse(start);
    const e = Date.parse(end);
    return [...this.bookings.values()].find(
      (b) => b.id !== except && b.spaceId === spaceId && b.status === "confirmed" && Date.parse(b.start) < e && s < Date.parse(b.end),
    );
  }

  // --- Idempotency records (PostgreSQL: a table keyed by (member_id, key) with an expiry). ----

  private idempotency = new Map<string, IdempotencyRecord>();

  /** Claims `key` for a request with `fingerprint`, or returns the record already there. */
  async claimIdempotencyKey(key: string, fingerprint: string): Promise<{ claimed: true } | { claimed: false; record: IdempotencyRecord }> {
    await roundTrip();
    const now = Date.now();
    const existing = this.idempotency.get(key);
    if (existing && existing.expiresAt > now) return { claimed: false, record: existing };
    this.idempotency.set(key, { fingerprint, state: "in_progress", expiresAt: now + 24 * 3_600_000 });
    return { claimed: true };
  }

  async completeIdempotencyKey(key: string, response: { status: number; headers: Record<string, string>; body: unknown }): Promise<void> {
    await roundTrip();
    const record = this.idempotency.get(key);
    if (record) this.idempotency.set(key, { ...record, state: "done", response });
  }

  async releaseIdempotencyKey(key: string): Promise<void> {
    await roundTrip();
    this.idempotency.delete(key);
  }

  async getIdempotencyRecord(key: string): Promise<IdempotencyRecord | undefined> {
    await roundTrip();
    return this.idempotency.get(key);
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
