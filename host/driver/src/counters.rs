//! Counters declared once: one row per counter gives its atomic field, its field in
//! the plain snapshot, its doc, its key in the `stats` JSON and its name in the
//! daemon's final log line. Everything that shows counters is derived from the rows
//! ([`Counter`] and the snapshot's `values`), so adding a counter touches one line.

/// What a row says about one counter besides its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    /// The field name.
    pub name: &'static str,
    /// Dotted path in the `stats` JSON (`"dropped.channel"`); None: not in it.
    /// Counters sharing a path are summed there.
    pub json: Option<&'static str>,
    /// Name in the final log line; None: not in it.
    pub log: Option<&'static str>,
}

/// Declares a struct of `AtomicU64` counters and its plain snapshot:
///
/// ```
/// pynq_mqtt_driver::counters! {
///     /// Counters of something.
///     pub struct Live => Snapshot {
///         /// Things done.
///         done { json: Some("done"), log: Some("done") },
///         /// Things only counted.
///         quiet { json: None, log: None },
///     }
/// }
/// let live = Live::default();
/// live.done.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
/// let s = Snapshot::from(&live);
/// assert_eq!(s.done, 2);
/// assert_eq!(s.values().map(|(c, v)| (c.name, v)).collect::<Vec<_>>(), [("done", 2), ("quiet", 0)]);
/// ```
#[macro_export]
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct $live:ident => $snap:ident {
            $(
                $(#[doc = $doc:literal])*
                $name:ident { json: $json:expr, log: $log:expr }
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub struct $live {
            $( $(#[doc = $doc])* pub $name: ::std::sync::atomic::AtomicU64, )*
        }

        /// A plain copy of the counters, taken at one moment.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $snap {
            $( $(#[doc = $doc])* pub $name: u64, )*
        }

        impl $live {
            /// Reads every counter (each on its own: not one atomic picture).
            pub fn snapshot(&self) -> $snap {
                $snap::from(self)
            }
        }

        impl ::std::convert::From<&$live> for $snap {
            fn from(s: &$live) -> Self {
                Self {
                    $( $name: s.$name.load(::std::sync::atomic::Ordering::Relaxed), )*
                }
            }
        }

        impl $snap {
            /// The rows, in declaration order.
            pub const COUNTERS: &'static [$crate::Counter] = &[
                $( $crate::Counter { name: stringify!($name), json: $json, log: $log }, )*
            ];

            /// Each counter's row with its value, in declaration order.
            pub fn values(&self) -> impl Iterator<Item = (&'static $crate::Counter, u64)> {
                Self::COUNTERS.iter().zip([$( self.$name ),*])
            }
        }
    };
}
