//! What the lease scripts answer, read: a lease's messages, dead letters,
//! a snapshot, statistics, a new deadline.

use super::*;

/// What [`LEASE`] answered.
pub(in crate::store) struct LeaseReply {
    /// How many of the deliveries to ack were.
    pub(in crate::store) acked: u64,
    pub(in crate::store) leased: Vec<Leased>,
    /// Milliseconds until a lease expires or a retry is due, when nothing
    /// was leased and something is pending.
    pub(in crate::store) next_due: Option<u64>,
    /// Whether anything is pending (in flight or waiting).
    pub(in crate::store) pending: bool,
}

/// A reply read as `T`, or why not.
type Read<T> = Result<T, String>;

fn int(reply: &Reply) -> Read<i64> {
    match reply {
        Reply::Int(value) => Ok(*value),
        other => Err(format!("{other:?} where an integer belongs")),
    }
}

fn bytes(reply: Reply) -> Read<Vec<u8>> {
    match reply {
        Reply::Bulk(bytes) => Ok(bytes),
        other => Err(format!("{other:?} where a bulk string belongs")),
    }
}

fn text(reply: Reply) -> Read<String> {
    String::from_utf8(bytes(reply)?).map_err(|_| "an id that is not UTF-8".into())
}

fn array(reply: Reply) -> Read<Vec<Reply>> {
    match reply {
        Reply::Array(items) => Ok(items),
        Reply::Nil => Ok(Vec::new()),
        other => Err(format!("{other:?} where an array belongs")),
    }
}

fn millis(value: i64) -> Read<SystemTime> {
    u64::try_from(value)
        .map(from_epoch_millis)
        .map_err(|_| format!("a time of {value}"))
}

/// The messages of a unit as a reply gives them: each message's attempt
/// and id, in place `j`, with its body.
fn unit_messages(
    unit: &str,
    attempts: Reply,
    ids: Reply,
    bodies: Reply,
) -> Read<Vec<(DeliveryTag, Vec<u8>)>> {
    let bodies = array(bodies)?;
    let attempts = match attempts {
        Reply::Nil => None,
        reply => Some(array(reply)?),
    };
    let ids = match ids {
        Reply::Nil => None,
        reply => Some(array(reply)?),
    };
    if attempts.as_ref().is_some_and(|a| a.len() != bodies.len())
        || ids.as_ref().is_some_and(|i| i.len() != bodies.len())
    {
        return Err("a unit whose lists differ in length".into());
    }
    let mut attempts = attempts.map(Vec::into_iter);
    let mut ids = ids.map(Vec::into_iter);
    let shared: Arc<str> = unit.into();
    bodies
        .into_iter()
        .enumerate()
        .map(|(place, body)| {
            let index = u32::try_from(place + 1).map_err(|_| "a unit too large")?;
            let attempt = match attempts.as_mut().and_then(Iterator::next) {
                None => 1,
                Some(attempt) => u32::try_from(int(&attempt)?).map_err(|_| "a negative attempt")?,
            };
            let id = ids
                .as_mut()
                .and_then(Iterator::next)
                .map(text)
                .transpose()?
                .filter(|id| !id.is_empty());
            let tag = DeliveryTag::new(id, attempt, shared.clone(), index);
            Ok((tag, bytes(body)?))
        })
        .collect()
}

impl LeaseReply {
    /// The script's reply; or, for a lease of more than one message, the
    /// transaction's: the script's reply, whose bodies are a count, and the
    /// unit's list that holds them.
    pub(in crate::store) fn read(reply: Reply) -> Read<Self> {
        let mut items = array(reply)?;
        let mut listed = None;
        if items.len() == 2 {
            listed = items.pop();
            items = array(items.pop().unwrap_or(Reply::Nil))?;
        }
        let Ok::<[Reply; 8], _>(
            [
                deadline,
                next_due,
                acked,
                pending,
                unit,
                attempts,
                ids,
                bodies,
            ],
        ) = items.try_into()
        else {
            return Err("a lease reply of another shape".into());
        };
        let deadline = millis(int(&deadline)?)?;
        let unit = text(unit)?;
        // Bodies kept in the unit's list: the script gives their count.
        let bodies = match (bodies, listed) {
            (Reply::Int(count), Some(list)) => {
                let list = array(list)?;
                if i64::try_from(list.len()).ok() != Some(count) {
                    return Err(format!(
                        "a unit of {count} messages whose list holds {}",
                        list.len()
                    ));
                }
                Reply::Array(list)
            }
            (bodies, _) => bodies,
        };
        let leased = unit_messages(&unit, attempts, ids, bodies)?
            .into_iter()
            .map(|(tag, body)| Leased {
                tag,
                deadline,
                body,
            })
            .collect();
        Ok(Self {
            acked: u64::try_from(int(&acked)?).map_err(|_| "a negative count")?,
            leased,
            next_due: u64::try_from(int(&next_due)?).ok(),
            pending: int(&pending)? > 0,
        })
    }
}

