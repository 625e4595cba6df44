//! `serve`: a small dashboard. One page, which fetches `/api/summary` every few seconds
//! and draws what it says: KPIs, instances per state, SLA breaches per task, the open
//! dead letters, and each machine's annotated diagram (`/api/diagram/{machine}.svg`,
//! drawn by the library; `.dot` and `.mmd` give the report's DOT and Mermaid text).

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use statemachine::Repository;
use statemachine::mining::{self, Report, Window};
use statemachine::saga::dead_letter::AnyDeadLetter;
use statemachine::store::Store;

use crate::commands::time;
use crate::open::Error;

/// What the page shows, read from the store on each request.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    /// When it was read (RFC 3339).
    pub(crate) at: String,
    /// Per machine: its instances per state, and its report's headline figures.
    pub(crate) machines: Vec<MachineSummary>,
    /// Dead letters waiting for a person.
    pub(crate) open_dead_letters: u64,
    /// Timers due now.
    pub(crate) due_timers: u64,
    /// Open human tasks.
    pub(crate) open_tasks: u64,
    /// SLA figures of every task state.
    pub(crate) sla: Vec<SlaSummary>,
    /// The dead letters not settled (open, or with a retry asked for), oldest first
    /// (at most 50 of each).
    pub(crate) dead_letters: Vec<LetterSummary>,
}

