import express from "express";
import type { LineItem, InventoryClient, LoyaltyClient, NotificationsClient, PaymentsClient } from "./clients.js";
import type { CheckoutOrchestrator } from "./saga.js";

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

/**
 * POST /checkout records the saga and answers 202 at once; the saga runs in the background (and
 * is resumed by recover() after a restart). GET /checkout/:id reports its outcome.
 */
export function checkoutRouter(orchestrator: CheckoutOrchestrator): express.Router {
  const router = express.Router();

  router.post("/checkout", async (req, res) => {
    const key = req.header("Idempotency-Key");
    if (!key) {
      res.status(400).json({ error: "The Idempotency-Key header is required." });
      return;
    }
    const body = req.body as CheckoutRequest;
    if (!body || !Array.isArray(body.items) || typeof body.customerId !== "string" || !Number.isInteger(body.amountMinor)) {
      res.status(422).json({ error: "customerId, email, items, amountMinor, currency and pointsToRedeem are required." });
      return;
    }
    const { checkoutId } = await orchestrator.start(key, body);
    void orchestrator.run(checkoutId).catch((err) => console.error("checkout saga stopped; recovery resumes it", checkoutId, err));
    res.status(202).location(`/checkout/${checkoutId}`).json({ checkoutId, outcome: "pending" });
  });

  router.get("/checkout/:id", async (req, res) => {
    const view = await orchestrator.status(req.params.id);
    if (!view) {
      res.status(404).json({ error: "No such checkout." });
      return;
    }
    res.json(view);
  });

  return router;
}
