//! Integration tests: one binary (one link on a 2-core machine). Every database test runs twice,
//! on SQLite and on a real PostgreSQL (`TEST_POSTGRES_URL`, started by scripts/test), against
//! the real router on port 0.
mod helpers;
mod house;
mod mailbox;

mod accounting;
mod alerts;
mod balances;
mod cli;
mod edge;
mod email;
mod event_search;
mod evidence;
mod fault_run;
mod forgot;
mod forwarding;
mod gateway;
mod money_back;
mod money_rules;
mod password_mail;
mod people;
mod processing;
mod reconcile;
mod revenue;
mod scale;
mod sessions;
mod shapes;
mod simulator;
mod slack;
mod small_doors;
mod statement;
mod stripe;
mod uploads;
mod web;
mod webhook;
