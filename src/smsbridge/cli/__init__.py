"""The ``smsbridge`` command line."""
