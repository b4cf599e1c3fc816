//! Workflows: a DAG of nodes, each a digest-pinned component with its config
//! and its egress grants; validation, the content-addressed component store,
//! and the executor that runs the nodes in dependency order.
//!
//! Workflow JSON (camelCase):
//! ```json
//! { "id": "wf-monthly-payroll", "name": "Monthly payroll",
//!   "nodes": [
//!     { "id": "calculate", "component": "sha256:…",
//!       "config": { "employeesUrl": "https://payroll.example.com/employees" },
//!       "grants": ["https://payroll.example.com=managed-identity"] },
//!     { "id": "report", "component": "sha256:…", "dependsOn": ["calculate"] } ],
//!   "edges": [ { "from": "calculate", "to": "report" } ] }
//! ```
//! Dependencies come from each node's `dependsOn` and from `edges` (both may be
//! used; they are merged). Grants use the CLI form
//! `URL[=managed-identity[:AUDIENCE]|none]` (no suffix = `none`).

mod components;
mod executor;

pub use components::{ComponentError, ComponentStore};
pub use executor::{node_input, ExecuteRequest, NodeObserver, NodeReport, WorkflowError, WorkflowExecutor, WorkflowRun};

use crate::egress::Grant;
use crate::guard::ResourcePolicy;
use crate::runtime::NodeLimits;
use crate::validation::FieldError;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowNode {
    pub id: String,
    /// `sha256:<64 hex>` of the component's bytes.
    pub component: String,
    pub config: Value,
    /// Grant specs as written; parsed by [`WorkflowNode::grants`].
    pub grants: Vec<String>,
    pub depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<NodeLimits>,
}

impl WorkflowNode {
    pub fn grants(&self) -> Vec<Grant> {
        // Validated at parse time; an unparsable spec can only be dropped (deny by default).
        self.grants.iter().filter_map(|g| Grant::parse_spec(g).ok()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// In dependency order (a node comes after everything it depends on); ties keep
    /// the order they were written in. `dependsOn` holds every dependency, edges merged in.
    pub nodes: Vec<WorkflowNode>,
    /// Who may run it, beyond the `workflow.execute` permission (DESIGN §8).
    #[serde(skip_serializing_if = "ResourcePolicy::is_empty")]
    pub access_policy: ResourcePolicy,
}

const WORKFLOW_FIELDS: &[&str] = &["id", "name", "nodes", "edges", "accessPolicy"];
const NODE_FIELDS: &[&str] = &["id", "component", "config", "grants", "dependsOn", "limits"];

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn valid_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
}

impl Workflow {
    /// Parse and validate a workflow definition, reporting every problem with its path.
    pub fn from_json(value: &Value) -> Result<Workflow, Vec<FieldError>> {
        let Some(obj) = value.as_object() else {
            return Err(vec![FieldError::new("", "a workflow must be a JSON object")]);
        };
        let mut errors = Vec::new();
        unknown(obj, WORKFLOW_FIELDS, "", &mut errors);
        let id = match obj.get("id").and_then(Value::as_str) {
            Some(id) if valid_id(id) => id.to_string(),
            Some(_) => {
                errors.push(FieldError::new("id", "must be 1-128 letters, digits, `-`, `_` or `.`"));
                String::new()
            }
            None => {
                errors.push(FieldError::new("id", "is required"));
                String::new()
            }
        };
        let name = match obj.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(FieldError::new("name", "must be a string"));
                None
            }
        };
        let mut nodes = Vec::new();
        match obj.get("nodes") {
            Some(Value::Array(items)) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(node) = parse_node(item, &format!("nodes[{i}]"), &mut errors) {
                        nodes.push(node);
                    }
                }
            }
            Some(Value::Array(_)) => errors.push(FieldError::new("nodes", "must hold at least one node")),
            Some(_) => errors.push(FieldError::new("nodes", "must be an array of nodes")),
            None => errors.push(FieldError::new("nodes", "is required")),
        }
        let mut seen = HashMap::new();
        for (i, node) in nodes.iter().enumerate() {
            if let Some(first) = seen.insert(node.id.clone(), i) {
                errors.push(FieldError::new(format!("nodes[{i}].id"), format!("`{}` is already the id of nodes[{first}]", node.id)));
            }
        }
        let known: BTreeSet<String> = nodes.iter().map(|n| n.id.clone()).collect();
        for (i, node) in nodes.iter().enumerate() {
            for (j, dep) in node.depends_on.iter().enumerate() {
                if !known.contains(dep) {
                    errors.push(FieldError::new(format!("nodes[{i}].dependsOn[{j}]"), format!("no node has the id `{dep}`")));
                } else if dep == &node.id {
                    errors.push(FieldError::new(format!("nodes[{i}].dependsOn[{j}]"), "a node cannot depend on itself"));
                }
            }
        }
        parse_edges(obj.get("edges"), &known, &mut nodes, &mut errors);
        let access_policy = match obj.get("accessPolicy") {
            None | Some(Value::Null) => ResourcePolicy::default(),
            Some(policy) => ResourcePolicy::from_json(policy).unwrap_or_else(|problems| {
                errors.extend(problems.into_iter().map(|e| e.nested("accessPolicy")));
                ResourcePolicy::default()
            }),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let nodes = topological(nodes).map_err(|cycle| vec![FieldError::new("nodes", format!("dependency cycle: {}", cycle.join(" → ")))])?;
        Ok(Workflow { id, name, nodes, access_policy })
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn node(&self, id: &str) -> Option<&WorkflowNode> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

fn unknown(obj: &Map<String, Value>, known: &[&str], path: &str, errors: &mut Vec<FieldError>) {
    for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
        let field = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        errors.push(FieldError::new(field, format!("unknown field; known fields: {}", known.join(", "))));
    }
}

