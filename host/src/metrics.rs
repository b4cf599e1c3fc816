//! Prometheus metrics (text exposition format 0.0.4), served at `/metrics`.
//!
//! The counters are fed from the audit stream: [`Metrics`] is an
//! [`AuditSink`], so whatever the host audits (firings, executions, node runs,
//! token mints and refreshes, egress calls) is counted without a second set of
//! hooks in the modules that do the work, and the two can never disagree.
//! Put it next to the real sink with [`FanOutAuditSink`](crate::audit::FanOutAuditSink).
//! Plain atomics: no allocation or lock on the recording path.

use crate::audit::{AuditEvent, AuditSink, EgressDecision, Outcome};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the node duration histogram's buckets; `+Inf` is implied.
pub const NODE_DURATION_BUCKETS: [f64; 14] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

const OUTCOMES: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Denied];
const EXECUTION_OUTCOMES: [&str; 3] = ["succeeded", "failed", "rejected"];
const EGRESS_DECISIONS: [&str; 3] = ["allowed", "denied", "failed"];

/// One counter per value of a small, fixed label set.
#[derive(Debug)]
struct Counters<const N: usize>([AtomicU64; N]);

impl<const N: usize> Default for Counters<N> {
    fn default() -> Self {
        Counters(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl<const N: usize> Counters<N> {
    fn add(&self, index: usize) {
        if let Some(c) = self.0.get(index) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn get(&self, index: usize) -> u64 {
        self.0.get(index).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket (not cumulative; summed when rendered), then the `+Inf` overflow.
    buckets: [AtomicU64; NODE_DURATION_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe_ms(&self, ms: u64) {
        let seconds = ms as f64 / 1000.0;
        let slot = NODE_DURATION_BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(NODE_DURATION_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(ms.saturating_mul(1000), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The host's metrics. Cheap to share (`Arc<Metrics>`); see the module doc.
#[derive(Debug, Default)]
pub struct Metrics {
    firings: Counters<3>,
    executions_started: AtomicU64,
    executions: Counters<3>,
    node_durations: [Histogram; 3],
    token_mints: Counters<3>,
    token_refreshes: Counters<3>,
    egress: Counters<3>,
    /// API responses by status class 1xx..5xx.
    api_responses: Counters<5>,
}

fn outcome_index(outcome: Outcome) -> usize {
    OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(1)
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Count one API response (by status class).
    pub fn api_response(&self, status: u16) {
        if (100..600).contains(&status) {
            self.api_responses.add(usize::from(status / 100) - 1);
        }
    }

    /// Executions that ended with `outcome` (`succeeded`, `failed`, `rejected`).
    pub fn executions(&self, outcome: &str) -> u64 {
        EXECUTION_OUTCOMES.iter().position(|o| *o == outcome).map_or(0, |i| self.executions.get(i))
    }

    /// Egress calls with `decision` (`allowed`, `denied`, `failed`).
    pub fn egress_calls(&self, decision: &str) -> u64 {
        EGRESS_DECISIONS.iter().position(|d| *d == decision).map_or(0, |i| self.egress.get(i))
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let outcomes = OUTCOMES.map(Outcome::as_str);
        family(&mut out, "flowstudio_firings_total", "Schedule firings, by outcome.", "counter", "outcome", &outcomes, &self.firings);
        let _ = writeln!(out, "# HELP flowstudio_executions_started_total Executions started (every attempt counts).");
        let _ = writeln!(out, "# TYPE flowstudio_executions_started_total counter");
        let _ = writeln!(out, "flowstudio_executions_started_total {}", self.executions_started.load(Ordering::Relaxed));
        family(&mut out, "flowstudio_executions_total", "Executions that ended, by outcome.", "counter", "outcome", &EXECUTION_OUTCOMES, &self.executions);
        self.render_node_durations(&mut out);
        family(&mut out, "flowstudio_token_mints_total", "Tokens minted for managed identities, by outcome.", "counter", "outcome", &outcomes, &self.token_mints);
        family(&mut out, "flowstudio_token_refreshes_total", "Tokens refreshed for managed identities, by outcome.", "counter", "outcome", &outcomes, &self.token_refreshes);
        family(&mut out, "flowstudio_egress_calls_total", "Outbound calls of nodes, by decision.", "counter", "decision", &EGRESS_DECISIONS, &self.egress);
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        family(&mut out, "flowstudio_api_responses_total", "Admin API responses, by status class.", "counter", "status", &classes, &self.api_responses);
        out
    }

    fn render_node_durations(&self, out: &mut String) {
        let name = "flowstudio_node_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Wall-clock time of node runs, by outcome.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (outcome, h) in OUTCOMES.iter().zip(&self.node_durations) {
            let outcome = outcome.as_str();
            let mut cumulative = 0;
            for (bound, bucket) in NODE_DURATION_BUCKETS.iter().zip(&h.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}_bucket{{outcome=\"{outcome}\",le=\"{bound}\"}} {cumulative}");
            }
            cumulative += h.buckets[NODE_DURATION_BUCKETS.len()].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{outcome=\"{outcome}\",le=\"+Inf\"}} {cumulative}");
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_sum{{outcome=\"{outcome}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{outcome=\"{outcome}\"}} {}", h.count.load(Ordering::Relaxed));
        }
    }
}

fn family<const N: usize>(out: &mut String, name: &str, help: &str, kind: &str, label: &str, values: &[&str; N], counters: &Counters<N>) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (i, value) in values.iter().enumerate() {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {}", counters.get(i));
    }
}

impl AuditSink for Metrics {
    fn record(&self, event: AuditEvent) {
        match &event {
            AuditEvent::Fired(e) => self.firings.add(outcome_index(e.outcome)),
            AuditEvent::ExecutionStarted(_) => {
                self.executions_started.fetch_add(1, Ordering::Relaxed);
            }
            AuditEvent::ExecutionSucceeded(_) => self.executions.add(0),
            AuditEvent::ExecutionFailed(_) => self.executions.add(1),
            AuditEvent::ExecutionRejected(_) => self.executions.add(2),
            AuditEvent::NodeFinished(e) => {
                if let Some(ms) = e.duration_ms {
                    self.node_durations[outcome_index(e.outcome)].observe_ms(ms);
                }
            }
            AuditEvent::TokenMinted(e) => self.token_mints.add(outcome_index(e.outcome)),
            AuditEvent::TokenRefreshed(e) => self.token_refreshes.add(outcome_index(e.outcome)),
            AuditEvent::Egress(e) => self.egress.add(match e.decision {
                EgressDecision::Allowed => 0,
                EgressDecision::Denied(_) => 1,
                EgressDecision::Failed(_) => 2,
            }),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditActor, EgressEvent, NodeEvent};

    fn node_finished(outcome: Outcome, ms: u64) -> AuditEvent {
        AuditEvent::NodeFinished(NodeEvent {
            actor: AuditActor::managed_identity("mi-1"),
            execution_id: "e-1".into(),
            workflow_id: "wf".into(),
            node_id: "n".into(),
            attempt: 1,
            outcome,
            reason: None,
            duration_ms: Some(ms),
        })
    }

    fn egress(decision: EgressDecision) -> AuditEvent {
        AuditEvent::Egress(EgressEvent {
            execution_id: "e-1".into(),
            node_id: "n".into(),
            actor: AuditActor::managed_identity("mi-1"),
            method: "GET".into(),
            destination: "https://a.example:443".into(),
            status: None,
            response_bytes: 0,
            latency_ms: 1,
            decision,
            token_attached: false,
        })
    }

    #[test]
    fn audit_events_are_counted_and_rendered() {
        let m = Metrics::new();
        m.record(node_finished(Outcome::Success, 3));
        m.record(node_finished(Outcome::Success, 700));
        m.record(node_finished(Outcome::Failure, 120_000));
        m.record(egress(EgressDecision::Allowed));
        m.record(egress(EgressDecision::Denied("no grant".into())));
        m.record(egress(EgressDecision::Denied("loopback".into())));
        m.api_response(401);
        let text = m.render();
        assert!(text.contains("flowstudio_egress_calls_total{decision=\"allowed\"} 1\n"), "{text}");
        assert!(text.contains("flowstudio_egress_calls_total{decision=\"denied\"} 2\n"), "{text}");
        assert_eq!(m.egress_calls("denied"), 2);
        // Buckets are cumulative: 3 ms is under 5 ms, 700 ms under 1 s.
        assert!(text.contains("flowstudio_node_duration_seconds_bucket{outcome=\"success\",le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("flowstudio_node_duration_seconds_bucket{outcome=\"success\",le=\"1\"} 2\n"), "{text}");
        assert!(text.contains("flowstudio_node_duration_seconds_bucket{outcome=\"failure\",le=\"60\"} 0\n"), "{text}");
        assert!(text.contains("flowstudio_node_duration_seconds_bucket{outcome=\"failure\",le=\"+Inf\"} 1\n"), "{text}");
        assert!(text.contains("flowstudio_node_duration_seconds_sum{outcome=\"success\"} 0.703\n"), "{text}");
        assert!(text.contains("flowstudio_api_responses_total{status=\"4xx\"} 1\n"), "{text}");
        // Every sample line belongs to a family announced with HELP and TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let family = name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {family} ")), "no TYPE for {name}");
        }
    }
}
