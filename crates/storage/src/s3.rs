//! The S3 backend (AWS, MinIO, Garage or any S3-compatible server) on aws-sdk-s3.
//!
//! Bodies at or above [`S3Settings::multipart_threshold`] are uploaded in parts (aborted on failure, so no upload
//! is left to bill for); copies use CopyObject below [`S3Settings::multipart_copy_threshold`] (S3 refuses single
//! copies over 5 GiB) and UploadPartCopy above it, so bytes never pass through Dossier.
//!
//! Retries: the SDK's standard retry is kept, but short ([`S3Settings::max_attempts`], default 3, first backoff
//! 100 ms), to absorb a blip inside one call; longer outages surface as a retryable [`StorageError`] and Dossier's
//! job layer retries with its own backoff. Set `max_attempts` to 1 to leave every retry to the caller.
//!
//! Every SDK error is mapped to a [`StorageErrorKind`] whose message names the operation, bucket and key.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::{ObjectMeta, ObjectStore, StorageError, StorageErrorKind};

const MIB: u64 = 1024 * 1024;
/// S3's smallest part (except the last one) and largest single copy.
const MIN_PART_SIZE: u64 = 5 * MIB;
const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
const MAX_PARTS: u64 = 10_000;

/// When the SDK adds CRC checksums to requests and checks them on responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// Always (the SDK's default); right for AWS and recent MinIO.
    #[default]
    WhenSupported,
    /// Only where the operation demands one; for S3-compatible servers that refuse checksum trailers.
    WhenRequired,
}

/// How to reach the S3 server and how to split large transfers.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `None` for AWS itself; `http(s)://host:port` for MinIO and other compatible servers.
    pub endpoint: Option<String>,
    pub region: String,
    /// Path-style URLs (`host/bucket/key`), which MinIO and most compatible servers need. Default: true.
    pub force_path_style: bool,
    /// Static credentials, used when both the key id and the secret are given; otherwise the SDK's default chain
    /// (environment, profile, web identity, container and instance metadata).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub checksum: ChecksumMode,
    /// Bodies of at least this many bytes are uploaded in parts. Default: 16 MiB.
    pub multipart_threshold: u64,
    /// Size of each uploaded or copied part (at least 5 MiB; grown when an object would need over 10 000 parts).
    /// Default: 8 MiB.
    pub multipart_part_size: u64,
    /// Parts in flight at once for one object. Default: 4.
    pub multipart_concurrency: usize,
    /// Objects of at least this many bytes are copied with UploadPartCopy. Default: 5 GiB (S3's CopyObject limit).
    pub multipart_copy_threshold: u64,
    /// Attempts per request by the SDK's standard retry, including the first. Default: 3.
    pub max_attempts: u32,
    /// Backoff before the SDK's first retry (it grows exponentially with jitter). Default: 100 ms.
    pub retry_initial_backoff: Duration,
    /// Establishing a TCP/TLS connection. Default: 3 s.
    pub connect_timeout: Duration,
    /// One attempt of one request, body included. Default: 120 s.
    pub operation_attempt_timeout: Duration,
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".to_owned(),
            force_path_style: true,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            checksum: ChecksumMode::WhenSupported,
            multipart_threshold: 16 * MIB,
            multipart_part_size: 8 * MIB,
            multipart_concurrency: 4,
            multipart_copy_threshold: MAX_PART_SIZE,
            max_attempts: 3,
            retry_initial_backoff: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(3),
            operation_attempt_timeout: Duration::from_secs(120),
        }
    }
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("force_path_style", &self.force_path_style)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("session_token", &redacted(&self.session_token))
            .field("checksum", &self.checksum)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("multipart_part_size", &self.multipart_part_size)
            .field("multipart_concurrency", &self.multipart_concurrency)
            .field("multipart_copy_threshold", &self.multipart_copy_threshold)
            .field("max_attempts", &self.max_attempts)
            .field("retry_initial_backoff", &self.retry_initial_backoff)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_attempt_timeout", &self.operation_attempt_timeout)
            .finish()
    }
}

