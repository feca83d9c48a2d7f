"""382 Communications provider tests."""
