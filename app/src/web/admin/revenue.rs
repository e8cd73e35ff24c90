//! The admin's Revenue page: a chart of net revenue drawn on the server as SVG (readable
//! without JavaScript, each bar labelled), the table it is drawn from, a CSV download, and a line
//! saying whether the last reconciliation vouched for the period.
use crate::domain::revenue::{Report, Source};
#[cfg(feature = "ssr")]
use crate::web::access::{caller, AdminUser};
use crate::web::error::AppError;
use crate::web::ErrorView;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevenueView {
    pub report: Report,
    pub mode: String,
    pub coverage: String,
    /// Whether the daily Slack summary goes out, and how the last one fared.
    pub slack: String,
}

#[server]
pub async fn load_revenue(
    from: Option<String>,
    to: Option<String>,
    by: Option<String>,
) -> Result<RevenueView, AppError> {
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    let (from, to, period) = crate::domain::revenue::page_range(
        from.as_deref(),
        to.as_deref(),
        by.as_deref(),
        chrono::Utc::now().date_naive(),
    )
    .map_err(|e| AppError::Invalid(e).with_status())?;
    let load = |e| AppError::unavailable("Revenue could not be read", e);
    let report = crate::services::revenue::report(&svc, from, to, period).await.map_err(load)?;
    let coverage = crate::services::revenue::coverage(&svc, from, to).await.map_err(load)?;
    let slack = crate::services::slack::status_line(&svc).await.map_err(load)?;
    Ok(RevenueView { report, mode: svc.mode.as_str().to_string(), coverage: coverage.sentence(), slack })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Net revenue per period of one currency as an SVG bar chart: bars up for a positive net,
/// down for a negative one, a zero line, the largest figures on the axis; the chart is an
/// image with a title and a description, and every bar carries its period and amount as a
/// tooltip (`<title>`) and as data attributes (`data-period`, `data-net` in minor units).
pub fn chart_svg(report: &Report, currency: &str) -> String {
    use std::fmt::Write;
    let money = crate::domain::money::format_amount;
    let lines: Vec<_> = report.series(currency, None).collect();
    let (w, h, left, top, bottom) = (720.0_f64, 240.0_f64, 80.0_f64, 12.0_f64, 28.0_f64);
    let max = lines.iter().map(|l| l.figures.net()).max().unwrap_or(0).max(0);
    let min = lines.iter().map(|l| l.figures.net()).min().unwrap_or(0).min(0);
    let span = ((max - min) as f64).max(1.0);
    let plot_h = h - top - bottom;
    let y = |v: i64| top + (max - v) as f64 / span * plot_h;
    let zero = y(0);
    let n = lines.len().max(1) as f64;
    let slot = (w - left) / n;
    let bar = (slot * 0.8).max(1.0);
    let id = format!("revenue-{}", esc(currency));
    let total: i64 = lines.iter().map(|l| l.figures.net()).sum();
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="revenue-chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="{id}-title {id}-desc" data-currency="{cur}">"#,
        cur = esc(currency)
    );
    let _ = write!(
        out,
        r#"<title id="{id}-title">Net revenue in {up} by {period}, {from} to {to}</title><desc id="{id}-desc">{n} bars, one per {period}; net over the range {total}; highest {hi}; lowest {lo}. The table below has every figure.</desc>"#,
        up = esc(&currency.to_uppercase()),
        period = report.period.as_str(),
        from = report.from,
        to = report.to,
        n = lines.len(),
        total = esc(&money(total, currency)),
        hi = esc(&money(max, currency)),
        lo = esc(&money(min, currency)),
    );
    let _ = write!(
        out,
        r#"<text x="{x}" y="{y1}" class="axis" text-anchor="end">{hi}</text><text x="{x}" y="{y2}" class="axis" text-anchor="end">{lo}</text>"#,
        x = left - 6.0,
        y1 = top + 10.0,
        y2 = (h - bottom).min(y(min) + 4.0),
        hi = esc(&money(max, currency)),
        lo = esc(&money(min, currency)),
    );
    for (i, l) in lines.iter().enumerate() {
        let net = l.figures.net();
        let x = left + i as f64 * slot + (slot - bar) / 2.0;
        let (top_y, height) = if net >= 0 { (y(net), zero - y(net)) } else { (zero, y(net) - zero) };
        let _ = write!(
            out,
            r#"<rect class="bar {sign}" x="{x:.2}" y="{top_y:.2}" width="{bar:.2}" height="{height:.2}" data-period="{label}" data-net="{net}"><title>{label}: net {amount}</title></rect>"#,
            sign = if net < 0 { "negative" } else { "positive" },
            label = esc(&l.label),
            amount = esc(&money(net, currency)),
        );
    }
    let _ = write!(out, r#"<line class="zero" x1="{left}" x2="{w}" y1="{zero:.2}" y2="{zero:.2}"/>"#);
    if let (Some(first), Some(last)) = (lines.first(), lines.last()) {
        let _ = write!(
            out,
            r#"<text x="{left}" y="{ty}" class="axis">{a}</text><text x="{w}" y="{ty}" class="axis" text-anchor="end">{b}</text>"#,
            ty = h - 8.0,
            a = esc(&first.label),
            b = esc(&last.label),
        );
    }
    out.push_str("</svg>");
    out
}

#[component]
fn CurrencyTable(report: Report, currency: String) -> impl IntoView {
    let money = crate::domain::money::format_amount;
    let c = currency.clone();
    let rows: Vec<_> = report
        .series(&currency, None)
        .map(|all| {
            let pick = |s: Source| {
                report
                    .series(&currency, Some(s))
                    .find(|l| l.start == all.start)
                    .map(|l| l.figures.clone())
                    .unwrap_or_default()
            };
            (all.label.clone(), pick(Source::Pack), pick(Source::RateCard), all.figures.clone())
        })
        .collect();
    let totals: Vec<_> = report.totals.iter().filter(|t| t.currency == currency).cloned().collect();
    view! {
        <div class="table-wrap"><table data-testid=format!("revenue-{c}") class="revenue">
            <caption>{format!("{} by {} (UTC)", c.to_uppercase(), report.period.as_str())}</caption>
            <thead><tr>
                <th scope="col">"Period"</th><th scope="col">"Revision packs"</th><th scope="col">"Rate Card"</th>
                <th scope="col">"Gross"</th><th scope="col">"Refunds"</th><th scope="col">"Disputes lost"</th>
                <th scope="col">"Net"</th><th scope="col">"Payments"</th>
            </tr></thead>
            <tbody>{rows.into_iter().map(|(label, packs, rate_card, all)| {
                let net = all.net();
                view! {
                    <tr data-period=label.clone()>
                        <th scope="row">{label.clone()}</th>
                        <td>{money(packs.gross, &c)}</td>
                        <td>{money(rate_card.gross, &c)}</td>
                        <td>{money(all.gross, &c)}</td>
                        <td>{money(all.refunds, &c)}</td>
                        <td>{money(all.disputes_lost, &c)}</td>
                        <td class="net" data-net=net.to_string()>{money(net, &c)}</td>
                        <td>{all.payments}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
            <tfoot>{totals.into_iter().map(|t| {
                let f = t.figures;
                view! {
                    <tr>
                        <th scope="row">{match t.source { Some(Source::Pack) => "Revision packs", Some(Source::RateCard) => "Rate Card", None => "Total" }}</th>
                        <td></td><td></td>
                        <td>{money(f.gross, &c)}</td>
                        <td>{money(f.refunds, &c)}</td>
                        <td>{money(f.disputes_lost, &c)}</td>
                        <td data-total-net=f.net().to_string()>{money(f.net(), &c)}</td>
                        <td>{f.payments}</td>
                    </tr>
                }
            }).collect_view()}</tfoot>
        </table></div>
    }
}

#[component]
pub fn RevenuePage() -> impl IntoView {
    let query = use_query_map();
    let args = move || query.with(|q| (q.get("from"), q.get("to"), q.get("by")));
    let data = Resource::new(args, |(from, to, by)| load_revenue(from, to, by));
    view! {
        <h1>"Revenue"</h1>
        <super::AdminNav/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(v) => {
                    let csv = format!("/admin/revenue.csv?from={}&to={}&by={}", v.report.from, v.report.to, v.report.period.as_str());
                    let by = v.report.period.as_str();
                    view! {
                        <form method="get" action="/admin/revenue" class="filters">
                            <label>"From " <input type="date" name="from" value=v.report.from.to_string()/></label>
                            <label>"To " <input type="date" name="to" value=v.report.to.to_string()/></label>
                            <label>"By " <select name="by">
                                {["day", "week", "month"].into_iter().map(|p| view! { <option value=p selected=p == by>{p}</option> }).collect_view()}
                            </select></label>
                            <button type="submit">"Show"</button>
                        </form>
                        <p class="muted">{format!(
                            "Net = gross − refunds − disputes lost, {} mode, by the UTC day our books recorded each movement. ",
                            v.mode
                        )}{v.coverage.clone()}</p>
                        <p><a href=csv download>"Download as CSV"</a></p>
                        <p class=if v.slack.contains("FAILED") { "error" } else { "muted" } data-testid="slack-status">{v.slack.clone()}</p>
                        {if v.report.currencies().is_empty() {
                            view! { <p class="muted" data-testid="no-revenue">"No payments in this range."</p> }.into_any()
                        } else {
                            v.report.currencies().into_iter().map(|c| view! {
                                <section class="revenue-currency">
                                    <h2>{c.to_uppercase()}</h2>
                                    <div class="chart" inner_html=chart_svg(&v.report, &c)></div>
                                    <CurrencyTable report=v.report.clone() currency=c.clone()/>
                                </section>
                            }).collect_view().into_any()
                        }}
                        {(!v.report.excluded.is_empty()).then(|| view! {
                            <h2>"Not counted"</h2>
                            <ul data-testid="excluded">{v.report.excluded.iter().map(|e| view! {
                                <li>{format!(
                                    "{}: {} paid in {} payments, {} refunded, {} lost in disputes",
                                    e.class.label(),
                                    crate::domain::money::format_amount(e.figures.gross, &e.currency),
                                    e.figures.payments,
                                    crate::domain::money::format_amount(e.figures.refunds, &e.currency),
                                    crate::domain::money::format_amount(e.figures.disputes_lost, &e.currency),
                                )}</li>
                            }).collect_view()}</ul>
                        })}
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::revenue::{report, Class, DayTotal, Movement, Period};

    fn d(s: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_chart_has_one_labelled_bar_per_period_with_the_tables_numbers() {
        let rows = [
            DayTotal {
                day: d("2026-11-26"),
                currency: "usd".into(),
                source: Source::Pack,
                movement: Movement::Payment,
                class: Class::Counted,
                amount: 30000,
                count: 2,
            },
            DayTotal {
                day: d("2026-11-27"),
                currency: "usd".into(),
                source: Source::Pack,
                movement: Movement::Refund,
                class: Class::Counted,
                amount: 7500,
                count: 1,
            },
        ];
        let r = report(&rows, d("2026-11-25"), d("2026-11-27"), Period::Day);
        let svg = chart_svg(&r, "usd");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(
            svg.contains(r#"role="img""#) && svg.contains("<title id=\"revenue-usd-title\">Net revenue in USD by day")
        );
        assert_eq!(svg.matches("<rect ").count(), 3);
        assert!(svg.contains(r#"data-period="2026-11-26" data-net="30000"><title>2026-11-26: net $300.00</title>"#));
        assert!(svg.contains(r#"class="bar negative""#) && svg.contains(r#"data-net="-7500""#));
        assert!(svg.contains(r#"data-period="2026-11-25" data-net="0""#));
    }
}
