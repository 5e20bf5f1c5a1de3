"""Loopback fakes of HappyFox, HubSpot, Aircall and Gmail on one port, an SMTP sink, fault injection, a call log,
webhook emission and a console page: a product feature for trials, demos and every integration test."""
