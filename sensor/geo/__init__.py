"""Where parties are in the world: ISO 3166-1 country codes for events (SPEC.md section 7)."""
