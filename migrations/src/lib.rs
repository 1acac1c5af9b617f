//! Dossier's schema, as SeaORM migrations that run on Postgres (fleet) and SQLite (embedded).
//!
//! Every instant is `timestamp with time zone`. `dossier migrate` applies them in the fleet; embedded homes apply
//! them on first use.

pub use sea_orm_migration::prelude::*;

mod m20261203_000001_create_tables;
mod m20261203_000010_lifecycle;
mod m20261204_000001_storage_efficiency;
mod m20261210_000001_outbox_delivery;

/// The ordered list of Dossier's migrations.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261203_000001_create_tables::Migration),
            Box::new(m20261210_000001_outbox_delivery::Migration),
            Box::new(m20261203_000010_lifecycle::Migration),
            Box::new(m20261204_000001_storage_efficiency::Migration),
        ]
    }
}
