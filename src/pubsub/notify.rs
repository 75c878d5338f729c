//! Keyspace notifications (filled in below).
