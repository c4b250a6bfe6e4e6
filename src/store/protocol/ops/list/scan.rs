//! SCAN to its end: cursors followed, on one node or every master.

use super::*;

/// SCAN on every master: the first page from each, then each master's
/// cursor to its end. Keys that are not UTF-8 are skipped.
pub(crate) struct Scan {
    pub(crate) shown: Arc<str>,
    pub(crate) pattern: String,
    pub(crate) keys: Vec<String>,
    /// Masters whose cursor is not at its end yet.
    pub(crate) cursors: Vec<(Node, Vec<u8>)>,
    pub(crate) started: bool,
}

pub(crate) fn scan(shown: &Arc<str>, pattern: &str) -> Scan {
    Scan {
        shown: shown.clone(),
        pattern: pattern.to_owned(),
        keys: Vec::new(),
        cursors: Vec::new(),
        started: false,
    }
}

impl Scan {
    pub(crate) fn request(&self, cursor: &[u8]) -> Request {
        Request::new(&[
            &b"SCAN"[..],
            cursor,
            b"MATCH",
            self.pattern.as_bytes(),
            b"COUNT",
            b"1000",
        ])
    }

    /// Takes one page's keys; its cursor, unless at the end.
    pub(crate) fn page(&mut self, page: Reply) -> Result<Option<Vec<u8>>, String> {
        let [cursor, keys] = items(page)?;
        let Reply::Bulk(cursor) = cursor else {
            return Err(format!("{cursor:?} where a cursor belongs"));
        };
        self.keys.extend(
            bulks(keys)?
                .into_iter()
                .filter_map(|key| String::from_utf8(key).ok()),
        );
        Ok((cursor != b"0").then_some(cursor))
    }
}

impl Operation for Scan {
    type Output = Vec<String>;

    fn next(&mut self, reply: Option<Reply>) -> Result<Next<Self::Output>, StoreError> {
        let shown = self.shown.clone();
        let bad = |why| unexpected(&shown, why);
        match reply {
            None => {
                self.started = true;
                return Ok(Next::Call(Call {
                    op: Op::Scan,
                    route: Route::EveryMaster,
                    request: self.request(b"0"),
                    wait: Wait::Response,
                }));
            }
            Some(Reply::Array(pages)) if self.cursors.is_empty() && self.started => {
                self.started = false;
                for page in pages {
                    let [node, page] = items(page).map_err(bad)?;
                    let node = bulk_or_nil(node).map_err(bad)?.unwrap_or_default();
                    let node = Node::new(String::from_utf8_lossy(&node).into_owned());
                    if let Some(cursor) = self.page(page).map_err(bad)? {
                        self.cursors.push((node, cursor));
                    }
                }
            }
            Some(page) => {
                let (node, _) = self
                    .cursors
                    .pop()
                    .ok_or_else(|| bad("a page unasked".into()))?;
                if let Some(cursor) = self.page(page).map_err(bad)? {
                    self.cursors.push((node, cursor));
                }
            }
        }
        match self.cursors.last() {
            None => {
                let mut keys = std::mem::take(&mut self.keys);
                keys.sort_unstable();
                keys.dedup();
                Ok(Next::Done(keys))
            }
            Some((node, cursor)) => Ok(Next::Call(Call {
                op: Op::Scan,
                route: Route::Node(node.clone()),
                request: self.request(cursor),
                wait: Wait::Response,
            })),
        }
    }
}
