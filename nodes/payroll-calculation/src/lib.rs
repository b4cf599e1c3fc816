//! The seed's payroll node: logs who it runs as, fetches the employees from
//! the payroll service (the host attaches the managed identity's token) and
//! returns the month's totals.
use flowstudio_sdk::http::Request;
use flowstudio_sdk::{export_node, Context, Node, NodeError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    payroll_month: String,
    employees_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Employee {
    id: String,
    monthly_salary_cents: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    payroll_month: String,
    employee_count: usize,
    total_cents: u64,
    calculated_by: String,
    employee_ids: Vec<String>,
}

struct Payroll;

impl Node for Payroll {
    type Input = Input;
    type Output = Output;

    fn run(ctx: &Context, input: Input) -> Result<Output, NodeError> {
        let actor = ctx.actor();
        flowstudio_sdk::log::info(&format!(
            "payroll for {} run by {} (service account: {})",
            input.payroll_month, actor.client_id, actor.is_service_account
        ));
        let response = Request::get(&input.employees_url).header("accept", "application/json").send()?;
        match response.status {
            200 => {}
            401 | 403 => return Err(NodeError::Denied(format!("payroll service answered {}", response.status))),
            s if s >= 500 => return Err(NodeError::Retryable(format!("payroll service answered {s}"))),
            s => return Err(NodeError::Failed(format!("payroll service answered {s}"))),
        }
        let employees: Vec<Employee> = response.json()?;
        Ok(Output {
            payroll_month: input.payroll_month,
            employee_count: employees.len(),
            total_cents: employees.iter().map(|e| e.monthly_salary_cents).sum(),
            calculated_by: actor.client_id,
            employee_ids: employees.into_iter().map(|e| e.id).collect(),
        })
    }
}

export_node!(Payroll);
