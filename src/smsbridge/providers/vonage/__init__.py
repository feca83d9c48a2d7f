"""Vonage (Nexmo): the SMS API, and Vonage's optionally signed webhooks."""
