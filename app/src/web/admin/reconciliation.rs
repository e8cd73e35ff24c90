//! Reconciliation: the runs and their findings. Each run compares Stripe with our books; the
//! "Reconcile now" form and the findings' CSV are plain routes (`server::admin_actions`).
#[cfg(feature = "ssr")]
use crate::web::access::{caller, AdminUser};
use crate::web::error::AppError;
use crate::web::ErrorView;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLine {
    pub id: i64,
    pub started_by: String,
    pub window: String,
    pub dry_run: bool,
    pub status: String,
    pub api_calls: i64,
    pub payments_checked: i64,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// (category, state, count)
    pub counts: Vec<(String, String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingLine {
    pub category: String,
    pub state: String,
    pub payment_id: Option<String>,
    pub object_id: Option<String>,
    pub contract_id: Option<i64>,
    pub detail: String,
    pub evidence: String,
}

#[cfg(feature = "ssr")]
async fn run_line(svc: &crate::services::Services, r: crate::store::reconciliation::Run) -> Result<RunLine, AppError> {
    let counts = crate::store::reconciliation::counts(&svc.db, r.id)
        .await
        .map_err(|e| AppError::unavailable("Reconciliation could not be read", e))?;
    Ok(RunLine {
        id: r.id,
        started_by: r.started_by,
        window: format!("{} → {}", crate::web::fmt_time(r.window_from), crate::web::fmt_time(r.window_to)),
        dry_run: r.dry_run,
        status: r.status,
        api_calls: r.api_calls,
        payments_checked: r.payments_checked,
        error: r.error,
        started_at: crate::web::fmt_time(r.started_at),
        finished_at: r.finished_at.map(crate::web::fmt_time),
        counts,
    })
}

#[server]
pub async fn reconciliation_runs() -> Result<Vec<RunLine>, AppError> {
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    let runs = crate::store::reconciliation::runs(&svc.db, 50)
        .await
        .map_err(|e| AppError::unavailable("Reconciliation could not be read", e))?;
    let mut out = Vec::with_capacity(runs.len());
    for r in runs {
        out.push(run_line(&svc, r).await?);
    }
    Ok(out)
}

#[server]
pub async fn reconciliation_run(run_id: i64) -> Result<(RunLine, Vec<FindingLine>), AppError> {
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    let load = |e| AppError::unavailable("Reconciliation could not be read", e);
    let run = crate::store::reconciliation::run(&svc.db, run_id)
        .await
        .map_err(load)?
        .ok_or_else(|| AppError::NotFound.with_status())?;
    let findings = crate::store::reconciliation::findings(&svc.db, run_id).await.map_err(load)?;
    Ok((
        run_line(&svc, run).await?,
        findings
            .into_iter()
            .map(|f| FindingLine {
                category: f.category.replace('_', " "),
                state: f.state.replace('_', " "),
                payment_id: f.payment_id,
                object_id: f.object_id,
                contract_id: f.contract_id,
                detail: f.detail,
                evidence: f.evidence,
            })
            .collect(),
    ))
}

fn summary(counts: &[(String, String, i64)]) -> String {
    if counts.is_empty() {
        return "nothing found".into();
    }
    counts
        .iter()
        .map(|(c, s, n)| format!("{n} {} {}", c.replace('_', " "), s.replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[component]
pub fn ReconciliationPage() -> impl IntoView {
    let runs = Resource::new(|| (), |_| reconciliation_runs());
    view! {
        <h1>"Reconciliation"</h1>
        <super::AdminNav/>
        <super::FlashMessage/>
        <p class="muted">"Each run compares Stripe's payments, refunds, disputes and undelivered events with our books, heals what is safe to heal (with the same functions the webhook uses) and leaves the rest open for you."</p>
        <form method="post" action="/admin/reconciliation/run"><button type="submit">"Reconcile now"</button></form>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || runs.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(list) if list.is_empty() => view! { <p class="muted">"No reconciliation has run yet."</p> }.into_any(),
                Ok(list) => view! {
                    <div class="table-wrap"><table data-testid="runs">
                        <thead><tr><th>"Run"</th><th>"Started"</th><th>"Window"</th><th>"Status"</th><th>"Stripe calls"</th><th>"Payments"</th><th>"Findings"</th></tr></thead>
                        <tbody>{list.into_iter().map(|r| view! {
                            <tr>
                                <td><a href=format!("/admin/reconciliation/{}", r.id)>{format!("#{}", r.id)}</a></td>
                                <td>{r.started_at}" by "{r.started_by}</td>
                                <td>{r.window}{r.dry_run.then_some(" (dry run)")}</td>
                                <td class=format!("status {}", r.status)>{r.status.clone()}{r.error.map(|e| format!(": {e}"))}</td>
                                <td>{r.api_calls}</td>
                                <td>{r.payments_checked}</td>
                                <td>{summary(&r.counts)}</td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table></div>
                }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
pub fn ReconciliationRunPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or_default();
    let data = Resource::new(id, reconciliation_run);
    view! {
        <super::AdminNav/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok((run, findings)) => view! {
                    <h1>{format!("Reconciliation #{}", run.id)}</h1>
                    <p>{run.window.clone()}{run.dry_run.then_some(" · dry run: nothing was healed")}</p>
                    <p class="muted">{format!("{} · {} Stripe API calls · {} payments checked · {}", run.status, run.api_calls, run.payments_checked, summary(&run.counts))}</p>
                    <p><a href=format!("/admin/reconciliation/{}/findings.csv", run.id) download>"Download the findings (CSV)"</a></p>
                    {if findings.is_empty() { view! { <p class="muted">"Nothing found: Stripe and our books agree."</p> }.into_any() } else { view! {
                        <div class="table-wrap"><table data-testid="findings">
                            <thead><tr><th>"Category"</th><th>"State"</th><th>"Payment"</th><th>"Contract"</th><th>"What"</th><th>"Evidence"</th></tr></thead>
                            <tbody>{findings.into_iter().map(|f| view! {
                                <tr>
                                    <td>{f.category}</td>
                                    <td class=format!("status {}", f.state)>{f.state.clone()}</td>
                                    <td><code>{f.payment_id.unwrap_or_default()}</code>{f.object_id.map(|o| view! { " " <code>{o}</code> })}</td>
                                    <td>{f.contract_id.map(|c| view! { <a href=format!("/admin/contracts/{c}")>{format!("#{c}")}</a> })}</td>
                                    <td>{f.detail}</td>
                                    <td><details><summary>"show"</summary><pre class="payload">{f.evidence}</pre></details></td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table></div>
                    }.into_any() }}
                }.into_any(),
            })}
        </Suspense>
    }
}
