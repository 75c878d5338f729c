//! Set command tests through the in-process harness.
