//! The routes (see the crate's doc) and who may use the two that act.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State as With;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use prometheus_client::registry::Registry;
use pynq_mqtt_driver::{LedAction, LedCommand};
use serde::Deserialize;

use crate::{metrics, snapshot, Sources, WebConfig, TICK, TOKEN_ENV};

const PAGE: &str = include_str!("../static/index.html");

pub(crate) struct State {
    sources: Arc<Sources>,
    registry: Registry,
    info: serde_json::Value,
    token: Option<String>,
    loopback: bool,
}

impl State {
    pub fn new(sources: Sources, cfg: &WebConfig, local: SocketAddr) -> Self {
        let info = serde_json::json!({
            "n_inputs": sources.n_inputs,
            "n_leds": sources.n_leds,
            "input_names": sources.input_names,
            "led_names": sources.led_names,
            "broker": sources.broker,
            "client_id": sources.client_id,
            "settings": sources.settings,
            "simulated": sources.pins.is_some(),
            "control": sources.commands.is_some(),
            "token_needed": cfg.token.is_some(),
            "listen": local.to_string(),
            "version": env!("CARGO_PKG_VERSION"),
        });
        let sources = Arc::new(sources);
        Self {
            registry: metrics::registry(Arc::clone(&sources)),
            sources,
            info,
            token: cfg.token.clone(),
            loopback: local.ip().is_loopback(),
        }
    }

    /// Presses and LED commands: the token when there is one; without one, only on
    /// loopback.
    fn allowed(&self, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
        let given = headers.get("x-token").map(|v| v.as_bytes());
        match (&self.token, given) {
            (Some(t), Some(g)) if same(t.as_bytes(), g) => Ok(()),
            (Some(_), _) => Err((
                StatusCode::FORBIDDEN,
                format!("a wrong or missing token: open the page as /?token=... with the value of {TOKEN_ENV}"),
            )),
            // a name other than localhost on a loopback socket is another site's
            // page that had its name point here (DNS rebinding)
            (None, _) if self.loopback && !by_name(headers) => Ok(()),
            (None, _) if self.loopback => Err((
                StatusCode::FORBIDDEN,
                "open the page as http://127.0.0.1:PORT/ or http://localhost:PORT/ to act from it".into(),
            )),
            (None, _) => Err((
                StatusCode::FORBIDDEN,
                format!("served beyond loopback without a token: set {TOKEN_ENV} to act from the page"),
            )),
        }
    }
}

/// True when the request names this server by a host name other than `localhost`.
fn by_name(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split(']')
                .next()
                .is_none_or(|a| a.parse::<std::net::Ipv6Addr>().is_err())
        }
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    name != "localhost" && name.parse::<std::net::Ipv4Addr>().is_err()
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/metrics", get(scrape))
        .route("/api/info", get(info))
        .route("/api/input", post(input))
        .route("/api/led", post(led))
        .with_state(state)
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn info(With(s): With<Arc<State>>) -> Json<serde_json::Value> {
    Json(s.info.clone())
}

async fn scrape(With(s): With<Arc<State>>) -> Response {
    let body = metrics::render(&s.registry);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

async fn events(With(s): With<Arc<State>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stream = futures_util::stream::unfold((s, tick), |(s, mut tick)| async move {
        tick.tick().await;
        let snap = snapshot::take(&s.sources);
        let ev = Event::default()
            .json_data(&snap)
            .unwrap_or_else(|_| Event::default().comment("unencodable"));
        Some((Ok(ev), (s, tick)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
struct Press {
    input: u8,
    level: bool,
}

async fn input(
    With(s): With<Arc<State>>,
    headers: HeaderMap,
    Json(p): Json<Press>,
) -> Result<StatusCode, (StatusCode, String)> {
    s.allowed(&headers)?;
    let Some(pins) = &s.sources.pins else {
        return Err((
            StatusCode::NOT_FOUND,
            "only a simulated board's buttons can be pressed from the page".into(),
        ));
    };
    if p.input >= s.sources.n_inputs {
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "no input {} (the board has {})",
                p.input, s.sources.n_inputs
            ),
        ));
    }
    pins.drive(p.input, p.level);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Switch {
    led: u8,
    action: String,
}

async fn led(
    With(s): With<Arc<State>>,
    headers: HeaderMap,
    Json(c): Json<Switch>,
) -> Result<StatusCode, (StatusCode, String)> {
    s.allowed(&headers)?;
    let Some(tx) = &s.sources.commands else {
        return Err((
            StatusCode::NOT_FOUND,
            "LEDs are switched from the page only with --http-control".into(),
        ));
    };
    let action = match c.action.to_ascii_lowercase().as_str() {
        "on" => LedAction::On,
        "off" => LedAction::Off,
        "toggle" => LedAction::Toggle,
        other => {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("action {other:?}: expected on, off or toggle"),
            ))
        }
    };
    if c.led >= s.sources.n_leds {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("no LED {} (the board has {})", c.led, s.sources.n_leds),
        ));
    }
    tx.try_send(LedCommand { led: c.led, action })
        .map_err(|_| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the driver is not taking LED commands".into(),
            )
        })?;
    tracing::info!(led = c.led, action = %action, "LED command from the web page");
    Ok(StatusCode::NO_CONTENT)
}
