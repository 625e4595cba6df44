//! [`WebhookNotifier`]: task notifications as signed HTTP POSTs (feature `webhook`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::notify::{Notification, Notifier, NotifyError};

/// The header carrying the signature: `sha256=` and the hex HMAC-SHA256 of
/// `{timestamp}.{body}` under the shared secret.
pub const SIGNATURE_HEADER: &str = "x-statemachine-signature";
/// The header carrying the time of signing, in seconds since the Unix epoch: a receiver
/// refuses old ones, so a captured request cannot be replayed later.
pub const TIMESTAMP_HEADER: &str = "x-statemachine-timestamp";
/// The header carrying the notification's idempotency key: a receiver that has seen it
/// ignores the request (the worker delivers at least once).
pub const KEY_HEADER: &str = "idempotency-key";

/// Posts each notification as JSON to one URL, signed with HMAC-SHA256 under a shared
/// secret (headers [`SIGNATURE_HEADER`], [`TIMESTAMP_HEADER`], [`KEY_HEADER`]). A
/// response other than 2xx, a timeout or a connection failure is an error, and the
/// worker tries again later with the same key.
///
/// ```no_run
/// use std::sync::Arc;
/// use statemachine::task::webhook::WebhookNotifier;
///
/// let notifier = WebhookNotifier::new("https://hooks.example.com/tasks", b"shared secret".to_vec());
/// // worker.with_notifier(Arc::new(notifier))
/// # let _ = Arc::new(notifier);
/// ```
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    url: String,
    secret: Vec<u8>,
    agent: ureq::Agent,
}

impl WebhookNotifier {
    /// A notifier posting to `url`, signing with `secret`, with a 10-second timeout.
    pub fn new(url: impl Into<String>, secret: Vec<u8>) -> Self {
        Self::with_timeout(url, secret, Duration::from_secs(10))
    }

    /// A notifier whose requests time out after `timeout`.
    pub fn with_timeout(url: impl Into<String>, secret: Vec<u8>, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // A non-2xx answer is read as an answer, not as a transport error.
            .http_status_as_error(false)
            .build()
            .new_agent();
        Self {
            url: url.into(),
            secret,
            agent,
        }
    }
}

/// The signature header's value for `body` signed at `timestamp` under `secret`:
/// `sha256=` and the lowercase hex HMAC-SHA256 of `{timestamp}.{body}`.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    let mut hex = String::with_capacity(7 + digest.len() * 2);
    hex.push_str("sha256=");
    for byte in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    hex
}

/// The HMAC-SHA256 of `{timestamp}.{body}` under `secret`.
fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length (a long one is hashed first): `new_from_slice`
    // cannot fail, and `KeyInit::new` on a padded block is the same thing.
    let mut mac = match <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => <Hmac<Sha256> as hmac::KeyInit>::new(&Default::default()),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Whether `header` is the signature of `body` at `timestamp` under `secret`, and the
/// timestamp is within `tolerance` of `now`: what a receiver checks, so that a captured
/// request cannot be replayed later. The worker retries a failed delivery with a fresh
/// timestamp, so a tolerance of a few minutes loses nothing.
pub fn verify_fresh(
    secret: &[u8],
    timestamp: u64,
    body: &[u8],
    header: &str,
    now: SystemTime,
    tolerance: Duration,
) -> bool {
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    now.abs_diff(timestamp) <= tolerance.as_secs() && verify(secret, timestamp, body, header)
}

/// Whether `header` is the signature of `body` at `timestamp` under `secret`, compared
/// in constant time. Check the timestamp's age too ([`verify_fresh`]).
pub fn verify(secret: &[u8], timestamp: u64, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Some(given) = decode_hex(hex) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&given).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Notifier for WebhookNotifier {
    fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(notification)
            .map_err(|e| NotifyError::with_source("the notification does not encode", e))?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let response = self
            .agent
            .post(&self.url)
            .header("content-type", "application/json")
            .header(KEY_HEADER, &notification.key)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature(&self.secret, timestamp, &body))
            .send(&body[..])
            .map_err(|e| NotifyError::with_source(format!("POST {} failed", self.url), e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(NotifyError::new(format!(
                "POST {} answered {status}",
                self.url
            )))
        }
    }
}
