use super::*;
use serde_json::json;

fn seed() -> serde_json::Value {
    json!({ "workflowId": "wf-monthly-payroll", "name": "Monthly Payroll Run",
            "cronExpression": "0 6 25 * *", "timezone": "UTC", "managedIdentityId": "mi-guid-1234",
            "secretReference": { "provider": "azure-key-vault",
                                 "vaultUri": "https://company-vault.vault.azure.net/",
                                 "secretName": "payroll-scheduler-client-secret" },
            "inputData": { "payrollMonth": "{{schedule.triggerMonth}}" },
            "retryPolicy": { "maxAttempts": 3, "backoffSeconds": 60 } })
}

fn errors(v: serde_json::Value) -> Vec<(String, String)> {
    ScheduleSpec::from_json(&v).expect_err("invalid").into_iter().map(|e| (e.field, e.message)).collect()
}

#[test]
fn the_seed_is_accepted_verbatim_with_default_policies() {
    let spec = ScheduleSpec::from_json(&seed()).expect("seed is valid");
    assert_eq!(spec.retry_policy, RetryPolicy { max_attempts: 3, backoff_seconds: 60 });
    assert_eq!(spec.overlap, OverlapPolicy::Skip);
    assert_eq!(spec.catch_up.mode, CatchUpMode::LatestOnly);
    assert!(!spec.paused);
    // Round trip: what we serialize is what we accept.
    assert_eq!(ScheduleSpec::from_json(&spec.to_json()).expect("round trip"), spec);
}

#[test]
fn every_problem_is_reported_with_its_own_path() {
    let mut v = seed();
    v["cronExpression"] = json!("0 0 6 25 * *");
    v["timezone"] = json!("Mars/Olympus");
    v["inputData"] = json!({"payrollMonth": "{{schedule.triggerMonthh}}", "nested": [{"x": "{{ execution.attempt }}"}, "{{oops"]});
    v["secretReference"]["vaultUri"] = json!("ftp://vault");
    v["retryPolicy"] = json!({"maxAttempts": 11, "backoffSeconds": -1, "jitter": true});
    v["overlap"] = json!("queue");
    v["catchUp"] = json!({"mode": "some"});
    v["colour"] = json!("blue");
    v.as_object_mut().unwrap().remove("managedIdentityId");
    let errs = errors(v);
    let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
    for expected in [
        "colour", "managedIdentityId", "cronExpression", "timezone", "secretReference.vaultUri",
        "inputData.payrollMonth", "inputData.nested[1]", "retryPolicy.maxAttempts", "retryPolicy.backoffSeconds",
        "retryPolicy.jitter", "overlap", "catchUp.mode",
    ] {
        assert!(fields.contains(&expected), "no error for `{expected}` in {errs:?}");
    }
    assert!(!fields.contains(&"inputData.nested[0].x"), "a known variable with spaces is fine: {errs:?}");
    let msg = |f: &str| errs.iter().find(|(x, _)| x == f).map(|(_, m)| m.clone()).unwrap();
    assert!(msg("inputData.payrollMonth").starts_with("unknown template variable `schedule.triggerMonthh`"));
    assert!(msg("cronExpression").contains("no seconds field"), "{}", msg("cronExpression"));
    assert!(msg("timezone").contains("Mars/Olympus"));
    assert!(msg("retryPolicy.maxAttempts").contains("1 to 10"));
    assert!(msg("retryPolicy.backoffSeconds").contains("0 to 86400"));
    assert_eq!(msg("managedIdentityId"), "is required");
}

#[test]
fn required_fields_and_types() {
    let errs = errors(json!({}));
    let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["workflowId", "name", "managedIdentityId", "cronExpression", "timezone", "secretReference"]);
    let mut v = seed();
    v["name"] = json!(" ");
    v["paused"] = json!("yes");
    v["inputData"] = json!([1]);
    v["startAt"] = json!("2026-02-01T00:00:00Z");
    v["endAt"] = json!("2026-01-01T00:00:00Z");
    let fields: Vec<String> = errors(v).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["name", "inputData", "paused", "endAt"]);
    assert_eq!(errors(json!([1]))[0].1, "a schedule must be a JSON object");
}

#[test]
fn bounds_are_inclusive() {
    let mut v = seed();
    v["retryPolicy"] = json!({"maxAttempts": 10, "backoffSeconds": 86400});
    v["catchUp"] = json!({"mode": "none", "windowSeconds": 0});
    let spec = ScheduleSpec::from_json(&v).expect("valid at the bounds");
    assert_eq!(spec.retry_policy.max_attempts, 10);
    assert_eq!(spec.catch_up, CatchUp { mode: CatchUpMode::None, window_seconds: 0 });
    v["retryPolicy"] = json!({"maxAttempts": 0});
    assert_eq!(errors(v)[0].0, "retryPolicy.maxAttempts");
}

#[test]
fn templates_render_from_the_nominal_time_in_the_zone() {
    use chrono::TimeZone;
    // 2026-01-31T11:30Z is already 1 February 00:30 in Auckland (UTC+13 in summer).
    let vars = TemplateVars {
        schedule_id: "sch-1".into(),
        schedule_name: "Payroll".into(),
        zone: "Pacific/Auckland".parse().unwrap(),
        nominal_time: Utc.with_ymd_and_hms(2026, 1, 31, 11, 30, 0).unwrap(),
        execution_id: "exe-9".into(),
        attempt: 2,
    };
    let input = json!({
        "month": "{{schedule.triggerMonth}}", "date": "{{schedule.triggerDate}}",
        "time": "{{schedule.triggerTime}}", "year": "{{schedule.triggerYear}}", "day": "{{schedule.triggerDay}}",
        "who": "{{schedule.name}}/{{schedule.id}}@{{schedule.timezone}}",
        "run": ["{{execution.id}}", {"attempt": "{{execution.attempt}}"}],
        "keep": 7, "{{schedule.name}}": true,
    });
    let out = render(&input, &vars).expect("renders");
    assert_eq!(out, json!({
        "month": "2026-02", "date": "2026-02-01", "time": "2026-02-01T00:30:00+13:00", "year": "2026", "day": "01",
        "who": "Payroll/sch-1@Pacific/Auckland", "run": ["exe-9", {"attempt": "2"}], "keep": 7, "{{schedule.name}}": true,
    }));
}

#[test]
fn the_seed_fires_at_six_utc_on_the_25th() {
    use chrono::TimeZone;
    let spec = ScheduleSpec::from_json(&seed()).unwrap();
    let after = Utc.with_ymd_and_hms(2026, 3, 25, 6, 0, 0).unwrap();
    let next = spec.cron().unwrap().next_after(after).unwrap();
    assert_eq!(next, Utc.with_ymd_and_hms(2026, 4, 25, 6, 0, 0).unwrap());
    let next = spec.cron().unwrap().next_after(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()).unwrap();
    assert_eq!(next, Utc.with_ymd_and_hms(2026, 3, 25, 6, 0, 0).unwrap());
}
