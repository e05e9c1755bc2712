//! The interactive simulator's screen: the board as a fixed panel (buttons, switches,
//! LEDs read from the model's pins), what a subscriber sees scrolling below it, a status
//! line for the last key, and the daemon's logs and stats in a pane of their own.
//!
//! Keys (shown by `?`): a digit clicks that input; Shift+digit (on a US layout the
//! symbols `)!@#$%^&*(` of 0-9) holds it until the next key; letters flip the
//! switches, `a` and `b` for SW0 and SW1 on the board's shape (`a` for input 0 onwards
//! on another); `q`, Esc or Ctrl+C quit. Every key's effect goes through one queue
//! whose edges are spaced in simulated time by more than the debounce, so keys typed
//! faster than the board can take them still become one press each, in order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use pynq_mqtt_sim::{shape, SimBoard};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;
use tokio::sync::oneshot;

/// Shift+0 to Shift+9 on a US layout, in digit order.
const SHIFTED_DIGITS: [char; 10] = [')', '!', '@', '#', '$', '%', '^', '&', '*', '('];
/// Letters that flip inputs; `q` quits, so the letters stop before it.
const SWITCH_LETTERS: &str = "abcdefghijklmnop";
/// Messages kept for the scrolling list and lines kept for the log pane.
const KEEP_MESSAGES: usize = 500;
const KEEP_LOGS: usize = 100;
/// Shortest press or gap in simulated time, whatever the debounce: long enough to be
/// seen on the panel.
const MIN_EDGE_GAP_US: u64 = 50_000;
/// A model that stops advancing (it should not) does not freeze the queue for longer.
const MAX_EDGE_WAIT: Duration = Duration::from_secs(5);

/// Which inputs the keys reach and what the panel calls them.
#[derive(Debug, Clone)]
pub struct Shape {
    n_inputs: u32,
    n_leds: u32,
    /// inputs clicked and held by digit keys, in digit order
    buttons: Vec<u32>,
    /// inputs flipped by letter keys, in letter order
    switches: Vec<u32>,
}

impl Shape {
    pub fn new(n_inputs: u32, n_leds: u32) -> Self {
        let board = shape::input_name(n_inputs, n_leds, 0).is_some();
        let (buttons, switches) = if board {
            // the board's BTN0-3 and SW0-1 (host/sim/src/shape.rs)
            ((0..4).collect(), (4..6).collect())
        } else {
            (
                (0..n_inputs.min(10)).collect(),
                (0..n_inputs.min(SWITCH_LETTERS.len() as u32)).collect(),
            )
        };
        Self {
            n_inputs,
            n_leds,
            buttons,
            switches,
        }
    }

    fn board(&self) -> bool {
        shape::input_name(self.n_inputs, self.n_leds, 0).is_some()
    }

    fn input_name(&self, i: u32) -> String {
        shape::input_name(self.n_inputs, self.n_leds, i)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("IN{i}"))
    }

    fn letter(&self, input: u32) -> Option<char> {
        let at = self.switches.iter().position(|s| *s == input)?;
        SWITCH_LETTERS.chars().nth(at)
    }

    /// The LEDs as the panel draws them: one name and its pins, blue/green/red for
    /// the board's LD4 and LD5, each pin alone otherwise.
    fn led_groups(&self) -> Vec<(String, Vec<u32>)> {
        if self.board() {
            let mut g: Vec<(String, Vec<u32>)> =
                (0..4).map(|i| (format!("LD{i}"), vec![i])).collect();
            g.push(("LD4".into(), vec![4, 5, 6]));
            g.push(("LD5".into(), vec![7, 8, 9]));
            g
        } else {
            (0..self.n_leds)
                .map(|i| (format!("LED{i}"), vec![i]))
                .collect()
        }
    }

    fn key_hint(&self) -> String {
        let digits = match self.buttons.len() {
            0 => String::new(),
            1 => "0".into(),
            n => format!("0-{}", n - 1),
        };
        let letters: String = SWITCH_LETTERS.chars().take(self.switches.len()).collect();
        let flips = if self.board() {
            format!(
                "{} flip SW0 SW1",
                letters
                    .chars()
                    .map(String::from)
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        } else {
            format!("a-{} flip inputs", letters.chars().last().unwrap_or('a'))
        };
        let shifted: String = SHIFTED_DIGITS.iter().take(self.buttons.len()).collect();
        format!("keys: {digits} click, Shift+{digits} ({shifted}) hold, {flips}, ? help, q quit")
    }
}

