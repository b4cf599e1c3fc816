//! TEST-ONLY guest: answers `{"nodeId", "attempt", "scheduledTime", "input"}` with the
//! input exactly as the host built it, so workflow tests can check what a node sees.
//! Input `{"fail": "retryable"|"failed"|"denied"}` makes it fail that way instead.
use flowstudio_sdk::{export_node, Context, Node, NodeError};

struct Echo;

impl Node for Echo {
    type Input = serde_json::Value;
    type Output = serde_json::Value;

    fn run(ctx: &Context, input: serde_json::Value) -> Result<serde_json::Value, NodeError> {
        match input.get("fail").and_then(|f| f.as_str()) {
            Some("retryable") => return Err(NodeError::Retryable("asked to fail (retryable)".into())),
            Some("failed") => return Err(NodeError::Failed("asked to fail".into())),
            Some("denied") => return Err(NodeError::Denied("asked to be denied".into())),
            _ => {}
        }
        Ok(serde_json::json!({
            "nodeId": ctx.node_id,
            "attempt": ctx.attempt,
            "scheduledTime": ctx.scheduled_time,
            "triggeredBy": ctx.triggered_by,
            "input": input,
        }))
    }
}

export_node!(Echo);
