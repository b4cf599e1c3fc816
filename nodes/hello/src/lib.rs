//! Greets the identity the run acts as, and echoes the whole context so a
//! host test can check that every IDInfo field arrives.
use flowstudio_sdk::{export_node, Context, Node, NodeError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    greeting: Option<String>,
}

#[derive(Serialize)]
struct Output {
    message: String,
    context: serde_json::Value,
}

struct Hello;

impl Node for Hello {
    type Input = Input;
    type Output = Output;

    fn run(ctx: &Context, input: Input) -> Result<Output, NodeError> {
        let actor = ctx.actor();
        let greeting = input.greeting.unwrap_or_else(|| "hello".into());
        flowstudio_sdk::log::info(&format!("greeting {}", actor.display_name));
        Ok(Output {
            message: format!("{greeting}, {}", actor.display_name),
            context: serde_json::json!({
                "executionId": ctx.execution_id, "workflowId": ctx.workflow_id, "nodeId": ctx.node_id,
                "attempt": ctx.attempt, "triggeredBy": ctx.triggered_by, "scheduledTime": ctx.scheduled_time,
                "tenantId": ctx.tenant_id,
                "actor": {
                    "userId": actor.user_id, "tenantId": actor.tenant_id, "clientId": actor.client_id,
                    "displayName": actor.display_name, "roles": actor.roles, "scopes": actor.scopes,
                    "isServiceAccount": actor.is_service_account, "managedIdentityId": actor.managed_identity_id,
                    "tokenExpiresAt": actor.token_expires_at,
                },
            }),
        })
    }
}

export_node!(Hello);