/// What one key asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Quit,
    Help,
    Click(u32),
    Hold(u32),
    Flip(u32),
    /// a key this screen does not use, as typed
    Unknown(String),
}

/// The meaning of a key press on `shape`.
pub fn decide(shape: &Shape, code: KeyCode, mods: KeyModifiers) -> Key {
    match code {
        KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => Key::Quit,
        KeyCode::Char('q') | KeyCode::Esc => Key::Quit,
        KeyCode::Char('?') => Key::Help,
        KeyCode::Char(c) if c.is_ascii_digit() => {
            let d = c as usize - '0' as usize;
            match shape.buttons.get(d) {
                Some(i) if mods.contains(KeyModifiers::SHIFT) => Key::Hold(*i),
                Some(i) => Key::Click(*i),
                None => Key::Unknown(c.to_string()),
            }
        }
        KeyCode::Char(c) if SHIFTED_DIGITS.contains(&c) => {
            let d = SHIFTED_DIGITS.iter().position(|s| *s == c).unwrap_or(0);
            match shape.buttons.get(d) {
                Some(i) => Key::Hold(*i),
                None => Key::Unknown(c.to_string()),
            }
        }
        KeyCode::Char(c) if c.is_ascii_lowercase() => {
            match SWITCH_LETTERS.find(c).and_then(|at| shape.switches.get(at)) {
                Some(i) => Key::Flip(*i),
                None => Key::Unknown(c.to_string()),
            }
        }
        KeyCode::Char(c) => Key::Unknown(c.to_string()),
        other => Key::Unknown(format!("{other:?}")),
    }
}

/// What the screen shows besides the pins, filled by the message view and the logs.
#[derive(Default)]
struct Text {
    messages: VecDeque<String>,
    stats: String,
    logs: VecDeque<String>,
    status: String,
    help: bool,
}

/// The screen's shared text: the subscriber writes messages into it, the log writer
/// its lines.
#[derive(Default)]
pub struct View {
    text: Mutex<Text>,
}

impl View {
    fn lock(&self) -> MutexGuard<'_, Text> {
        self.text.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One line of the message list.
    pub fn message(&self, line: String) {
        let mut t = self.lock();
        if t.messages.len() == KEEP_MESSAGES {
            t.messages.pop_front();
        }
        t.messages.push_back(line);
    }

    /// The latest stats payload, on its own line.
    pub fn stats(&self, body: &str) {
        self.lock().stats = body.split_whitespace().collect::<Vec<_>>().join(" ");
    }

    fn log(&self, buf: &[u8]) {
        let text = strip_ansi(&String::from_utf8_lossy(buf));
        let mut t = self.lock();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if t.logs.len() == KEEP_LOGS {
                t.logs.pop_front();
            }
            t.logs.push_back(line.to_owned());
        }
    }

    fn status(&self, s: String) {
        self.lock().status = s;
    }
}

/// The view that takes the process's log lines while the screen is up.
static LOG_VIEW: Mutex<Option<Arc<View>>> = Mutex::new(None);