#[derive(Debug, Serialize)]
pub(crate) struct MachineSummary {
    pub(crate) machine: String,
    pub(crate) total: u64,
    pub(crate) states: Vec<(String, u64)>,
    pub(crate) started: u64,
    pub(crate) finished: u64,
    pub(crate) bottleneck: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct SlaSummary {
    pub(crate) machine: String,
    pub(crate) task: String,
    pub(crate) opened: u64,
    pub(crate) breached: u64,
    pub(crate) open: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct LetterSummary {
    pub(crate) id: String,
    /// `Open`, or `RetryRequested` while the saga's worker has not carried it out.
    pub(crate) state: String,
    pub(crate) saga: String,
    pub(crate) instance: String,
    pub(crate) step: String,
    pub(crate) error: String,
    pub(crate) since: String,
}

/// The store, and each machine's report, mined again once it is older than `every`:
/// the census behind the KPIs is read on every refresh (a few `GROUP BY`s), the reports
/// (a read of the whole trail) at most once per `every`.
pub(crate) struct Dashboard {
    store: Arc<dyn Store>,
    every: Duration,
    reports: Mutex<HashMap<String, (Instant, Arc<Report>)>>,
}

impl Dashboard {
    pub(crate) fn new(store: Arc<dyn Store>, every: Duration) -> Self {
        Self {
            store,
            every,
            reports: Mutex::default(),
        }
    }

    /// `machine`'s report, mined now if the one kept is older than `every`.
    fn report(&self, machine: &str) -> Result<Arc<Report>, Error> {
        let kept = self
            .reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(machine)
            .filter(|(at, _)| at.elapsed() < self.every)
            .map(|(_, report)| Arc::clone(report));
        if let Some(report) = kept {
            return Ok(report);
        }
        let report = Arc::new(mining::mine(&*self.store, machine, Window::all())?);
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(machine.to_owned(), (Instant::now(), Arc::clone(&report)));
        Ok(report)
    }
}

/// Reads the summary: one census and one report per machine (the dead-letter machine
/// itself is listed under the dead letters, not as a process).
pub(crate) fn summary(dashboard: &Dashboard) -> Result<Summary, Error> {
    let store = &*dashboard.store;
    let log = store
        .as_process_log()
        .ok_or("this store keeps no process log")?;
    let census = log.census(SystemTime::now())?;
    let mut machines = Vec::new();
    let mut sla = Vec::new();
    for machine in log.machines()? {
        if machine == "DeadLetter" {
            continue;
        }
        let report = dashboard.report(&machine)?;
        let states: Vec<(String, u64)> = census
            .instances
            .iter()
            .filter(|(m, ..)| *m == machine)
            .map(|(_, s, n)| (s.clone(), *n))
            .collect();
        for task in &report.tasks {
            sla.push(SlaSummary {
                machine: machine.clone(),
                task: task.state.clone(),
                opened: task.opened,
                breached: task.breached,
                open: census
                    .open_tasks
                    .iter()
                    .find(|(m, s, _)| *m == machine && *s == task.state)
                    .map_or(0, |c| c.2),
            });
        }
        machines.push(MachineSummary {
            total: states.iter().map(|s| s.1).sum(),
            states,
            started: report.started,
            finished: report.finished,
            bottleneck: report.bottlenecks.first().map(|b| b.state.clone()),
            machine,
        });
    }
    let letters = Repository::<AnyDeadLetter, _>::new(store);
    let mut dead_letters = Vec::new();
    let mut waiting = letters.list_page(Some("Open"), None, 50)?.items;
    waiting.extend(letters.list_page(Some("RetryRequested"), None, 50)?.items);
    for summary in waiting {
        let letter = letters.load(&summary.id)?;
        let data = letter.data();
        dead_letters.push(LetterSummary {
            id: summary.id.to_string(),
            state: summary.state.clone(),
            saga: data.saga.clone(),
            instance: data.instance.to_string(),
            step: data.step.clone(),
            error: data.errors.last().cloned().unwrap_or_default(),
            since: time(summary.updated_at),
        });
    }
    Ok(Summary {
        at: time(SystemTime::now()),
        machines,
        open_dead_letters: census.open_dead_letters(),
        due_timers: census.due_timers.iter().map(|c| c.1).sum(),
        open_tasks: census.open_tasks.iter().map(|c| c.2).sum(),
        sla,
        dead_letters,
    })
}

type Shared = Arc<Dashboard>;

fn failure(error: &Error) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
}

async fn summary_json(State(dashboard): State<Shared>) -> Response {
    match tokio::task::spawn_blocking(move || summary(&dashboard)).await {
        Ok(Ok(summary)) => axum::Json(summary).into_response(),
        Ok(Err(error)) => failure(&error),
        Err(error) => failure(&error.to_string().into()),
    }
}

async fn diagram(State(dashboard): State<Shared>, Path(file): Path<String>) -> Response {
    let Some((machine, kind)) = file.rsplit_once('.') else {
        return (StatusCode::NOT_FOUND, "ask for {machine}.svg, .dot or .mmd").into_response();
    };
    let content_type = match kind {
        "svg" => "image/svg+xml",
        "dot" | "mmd" => "text/plain; charset=utf-8",
        _ => return (StatusCode::NOT_FOUND, "ask for .svg, .dot or .mmd").into_response(),
    };
    let (machine, kind) = (machine.to_owned(), kind.to_owned());
    let drawn = tokio::task::spawn_blocking(move || {
        dashboard
            .report(&machine)
            .map(|report| match kind.as_str() {
                "svg" => report.to_svg(),
                "dot" => report.to_dot(),
                _ => report.to_mermaid(),
            })
    })
    .await;
    match drawn {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, content_type)], text).into_response(),
        Ok(Err(error)) => failure(&error),
        Err(error) => failure(&error.to_string().into()),
    }
}

/// The dashboard's routes, the page refreshing every `refresh`.
pub(crate) fn router(dashboard: Shared, refresh: Duration) -> Router {
    let page = PAGE.replace("{{REFRESH_MS}}", &refresh.as_millis().to_string());
    Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route("/api/summary", get(summary_json))
        .route("/api/diagram/{file}", get(diagram))
        .with_state(dashboard)
}

/// Serves the dashboard on `listen` until interrupted.
pub(crate) fn serve(
    dashboard: Dashboard,
    listen: SocketAddr,
    refresh: Duration,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let dashboard = Arc::new(dashboard);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        writeln!(
            out,
            "dashboard at http://{}/ (Ctrl-C stops it)",
            listener.local_addr()?
        )?;
        out.flush()?;
        axum::serve(listener, router(dashboard, refresh))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}

/// The page: plain HTML and a little JavaScript, no outside resources.
const PAGE: &str = include_str!("dashboard.html");
