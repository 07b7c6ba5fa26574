import express from "express";
import { store } from "./store.js";
import { v1, v1Errors } from "./v1.js";

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

app.use("/v1", v1);
app.use(v1Errors);

if (process.env.NODE_ENV !== "test") {
  const port = Number(process.env.PORT ?? 3000);
  app.listen(port, () => console.log(`deskly api listening on :${port}`));
}
