//! SeaORM entities, one module per table of the migrations.

pub mod access_event;
pub mod audit_log;
pub mod blob;
pub mod file_metadata;
pub mod job_application;
pub mod lease;
pub mod lifecycle_log;
pub mod pack;
pub mod restore;
pub mod user;
