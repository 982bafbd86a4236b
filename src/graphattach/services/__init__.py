"""Use cases of the mailbox. Services take records and plain values, never HTTP objects."""
