//! The order, payment and shipment machines of `order-choreography`, with the library's
//! metrics (feature `metrics`) served to Prometheus by `metrics-exporter-prometheus`.

use std::error::Error;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use order_choreography::{Shop, Tally, outside_world, tally, worker};
use statemachine::SqliteStore;

/// Histogram buckets, in seconds, from a millisecond (a step, a claim) to a day (a
/// timer's lateness, time in a state).
pub const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3_600.0, 86_400.0,
];

/// Installs the Prometheus recorder for this process, serving `/metrics` on `listen`,
/// and describes the library's metrics to it.
///
/// # Errors
///
/// When a recorder is installed already, or the listener cannot be set up.
pub fn install(listen: SocketAddr) -> Result<(), Box<dyn Error + Send + Sync>> {
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets(BUCKETS)?
        .install()?;
    statemachine::metrics::describe();
    Ok(())
}

/// Places `orders` orders with ids `{prefix}-{n}` in `store` and drives them to their
/// ends: the outside world answers, and a worker delivers what the machines send each
/// other. Returns how they ended.
///
/// # Errors
///
/// When the store fails, or orders are still open after 1 000 rounds.
pub async fn run(
    store: Arc<SqliteStore>,
    orders: u64,
    prefix: &str,
) -> Result<Tally, Box<dyn Error + Send + Sync>> {
    let shop = Shop::new(store.clone());
    let worker = worker(store);
    for n in 0..orders {
        // Every fifth order costs a multiple of 5 euros: the provider declines it.
        shop.place(
            &format!("{prefix}-{n}"),
            &format!("customer {n}"),
            1_000 + n * 100,
        )?;
    }
    for _ in 0..1_000 {
        outside_world(&shop)?;
        worker.deliver_due().await?;
        worker.run_due().await?;
        let now = tally(&shop, prefix)?;
        if now.open == 0 {
            return Ok(now);
        }
    }
    Err(format!("{} orders still open", tally(&shop, prefix)?.open).into())
}

/// The text `GET /metrics` on `address` answers with (a plain HTTP/1.0 request).
///
/// # Errors
///
/// When the listener cannot be reached or answers with something else than 200.
pub fn scrape(address: SocketAddr) -> Result<String, Box<dyn Error + Send + Sync>> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("the answer has no body")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("the listener answered {head}").into());
    }
    Ok(body.to_owned())
}

/// One sample of the Prometheus text format: a metric's name, its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' name.
    pub name: String,
    /// Its labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

/// The samples of a scrape (comments and lines that do not parse are left out; label
/// values with escaped quotes are not expected here).
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}')?;
                    let labels = inner
                        .split("\",")
                        .filter(|pair| !pair.is_empty())
                        .filter_map(|pair| {
                            let (key, value) = pair.split_once("=\"")?;
                            Some((key.to_owned(), value.trim_end_matches('"').to_owned()))
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
                None => (series.to_owned(), Vec::new()),
            };
            Some(Sample {
                name,
                labels,
                value,
            })
        })
        .collect()
}
