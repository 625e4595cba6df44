//! The webhook notifier (feature `webhook`): task notifications posted as JSON, signed
//! with HMAC-SHA256, retried with the same idempotency key after a failure. The receiver
//! is the test's own HTTP server, which checks each signature with its own HMAC.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use statemachine::task::notify::{Notification, NotificationKind};
use statemachine::task::webhook::{
    KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookNotifier, signature, verify,
    verify_fresh,
};
use statemachine::worker::Worker;
use statemachine::{ManualClock, MemoryStore, Meta, state_machine};

state_machine! {
    #[derive(Debug)]
    pub machine Leave(Request) {
        version 1;
        initial state Draft;
        state Review;
        final state Granted;
        event submit;
        event grant;
        Draft + submit => Review;
        Review + grant => Granted;

        task Review {
            assignee data.manager;
            outcomes grant;
            escalate after 2d to candidates "hr-leads";
            delegate keeps sla;
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
/// A leave request: who decides it.
pub struct Request {
    manager: String,
}

/// One request as the test's receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    key: String,
    signed: bool,
    body: Notification,
}

/// A webhook receiver on a local port: answers 500 to the first `failures` requests,
/// then 200, checks each signature with its own HMAC, and keeps what it saw.
fn receiver(secret: &'static [u8], failures: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/tasks", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = HashMap::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let trimmed = line.trim_end();
                if trimmed.is_empty() {
                    break;
                }
                if let Some((name, value)) = trimmed.split_once(':') {
                    headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                }
            }
            let length: usize = headers["content-length"].parse().unwrap();
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let timestamp = &headers[TIMESTAMP_HEADER];
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
            mac.update(format!("{timestamp}.").as_bytes());
            mac.update(&body);
            let expected: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            log.lock().unwrap().push(Received {
                key: headers[KEY_HEADER].clone(),
                signed: headers[SIGNATURE_HEADER] == format!("sha256={expected}"),
                body: serde_json::from_slice(&body).unwrap(),
            });
            let status = if n < failures {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, seen)
}

#[tokio::test]
async fn the_webhook_is_signed_and_retried_with_the_same_key_after_a_failure() {
    let secret: &'static [u8] = b"a shared secret";
    let (url, seen) = receiver(secret, 1);
    let notifier = WebhookNotifier::with_timeout(url, secret.to_vec(), Duration::from_secs(5));
    let clock = Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30),
    ));
    let worker = Worker::new(Arc::new(MemoryStore::new()))
        .with_clock(clock.clone())
        .machine::<AnyLeave>()
        .with_notifier(Arc::new(notifier));
    let leaves = worker.repository::<AnyLeave>();
    let request = Request {
        manager: "maria".into(),
    };
    leaves.create(Leave::new("l-1", request).into()).unwrap();
    leaves
        .apply(&"l-1".into(), Submit, &Meta::new().actor("eve"))
        .unwrap();
    let first = worker.deliver_due().await.unwrap();
    assert!(
        first[0].error.as_deref().unwrap().contains("500"),
        "{first:?}"
    );
    clock.advance(Duration::from_secs(1));
    let second = worker.deliver_due().await.unwrap();
    assert_eq!(second[0].error, None);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "delivered twice: once refused, once taken");
    assert!(
        seen.iter().all(|r| r.signed),
        "the receiver's own HMAC matches"
    );
    assert_eq!(seen[0].key, seen[1].key, "the retry carries the same key");
    assert_eq!(seen[0].key, "Leave/l-1/1/0/assigned");
    assert_eq!(seen[1].body.kind, NotificationKind::Assigned);
    assert_eq!(seen[1].body.assignee.as_deref(), Some("maria"));
    // A receiver that deduplicates by key applies it once.
    let mut applied: Vec<&str> = seen.iter().map(|r| r.key.as_str()).collect();
    applied.dedup();
    assert_eq!(applied.len(), 1);
    // And a request signed with another secret does not verify.
    let body = serde_json::to_vec(&seen[1].body).unwrap();
    let forged = signature(b"another secret", 1, &body);
    assert!(!verify(secret, 1, &body, &forged));
    let genuine = signature(secret, 1, &body);
    assert!(verify(secret, 1, &body, &genuine));
    // A genuine request replayed an hour later is refused by the freshness check.
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
    let minutes = Duration::from_secs(300);
    assert!(verify_fresh(secret, 1, &body, &genuine, at, minutes));
    let later = at + Duration::from_secs(3_600);
    assert!(!verify_fresh(secret, 1, &body, &genuine, later, minutes));
}
