"""What every package shares and none owns: the user-error type, atomic file writes, building a
typed config from YAML, and seeding / device choice. Imports nothing of ours, so data/,
translators/, detection/, evaluation/ and pipeline/ may all use it."""
