//! An in-process S3 server for tests: s3s-fs over a temporary directory, served over real HTTP on 127.0.0.1.
//!
//! A front service counts requests by kind and can answer the next requests with an injected error status, so tests
//! assert what a user would notice ("the second read made no GET", "a 503 is retryable") against the real
//! aws-sdk-s3 client. URLs are path-style (`/bucket/key`): clients must set `force_path_style`.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{Body, HttpError, HttpResponse};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

const ACCESS_KEY: &str = "dossier-test";
const SECRET_KEY: &str = "dossier-test-secret";

/// What an S3 request does, told from its method, path, query and headers (path-style URLs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    GetObject,
    HeadObject,
    PutObject,
    CopyObject,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListObjects,
    /// Bucket-level requests other than listing (create, head, delete a bucket) and anything else.
    Other,
}

impl RequestKind {
    fn of<B>(request: &Request<B>) -> RequestKind {
        let path = request.uri().path().trim_start_matches('/');
        let has_key = path.split_once('/').is_some_and(|(_, key)| !key.is_empty());
        let query: Vec<&str> = request
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
            .collect();
        let has = |name: &str| query.contains(&name);
        let copies = request.headers().contains_key("x-amz-copy-source");
        let method = request.method();
        if !has_key {
            return if *method == Method::GET && (has("list-type") || !has("location")) {
                RequestKind::ListObjects
            } else {
                RequestKind::Other
            };
        }
        match *method {
            Method::GET if has("uploadId") => RequestKind::Other,
            Method::GET => RequestKind::GetObject,
            Method::HEAD => RequestKind::HeadObject,
            Method::PUT if has("partNumber") && copies => RequestKind::UploadPartCopy,
            Method::PUT if has("partNumber") => RequestKind::UploadPart,
            Method::PUT if copies => RequestKind::CopyObject,
            Method::PUT => RequestKind::PutObject,
            Method::POST if has("uploads") => RequestKind::CreateMultipartUpload,
            Method::POST if has("uploadId") => RequestKind::CompleteMultipartUpload,
            Method::DELETE if has("uploadId") => RequestKind::AbortMultipartUpload,
            Method::DELETE => RequestKind::DeleteObject,
            _ => RequestKind::Other,
        }
    }
}

/// Injected failures still to answer.
#[derive(Debug)]
struct Fault {
    /// Requests to let through before failing.
    skip: usize,
    remaining: usize,
    status: StatusCode,
    code: String,
}

#[derive(Debug, Default)]
struct State {
    counts: Mutex<HashMap<RequestKind, u64>>,
    fault: Mutex<Option<Fault>>,
}

impl State {
    fn counts(&self) -> MutexGuard<'_, HashMap<RequestKind, u64>> {
        self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The status and code to answer this request with, if a fault is pending.
    fn take_fault(&self) -> Option<(StatusCode, String)> {
        let mut fault = self.fault.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = fault.as_mut()?;
        if current.skip > 0 {
            current.skip -= 1;
            return None;
        }
        current.remaining -= 1;
        let answer = (current.status, current.code.clone());
        if current.remaining == 0 {
            *fault = None;
        }
        Some(answer)
    }
}

/// The front service: counts, maybe fails, otherwise hands the request to s3s.
#[derive(Clone)]
struct Front {
    s3: S3Service,
    state: Arc<State>,
}

impl hyper::service::Service<Request<Incoming>> for Front {
    type Response = HttpResponse;
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        *self.state.counts().entry(RequestKind::of(&request)).or_default() += 1;
        match self.state.take_fault() {
            Some((status, code)) => Box::pin(async move {
                // Read the body first, so the client sees the answer rather than a connection reset mid-upload.
                let mut body = Body::from(request.into_body());
                while body.next().await.is_some() {}
                Ok(error_response(status, &code))
            }),
            None => hyper::service::Service::call(&self.s3, request),
        }
    }
}

fn error_response(status: StatusCode, code: &str) -> HttpResponse {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>injected by dossier-testkit</Message><RequestId>testkit</RequestId></Error>"
    );
    let mut response = Response::new(Body::from(xml));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    response
}

/// The S3 error code a real server would send with `status`.
fn default_code(status: u16) -> &'static str {
    match status {
        403 => "AccessDenied",
        404 => "NoSuchKey",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        _ => "InjectedFault",
    }
}

/// An S3 server on `127.0.0.1:<free port>` for the life of this value; stopped when it is dropped.
#[derive(Debug)]
pub struct S3Server {
    endpoint: String,
    state: Arc<State>,
    root: TempDir,
    accept: JoinHandle<()>,
}