impl S3Settings {
    fn validate(&self) -> Result<(), StorageError> {
        let invalid = |what: String| {
            Err(StorageError::new(
                StorageErrorKind::Permanent,
                format!("S3 settings: {what}"),
            ))
        };
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.multipart_part_size) {
            return invalid(format!(
                "multipart_part_size {} must be within 5 MiB..=5 GiB",
                self.multipart_part_size
            ));
        }
        if self.multipart_copy_threshold > MAX_PART_SIZE {
            return invalid(format!(
                "multipart_copy_threshold {} exceeds S3's 5 GiB copy limit",
                self.multipart_copy_threshold
            ));
        }
        if self.multipart_concurrency == 0 || self.max_attempts == 0 {
            return invalid("multipart_concurrency and max_attempts must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// An [`ObjectStore`] on an S3 server.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    settings: S3Settings,
}

impl S3Store {
    /// Builds the client; no request is sent until the first operation.
    pub async fn connect(settings: S3Settings) -> Result<Self, StorageError> {
        settings.validate()?;
        let (request_checksums, response_checksums) = match settings.checksum {
            ChecksumMode::WhenSupported => (
                RequestChecksumCalculation::WhenSupported,
                ResponseChecksumValidation::WhenSupported,
            ),
            ChecksumMode::WhenRequired => (
                RequestChecksumCalculation::WhenRequired,
                ResponseChecksumValidation::WhenRequired,
            ),
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(settings.max_attempts)
                    .with_initial_backoff(settings.retry_initial_backoff),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(settings.connect_timeout)
                    .operation_attempt_timeout(settings.operation_attempt_timeout)
                    .build(),
            )
            .request_checksum_calculation(request_checksums)
            .response_checksum_validation(response_checksums);
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(key_id), Some(secret)) => {
                let credentials =
                    Credentials::new(key_id, secret, settings.session_token.clone(), None, "dossier-settings");
                loader = loader.credentials_provider(credentials);
            }
            (None, None) => {}
            _ => tracing::warn!(
                "only one of the S3 access key id and secret is set; using the default credential chain instead"
            ),
        }
        let sdk_config = loader.load().await;
        let config = aws_sdk_s3::config::Builder::from(&sdk_config)
            .force_path_style(settings.force_path_style)
            .build();
        tracing::debug!(endpoint = ?settings.endpoint, region = %settings.region, "S3 client configured");
        Ok(Self {
            client: Client::from_conf(config),
            settings,
        })
    }

    /// The underlying SDK client, for operations the trait does not cover (restores, storage classes).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The part size for an object of `size` bytes: the configured one, grown to stay within 10 000 parts.
    fn part_size(&self, size: u64) -> u64 {
        self.settings.multipart_part_size.max(size.div_ceil(MAX_PARTS))
    }

    fn part_ranges(&self, size: u64) -> Vec<Range<u64>> {
        let part = self.part_size(size);
        (0..size.div_ceil(part))
            .map(|i| i * part..((i + 1) * part).min(size))
            .collect()
    }

