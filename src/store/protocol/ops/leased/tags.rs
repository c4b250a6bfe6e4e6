//! A settling call's delivery tags as the lease scripts take them.

use std::fmt::Write;

use crate::store::lease::DeliveryTag;

/// The (unit, places) pairs of `tags`, as the scripts take them: places
/// in runs (`1-40,42`).
pub(super) fn tag_args(tags: &[DeliveryTag]) -> Vec<String> {
    // A batch's tags come together and share their unit (one `Arc`): a
    // tag joins the last unit seen when it can, and no map is built.
    let mut units: Vec<(&str, Vec<u32>)> = Vec::new();
    for tag in tags {
        match units.last_mut() {
            Some((unit, places)) if std::ptr::eq(*unit, &*tag.unit) || *unit == &*tag.unit => {
                places.push(tag.index)
            }
            last => {
                let room = if last.is_none() { tags.len() } else { 1 };
                let mut places = Vec::with_capacity(room);
                places.push(tag.index);
                units.push((&tag.unit, places));
            }
        }
    }
    units.sort_by_key(|&(unit, _)| unit);
    units.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1.append(&mut later.1);
        }
        same
    });
    let mut args = Vec::with_capacity(units.len() * 2);
    for (unit, mut places) in units {
        places.sort_unstable();
        places.dedup();
        let mut runs = String::new();
        let mut i = 0;
        while i < places.len() {
            let start = places[i];
            while i + 1 < places.len() && places[i + 1] == places[i] + 1 {
                i += 1;
            }
            let comma = if runs.is_empty() { "" } else { "," };
            let _ = match places[i] == start {
                true => write!(runs, "{comma}{start}"),
                false => write!(runs, "{comma}{start}-{}", places[i]),
            };
            i += 1;
        }
        args.push(unit.to_owned());
        args.push(runs);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(unit: &str, index: u32) -> DeliveryTag {
        DeliveryTag::new(None, 1, unit.into(), index)
    }

    #[test]
    fn tags_go_by_unit_with_their_places_in_runs() {
        let tags = [
            tag("B", 1),
            tag("A", 3),
            tag("A", 1),
            tag("A", 2),
            tag("A", 7),
            tag("A", 2),
        ];
        assert_eq!(tag_args(&tags), ["A", "1-3,7", "B", "1"]);
        assert!(tag_args(&[]).is_empty());
        // A unit met again after another is one unit.
        let tags = [tag("A", 1), tag("B", 1), tag("A", 2)];
        assert_eq!(tag_args(&tags), ["A", "1-2", "B", "1"]);
    }
}
