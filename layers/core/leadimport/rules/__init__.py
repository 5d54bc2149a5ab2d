"""Pure per-value rules (phone numbers, dedicated lead columns): no I/O."""