    async fn put_multipart(&self, bucket: &str, key: &str, body: Bytes) -> Result<(), StorageError> {
        let upload_id = self.create_upload("put", bucket, key).await?;
        let parts = self.part_ranges(body.len() as u64);
        let uploaded = futures::stream::iter(parts.into_iter().enumerate())
            .map(|(index, range)| {
                let body = body.slice(to_usize(range.start)..to_usize(range.end));
                self.upload_part(bucket, key, &upload_id, index, body)
            })
            .buffered(self.settings.multipart_concurrency)
            .try_collect::<Vec<_>>()
            .await;
        self.finish_upload("put", bucket, key, &upload_id, uploaded).await
    }

    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        index: usize,
        body: Bytes,
    ) -> Result<CompletedPart, StorageError> {
        let part_number = part_number(index)?;
        let output = self
            .client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|err| sdk_error("upload_part", bucket, key, err))?;
        Ok(CompletedPart::builder()
            .set_e_tag(output.e_tag)
            .part_number(part_number)
            .build())
    }

    async fn copy_multipart(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        size: u64,
    ) -> Result<(), StorageError> {
        let upload_id = self.create_upload("copy", dst_bucket, dst_key).await?;
        let source = copy_source(src_bucket, src_key);
        let copied = futures::stream::iter(self.part_ranges(size).into_iter().enumerate())
            .map(|(index, range)| {
                let (source, upload_id) = (&source, &upload_id);
                async move {
                    let part_number = part_number(index)?;
                    let output = self
                        .client
                        .upload_part_copy()
                        .bucket(dst_bucket)
                        .key(dst_key)
                        .upload_id(upload_id)
                        .part_number(part_number)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={}-{}", range.start, range.end - 1))
                        .send()
                        .await
                        .map_err(|err| sdk_error("upload_part_copy", dst_bucket, dst_key, err))?;
                    let e_tag = output.copy_part_result.and_then(|result| result.e_tag);
                    Ok(CompletedPart::builder()
                        .set_e_tag(e_tag)
                        .part_number(part_number)
                        .build())
                }
            })
            .buffered(self.settings.multipart_concurrency)
            .try_collect::<Vec<_>>()
            .await;
        self.finish_upload("copy", dst_bucket, dst_key, &upload_id, copied)
            .await
    }

    async fn create_upload(&self, op: &'static str, bucket: &str, key: &str) -> Result<String, StorageError> {
        let output = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| sdk_error(op, bucket, key, err))?;
        output.upload_id.ok_or_else(|| {
            StorageError::new(
                StorageErrorKind::Permanent,
                format!("{op} s3://{bucket}/{key}: CreateMultipartUpload answered without an upload id"),
            )
        })
    }

    /// Completes the upload when every part succeeded, and aborts it otherwise so no parts are left behind.
    async fn finish_upload(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Result<Vec<CompletedPart>, StorageError>,
    ) -> Result<(), StorageError> {
        let completed = match parts {
            Ok(parts) => self
                .client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map(drop)
                .map_err(|err| sdk_error(op, bucket, key, err)),
            Err(err) => Err(err),
        };
        if let Err(err) = &completed {
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
                .await;
            if let Err(abort) = aborted {
                tracing::warn!(
                    bucket, key, upload_id, error = %err, abort_error = %DisplayErrorContext(&abort),
                    "could not abort a failed multipart upload; a bucket lifecycle rule must reap it"
                );
            }
        }
        completed
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn ensure_bucket(&self, bucket: &str) -> Result<(), StorageError> {
        if self.bucket_exists(bucket).await? {
            return Ok(());
        }
        let mut request = self.client.create_bucket().bucket(bucket);
        if self.settings.region != "us-east-1" {
            let location = BucketLocationConstraint::from(self.settings.region.as_str());
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(location)
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => {
                tracing::info!(bucket, "created bucket");
                Ok(())
            }
            Err(err) if err.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            // Created by a concurrent caller, or taken by another account: only the latter is an error.
            Err(err) if err.code() == Some("BucketAlreadyExists") && self.bucket_exists(bucket).await? => Ok(()),
            Err(err) => Err(sdk_error("create_bucket", bucket, "", err)),
        }
    }

    async fn put(&self, bucket: &str, key: &str, body: Bytes) -> Result<(), StorageError> {
        let size = body.len() as u64;
        if size >= self.settings.multipart_threshold {
            self.put_multipart(bucket, key, body).await?;
        } else {
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|err| sdk_error("put", bucket, key, err))?;
        }
        tracing::debug!(bucket, key, size, "stored object");
        Ok(())
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes, StorageError> {
        let output = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| sdk_error("get", bucket, key, err))?;
        read_body("get", bucket, key, output.body).await
    }

    async fn get_range(&self, bucket: &str, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        let answer = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await;
        let output = match answer {
            Ok(output) => output,
            // The range starts at or past the end of an existing object: clamped, that is nothing.
            Err(err) if err.code() == Some("InvalidRange") || status_of(&err) == Some(416) => return Ok(Bytes::new()),
            Err(err) => return Err(sdk_error("get_range", bucket, key, err)),
        };
        let ignored_range = output.content_range.is_none();
        let bytes = read_body("get_range", bucket, key, output.body).await?;
        if ignored_range {
            // A server that ignores Range sends the whole object; cut the range out here.
            let end = to_usize(range.end).min(bytes.len());
            return Ok(bytes.slice(to_usize(range.start).min(end)..end));
        }
        Ok(bytes)
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        match self.client.head_object().bucket(bucket).key(key).send().await {
            Ok(output) => {
                let size = output
                    .content_length
                    .and_then(|len| u64::try_from(len).ok())
                    .unwrap_or(0);
                Ok(Some(ObjectMeta {
                    key: key.to_owned(),
                    size,
                }))
            }
            Err(err) => match sdk_error("head", bucket, key, err) {
                err if err.kind == StorageErrorKind::NotFound => Ok(None),
                err => Err(err),
            },
        }
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        match self.client.delete_object().bucket(bucket).key(key).send().await {
            Ok(_) => {
                tracing::debug!(bucket, key, "deleted object");
                Ok(())
            }
            Err(err) => match sdk_error("delete", bucket, key, err) {
                err if err.kind == StorageErrorKind::NotFound => Ok(()),
                err => Err(err),
            },
        }
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut objects = Vec::new();
        let mut continuation = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(continuation)
                .send()
                .await
                .map_err(|err| sdk_error("list", bucket, prefix, err))?;
            objects.extend(page.contents.unwrap_or_default().into_iter().filter_map(|object| {
                let size = object.size.and_then(|size| u64::try_from(size).ok()).unwrap_or(0);
                object.key.map(|key| ObjectMeta { key, size })
            }));
            continuation = page.next_continuation_token;
            if page.is_truncated != Some(true) || continuation.is_none() {
                break;
            }
        }
        Ok(objects)
    }

    async fn copy(&self, src_bucket: &str, src_key: &str, dst_bucket: &str, dst_key: &str) -> Result<(), StorageError> {
        let Some(source) = self.head(src_bucket, src_key).await? else {
            return Err(StorageError::new(
                StorageErrorKind::NotFound,
                format!("copy s3://{src_bucket}/{src_key}: no such object"),
            ));
        };
        if source.size >= self.settings.multipart_copy_threshold {
            self.copy_multipart(src_bucket, src_key, dst_bucket, dst_key, source.size)
                .await?;
        } else {
            self.client
                .copy_object()
                .copy_source(copy_source(src_bucket, src_key))
                .bucket(dst_bucket)
                .key(dst_key)
                .send()
                .await
                .map_err(|err| sdk_error("copy", dst_bucket, dst_key, err))?;
        }
        tracing::debug!(
            src_bucket,
            src_key,
            dst_bucket,
            dst_key,
            size = source.size,
            "copied object"
        );
        Ok(())
    }
}

