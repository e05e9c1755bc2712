//! Warnings that a peer can cause, limited per cause: the first few get a line each,
//! then one line per interval says how many more there were. A broker (or any client
//! allowed to publish on our command topics) can send hundreds of thousands of bad
//! messages a minute; each is counted in the stats, and the log stays readable and
//! small on a board whose SD card or journal it would otherwise fill.
//!
//! ```text
//!  cause first seen ─► up to FIRST lines ─► counted quietly ─► after EVERY: "N more like this"
//!        ▲                                                      │ still coming: stay quiet,
//!        └──────── a whole interval without a quiet one ◄───────┘ one count per interval
//! ```
//! Pure: the time comes from the caller, so the tests below run without sleeping.

use std::time::{Duration, Instant};

use tracing::warn;

/// Lines shown per cause before counting starts.
pub const FIRST: u32 = 10;
/// How often a cause that is being counted gets its count line.
pub const EVERY: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Cause {
    what: &'static str,
    shown: u32,
    quiet: u64,
    since: Instant,
    once_done: bool,
}

/// Per-cause counters; see the module doc.
#[derive(Debug)]
pub struct RateLog {
    first: u32,
    every: Duration,
    causes: Vec<Cause>,
}

/// One count line due: `n` occurrences of `what` not shown, over `over`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub what: &'static str,
    pub n: u64,
    pub over: Duration,
}

impl Default for RateLog {
    fn default() -> Self {
        Self::new(FIRST, EVERY)
    }
}

impl RateLog {
    pub fn new(first: u32, every: Duration) -> Self {
        Self {
            first,
            every,
            causes: Vec::new(),
        }
    }

    fn cause(&mut self, what: &'static str, now: Instant) -> &mut Cause {
        // a handful of causes: a scan beats a map
        match self.causes.iter().position(|c| c.what == what) {
            Some(i) => &mut self.causes[i],
            None => {
                self.causes.push(Cause {
                    what,
                    shown: 0,
                    quiet: 0,
                    since: now,
                    once_done: false,
                });
                self.causes.last_mut().expect("just pushed")
            }
        }
    }

    /// One occurrence of `what` at `now`: true when it gets its own line. A count
    /// line that fell due is returned (the caller logs it with [`log`]).
    pub fn check(&mut self, what: &'static str, now: Instant) -> (bool, Option<Summary>) {
        let (first, every) = (self.first, self.every);
        let c = self.cause(what, now);
        let summary = roll(c, now, every);
        let show = c.shown < first;
        if show {
            c.shown += 1;
        } else {
            c.quiet += 1;
        }
        (show, summary)
    }

    /// [`RateLog::check`], with a due count line logged: true when this occurrence
    /// gets its own line.
    pub fn admit(&mut self, what: &'static str, now: Instant) -> bool {
        let (show, summary) = self.check(what, now);
        if let Some(s) = summary {
            log(s);
        }
        show
    }

    /// True the first time only, ever, for `what`: for advice worth one line per run.
    pub fn once(&mut self, what: &'static str, now: Instant) -> bool {
        let c = self.cause(what, now);
        !std::mem::replace(&mut c.once_done, true)
    }

    /// The count lines due at `now`, for causes whose interval ended without a new
    /// occurrence to carry them.
    pub fn due(&mut self, now: Instant) -> Vec<Summary> {
        let every = self.every;
        self.causes
            .iter_mut()
            .filter_map(|c| roll(c, now, every))
            .collect()
    }

    /// [`RateLog::due`], logged.
    pub fn tick(&mut self, now: Instant) {
        for s in self.due(now) {
            log(s);
        }
    }

    /// Whatever is still counted, whether its interval ended or not (at the end).
    pub fn drain(&mut self, now: Instant) -> Vec<Summary> {
        self.causes
            .iter_mut()
            .filter(|c| c.quiet > 0)
            .map(|c| Summary {
                what: c.what,
                n: std::mem::take(&mut c.quiet),
                over: now.duration_since(c.since),
            })
            .collect()
    }
}

/// At the end of an interval: its count, if anything was kept quiet; a quiet
/// interval also makes the next occurrence a first one again.
fn roll(c: &mut Cause, now: Instant, every: Duration) -> Option<Summary> {
    let over = now.duration_since(c.since);
    if over < every {
        return None;
    }
    c.since = now;
    if c.quiet == 0 {
        c.shown = 0;
        return None;
    }
    Some(Summary {
        what: c.what,
        n: std::mem::take(&mut c.quiet),
        over,
    })
}

