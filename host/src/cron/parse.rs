//! Parsing of 5-field POSIX cron expressions and `@` macros.

use super::fields::{FieldKind, FieldSets};
use super::{CronError, CronExpr};

/// Expansion of the supported `@` macros.
fn expand_macro(word: &str) -> Option<&'static str> {
    match word.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => Some("0 0 1 1 *"),
        "@monthly" => Some("0 0 1 * *"),
        "@weekly" => Some("0 0 * * 0"),
        "@daily" | "@midnight" => Some("0 0 * * *"),
        "@hourly" => Some("0 * * * *"),
        _ => None,
    }
}

/// Parse a whole expression.
pub(crate) fn parse_expr(src: &str) -> Result<CronExpr, CronError> {
    let source = src.trim();
    if source.is_empty() {
        return Err(CronError::Empty);
    }
    let expanded = if source.starts_with('@') {
        if source.split_whitespace().count() != 1 {
            return Err(CronError::UnknownMacro(source.to_string()));
        }
        expand_macro(source).ok_or_else(|| CronError::UnknownMacro(source.to_string()))?
    } else {
        source
    };
    let texts: Vec<&str> = expanded.split_whitespace().collect();
    match texts.len() {
        5 => {}
        6 | 7 => return Err(CronError::SecondsField { count: texts.len() }),
        n => return Err(CronError::FieldCount { count: n }),
    }
    let mut parsed = Vec::with_capacity(5);
    for (kind, text) in FieldKind::ALL.iter().zip(texts.iter()) {
        parsed.push(parse_field(*kind, text)?);
    }
    let [minute, hour, dom, month, dow] = match <[Parsed; 5]>::try_from(parsed) {
        Ok(a) => a,
        Err(_) => return Err(CronError::FieldCount { count: texts.len() }),
    };
    let sets = FieldSets {
        minutes: minute.bits,
        hours: hour.bits,
        days_of_month: dom.bits,
        last_day_of_month: dom.last,
        months: month.bits,
        days_of_week: fold_sunday(dow.bits),
        dom_restricted: !dom.unrestricted,
        dow_restricted: !dow.unrestricted,
    };
    if let Some(reason) = sets.never_fires_reason() {
        return Err(CronError::NeverFires {
            expr: source.to_string(),
            reason,
        });
    }
    let fixed = texts
        .iter()
        .take(2)
        .all(|t| !t.contains(['*', '/', '-']));
    Ok(CronExpr {
        source: source.to_string(),
        sets,
        fixed,
    })
}

/// Day-of-week 7 is Sunday, like 0.
fn fold_sunday(bits: u64) -> u64 {
    let sunday = (bits >> 7) & 1;
    (bits | sunday) & 0x7f
}

/// One parsed field.
struct Parsed {
    bits: u64,
    last: bool,
    /// The field is exactly `*` (or `?` in the day fields).
    unrestricted: bool,
}

fn all_bits(kind: FieldKind) -> u64 {
    (kind.min()..=kind.max()).fold(0u64, |acc, v| acc | (1u64 << v))
}

fn parse_field(kind: FieldKind, text: &str) -> Result<Parsed, CronError> {
    let day_field = matches!(kind, FieldKind::DayOfMonth | FieldKind::DayOfWeek);
    if text == "*" || (text == "?" && day_field) {
        return Ok(Parsed {
            bits: all_bits(kind),
            last: false,
            unrestricted: true,
        });
    }
    let mut bits = 0u64;
    let mut last = false;
    for item in text.split(',') {
        let ctx = Ctx { kind, text, item };
        if item.is_empty() {
            return Err(ctx.err("empty list item (stray comma)".to_string()));
        }
        if item.contains('?') {
            return Err(ctx.err(format!(
                "`{item}`: `?` is only allowed alone in the day-of-month and day-of-week fields"
            )));
        }
        if item.eq_ignore_ascii_case("l") {
            if kind != FieldKind::DayOfMonth {
                return Err(ctx.err(
                    "`L` (last day of the month) is only supported in the day-of-month field"
                        .to_string(),
                ));
            }
            last = true;
            continue;
        }
        bits |= parse_item(&ctx)?;
    }
    Ok(Parsed {
        bits,
        last,
        unrestricted: false,
    })
}

/// Context of an item, for error messages.
struct Ctx<'a> {
    kind: FieldKind,
    text: &'a str,
    item: &'a str,
}

impl Ctx<'_> {
    fn err(&self, problem: String) -> CronError {
        CronError::Field {
            field: self.kind.name(),
            text: self.text.to_string(),
            problem,
        }
    }
}

fn parse_item(ctx: &Ctx<'_>) -> Result<u64, CronError> {
    let kind = ctx.kind;
    let item = ctx.item;
    let (base, step) = match item.split_once('/') {
        Some((b, s)) => (b, Some(parse_step(ctx, s)?)),
        None => (item, None),
    };
    let (lo, hi) = if base == "*" {
        (kind.min(), kind.max())
    } else if let Some((a, b)) = base.split_once('-') {
        let lo = parse_value(ctx, a)?;
        let hi = parse_value(ctx, b)?;
        if lo > hi {
            return Err(ctx.err(format!("range start {lo} is after end {hi}")));
        }
        (lo, hi)
    } else {
        let v = parse_value(ctx, base)?;
        // `N/step` means `N-max/step`.
        if step.is_some() {
            (v, kind.max())
        } else {
            (v, v)
        }
    };
    let step = step.unwrap_or(1) as usize;
    Ok((lo..=hi)
        .step_by(step)
        .fold(0u64, |acc, v| acc | (1u64 << v)))
}

fn parse_step(ctx: &Ctx<'_>, s: &str) -> Result<u32, CronError> {
    let kind = ctx.kind;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ctx.err(format!("step `{s}` in `{}` is not a positive number", ctx.item)));
    }
    let span = kind.max() - kind.min() + 1;
    let step = s.parse::<u32>().unwrap_or(u32::MAX);
    if step == 0 {
        return Err(ctx.err(format!("step 0 in `{}` must be at least 1", ctx.item)));
    }
    if step > span {
        return Err(CronError::StepTooLarge {
            field: kind.name(),
            text: ctx.text.to_string(),
            step: s.to_string(),
            min: kind.min(),
            max: kind.max(),
        });
    }
    Ok(step)
}

fn parse_value(ctx: &Ctx<'_>, s: &str) -> Result<u32, CronError> {
    let kind = ctx.kind;
    if s.is_empty() {
        return Err(ctx.err(format!("`{}` is missing a value", ctx.item)));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let v = s.parse::<u32>().unwrap_or(u32::MAX);
        if v < kind.min() || v > kind.max() {
            let shown = if v == u32::MAX { s.to_string() } else { v.to_string() };
            return Err(ctx.err(format!(
                "value {shown} is out of range {}-{}",
                kind.min(),
                kind.max()
            )));
        }
        return Ok(v);
    }
    if let Some((names, offset)) = kind.names() {
        let lower = s.to_ascii_lowercase();
        if let Some(idx) = names.iter().position(|n| *n == lower) {
            return Ok(idx as u32 + offset);
        }
        return Err(ctx.err(format!(
            "`{s}` is not a number {}-{} or a name ({})",
            kind.min(),
            kind.max(),
            names.join(", ")
        )));
    }
    Err(ctx.err(format!(
        "`{s}` is not a number {}-{}",
        kind.min(),
        kind.max()
    )))
}
