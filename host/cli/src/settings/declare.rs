//! The macro that turns the table of settings (`mod.rs`) into clap arguments, config
//! keys, resolved values and the lines of `pynq-mqtt config`.

/// A setting with a default resolves to its type; one without, to an `Option`.
macro_rules! value_type {
    ($t:ty) => { Option<$t> };
    ($t:ty, $default:expr) => { $t };
}

/// The value found for a setting, else its default (or None).
macro_rules! settle {
    ($found:ident) => {
        match $found {
            Some((v, source)) => (Some(v), source),
            None => (None, Source::Default),
        }
    };
    ($found:ident, $default:expr) => {
        match $found {
            Some((v, source)) => (v, source),
            None => ($default, Source::Default),
        }
    };
}

/// The value as `config` prints it; None when not set.
macro_rules! shown {
    ($v:ident) => {
        $v.as_ref().map(Setting::show)
    };
    ($v:ident, $default:expr) => {
        Some($v.show())
    };
}

/// Each row `name: Type [= default], "ENV";` is the flag `--name`, the variable ENV,
/// the file key `name` and the field `Values::name`. A default may use the settings
/// above it. Each group is a clap struct of its own, for the subcommands that take it.
macro_rules! declare {
    ($(
        $(#[$group_attr:meta])* $group:ident {
            $($(#[$attr:meta])* $name:ident: $ty:ty $(= $default:expr)?, $env:literal;)*
        }
    )*) => {
        $(
            $(#[$group_attr])*
            #[derive(clap::Args, Clone, Debug, Default)]
            pub struct $group {
                $(
                    $(#[$attr])*
                    #[arg(long, env = $env, value_parser = parser::<$ty>())]
                    pub $name: Option<$ty>,
                )*
            }
        )*

        /// Every setting, resolved.
        #[derive(Clone, Debug)]
        pub struct Values {
            $($(pub $name: value_type!($ty $(, $default)?),)*)*
        }

        /// Every key a config file may hold, but `[[rule]]`.
        pub const KEYS: &[&str] = &[$($(stringify!($name),)*)*];

        /// Each setting from the command line or environment, else the file, else its
        /// default; and the lines of `config`.
        fn resolve_values(m: &ArgMatches, file: Option<&File>) -> Result<(Values, Vec<Shown>)> {
            let mut shown = Vec::new();
            $($(
                let found = pick::<$ty>(m, stringify!($name), $env, file)?;
                let ($name, source) = settle!(found $(, $default)?);
                let value = shown!($name $(, $default)?);
                shown.push(Shown { key: stringify!($name), value, source });
            )*)*
            Ok((Values { $($($name,)*)* }, shown))
        }
    };
}
