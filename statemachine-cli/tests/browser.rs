//! The dashboard in a real browser: headless Chromium, driven through ChromeDriver over
//! WebDriver, loads the page; the figures it shows are the store's, and they follow the
//! store when it changes (the page refreshes every second).
//!
//! Compiled only where STATEMACHINE_CHROMEDRIVER names a ChromeDriver (`.ci/run` installs
//! Debian's chromium and chromium-driver and sets it); there it fails, never skips, when
//! the browser cannot be driven.

#![cfg(browser_tests)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use statemachine::SqliteStore;
use statemachine::mining::{ProcessLog as _, Window};

mod common;

/// ChromeDriver on a free port, killed when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> Driver {
    let path = std::env::var("STATEMACHINE_CHROMEDRIVER").expect(
        "STATEMACHINE_CHROMEDRIVER was set when this test was built and must name \
         ChromeDriver to run it (.ci/run sets /usr/bin/chromedriver)",
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start ChromeDriver at {path}: {e}"));
    Driver(child, port)
}

async fn browser(driver: &Driver) -> Client {
    let mut options = serde_json::json!({
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"
        ]
    });
    if let Ok(binary) = std::env::var("STATEMACHINE_CHROMIUM") {
        options["binary"] = binary.into();
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    let url = format!("http://127.0.0.1:{}", driver.1);
    // ChromeDriver takes a moment to listen: try for up to 20 s.
    let started = Instant::now();
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return client,
            Err(error) if started.elapsed() < Duration::from_secs(20) => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("cannot drive Chromium through ChromeDriver at {url}: {error}"),
        }
    }
}

/// The text of the element `css`, once the page has drawn at least once.
async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Waits (up to 20 s) until `css`'s text is `want`.
async fn until(client: &Client, css: &str, want: &str) {
    let started = Instant::now();
    loop {
        let got = text(client, css).await;
        if got == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{css} shows {got:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn the_dashboard_shows_the_stores_figures_and_follows_them() {
    // The order example runs its own runtime: the store is written outside the test's.
    let (_dir, db) = common::orders();
    let (server, base) = common::serve(&db, 1);
    let driver = chromedriver();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(browser(&driver));
    runtime.block_on(async {
        client.goto(&format!("{base}/")).await.unwrap();
        client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("body[data-updated]"))
            .await
            .expect("the page loads its figures");

        let store = SqliteStore::open(&db).unwrap();
        let census = store.census(std::time::SystemTime::now()).unwrap();
        let orders = orders_in(&census);
        assert_eq!(
            text(&client, "[data-kpi=instances]").await,
            orders.to_string()
        );
        assert_eq!(text(&client, "[data-kpi=dead-letters]").await, "1");
        assert_eq!(text(&client, "[data-kpi=tasks]").await, "0");
        // One row per (machine, state), with the store's counts.
        let rows = client
            .find_all(Locator::Css("#machines tbody tr"))
            .await
            .unwrap();
        let order_states: Vec<_> = census
            .instances
            .iter()
            .filter(|(m, ..)| m == "Order")
            .collect();
        assert_eq!(rows.len(), order_states.len());
        for (row, (machine, state, n)) in rows.iter().zip(&order_states) {
            assert_eq!(row.text().await.unwrap(), format!("{machine} {state} {n}"));
        }
        let letter = text(&client, "#dead-letters tbody tr").await;
        assert!(
            letter.starts_with("Refund/r-7/pay_back Open Refund r-7 pay_back card_closed"),
            "{letter}"
        );
        let report = statemachine::mining::mine(&store, "Order", Window::all()).unwrap();
        let mermaid = client
            .find(Locator::Css("pre[data-machine=Order]"))
            .await
            .unwrap()
            .prop("textContent")
            .await
            .unwrap();
        assert_eq!(mermaid.as_deref(), Some(report.to_mermaid().as_str()));
        // The drawn diagram: a box per state, the hottest full red.
        let hottest = &report.bottlenecks[0].state;
        let heat = client
            .find(Locator::Css(&format!(
                ".diagram[data-machine=Order] svg g.state[data-state={hottest}]"
            )))
            .await
            .unwrap_or_else(|e| panic!("{hottest} is drawn: {e}"))
            .attr("data-heat")
            .await
            .unwrap();
        assert_eq!(heat.as_deref(), Some("1.000"));
        let boxes = client
            .find_all(Locator::Css(".diagram[data-machine=Order] svg g.state"))
            .await
            .unwrap();
        assert_eq!(boxes.len(), report.shape.as_ref().unwrap().states.len());
        assert!(
            client.find(Locator::Css("#kpi-dead.alert")).await.is_ok(),
            "open dead letters are shown as an alert"
        );
    });

    // The store changes; the page follows within its refresh.
    let resolved = common::run(
        &db,
        &[
            "dead-letters",
            "resolve",
            "Refund/r-7/pay_back",
            "--note",
            "refunded by hand",
            "--actor",
            "ops",
        ],
    );
    assert!(resolved.status.success());
    order_lifecycle::day::run(&db, Duration::ZERO, &mut std::io::sink()).unwrap();
    let store = SqliteStore::open(&db).unwrap();
    let orders = orders_in(&store.census(std::time::SystemTime::now()).unwrap());
    runtime.block_on(async {
        until(&client, "[data-kpi=dead-letters]", "0").await;
        until(&client, "[data-kpi=instances]", &orders.to_string()).await;
        assert!(client.find(Locator::Css("#kpi-dead.alert")).await.is_err());

        client.close().await.unwrap();
    });
    drop(server);
}

/// The order example's instances in `census`, in every state.
fn orders_in(census: &statemachine::mining::Census) -> u64 {
    census
        .instances
        .iter()
        .filter(|(m, ..)| m == "Order")
        .map(|c| c.2)
        .sum()
}