/// Hands a formatted log record to the screen's log pane; false when no screen is up
/// (the caller writes it to stderr as usual).
pub fn capture_log(buf: &[u8]) -> bool {
    let view = LOG_VIEW.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match view {
        Some(v) => {
            v.log(buf);
            true
        }
        None => false,
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, ending at a letter
            if chars.next() == Some('[') {
                for e in chars.by_ref() {
                    if e.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One change to the pins, in the order keys asked for them.
#[derive(Debug, Clone, Copy)]
enum Edge {
    Click(u32),
    Press(u32),
    Release(u32),
    Flip(u32),
}

/// The running screen; dropping it restores the terminal.
pub struct Screen {
    quit: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        *LOG_VIEW.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Takes over the terminal: draws `view` and the board's pins, turns keys into edges
/// spaced by more than `debounce_us` of simulated time, and sends `stop` on quit.
pub fn start(
    board: Arc<SimBoard>,
    view: Arc<View>,
    header: Vec<String>,
    debounce_us: u64,
    stop: oneshot::Sender<()>,
) -> std::io::Result<Screen> {
    let shape = Shape::new(board.n_inputs(), board.n_leds());
    // logs go to the pane before raw mode starts, or a line could land unreturned
    *LOG_VIEW.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&view));
    let terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            *LOG_VIEW.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return Err(e);
        }
    };
    let quit = Arc::new(AtomicBool::new(false));
    let gap_us = (debounce_us + debounce_us / 2 + 1_000).max(MIN_EDGE_GAP_US);
    let (edges, rx) = mpsc::channel();
    {
        let board = Arc::clone(&board);
        let quit = Arc::clone(&quit);
        std::thread::Builder::new()
            .name("sim-keys-edges".into())
            .spawn(move || drive(&board, &rx, gap_us, &quit))?;
    }
    let q = Arc::clone(&quit);
    let thread = std::thread::Builder::new()
        .name("sim-screen".into())
        .spawn(move || {
            let mut ui = Ui {
                board,
                panel: Panel {
                    view,
                    shape,
                    header,
                },
                edges,
                held: None,
                clicks: 0,
            };
            ui.run(terminal, &q);
            ratatui::restore();
            // what the daemon logs while it stops is read on the terminal it leaves
            *LOG_VIEW.lock().unwrap_or_else(|p| p.into_inner()) = None;
            let _ = stop.send(());
        })?;
    Ok(Screen {
        quit,
        thread: Some(thread),
    })
}

/// Applies the edges in order, each after the previous one has lasted `gap_us` of
/// simulated time.
fn drive(board: &SimBoard, rx: &mpsc::Receiver<Edge>, gap_us: u64, quit: &AtomicBool) {
    let settle = |quit: &AtomicBool| {
        let until = board.sim_time_us() + gap_us;
        let started = Instant::now();
        while board.sim_time_us() < until
            && started.elapsed() < MAX_EDGE_WAIT
            && !quit.load(Ordering::Relaxed)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    while let Ok(edge) = rx.recv() {
        match edge {
            Edge::Click(i) => {
                board.set_input(i, true);
                settle(quit);
                board.set_input(i, false);
            }
            Edge::Press(i) => board.set_input(i, true),
            Edge::Release(i) => board.set_input(i, false),
            Edge::Flip(i) => board.set_input(i, board.inputs() & (1 << i) == 0),
        }
        settle(quit);
    }
}

struct Ui {
    board: Arc<SimBoard>,
    panel: Panel,
    edges: mpsc::Sender<Edge>,
    held: Option<u32>,
    clicks: u32,
}

impl Ui {
    fn run(&mut self, mut terminal: ratatui::DefaultTerminal, quit: &AtomicBool) {
        self.panel.view.status(self.panel.shape.key_hint());
        while !quit.load(Ordering::SeqCst) {
            let pins = (self.board.inputs(), self.board.leds());
            if terminal.draw(|f| self.panel.draw(f, pins)).is_err() {
                return;
            }
            match event::poll(Duration::from_millis(50)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => return,
            }
            let Ok(Event::Key(k)) = event::read() else {
                continue;
            };
            if k.kind != KeyEventKind::Press {
                continue;
            }
            let key = decide(&self.panel.shape, k.code, k.modifiers);
            if !self.on_key(key) {
                return;
            }
        }
    }

    /// Acts on one key; false to quit.
    fn on_key(&mut self, key: Key) -> bool {
        let was_help = std::mem::take(&mut self.panel.view.lock().help);
        // a held button lasts until the next key, whichever it is
        let released = self.held.take();
        if let Some(i) = released {
            let _ = self.edges.send(Edge::Release(i));
        }
        let name = |i| self.panel.shape.input_name(i);
        let status = match key {
            Key::Quit => return false,
            Key::Help => {
                self.panel.view.lock().help = !was_help;
                "? again or any key closes the help".to_owned()
            }
            Key::Click(i) => {
                self.clicks += 1;
                let _ = self.edges.send(Edge::Click(i));
                format!("click {} (#{})", name(i), self.clicks)
            }
            Key::Hold(i) if released == Some(i) => format!("release {}", name(i)),
            Key::Hold(i) => {
                self.held = Some(i);
                let _ = self.edges.send(Edge::Press(i));
                format!("hold {}: any key releases it", name(i))
            }
            Key::Flip(i) => {
                let _ = self.edges.send(Edge::Flip(i));
                format!("flip {}", name(i))
            }
            Key::Unknown(k) => format!("unknown key {k}: ? shows the keys"),
        };
        let status = match released {
            Some(i) if !status.starts_with("release") => {
                format!("release {}; {status}", name(i))
            }
            _ => status,
        };
        self.panel.view.status(status);
        true
    }
}

/// What is drawn: the text, the header and the shape the pins are read in.
struct Panel {
    view: Arc<View>,
    shape: Shape,
    header: Vec<String>,
}

impl Panel {
    fn draw(&self, f: &mut Frame, (inputs, leds): (u32, u32)) {
        let logs_h = 5;
        let [head, panel, list, status, logs] = Layout::vertical([
            Constraint::Length(self.header.len() as u16),
            Constraint::Length(4),
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(logs_h),
        ])
        .areas(f.area());
        let t = self.view.lock();
        f.render_widget(
            Paragraph::new(
                self.header
                    .iter()
                    .map(|h| Line::raw(h.clone()))
                    .collect::<Vec<_>>(),
            ),
            head,
        );
        f.render_widget(
            Paragraph::new(vec![self.inputs_line(inputs), self.leds_line(leds)]).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(format!(" board · {} ", self.shape.key_hint())),
            ),
            panel,
        );
        let rows = list.height.saturating_sub(2) as usize;
        let shown: Vec<Line> = t
            .messages
            .iter()
            .skip(t.messages.len().saturating_sub(rows))
            .map(|m| Line::raw(m.clone()))
            .collect();
        f.render_widget(
            Paragraph::new(shown).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" what a subscriber sees "),
            ),
            list,
        );
        f.render_widget(
            Paragraph::new(Line::styled(
                t.status.clone(),
                Style::default().add_modifier(Modifier::BOLD),
            )),
            status,
        );
        let stats = if t.stats.is_empty() {
            "none yet"
        } else {
            &t.stats
        };
        let mut lines = vec![Line::raw(format!("stats: {stats}"))];
        let n = (logs_h as usize).saturating_sub(3);
        lines.extend(
            t.logs
                .iter()
                .skip(t.logs.len().saturating_sub(n))
                .map(|l| Line::raw(l.clone())),
        );
        f.render_widget(
            Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" log ")),
            logs,
        );
        if t.help {
            self.draw_help(f);
        }
    }

    fn inputs_line(&self, inputs: u32) -> Line<'static> {
        let mut spans = Vec::new();
        for i in 0..self.shape.n_inputs {
            let on = inputs & (1 << i) != 0;
            let name = self.shape.input_name(i);
            let switch = self.shape.board() && self.shape.switches.contains(&i);
            let (mark, word) = match (switch, on) {
                (true, true) => ("▲", "on"),
                (true, false) => ("▽", "off"),
                (false, true) => ("■", "down"),
                (false, false) => ("□", "up"),
            };
            let style = if on {
                Style::default().fg(Color::Black).bg(Color::Yellow)
            } else {
                Style::default()
            };
            spans.push(Span::styled(format!("{mark} {name} {word}"), style));
            spans.push(Span::raw("  "));
        }
        Line::from(spans)
    }

    fn leds_line(&self, leds: u32) -> Line<'static> {
        let mut spans = Vec::new();
        for (name, pins) in self.shape.led_groups() {
            let on: Vec<bool> = pins.iter().map(|p| leds & (1 << p) != 0).collect();
            let (word, colour) = if let [b, g, r] = on[..] {
                rgb(r, g, b)
            } else if on[0] {
                ("on", Color::Green)
            } else {
                ("off", Color::DarkGray)
            };
            let lit = on.iter().any(|x| *x);
            spans.push(Span::styled(
                if lit { "●" } else { "○" },
                Style::default().fg(colour),
            ));
            spans.push(Span::raw(format!(" {name} {word}  ")));
        }
        Line::from(spans)
    }

    fn draw_help(&self, f: &mut Frame) {
        let s = &self.shape;
        let mut lines = vec![Line::raw(s.key_hint()), Line::raw("")];
        for (d, i) in s.buttons.iter().enumerate() {
            lines.push(Line::raw(format!(
                "  {d}  click {n}    Shift+{d} ({}) hold {n} until the next key",
                SHIFTED_DIGITS[d],
                n = s.input_name(*i)
            )));
        }
        for i in &s.switches {
            if let Some(l) = s.letter(*i) {
                lines.push(Line::raw(format!("  {l}  flip {}", s.input_name(*i))));
            }
        }
        lines.push(Line::raw("  ?  this help    q, Esc, Ctrl+C  quit"));
        let h = (lines.len() as u16 + 2).min(f.area().height);
        let w = f.area().width.min(72);
        let area = Rect {
            x: f.area().x + (f.area().width - w) / 2,
            y: f.area().y + (f.area().height - h) / 2,
            width: w,
            height: h,
        };
        f.render_widget(Clear, area);
        f.render_widget(
            Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" help ")),
            area,
        );
    }
}

