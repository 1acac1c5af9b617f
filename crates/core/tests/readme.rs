//! The README's configuration and policy tables are generated from the code; this fails when they drift.
//! Run with `DOSSIER_BLESS_README=1` to rewrite them.

use std::path::Path;

use dossier_core::config;
use dossier_core::policy::Policies;

fn section(readme: &str, marker: &str) -> (usize, usize) {
    let begin = format!("<!-- {marker}:begin -->\n");
    let end = format!("<!-- {marker}:end -->");
    let start = readme.find(&begin).map(|i| i + begin.len()).expect("begin marker");
    let stop = readme.find(&end).expect("end marker");
    (start, stop)
}

#[test]
fn readme_tables_match_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let mut readme = std::fs::read_to_string(&path).expect("README.md");
    let tables = [
        ("config-table", config::markdown_table()),
        ("policy-table", Policies::default().markdown_table()),
    ];
    let bless = std::env::var_os("DOSSIER_BLESS_README").is_some();
    for (marker, table) in tables {
        let (start, stop) = section(&readme, marker);
        if bless {
            readme.replace_range(start..stop, &table);
        } else {
            assert_eq!(
                readme[start..stop],
                table,
                "README {marker} is stale: run with DOSSIER_BLESS_README=1"
            );
        }
    }
    if bless {
        std::fs::write(&path, readme).expect("write README.md");
    }
}

#[test]
fn readme_configuration_example_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let start = readme.find("```toml\n").expect("a toml example") + "```toml\n".len();
    let len = readme[start..].find("```").expect("end of the example");
    let sources = config::Sources {
        file: Some((path.clone(), readme[start..start + len].to_owned())),
        ..Default::default()
    };
    let loaded = config::Config::load(&sources, &|_| Err(std::io::ErrorKind::NotFound.into())).expect("example loads");
    let active = loaded.policies.get(dossier_core::FileType::ActiveResume);
    assert_eq!(active.transitions.len(), 3);
    assert_eq!(active.expire_days, None);
    assert_eq!(loaded.cost.hot.usd_per_gb_month, 0.021);
}
