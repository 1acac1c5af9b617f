//! The fleet runtime against real services, each test isolated: its own Postgres schema, Redis namespace (or a
//! private Redis server) and SQLite directory.

mod attempts;
mod installation;
mod operations;
mod resilience;
mod shutdown;
mod support;
