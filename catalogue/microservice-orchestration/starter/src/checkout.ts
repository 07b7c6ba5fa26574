import { randomUUID } from "node:crypto";
import express from "express";
import type { InventoryClient, LineItem, LoyaltyClient, NotificationsClient, PaymentsClient } from "./clients.js";

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

/** The current implementation: one synchronous chain per HTTP request. */
export function checkoutRouter(deps: Deps): express.Router {
  const router = express.Router();

  router.post("/checkout", async (req, res) => {
    const body = req.body as CheckoutRequest;
    const orderId = randomUUID();
    try {
      const payment = await deps.payments.authorize({
        idempotencyKey: orderId,
        customerId: body.customerId,
        amountMinor: body.amountMinor,
        currency: body.currency,
      });
      await deps.payments.capture(payment.paymentId);

      if (body.pointsToRedeem > 0) {
        await deps.loyalty.debit({ customerId: body.customerId, points: body.pointsToRedeem, reference: orderId });
      }

      const hold = await deps.inventory.hold({ holdKey: orderId, items: body.items });
      const booking = await deps.inventory.confirm(hold.holdId);

      await deps.notifications.send({
        dedupeKey: `booking-confirmed:${orderId}`,
        to: body.email,
        template: "booking-confirmed",
        data: { bookingRef: booking.bookingRef },
      });
      res.status(200).json({ orderId, bookingRef: booking.bookingRef });
    } catch (err) {
      // TODO(INC-2291): undo whatever already happened?
      console.error("checkout failed", orderId, err);
      res.status(502).json({ error: "Checkout failed, please try again." });
    }
  });

  return router;
}