impl S3Store {
    async fn bucket_exists(&self, bucket: &str) -> Result<bool, StorageError> {
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(true),
            Err(err) => match sdk_error("head_bucket", bucket, "", err) {
                err if matches!(err.kind, StorageErrorKind::NotFound | StorageErrorKind::NoSuchBucket) => Ok(false),
                err => Err(err),
            },
        }
    }
}

async fn read_body(op: &str, bucket: &str, key: &str, body: ByteStream) -> Result<Bytes, StorageError> {
    body.collect().await.map(|data| data.into_bytes()).map_err(|err| {
        StorageError::new(
            StorageErrorKind::Transient,
            format!("{op} s3://{bucket}/{key}: reading the body: {err}"),
        )
        .with_source(err)
    })
}

/// `bucket/key` with the key percent-encoded, as the `x-amz-copy-source` header wants it.
fn copy_source(bucket: &str, key: &str) -> String {
    let mut source = format!("{bucket}/");
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            source.push(char::from(byte));
        } else {
            source.push_str(&format!("%{byte:02X}"));
        }
    }
    source
}

fn part_number(index: usize) -> Result<i32, StorageError> {
    i32::try_from(index + 1).map_err(|_| StorageError::new(StorageErrorKind::Permanent, "too many multipart parts"))
}

/// Part offsets are within a body already held in memory, so they fit in `usize`.
fn to_usize(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

fn status_of<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|response| response.status().as_u16())
}

fn sdk_error<E>(op: &str, bucket: &str, key: &str, err: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = status_of(&err);
    let (kind, detail) = match &err {
        SdkError::ServiceError(_) => {
            let code = err.code().unwrap_or("no error code");
            let message = err.message().unwrap_or("no message");
            let status = status.map_or_else(|| "no status".to_owned(), |status| format!("HTTP {status}"));
            (
                kind_of(err.code(), status_of(&err)),
                format!("{code} ({status}): {message}"),
            )
        }
        SdkError::TimeoutError(_) => (
            StorageErrorKind::Transient,
            format!("timed out: {}", DisplayErrorContext(&err)),
        ),
        SdkError::DispatchFailure(failure) if failure.is_user() => {
            (StorageErrorKind::Permanent, DisplayErrorContext(&err).to_string())
        }
        SdkError::DispatchFailure(_) => (StorageErrorKind::Transient, DisplayErrorContext(&err).to_string()),
        // The answer could not be read or parsed: mostly a connection cut mid-body.
        SdkError::ResponseError(_) => {
            let kind = match status {
                Some(status) if (400..500).contains(&status) => kind_of(None, Some(status)),
                _ => StorageErrorKind::Transient,
            };
            (kind, DisplayErrorContext(&err).to_string())
        }
        _ => (StorageErrorKind::Permanent, DisplayErrorContext(&err).to_string()),
    };
    StorageError::new(kind, format!("{op} s3://{bucket}/{key}: {detail}")).with_source(err)
}