/// The colour of an RGB LED from its three pins, named and drawn.
fn rgb(r: bool, g: bool, b: bool) -> (&'static str, Color) {
    match (r, g, b) {
        (false, false, false) => ("off", Color::DarkGray),
        (true, false, false) => ("red", Color::Red),
        (false, true, false) => ("green", Color::Green),
        (false, false, true) => ("blue", Color::Blue),
        (true, true, false) => ("yellow", Color::Yellow),
        (true, false, true) => ("magenta", Color::Magenta),
        (false, true, true) => ("cyan", Color::Cyan),
        (true, true, true) => ("white", Color::White),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_on_the_board_shape() {
        let s = Shape::new(6, 10);
        let none = KeyModifiers::NONE;
        assert_eq!(decide(&s, KeyCode::Char('2'), none), Key::Click(2));
        assert_eq!(
            decide(&s, KeyCode::Char('@'), KeyModifiers::SHIFT),
            Key::Hold(2)
        );
        assert_eq!(decide(&s, KeyCode::Char(')'), none), Key::Hold(0));
        assert_eq!(decide(&s, KeyCode::Char('a'), none), Key::Flip(4));
        assert_eq!(decide(&s, KeyCode::Char('b'), none), Key::Flip(5));
        // the switches are not buttons: 4 and 5 are not clicks, c is no switch
        assert_eq!(
            decide(&s, KeyCode::Char('4'), none),
            Key::Unknown("4".into())
        );
        assert_eq!(
            decide(&s, KeyCode::Char('c'), none),
            Key::Unknown("c".into())
        );
        assert_eq!(
            decide(&s, KeyCode::Char('x'), none),
            Key::Unknown("x".into())
        );
        assert_eq!(decide(&s, KeyCode::Char('?'), none), Key::Help);
        assert_eq!(
            decide(&s, KeyCode::Char('c'), KeyModifiers::CONTROL),
            Key::Quit
        );
        assert_eq!(decide(&s, KeyCode::Char('q'), none), Key::Quit);
    }

    #[test]
    fn another_shape_has_generic_inputs_and_leds() {
        let s = Shape::new(4, 4);
        assert_eq!(
            decide(&s, KeyCode::Char('3'), KeyModifiers::NONE),
            Key::Click(3)
        );
        assert_eq!(
            decide(&s, KeyCode::Char('d'), KeyModifiers::NONE),
            Key::Flip(3)
        );
        assert_eq!(
            decide(&s, KeyCode::Char('e'), KeyModifiers::NONE),
            Key::Unknown("e".into())
        );
        assert_eq!(s.input_name(2), "IN2");
        let g = s.led_groups();
        assert_eq!(g.len(), 4);
        assert_eq!(g[3], ("LED3".to_owned(), vec![3]));
    }

    #[test]
    fn board_leds_group_rgb_as_blue_green_red() {
        let g = Shape::new(6, 10).led_groups();
        assert_eq!(g[4], ("LD4".to_owned(), vec![4, 5, 6]));
        assert_eq!(g[5], ("LD5".to_owned(), vec![7, 8, 9]));
        assert_eq!(rgb(true, false, false).0, "red");
        assert_eq!(rgb(true, true, false).0, "yellow");
    }

    /// The screen as text, drawn on a terminal of `w` x `h` cells.
    fn render(n_inputs: u32, n_leds: u32, pins: (u32, u32), help: bool, w: u16, h: u16) -> String {
        let panel = Panel {
            view: Arc::new(View::default()),
            shape: Shape::new(n_inputs, n_leds),
            header: vec!["head".into()],
        };
        panel
            .view
            .message("    0.100 s  led/6                    1".into());
        panel.view.lock().help = help;
        let mut term =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).expect("terminal");
        term.draw(|f| panel.draw(f, pins)).expect("draw");
        let buf = term.backend().buffer().clone();
        (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
            .collect()
    }

    #[test]
    fn the_board_shape_draws_its_names_and_colours() {
        // BTN1 down, SW0 on; LD0 on, LD4 red (pin 6), LD5 blue+green (pins 7, 8)
        let text = render(6, 10, (0b01_0010, 0b01_1100_0001), false, 120, 30);
        for want in [
            "□ BTN0 up",
            "■ BTN1 down",
            "▲ SW0 on",
            "▽ SW1 off",
            "● LD0 on",
            "○ LD1 off",
            "● LD4 red",
            "● LD5 cyan",
            "led/6",
            "stats: none yet",
        ] {
            assert!(text.contains(want), "{want:?} not drawn:\n{text}");
        }
    }

    #[test]
    fn another_shape_draws_generic_inputs_and_leds() {
        let text = render(4, 4, (0b0100, 0b1000), false, 100, 24);
        for want in ["□ IN0 up", "■ IN2 down", "○ LED0 off", "● LED3 on"] {
            assert!(text.contains(want), "{want:?} not drawn:\n{text}");
        }
        assert!(!text.contains("BTN") && !text.contains("LD4"), "{text}");
    }

    #[test]
    fn help_and_a_tiny_terminal_draw_without_panicking() {
        let text = render(6, 10, (0, 0), true, 100, 30);
        assert!(text.contains("Shift+3 (#) hold BTN3"), "{text}");
        assert!(text.contains("b  flip SW1"), "{text}");
        render(6, 10, (0, 0), true, 10, 4);
        render(32, 32, (u32::MAX, u32::MAX), true, 1, 1);
    }

    #[test]
    fn log_lines_lose_their_colours() {
        assert_eq!(strip_ansi("\x1b[32m INFO\x1b[0m hi"), " INFO hi");
    }
}
