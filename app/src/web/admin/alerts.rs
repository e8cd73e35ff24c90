//! Alerts: what fires now and since when, every rule with its threshold in effect and what to
//! check first, the history of episodes, and the signed-in admin's choice of alerts by email
//! (a plain form post, `server::routes::admin::alert_emails`).
#[cfg(feature = "ssr")]
use crate::web::access::{caller, AdminUser};
use crate::web::error::AppError;
use crate::web::ErrorView;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleLine {
    pub name: String,
    pub title: String,
    pub firing: bool,
    /// "firing since …", "resolved …", "has not fired".
    pub state: String,
    pub count: i64,
    pub detail: String,
    pub threshold: String,
    pub runbook: String,
    pub page: String,
    /// The owed notice that could not be sent, and why.
    pub notify_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeLine {
    pub title: String,
    pub started_at: String,
    pub resolved_at: Option<String>,
    pub peak: i64,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsOverview {
    pub rules: Vec<RuleLine>,
    pub history: Vec<EpisodeLine>,
    pub last_evaluated: Option<String>,
    /// Where notices go: "Slack" or a sentence saying none is configured.
    pub channels: String,
    /// The signed-in admin gets alerts by email.
    pub my_emails: bool,
}

#[cfg(feature = "ssr")]
fn rule_line(
    rule: crate::domain::alerts::Rule,
    row: Option<crate::store::alerts::StateRow>,
    thresholds: &crate::domain::alerts::Thresholds,
) -> RuleLine {
    use crate::web::fmt_time;
    let state = match &row {
        Some(r) if r.firing() => format!("firing since {}", r.firing_since.map(fmt_time).unwrap_or_default()),
        Some(r) if r.resolved_at.is_some() => format!("resolved {}", r.resolved_at.map(fmt_time).unwrap_or_default()),
        _ => "has not fired".to_string(),
    };
    RuleLine {
        name: rule.name().to_string(),
        title: rule.title().to_string(),
        firing: row.as_ref().is_some_and(|r| r.firing()),
        state,
        count: row.as_ref().map_or(0, |r| r.count),
        detail: row.as_ref().map(|r| r.detail.clone()).unwrap_or_default(),
        threshold: format!(
            "{}{} {}",
            thresholds.get(rule),
            if thresholds.get(rule) == rule.default_threshold() { "" } else { " (set)" },
            rule.threshold_unit()
        ),
        runbook: rule.runbook().to_string(),
        page: rule.page().to_string(),
        notify_error: row.and_then(|r| r.owed.is_some().then_some(r.notify_error).flatten()),
    }
}

#[server]
pub async fn alerts_view() -> Result<AlertsOverview, AppError> {
    let svc = crate::web::services()?;
    let AdminUser(me) = caller::<AdminUser>(&svc).await?;
    let load = |e| AppError::unavailable("Alerts could not be read", e);
    let overview = crate::services::alerts::overview(&svc).await.map_err(load)?;
    let last_evaluated = overview.iter().filter_map(|(_, r)| r.as_ref().map(|r| r.evaluated_at)).max();
    let thresholds = svc.settings.alerts.thresholds;
    let rules = overview.into_iter().map(|(rule, row)| rule_line(rule, row, &thresholds)).collect();
    let history = crate::store::alerts::history(&svc.db, 100)
        .await
        .map_err(load)?
        .into_iter()
        .map(|e| EpisodeLine {
            title: crate::domain::alerts::Rule::parse(&e.rule).map_or(e.rule.clone(), |r| r.title().to_string()),
            started_at: crate::web::fmt_time(e.started_at),
            resolved_at: e.resolved_at.map(crate::web::fmt_time),
            peak: e.peak,
            detail: e.detail,
        })
        .collect();
    let my_emails = crate::store::users::wants_alert_emails(&svc.db, me.id).await.map_err(load)?;
    let channels = if svc.settings.slack.webhook.is_some() {
        "Notices go to Slack (SLACK_WEBHOOK_URL), one when an alert starts and one when it resolves.".to_string()
    } else {
        "No Slack webhook is configured (SLACK_WEBHOOK_URL): alerts show here only.".to_string()
    };
    Ok(AlertsOverview { rules, history, last_evaluated: last_evaluated.map(crate::web::fmt_time), channels, my_emails })
}

#[component]
fn RulesTable(rules: Vec<RuleLine>) -> impl IntoView {
    view! {
        <div class="table-wrap"><table data-testid="alert-rules">
            <thead><tr><th>"Alert"</th><th>"State"</th><th>"Seen"</th><th>"Threshold"</th><th>"What to check first"</th></tr></thead>
            <tbody>{rules.into_iter().map(|r| { let (id, firing) = (r.name.clone(), r.firing); view! {
                <tr id=id class={if firing { "firing" } else { "" }}>
                    <td><strong>{r.title}</strong><br/><code>{r.name}</code></td>
                    <td class={if firing { "status failed" } else { "status" }}>{r.state}
                        {r.notify_error.map(|e| view! { <br/><span class="error">{format!("notice not sent yet: {e}")}</span> })}
                    </td>
                    <td>{r.detail}</td>
                    <td>{r.threshold}</td>
                    <td>{r.runbook}" "<a href=r.page>"Look"</a></td>
                </tr>
            }}).collect_view()}</tbody>
        </table></div>
    }
}

#[component]
fn HistoryTable(history: Vec<EpisodeLine>) -> impl IntoView {
    if history.is_empty() {
        return view! { <p class="muted">"No alert has fired yet."</p> }.into_any();
    }
    view! {
        <div class="table-wrap"><table data-testid="alert-history">
            <thead><tr><th>"Alert"</th><th>"Started"</th><th>"Resolved"</th><th>"At most"</th><th>"Last seen"</th></tr></thead>
            <tbody>{history.into_iter().map(|e| view! {
                <tr>
                    <td>{e.title}</td>
                    <td>{e.started_at}</td>
                    <td>{e.resolved_at.unwrap_or_else(|| "still firing".into())}</td>
                    <td>{e.peak}</td>
                    <td>{e.detail}</td>
                </tr>
            }).collect_view()}</tbody>
        </table></div>
    }
    .into_any()
}

#[component]
pub fn AlertsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| alerts_view());
    view! {
        <h1>"Alerts"</h1>
        <super::AdminNav/>
        <super::FlashMessage/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(v) => {
                    let firing = v.rules.iter().filter(|r| r.firing).count();
                    view! {
                        <p data-testid="alerts-summary" class={if firing > 0 { "banner warn" } else { "muted" }}>
                            {if firing == 0 { "Nothing is firing.".to_string() } else { format!("{firing} alert{} firing.", if firing == 1 { "" } else { "s" }) }}
                            {v.last_evaluated.map(|t| format!(" Last evaluated {t}."))}
                        </p>
                        <p class="muted">{v.channels}</p>
                        <form method="post" action="/admin/alerts/emails">
                            <input type="hidden" name="wanted" value={if v.my_emails { "false" } else { "true" }}/>
                            {if v.my_emails { "You get alerts by email. " } else { "You do not get alerts by email. " }}
                            <button type="submit" data-testid="alert-emails">{if v.my_emails { "Stop emailing me alerts" } else { "Email me alerts" }}</button>
                        </form>
                        <h2>"Rules"</h2>
                        <RulesTable rules=v.rules/>
                        <h2>"History"</h2>
                        <HistoryTable history=v.history/>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}
