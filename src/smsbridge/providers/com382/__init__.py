"""382 Communications: sendsms.cgi GET out, JSON (or legacy key=value lines) webhooks in."""
