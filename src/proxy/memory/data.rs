//! The second step of [`MemoryProxy::handle`](super::MemoryProxy::handle):
//! executing a parsed [`ProxyRequest`] on the data, strings and hashes
//! whose values and fields may expire.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use http::header::CONTENT_TYPE;
use http::{Response, StatusCode};

use super::request::ProxyRequest;
use super::{Answer, fail};
use crate::proxy::wire::Command;

/// A value with its deadline.
#[derive(Debug, Clone)]
struct Entry {
    json: Vec<u8>,
    expires_at: Option<SystemTime>,
}

impl Entry {
    fn live(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|deadline| now < deadline)
    }
}

#[derive(Debug)]
enum Value {
    Text(Entry),
    Hash(BTreeMap<String, Entry>),
}

/// Everything the proxy stores, by key.
#[derive(Debug, Default)]
pub(super) struct Data {
    values: HashMap<String, Value>,
}

impl Data {
    /// Runs `request` at `now`: 200 with the JSON asked for (empty for a
    /// write), 404 for a missing key or field, 409 for a string used as a
    /// hash or the other way round.
    pub(super) fn execute(&mut self, request: &ProxyRequest<'_>, now: SystemTime) -> Answer {
        let key = request.key.as_str();
        let field = request.field.as_deref().unwrap_or_default();
        self.purge(key, now);
        let entry = || Entry {
            json: request.body.to_vec(),
            expires_at: request.expires_at,
        };
        let values = &mut self.values;
        match (request.command, values.get_mut(key)) {
            (Command::Get, None) => not_found("key"),
            (Command::Get, Some(Value::Text(entry))) => json(entry.json.clone()),
            (Command::Set, _) => {
                values.insert(key.to_owned(), Value::Text(entry()));
                json(Vec::new())
            }
            (Command::Del, _) => {
                values.remove(key);
                json(Vec::new())
            }
            (Command::HSet, None) => {
                let fields = BTreeMap::from([(field.to_owned(), entry())]);
                values.insert(key.to_owned(), Value::Hash(fields));
                json(Vec::new())
            }
            (Command::HSet, Some(Value::Hash(fields))) => {
                fields.insert(field.to_owned(), entry());
                json(Vec::new())
            }
            (Command::HDel, None) => json(Vec::new()),
            (Command::HDel, Some(Value::Hash(fields))) => {
                fields.remove(field);
                if fields.is_empty() {
                    values.remove(key);
                }
                json(Vec::new())
            }
            (_, None) => not_found("key"),
            (command, Some(Value::Hash(fields))) => read_hash(command, fields, field),
            (_, Some(Value::Text(_))) => wrong_type(),
        }
    }

    /// Drops `key`, or its fields, once expired.
    fn purge(&mut self, key: &str, now: SystemTime) {
        let gone = match self.values.get_mut(key) {
            Some(Value::Text(entry)) => !entry.live(now),
            Some(Value::Hash(fields)) => {
                fields.retain(|_, entry| entry.live(now));
                fields.is_empty()
            }
            None => false,
        };
        if gone {
            self.values.remove(key);
        }
    }
}

/// `HGET`, `HKEYS`, `HVALS` or `HGETALL` on a hash's live fields.
fn read_hash(command: Command, fields: &BTreeMap<String, Entry>, field: &str) -> Answer {
    let mut out = Vec::new();
    match command {
        Command::HGet => {
            return match fields.get(field) {
                Some(entry) => json(entry.json.clone()),
                None => not_found("field"),
            };
        }
        Command::HKeys => {
            let names: Vec<&String> = fields.keys().collect();
            out = serde_json::to_vec(&names)
                .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
        }
        Command::HVals => {
            out.push(b'[');
            for (index, entry) in fields.values().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&entry.json);
            }
            out.push(b']');
        }
        Command::HGetAll => {
            out.push(b'{');
            for (index, (name, entry)) in fields.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                let name = serde_json::to_vec(name)
                    .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
                out.extend_from_slice(&name);
                out.push(b':');
                out.extend_from_slice(&entry.json);
            }
            out.push(b'}');
        }
        _ => return wrong_type(),
    }
    json(out)
}

fn json(body: Vec<u8>) -> Answer {
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))
}

fn not_found<T>(what: &str) -> Result<T, (StatusCode, String)> {
    fail(StatusCode::NOT_FOUND, format!("{what} not found"))
}

fn wrong_type<T>() -> Result<T, (StatusCode, String)> {
    fail(
        StatusCode::CONFLICT,
        "wrongtype: operation against a key holding the wrong kind of value",
    )
}
