"""Rolling an image out to a fleet in waves (canary, pilot, general), each wave analysed against
live metrics, with automatic rollback."""
