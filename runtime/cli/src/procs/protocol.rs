//! What the supervisor (`quiver run`) and its workers (`quiver worker`) say to each other: one
//! JSON object per line. Commands go down the worker's stdin; reports come up its stdout,
//! each line prefixed with [`PREFIX`] so that whatever an operator prints there is passed
//! through, not mistaken for a report.

use quiver_runtime::{EndReason, NodeSummary, PartStatus};
use serde::{Deserialize, Serialize};

/// Marks a report line on a worker's stdout (ASCII record separator + tag).
pub const PREFIX: &str = "\u{1e}quiver:";

/// Supervisor -> worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Order {
    /// Every process is ready: start the timers.
    Start,
    /// Stop the timers; queues drain.
    StopTimers(EndReason),
    /// Close the queues, stop the operators, report and exit.
    Close,
}

/// Worker -> supervisor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Report {
    /// Instances created, receivers listening, every output's consumers listening. `segments`:
    /// the shared-memory files it maps (swept by the supervisor at the end).
    Ready { segments: Vec<String> },
    /// The part's state; now and then also `nodes` (the figures so far) and `segments` (the
    /// shared-memory files it maps: pools are added while running).
    Status {
        status: PartStatus,
        nodes: Option<Vec<NodeSummary>>,
        #[serde(default)]
        segments: Option<Vec<String>>,
    },
    /// The run is over here: the final figures.
    Done {
        nodes: Vec<NodeSummary>,
        segments: Vec<String>,
    },
    /// The part could not start or run.
    Failed { message: String },
}

pub fn encode<T: Serialize>(msg: &T) -> String {
    // Serialising these plain data types cannot fail.
    serde_json::to_string(msg).unwrap_or_else(|e| format!("\"unencodable: {e}\""))
}

/// A report line (with its prefix), or None for anything else.
pub fn parse_report(line: &str) -> Option<Result<Report, String>> {
    let body = line.strip_prefix(PREFIX)?;
    Some(serde_json::from_str(body).map_err(|e| format!("bad report `{body}`: {e}")))
}

pub fn parse_order(line: &str) -> Result<Order, String> {
    serde_json::from_str(line).map_err(|e| format!("bad order `{line}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_other_lines_pass() {
        let r = Report::Status {
            status: PartStatus {
                idle: true,
                finished: false,
                ..Default::default()
            },
            nodes: None,
            segments: None,
        };
        let line = format!("{PREFIX}{}", encode(&r));
        assert_eq!(parse_report(&line), Some(Ok(r)));
        assert_eq!(parse_report("hello from an operator"), None);
        assert!(matches!(parse_report(&format!("{PREFIX}{{nope")), Some(Err(_))));
        assert_eq!(
            parse_order(&encode(&Order::StopTimers(EndReason::Duration))),
            Ok(Order::StopTimers(EndReason::Duration))
        );
    }
}
