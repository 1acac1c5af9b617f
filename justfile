# Dossier's recipes. Each calls the same commands the README gives, so nothing here needs `just` to work.

# List the recipes.
default:
    @just --list

# The main job: the demo on the embedded default, on the shared corpus.
demo *ARGS:
    cargo run --release -p dossier -- demo {{ARGS}}

# The whole test suite (format, lint, one nextest run), as CI runs it.
test *ARGS:
    ./scripts/test {{ARGS}}

# Benchmarks: they print their figures.
bench:
    cargo bench --workspace

# Format check and clippy with warnings as errors.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# The compose stack (Redis, Postgres, MinIO, collector, api, workers) where a Docker engine runs.
up:
    docker compose -f deploy/compose.yaml up -d
