//! TEST-ONLY guest that reads a host file; the host must refuse it at load.
use flowstudio_sdk::{export_node, Context, Node, NodeError};

struct FsEscape;

impl Node for FsEscape {
    type Input = serde_json::Value;
    type Output = String;

    fn run(_ctx: &Context, _input: serde_json::Value) -> Result<String, NodeError> {
        std::fs::read_to_string("/etc/passwd").map_err(|e| NodeError::Failed(e.to_string()))
    }
}

export_node!(FsEscape);
