"""smsbridge: one API and one webhook format in front of every SMS/MMS carrier."""

__version__ = "0.1.0"