fn string_list(value: Option<&Value>, path: &str, errors: &mut Vec<FieldError>) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v.as_str() {
                Some(s) => Some(s.to_string()),
                None => {
                    errors.push(FieldError::new(format!("{path}[{i}]"), "must be a string"));
                    None
                }
            })
            .collect(),
        Some(_) => {
            errors.push(FieldError::new(path, "must be an array of strings"));
            Vec::new()
        }
    }
}

fn parse_node(value: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<WorkflowNode> {
    let Some(obj) = value.as_object() else {
        errors.push(FieldError::new(path, "a node must be an object"));
        return None;
    };
    unknown(obj, NODE_FIELDS, path, errors);
    let id = obj.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    if !valid_id(&id) {
        errors.push(FieldError::new(format!("{path}.id"), "is required: 1-128 letters, digits, `-`, `_` or `.`"));
    }
    let component = obj.get("component").and_then(Value::as_str).unwrap_or_default().to_string();
    if !valid_digest(&component) {
        errors.push(FieldError::new(format!("{path}.component"), "must be a component digest `sha256:<64 lowercase hex>`"));
    }
    let config = match obj.get("config") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            errors.push(FieldError::new(format!("{path}.config"), "must be a JSON object"));
            Value::Null
        }
    };
    let grants = string_list(obj.get("grants"), &format!("{path}.grants"), errors);
    for (i, spec) in grants.iter().enumerate() {
        if let Err(e) = Grant::parse_spec(spec) {
            errors.push(FieldError::new(format!("{path}.grants[{i}]"), e.to_string()));
        }
    }
    let depends_on = string_list(obj.get("dependsOn"), &format!("{path}.dependsOn"), errors);
    let limits = match obj.get("limits") {
        None | Some(Value::Null) => None,
        Some(v) => match serde_json::from_value::<NodeLimits>(v.clone()) {
            Ok(l) => Some(l),
            Err(e) => {
                errors.push(FieldError::new(format!("{path}.limits"), e.to_string()));
                None
            }
        },
    };
    // Kept even when invalid, so references to it are not reported as unknown too.
    Some(WorkflowNode { id, component, config, grants, depends_on, limits })
}

fn parse_edges(value: Option<&Value>, known: &BTreeSet<String>, nodes: &mut [WorkflowNode], errors: &mut Vec<FieldError>) {
    let items = match value {
        None | Some(Value::Null) => return,
        Some(Value::Array(items)) => items,
        Some(_) => return errors.push(FieldError::new("edges", "must be an array of {from, to}")),
    };
    for (i, edge) in items.iter().enumerate() {
        let path = format!("edges[{i}]");
        let Some(obj) = edge.as_object() else {
            errors.push(FieldError::new(path, "an edge must be an object {from, to}"));
            continue;
        };
        unknown(obj, &["from", "to"], &path, errors);
        let mut end = |key: &str| match obj.get(key).and_then(Value::as_str) {
            Some(id) if known.contains(id) => Some(id.to_string()),
            Some(id) => {
                errors.push(FieldError::new(format!("{path}.{key}"), format!("no node has the id `{id}`")));
                None
            }
            None => {
                errors.push(FieldError::new(format!("{path}.{key}"), "is required"));
                None
            }
        };
        let (from, to) = (end("from"), end("to"));
        if let (Some(from), Some(to)) = (from, to) {
            if from == to {
                errors.push(FieldError::new(path, "an edge cannot join a node to itself"));
            } else if let Some(node) = nodes.iter_mut().find(|n| n.id == to) {
                if !node.depends_on.contains(&from) {
                    node.depends_on.push(from);
                }
            }
        }
    }
}

/// Order nodes so each follows its dependencies (Kahn; ties in written order).
/// On a cycle, returns one cycle's node ids, first id repeated at the end.
fn topological(nodes: Vec<WorkflowNode>) -> Result<Vec<WorkflowNode>, Vec<String>> {
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut remaining = nodes;
    let mut ordered = Vec::with_capacity(remaining.len());
    while !remaining.is_empty() {
        let Some(i) = remaining.iter().position(|n| n.depends_on.iter().all(|d| placed.contains(d))) else {
            return Err(find_cycle(&remaining));
        };
        let node = remaining.remove(i);
        placed.insert(node.id.clone());
        ordered.push(node);
    }
    Ok(ordered)
}

fn find_cycle(stuck: &[WorkflowNode]) -> Vec<String> {
    // Every stuck node waits on another stuck node, so walking dependencies must revisit one.
    let by_id: HashMap<&str, &WorkflowNode> = stuck.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut path: Vec<String> = Vec::new();
    let mut current = stuck.first().map(|n| n.id.as_str());
    while let Some(id) = current {
        if let Some(start) = path.iter().position(|p| p == id) {
            let mut cycle = path[start..].to_vec();
            cycle.reverse();
            cycle.push(cycle[0].clone());
            return cycle;
        }
        path.push(id.to_string());
        current = by_id.get(id).and_then(|n| n.depends_on.iter().find(|d| by_id.contains_key(d.as_str()))).map(String::as_str);
    }
    path
}

#[cfg(test)]
mod tests;