impl S3Server {
    /// Starts the server. Panics if no local port or temporary directory is available.
    pub async fn start() -> S3Server {
        let root = tempfile::tempdir().expect("temporary directory for the S3 server");
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs over the temporary directory");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let state = Arc::new(State::default());
        let front = Front {
            s3: builder.build(),
            state: Arc::clone(&state),
        };

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the S3 server");
        let address = listener.local_addr().expect("S3 server address");
        let accept = tokio::spawn(async move {
            // Dropping the set when this task is aborted aborts every open connection too.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of file descriptors, most likely: let other tests release some.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                // As S3 and MinIO do: without it every response waits out the client's delayed ACK (about 40 ms).
                let _ = stream.set_nodelay(true);
                let front = front.clone();
                connections.spawn(async move {
                    let connection = hyper::server::conn::http1::Builder::new();
                    // A client hanging up mid-request is not the server's problem.
                    let _ = connection.serve_connection(TokioIo::new(stream), front).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        S3Server {
            endpoint: format!("http://{address}"),
            state,
            root,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    pub fn access_key(&self) -> &'static str {
        ACCESS_KEY
    }

    pub fn secret_key(&self) -> &'static str {
        SECRET_KEY
    }

    /// The configuration that points Dossier at this server, with buckets named `<bucket_prefix>-<tier>`.
    pub fn env(&self, bucket_prefix: &str) -> [(String, String); 4] {
        [
            ("DOSSIER_S3_ENDPOINT".into(), self.endpoint()),
            ("DOSSIER_S3_BUCKET_PREFIX".into(), bucket_prefix.into()),
            ("DOSSIER_S3_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
            ("DOSSIER_S3_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        ]
    }

    /// Creates a bucket (a directory of the server's root, which is all an s3s-fs bucket is) and returns its name.
    pub fn create_bucket(&self, name: &str) -> String {
        std::fs::create_dir(self.root.path().join(name)).unwrap_or_else(|err| panic!("create bucket {name}: {err}"));
        name.to_owned()
    }

    /// Creates `<prefix>-hot`, `<prefix>-warm`, `<prefix>-cold` and `<prefix>-glacier`, in that order.
    pub fn create_buckets(&self, prefix: &str) -> [String; 4] {
        ["hot", "warm", "cold", "glacier"].map(|tier| self.create_bucket(&format!("{prefix}-{tier}")))
    }

    /// The directory holding the buckets.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Requests of one kind since the start or the last [`Self::reset_counts`].
    pub fn count(&self, kind: RequestKind) -> u64 {
        self.state.counts().get(&kind).copied().unwrap_or(0)
    }

    /// GET object requests (not listings).
    pub fn gets(&self) -> u64 {
        self.count(RequestKind::GetObject)
    }

    /// PutObject requests (not parts of multipart uploads, not copies).
    pub fn puts(&self) -> u64 {
        self.count(RequestKind::PutObject)
    }

    /// Every request, of any kind, injected failures included.
    pub fn requests(&self) -> u64 {
        self.state.counts().values().sum()
    }

    pub fn reset_counts(&self) {
        self.state.counts().clear();
    }

    /// The next `n` requests are answered with `status` and the S3 error code a real server would use with it
    /// (503 `ServiceUnavailable`, 500 `InternalError`, 429 `TooManyRequests`, 403 `AccessDenied`), without
    /// reaching the store.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.inject(0, n, status, default_code(status));
    }

    /// Like [`Self::fail_next`] with an explicit error code, for example `(503, "SlowDown")`.
    pub fn fail_next_with_code(&self, n: usize, status: u16, code: &str) {
        self.inject(0, n, status, code);
    }

    /// Lets `skip` requests through, then fails `n` as [`Self::fail_next`] does (to fail inside a multipart upload).
    pub fn fail_after(&self, skip: usize, n: usize, status: u16) {
        self.inject(skip, n, status, default_code(status));
    }

    fn inject(&self, skip: usize, n: usize, status: u16, code: &str) {
        let status = StatusCode::from_u16(status).expect("an HTTP status code");
        let fault = (n > 0).then(|| Fault {
            skip,
            remaining: n,
            status,
            code: code.to_owned(),
        });
        *self.state.fault.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = fault;
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(method: Method, uri: &str, copy: bool) -> RequestKind {
        let mut request = Request::builder().method(method).uri(uri);
        if copy {
            request = request.header("x-amz-copy-source", "b/k");
        }
        RequestKind::of(&request.body(()).expect("request"))
    }

    #[test]
    fn requests_are_told_apart() {
        assert_eq!(kind(Method::GET, "/b/k/x", false), RequestKind::GetObject);
        assert_eq!(
            kind(Method::GET, "/b?list-type=2&prefix=k", false),
            RequestKind::ListObjects
        );
        assert_eq!(kind(Method::GET, "/b/k?uploadId=1", false), RequestKind::Other);
        assert_eq!(kind(Method::PUT, "/b/k", false), RequestKind::PutObject);
        assert_eq!(kind(Method::PUT, "/b/k", true), RequestKind::CopyObject);
        assert_eq!(
            kind(Method::PUT, "/b/k?partNumber=1&uploadId=1", false),
            RequestKind::UploadPart
        );
        assert_eq!(
            kind(Method::PUT, "/b/k?partNumber=1&uploadId=1", true),
            RequestKind::UploadPartCopy
        );
        assert_eq!(
            kind(Method::POST, "/b/k?uploads", false),
            RequestKind::CreateMultipartUpload
        );
        assert_eq!(
            kind(Method::POST, "/b/k?uploadId=1", false),
            RequestKind::CompleteMultipartUpload
        );
        assert_eq!(
            kind(Method::DELETE, "/b/k?uploadId=1", false),
            RequestKind::AbortMultipartUpload
        );
        assert_eq!(kind(Method::DELETE, "/b/k", false), RequestKind::DeleteObject);
        assert_eq!(kind(Method::PUT, "/b", false), RequestKind::Other);
    }
}
