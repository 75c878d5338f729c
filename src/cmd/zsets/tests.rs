//! Command-level tests through the in-process harness.
