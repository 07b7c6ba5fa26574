"""Ledgerline's invoices service: the customer dashboard's invoice list, the overdue-reminder job
and the card provider's payment webhook. `invoices.app.create_app()` assembles the application."""
