//! A Redis key namespace of its own for one test.

use redis::Commands;

const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// A unique namespace `t<random>`; every key containing it is deleted (SCAN + UNLINK) when this value is dropped.
///
/// The server comes from `DOSSIER_TEST_REDIS_URL`, else `redis://127.0.0.1:6379`. Nothing else is touched.
#[derive(Debug)]
pub struct RedisNamespace {
    name: String,
    url: String,
}

impl RedisNamespace {
    pub fn new() -> RedisNamespace {
        let url = std::env::var("DOSSIER_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        RedisNamespace {
            name: format!("t{}", crate::random_suffix()),
            url,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration that points Dossier at this namespace (`REDIS_URL`, `DOSSIER_NAMESPACE`).
    pub fn env(&self) -> [(String, String); 2] {
        [
            ("REDIS_URL".into(), self.url.clone()),
            ("DOSSIER_NAMESPACE".into(), self.name.clone()),
        ]
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Default for RedisNamespace {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RedisNamespace {
    fn drop(&mut self) {
        let (url, pattern) = (self.url.clone(), format!("*{}*", self.name));
        // A plain thread with the synchronous client: Drop may run inside an async runtime.
        let cleaned = std::thread::spawn(move || -> redis::RedisResult<()> {
            let mut connection = redis::Client::open(url)?.get_connection()?;
            let keys = connection
                .scan_match::<_, String>(pattern.as_str())?
                .collect::<redis::RedisResult<Vec<_>>>()?;
            for batch in keys.chunks(500) {
                connection.unlink::<_, ()>(batch)?;
            }
            Ok(())
        })
        .join();
        if !matches!(cleaned, Ok(Ok(()))) {
            eprintln!(
                "dossier-testkit: could not delete the keys of Redis namespace {}",
                self.name
            );
        }
    }
}
