//! The last warnings and errors the daemon logged, for the page: a tracing layer the
//! binary adds beside its log output, writing into one small process-wide ring.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Lines kept.
const KEEP: usize = 20;

/// One warning or error.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Recent {
    /// Unix milliseconds.
    pub at_ms: u64,
    pub level: &'static str,
    pub text: String,
}

static RING: Mutex<VecDeque<Recent>> = Mutex::new(VecDeque::new());

/// The last warnings and errors, oldest first.
pub fn recent() -> Vec<Recent> {
    RING.lock()
        .map(|r| r.iter().cloned().collect())
        .unwrap_or_default()
}

/// Keeps WARN and ERROR events for [`recent`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RecentLayer;

/// The message, then the fields as `key=value`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            name => {
                let _ = write!(self.fields, " {name}={value:?}");
            }
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            name => {
                let _ = write!(self.fields, " {name}={value}");
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for RecentLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > Level::WARN {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let line = Recent {
            at_ms,
            level: if level == Level::ERROR {
                "error"
            } else {
                "warn"
            },
            text: format!("{}{}", text.message, text.fields),
        };
        if let Ok(mut r) = RING.lock() {
            if r.len() == KEEP {
                r.pop_front();
            }
            r.push_back(line);
        }
    }
}