/// Writes a count line.
pub fn log(s: Summary) {
    warn!(
        more = s.n,
        "{}: {} more like this in the last {} s",
        s.what,
        s.n,
        s.over.as_secs().max(1)
    );
}

impl Drop for RateLog {
    /// The counts not yet told are told at the end of the run.
    fn drop(&mut self) {
        for s in self.drain(Instant::now()) {
            log(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// Feeds `n` occurrences of `what` spread evenly over `over`; returns (lines
    /// shown, count lines, occurrences in those count lines).
    fn feed(
        r: &mut RateLog,
        what: &'static str,
        t0: Instant,
        n: u64,
        over: Duration,
    ) -> (u64, u64, u64) {
        let (mut shown, mut lines, mut counted) = (0, 0, 0);
        for k in 0..n {
            let now = t0 + over.mul_f64(k as f64 / n as f64);
            let (show, sum) = r.check(what, now);
            shown += u64::from(show);
            if let Some(s) = sum {
                assert_eq!(s.what, what);
                lines += 1;
                counted += s.n;
            }
        }
        (shown, lines, counted)
    }

    #[test]
    fn the_first_few_then_a_count_per_interval() {
        let t0 = Instant::now();
        let mut r = RateLog::new(10, 10 * S);
        // 400,000 in 60 s: ten lines, then about one count line every 10 s
        let (shown, lines, counted) = feed(&mut r, "rejected", t0, 400_000, 60 * S);
        assert_eq!(shown, 10);
        assert!((5..=6).contains(&lines), "{lines} count lines");
        let rest = r.drain(t0 + 60 * S);
        let tail: u64 = rest.iter().map(|s| s.n).sum();
        assert_eq!(
            shown + counted + tail,
            400_000,
            "every occurrence is shown or counted"
        );
        assert!(r.drain(t0 + 61 * S).is_empty(), "drained once");
    }

    #[test]
    fn causes_are_counted_apart() {
        let t0 = Instant::now();
        let mut r = RateLog::new(3, 10 * S);
        for _ in 0..100 {
            r.check("a", t0);
        }
        // a flood of one cause does not silence another
        let shown_b = (0..5).filter(|_| r.check("b", t0).0).count();
        assert_eq!(shown_b, 3);
        let due = r.due(t0 + 10 * S);
        assert_eq!(
            due,
            vec![
                Summary {
                    what: "a",
                    n: 97,
                    over: 10 * S
                },
                Summary {
                    what: "b",
                    n: 2,
                    over: 10 * S
                }
            ]
        );
        assert!(r.due(t0 + 11 * S).is_empty(), "told once");
    }

    #[test]
    fn a_quiet_interval_starts_afresh() {
        let t0 = Instant::now();
        let mut r = RateLog::new(2, 10 * S);
        assert!(r.check("x", t0).0 && r.check("x", t0).0 && !r.check("x", t0).0);
        // the flood goes on into the next interval: its count, and still quiet
        let (show, sum) = r.check("x", t0 + 10 * S);
        assert!(!show);
        assert_eq!(sum.map(|s| s.n), Some(1));
        assert_eq!(
            r.check("x", t0 + 20 * S),
            (
                false,
                Some(Summary {
                    what: "x",
                    n: 1,
                    over: 10 * S
                })
            )
        );
        // the last one counted is told when its interval ends, without a new one
        assert_eq!(
            r.due(t0 + 30 * S),
            vec![Summary {
                what: "x",
                n: 1,
                over: 10 * S
            }]
        );
        assert!(
            !r.check("x", t0 + 31 * S).0,
            "not yet a whole quiet interval"
        );
        assert_eq!(
            r.due(t0 + 40 * S),
            vec![Summary {
                what: "x",
                n: 1,
                over: 10 * S
            }]
        );
        // an interval with nothing kept quiet: the next one is shown again
        assert_eq!(r.due(t0 + 50 * S), vec![]);
        assert!(
            r.check("x", t0 + 51 * S).0,
            "a new burst after a quiet interval is shown"
        );
    }

    #[test]
    fn once_is_once_per_cause() {
        let t0 = Instant::now();
        let mut r = RateLog::default();
        assert!(r.once("retained", t0));
        assert!(!r.once("retained", t0 + 100 * S));
        assert!(r.once("other", t0));
        // and it does not use up the cause's lines
        assert!(r.check("retained", t0).0);
    }
}