/// The kind of an S3 error answer, from its code first and its HTTP status otherwise.
fn kind_of(code: Option<&str>, status: Option<u16>) -> StorageErrorKind {
    match code {
        Some("NoSuchKey" | "NotFound") => StorageErrorKind::NotFound,
        Some("NoSuchBucket") => StorageErrorKind::NoSuchBucket,
        Some(
            "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken"
            | "AllAccessDisabled"
            | "AccountProblem",
        ) => StorageErrorKind::AccessDenied,
        Some(
            "SlowDown"
            | "Throttling"
            | "ThrottlingException"
            | "TooManyRequests"
            | "TooManyRequestsException"
            | "RequestLimitExceeded",
        ) => StorageErrorKind::Throttled,
        Some("InternalError" | "ServiceUnavailable" | "RequestTimeout") => StorageErrorKind::Transient,
        _ => match status {
            Some(404) => StorageErrorKind::NotFound,
            Some(401 | 403) => StorageErrorKind::AccessDenied,
            Some(429) => StorageErrorKind::Throttled,
            Some(408 | 500..=599) => StorageErrorKind::Transient,
            _ => StorageErrorKind::Permanent,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_map_to_kinds() {
        use StorageErrorKind::*;
        let cases = [
            (Some("NoSuchKey"), Some(404), NotFound),
            (None, Some(404), NotFound),
            (Some("NoSuchBucket"), Some(404), NoSuchBucket),
            (Some("AccessDenied"), Some(403), AccessDenied),
            (Some("SignatureDoesNotMatch"), Some(403), AccessDenied),
            (Some("InvalidAccessKeyId"), Some(403), AccessDenied),
            (None, Some(403), AccessDenied),
            (Some("SlowDown"), Some(503), Throttled),
            (None, Some(429), Throttled),
            (Some("ServiceUnavailable"), Some(503), Transient),
            (None, Some(503), Transient),
            (None, Some(500), Transient),
            (Some("InvalidArgument"), Some(400), Permanent),
            (Some("EntityTooSmall"), Some(400), Permanent),
        ];
        for (code, status, kind) in cases {
            assert_eq!(kind_of(code, status), kind, "{code:?} {status:?}");
        }
    }

    #[test]
    fn copy_source_encodes_everything_but_safe_characters() {
        assert_eq!(
            copy_source("b", "hot/active/ab/ab12.0190-f3"),
            "b/hot/active/ab/ab12.0190-f3"
        );
        assert_eq!(copy_source("b", "a b+c%é"), "b/a%20b%2Bc%25%C3%A9");
    }

    #[tokio::test]
    async fn part_ranges_cover_the_object_within_ten_thousand_parts() {
        let store = S3Store::connect(S3Settings {
            endpoint: Some("http://127.0.0.1:9".to_owned()),
            access_key_id: Some("k".to_owned()),
            secret_access_key: Some("s".to_owned()),
            multipart_part_size: 5 * MIB,
            ..S3Settings::default()
        })
        .await
        .expect("client");
        let ranges = store.part_ranges(11 * MIB);
        assert_eq!(ranges, [0..5 * MIB, 5 * MIB..10 * MIB, 10 * MIB..11 * MIB]);
        let huge = 100 * 1024 * 1024 * MIB;
        let ranges = store.part_ranges(huge);
        assert!(ranges.len() as u64 <= MAX_PARTS);
        assert_eq!(ranges.last().map(|r| r.end), Some(huge));
    }

    #[test]
    fn settings_debug_hides_secrets() {
        let settings = S3Settings {
            secret_access_key: Some("hunter2".to_owned()),
            session_token: Some("token".to_owned()),
            ..S3Settings::default()
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("token\""), "{shown}");
    }
}
