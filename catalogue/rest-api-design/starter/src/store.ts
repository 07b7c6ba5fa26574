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