/// The dead letters of an `XRANGE` of the dead-letter stream.
pub(in crate::store) fn dead_letters(reply: Reply) -> Read<Vec<DeadLetter>> {
    array(reply)?
        .into_iter()
        .map(|entry| {
            let Ok::<[Reply; 2], _>([id, fields]) = array(entry)?.try_into() else {
                return Err("a stream entry of another shape".into());
            };
            let id = text(id)?;
            let at = id
                .split_once('-')
                .and_then(|(ms, _)| ms.parse::<u64>().ok())
                .map(from_epoch_millis)
                .ok_or_else(|| format!("a stream entry id {id:?}"))?;
            let mut letter = DeadLetter {
                id,
                message_id: String::new(),
                deliveries: 0,
                reason: DeadReason::Expired,
                at,
                body: Vec::new(),
            };
            let mut fields = array(fields)?.into_iter();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                match bytes(name)?.as_slice() {
                    b"id" => letter.message_id = text(value)?,
                    b"deliveries" => {
                        letter.deliveries = String::from_utf8_lossy(&bytes(value)?)
                            .parse()
                            .map_err(|_| "a count of deliveries that is no number")?;
                    }
                    b"reason" => letter.reason = DeadReason::from_word(&text(value)?),
                    b"body" => letter.body = bytes(value)?,
                    _ => {}
                }
            }
            Ok(letter)
        })
        .collect()
}

/// What [`SNAPSHOT`] answered.
pub(in crate::store) fn snapshot(reply: Reply) -> Read<LeaseSnapshot> {
    let Ok::<[Reply; 2], _>([units, dead]) = array(reply)?.try_into() else {
        return Err("a lease snapshot of another shape".into());
    };
    let mut snapshot = LeaseSnapshot {
        dead: dead_letters(dead)?,
        ..LeaseSnapshot::default()
    };
    for unit in array(units)? {
        let Ok::<[Reply; 7], _>([member, score, unit, bodies, attempts, ids, state]) =
            array(unit)?.try_into()
        else {
            return Err("a unit of another shape".into());
        };
        let waiting = text(member)?.ends_with('+');
        let at = millis(int(&score)?)?;
        let unit = text(unit)?;
        let state = bytes(state)?;
        for (tag, body) in unit_messages(&unit, attempts, ids, bodies)? {
            let place = tag.index as usize - 1;
            if state.get(place).copied().unwrap_or(b'1') != b'1' {
                continue;
            }
            let entry = LeaseEntry { tag, at, body };
            match waiting {
                true => snapshot.retrying.push(entry),
                false => snapshot.in_flight.push(entry),
            }
        }
    }
    Ok(snapshot)
}

/// What [`STATS`] answered.
pub(in crate::store) fn stats(reply: Reply) -> Read<LeaseStats> {
    let Ok::<[Reply; 5], _>([depth, in_flight, waiting, dead, nearest]) = array(reply)?.try_into()
    else {
        return Err("lease statistics of another shape".into());
    };
    let count = |reply: &Reply| -> Read<u64> {
        u64::try_from(int(reply)?).map_err(|_| "a negative count".into())
    };
    Ok(LeaseStats {
        depth: count(&depth)?,
        in_flight: count(&in_flight)?,
        retrying: count(&waiting)?,
        dead: count(&dead)?,
        next_deadline: u64::try_from(int(&nearest)?).ok().map(from_epoch_millis),
    })
}

/// The deadline [`EXTEND`] answered; `None` for -1 (not in flight).
pub(in crate::store) fn extended(deadline: i64) -> Option<SystemTime> {
    u64::try_from(deadline).ok().map(from_epoch_millis)
}
