//! People, from the admin pages: everyone with an account, inviting an advertiser, a person's
//! contracts and the actions on their account, the audit log. Pages render on the server; the
//! forms post to plain routes (`server::people`) so they work without JavaScript. Every action is
//! recorded with who did it (`store::people`).
#[cfg(feature = "ssr")]
use crate::web::access::{caller, AdminUser};
use crate::web::error::AppError;
use crate::web::ErrorView;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

/// How many people the list shows at most; a search narrows it.
pub const PEOPLE_SHOWN: i64 = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonLine {
    pub id: i64,
    pub email: String,
    pub role: String,
    /// active, deactivated, or invited (a set-password link not used yet).
    pub status: String,
    pub contracts: i64,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLine {
    pub at: String,
    pub actor: String,
    pub what: String,
    pub user_id: Option<i64>,
    pub user_email: Option<String>,
    pub contract_id: Option<i64>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct People {
    pub people: Vec<PersonLine>,
    /// The newest entries of the audit log.
    pub audit: Vec<AuditLine>,
    /// Whether links are emailed, in words (`services::mail::status_line`).
    pub mail_status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonDetail {
    pub person: PersonLine,
    pub is_self: bool,
    pub is_advertiser: bool,
    pub active: bool,
    /// Until when their unused set-password link works, if one does.
    pub link_until: Option<String>,
    pub contracts: Vec<crate::web::contracts::ContractSummary>,
    pub audit: Vec<AuditLine>,
}

/// A set-password link just made, to pass on (email is off, or could not take it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuedLink {
    pub email: String,
    pub url: String,
    pub until: String,
    /// Why it is shown rather than emailed: email is off (`services::mail::status_line`).
    pub mail_status: Option<String>,
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;
    use crate::domain::people::AuditAction;

    pub fn person_line(p: crate::store::users::Person, now: chrono::DateTime<chrono::Utc>) -> PersonLine {
        let status = if p.deactivated_at.is_some() {
            "deactivated"
        } else if crate::services::people::link_open(p.link_expires_at, now) {
            "invited"
        } else {
            "active"
        };
        PersonLine {
            id: p.id,
            email: p.email,
            role: p.role,
            status: status.into(),
            contracts: p.contracts,
            created_at: crate::web::fmt_time(p.created_at),
        }
    }

    pub fn audit_line(a: crate::store::people::AuditEntry) -> AuditLine {
        AuditLine {
            at: crate::web::fmt_time(a.created_at),
            actor: a.actor,
            what: AuditAction::parse(&a.action).map_or(a.action.clone(), |x| x.describe().to_string()),
            user_id: a.user_id,
            user_email: a.user_email,
            contract_id: a.contract_id,
            detail: a.detail,
        }
    }

    pub fn load(e: crate::store::StoreError) -> AppError {
        AppError::unavailable("People could not be loaded", e)
    }
}

#[server]
pub async fn admin_people(search: String) -> Result<People, AppError> {
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    let now = chrono::Utc::now();
    let people = crate::store::users::people(&svc.db, &search, PEOPLE_SHOWN).await.map_err(ssr::load)?;
    let audit = crate::store::people::audit_log(&svc.db, None, 50).await.map_err(ssr::load)?;
    Ok(People {
        people: people.into_iter().map(|p| ssr::person_line(p, now)).collect(),
        audit: audit.into_iter().map(ssr::audit_line).collect(),
        mail_status: crate::services::mail::status_line(&svc),
    })
}

#[server]
pub async fn admin_person(user_id: i64) -> Result<PersonDetail, AppError> {
    use crate::store::contracts::{balance_rows, ContractQuery};
    let svc = crate::web::services()?;
    let AdminUser(me) = caller::<AdminUser>(&svc).await?;
    let now = chrono::Utc::now();
    let user = crate::store::users::find(&svc.db, user_id)
        .await
        .map_err(ssr::load)?
        .ok_or_else(|| AppError::NotFound.with_status())?;
    // The list's row for them: the same status words everywhere.
    let person = crate::store::users::people(&svc.db, &user.email, PEOPLE_SHOWN)
        .await
        .map_err(ssr::load)?
        .into_iter()
        .find(|p| p.id == user_id)
        .ok_or_else(|| AppError::NotFound.with_status())?;
    let link_until =
        person.link_expires_at.filter(|e| crate::services::people::link_open(Some(*e), now)).map(crate::web::fmt_time);
    let q = ContractQuery { advertiser_id: Some(user_id), limit: 1000, ..Default::default() };
    let contracts = balance_rows(&svc.db, &q).await.map_err(ssr::load)?;
    let audit = crate::store::people::audit_log(&svc.db, Some(user_id), 100).await.map_err(ssr::load)?;
    Ok(PersonDetail {
        is_self: me.id == user_id,
        is_advertiser: user.role() == crate::domain::users::Role::Advertiser,
        active: user.is_active(),
        link_until,
        person: ssr::person_line(person, now),
        contracts: contracts.into_iter().map(crate::web::contracts::server::summary).collect(),
        audit: audit.into_iter().map(ssr::audit_line).collect(),
    })
}

/// The set-password link an action just made, once (read before the page rendered).
#[server]
pub async fn take_issued_link() -> Result<Option<IssuedLink>, AppError> {
    let svc = crate::web::services()?;
    caller::<AdminUser>(&svc).await?;
    let mail_status = (!crate::services::mail::enabled(&svc)).then(|| crate::services::mail::status_line(&svc));
    Ok(crate::web::auth::server::snapshot().await.and_then(|s| s.issued_link).and_then(|(email, sealed, until)| {
        let url = svc.keys.open(crate::web::session_keys::ISSUED_LINK_PURPOSE, &sealed)?;
        Some(IssuedLink { email, url, until, mail_status })
    }))
}

#[component]
pub fn AdminPeoplePage() -> impl IntoView {
    let query = use_query_map();
    let search = move || query.with(|q| q.get("q").unwrap_or_default());
    let data = Resource::new(search, admin_people);
    view! {
        <h1>"People"</h1>
        <super::AdminNav/>
        <super::FlashMessage/>
        <section class="card narrow">
            <h2>"Invite an advertiser"</h2>
            <p class="muted">"Creates their account and a one-time link, valid for 72 hours, with which they set their own password. The link is emailed to them; with email off, you pass it on."</p>
            <form method="post" action="/admin/people" class="stack" data-testid="invite-form">
                <label for="invite-email">"Email"</label>
                <input id="invite-email" name="email" type="email" required maxlength="254" autocomplete="off"/>
                <button type="submit" class="primary">"Create account and link"</button>
            </form>
        </section>
        <form method="get" action="/admin/people" class="search" role="search">
            <label for="people-q">"Search by email"</label>
            <input id="people-q" name="q" type="search" value=search/>
            <button type="submit">"Search"</button>
        </form>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(p) => view! {
                    <p class="muted" data-testid="mail-status">{p.mail_status}</p>
                    {(p.people.len() as i64 >= PEOPLE_SHOWN).then(|| view! {
                        <p class="muted">{format!("Showing the first {PEOPLE_SHOWN}: search to narrow the list.")}</p>
                    })}
                    <div class="table-wrap"><table data-testid="people">
                        <thead><tr><th>"Email"</th><th>"Role"</th><th>"Status"</th><th class="wide">"Contracts"</th><th class="wide">"Since"</th></tr></thead>
                        <tbody>{p.people.into_iter().map(|u| view! {
                            <tr>
                                <td class="wrap-any"><a href=format!("/admin/people/{}", u.id)>{u.email}</a></td>
                                <td>{u.role}</td>
                                <td class=format!("status {}", u.status) data-testid="person-status">{u.status.clone()}</td>
                                <td class="wide">{u.contracts}</td>
                                <td class="wide">{u.created_at}</td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table></div>
                    <h2>"Recent actions"</h2>
                    <AuditRows rows=p.audit/>
                }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn AuditRows(rows: Vec<AuditLine>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted">"Nothing recorded yet."</p> }.into_any();
    }
    view! {
        <div class="table-wrap"><table data-testid="audit">
            <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"Whom"</th><th class="wide">"Detail"</th></tr></thead>
            <tbody>{rows.into_iter().map(|a| view! {
                <tr>
                    <td>{a.at}</td>
                    <td class="wrap-any">{a.actor}</td>
                    <td>{a.what}</td>
                    <td class="wrap-any">{a.user_id.map(|id| view! { <a href=format!("/admin/people/{id}")>{a.user_email.clone().unwrap_or_else(|| format!("#{id}"))}</a> })}</td>
                    <td class="wide">{a.contract_id.map(|c| view! { <a href=format!("/admin/contracts/{c}")>{format!("contract #{c}")}</a> " " })}{a.detail}</td>
                </tr>
            }).collect_view()}</tbody>
        </table></div>
    }
    .into_any()
}

#[component]
fn IssuedLinkNotice() -> impl IntoView {
    let link = Resource::new(|| (), |_| take_issued_link());
    view! {
        <Suspense fallback=|| ()>
            {move || link.get().and_then(Result::ok).flatten().map(|l| view! {
                <div class="notice issued-link" role="status">
                    <p>{format!("Pass this link on to {}. It sets their password once and works until {}. It is shown only now.", l.email, l.until)}</p>
                    <p><code class="wrap" data-testid="set-password-link">{l.url}</code></p>
                    {l.mail_status.map(|m| view! { <p class="muted" data-testid="mail-status">{m}</p> })}
                </div>
            })}
        </Suspense>
    }
}

#[component]
pub fn AdminPersonPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    let data = Resource::new(id, |id| async move {
        match id {
            Some(id) => admin_person(id).await,
            None => Err(AppError::NotFound),
        }
    });
    view! {
        <super::AdminNav/>
        <super::FlashMessage/>
        <IssuedLinkNotice/>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <ErrorView error=e/> }.into_any(),
                Ok(d) => {
                    let id = d.person.id;
                    view! {
                        <h1 class="wrap-any">{d.person.email.clone()}</h1>
                        <p>{format!("{} · ", d.person.role)}<span data-testid="person-status">{d.person.status.clone()}</span>{format!(" · since {}", d.person.created_at)}
                            {d.link_until.clone().map(|u| format!(" · set-password link open until {u}"))}</p>
                        {d.is_advertiser.then(|| view! {
                            <h2>"Contracts"</h2>
                            {if d.contracts.is_empty() { Some(view! { <p class="muted">"No contracts yet."</p> }) } else { None }}
                            <ul data-testid="person-contracts">{d.contracts.clone().into_iter().map(|c| view! {
                                <li><a href=format!("/admin/contracts/{}", c.id)>{format!("#{} · {} · {}", c.id, c.publication, c.ad_size)}</a>
                                    {format!(" · {} available", c.balance.available())}</li>
                            }).collect_view()}</ul>
                            {d.active.then(|| view! {
                                <form method="post" action=format!("/admin/people/{id}/contracts") class="stack narrow" data-testid="contract-form">
                                    <h3>"New contract"</h3>
                                    <label for="c-publication">"Publication"</label>
                                    <input id="c-publication" name="publication" required maxlength="200"/>
                                    <label for="c-size">"Ad size"</label>
                                    <input id="c-size" name="ad_size" required maxlength="100"/>
                                    <button type="submit" class="primary">"Create contract"</button>
                                </form>
                            })}
                        })}
                        <h2>"Account"</h2>
                        {if d.is_self {
                            view! { <p class="muted">"This is your own account: another admin manages it."</p> }.into_any()
                        } else if d.active {
                            view! {
                                <form method="post" action=format!("/admin/people/{id}/password-link") class="stack narrow">
                                    <p class="muted">"A new link to set a password: their current password stops working and they are signed out everywhere."</p>
                                    <button type="submit">"Reset password"</button>
                                </form>
                                <form method="post" action=format!("/admin/people/{id}/deactivate") class="stack narrow">
                                    <p class="muted">"They can no longer sign in, and every session of theirs ends now. Their contracts and history stay."</p>
                                    <button type="submit" class="danger">"Deactivate"</button>
                                </form>
                            }.into_any()
                        } else {
                            view! {
                                <form method="post" action=format!("/admin/people/{id}/reactivate") class="stack narrow">
                                    <p class="muted">"Deactivated: they cannot sign in."</p>
                                    <button type="submit">"Reactivate"</button>
                                </form>
                            }.into_any()
                        }}
                        <h2>"History"</h2>
                        <AuditRows rows=d.audit.clone()/>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}
