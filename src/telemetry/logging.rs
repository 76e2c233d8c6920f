//! The process-wide log subscriber: human-readable lines, or one JSON object per line
//! (`ROOKERY_LOG_FORMAT=json`) for log collectors.

use std::io::IsTerminal;

use crate::config::LogFormat;

/// Installs the global subscriber writing to stderr, filtered by `filter` (an
/// `EnvFilter` directive that [`crate::config::Config`] validated). Does nothing if a
/// subscriber is already installed.
///
/// In JSON each event is one object with `timestamp`, `level`, `target`, the event's fields
/// flattened (`message`, `status`, …) and, inside a request, `span` carrying its
/// `request_id`.
pub fn init(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    if let Err(err) = installed {
        eprintln!("rookery: logging not set up: {err}");
    }
}
